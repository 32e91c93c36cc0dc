"""Login, logout, the current actor and CSRF tokens for HTML forms."""
from __future__ import annotations

import hmac
import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

from engine.errors import NotAuthenticated

bp = Blueprint("auth", __name__)


def service():
    return current_app.extensions["bangban"]


def init_app(app) -> None:
    @app.before_request
    def load_actor():
        g.actor = None
        uid = session.get("uid")
        if uid is not None:
            g.actor = service().actor(uid)
            if g.actor is None:
                session.clear()

    @app.context_processor
    def inject():
        return {"actor": g.get("actor"), "csrf_token": csrf_token, "svc": service()}


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400, description="页面已过期或来源不明，请刷新页面后重试")


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.actor is None:
            if request.path.startswith("/api/"):
                raise NotAuthenticated("请先登录")
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)
    wrapped.bangban_login = True     # for the access-matrix test: this route needs a logged-in user
    return wrapped


def permission_required(*permissions: str):
    """A page or API route for the roles with one of ``permissions`` (manifest ``roles.*.permissions``): logged in,
    then checked by the engine (403 otherwise). The permissions are kept on the view (``bangban_permissions``), so the
    access-matrix test reads from the route table who may call each route."""
    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not set(permissions) & service().permissions(g.actor):
                service().check_permission(g.actor, permissions[0])
            return view(*args, **kwargs)
        guarded = login_required(wrapped)
        guarded.bangban_permissions = permissions
        return guarded
    return decorate


def _safe_next(target: str | None) -> str:
    """Only a path on this site: no scheme, no host, no control characters, no backslashes."""
    if target and target.startswith("/") and target.isprintable() and "\\" not in target and target[1:2] not in ("/", " "):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("views.inbox")


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        check_csrf()
        try:
            actor = service().authenticate(request.form.get("username", "")[:64], request.form.get("password", "")[:128])
        except NotAuthenticated as exc:
            error = exc.message
        else:
            session.clear()
            session["uid"] = actor.id
            session.permanent = False
            flash(f"欢迎，{actor.display_name}")
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():
    check_csrf()
    session.clear()
    return redirect(url_for("auth.login"))
