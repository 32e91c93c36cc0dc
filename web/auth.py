"""Login, logout, the current actor (from the server-side session of the cookie) and CSRF tokens for HTML forms."""
from __future__ import annotations

import hmac
import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

from engine.errors import Forbidden, NotAuthenticated, TooManyAttempts

bp = Blueprint("auth", __name__)


def service():
    return current_app.extensions["bangban"]


# What a user who must change a one-time password may still reach (everything else: the password page, or 403).
WHILE_MUST_CHANGE = frozenset({"auth.login", "auth.logout", "account.password", "api.logout", "api.me",
                               "account.api_password"})
TIMED_OUT = "登录已超时，请重新登录"
PUBLIC_FILES = frozenset({"static", "views.bpmn_js"})    # style sheets, scripts, fonts: no session lookup


def init_app(app) -> None:
    @app.before_request
    def load_actor():
        """The actor of the request's session, checked in the database on every request (one query), so a logout,
        a deactivation or an ended session counts at once on every server process."""
        g.actor, g.timed_out, g.must_change_password = None, False, False
        if request.endpoint in PUBLIC_FILES:
            return None
        token = session.get("token")
        if token is None:
            if "uid" in session:        # a cookie of before server-side sessions
                session.clear()
            return None
        current = service().current_session(token)
        if current.actor is None:
            session.clear()
            g.timed_out = current.timed_out
            return None
        g.actor, g.must_change_password = current.actor, current.must_change_password
        if current.must_change_password and request.endpoint not in WHILE_MUST_CHANGE:
            if request.path.startswith("/api/"):
                raise Forbidden("请先修改初始密码")
            flash("请先修改初始密码")
            return redirect(url_for("account.password"))
        return None

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
                raise NotAuthenticated(TIMED_OUT if g.get("timed_out") else "请先登录")
            if g.get("timed_out"):
                flash(TIMED_OUT)
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


def start_session(token: str) -> None:
    """Put a new login's token into the (signed, HttpOnly, not permanent) session cookie, nothing else."""
    session.clear()
    session["token"] = token
    session.permanent = False


@bp.route("/login", methods=["GET", "POST"])
def login():
    error, status, headers = None, 200, {}
    if request.method == "POST":
        check_csrf()
        try:
            done = service().login(request.form.get("username", "")[:64], request.form.get("password", "")[:128],
                                   request.remote_addr)
        except NotAuthenticated as exc:
            error, status = exc.message, exc.status
        except TooManyAttempts as exc:
            error, status, headers = exc.message, exc.status, {"Retry-After": str(exc.retry_after)}
        else:
            start_session(done.token)
            if done.must_change_password:
                flash("首次登录请先修改初始密码")
                return redirect(url_for("account.password"))
            flash(f"欢迎，{done.actor.display_name}")
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error), status, headers


@bp.post("/logout")
def logout():
    check_csrf()
    service().logout(session.get("token"))
    session.clear()
    return redirect(url_for("auth.login"))
