"""Login, logout, the current actor (from the server-side session of the cookie) and CSRF tokens for HTML forms."""
from __future__ import annotations

import hmac
import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

from engine.errors import Forbidden, NotAuthenticated, SessionChanged, TooManyAttempts

bp = Blueprint("auth", __name__)


def service():
    return current_app.extensions["bangban"]


# What a user who must change a one-time password may still reach (everything else: the password page, or 403).
WHILE_MUST_CHANGE = frozenset({"auth.login", "auth.logout", "account.password", "api.logout", "api.me",
                               "account.api_password"})
TIMED_OUT = "登录已超时，请重新登录"
PUBLIC_FILES = frozenset({"static", "views.bpmn_js", "views.modeler_bundle"})    # style sheets, scripts, fonts: no session lookup


def init_app(app) -> None:
    @app.before_request
    def load_actor():
        """The actor of the request's session, checked in the database on every request, so a logout, a deactivation
        or an ended session counts at once on every server process. For a route that needs a login, a session this
        process knows is checked in the use case's own transaction (``Bangban.request_session``; ``login_required``
        confirms it and runs the request again if the database disagreed); for every other route at once."""
        if request.endpoint in PUBLIC_FILES:
            g.actor, g.timed_out, g.must_change_password, g.session_unconfirmed = None, False, False, False
            return None
        view = current_app.view_functions.get(request.endpoint)
        return _resolve_actor(deferred=getattr(view, "bangban_login", False))

    @app.teardown_request
    def forget_session_check(_exc):
        service().forget_request_session()      # never left for the next request of this thread

    @app.context_processor
    def inject():
        return {"actor": g.get("actor"), "csrf_token": csrf_token, "svc": service()}


def _resolve_actor(deferred: bool):
    """Set ``g.actor`` (and ``g.timed_out``, ``g.must_change_password``) from the session cookie; a redirect to the
    password page (or 403 in the API) while a one-time password must be changed."""
    g.actor, g.timed_out, g.must_change_password, g.session_unconfirmed = None, False, False, False
    token = session.get("token")
    if token is None:
        if "uid" in session:        # a cookie of before server-side sessions
            session.clear()
        return None
    if deferred:
        current = service().request_session(token)
        g.session_unconfirmed = service().session_check_pending()
    else:
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


def _run_confirmed(view, args, kwargs):
    """Run ``view`` with an actor whose session check is still to come (in the view's first transaction, or here
    after it); if the database disagreed (:class:`SessionChanged`), undo what the attempt put into the cookie session,
    look the session up afresh and run the view again — so the answer is always that of a session confirmed in this
    request."""
    saved = dict(session)
    try:
        try:
            result = view(*args, **kwargs)
        except SessionChanged:
            raise
        except BaseException:
            service().confirm_request_session()
            raise
        service().confirm_request_session()
        return result
    except SessionChanged:
        service().forget_request_session()
        session.clear()
        session.update(saved)
        redirected = _resolve_actor(deferred=False)
        if redirected is not None:
            return redirected
        return None if g.actor is None else view(*args, **kwargs)
    finally:
        g.session_unconfirmed = False


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400, description="页面已过期或来源不明，请刷新页面后重试")


def _not_logged_in():
    if request.path.startswith("/api/"):
        raise NotAuthenticated(TIMED_OUT if g.get("timed_out") else "请先登录")
    if g.get("timed_out"):
        flash(TIMED_OUT)
    return redirect(url_for("auth.login", next=request.full_path))


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.actor is None:
            return _not_logged_in()
        if g.get("session_unconfirmed"):
            result = _run_confirmed(view, args, kwargs)
            return _not_logged_in() if g.actor is None else result
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
