"""One's own account: changing the password (also the first-login change of a one-time password)."""
from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, session, url_for

from engine.errors import Conflict, InvalidInput, TooManyAttempts

from .api import _body
from .auth import check_csrf, login_required, service

bp = Blueprint("account", __name__)
FIELDS = ("old_password", "new_password", "new_password_again")


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    error, status, headers = None, 200, {}
    if request.method == "POST":
        check_csrf()
        try:
            service().change_password(g.actor, session.get("token"), *(request.form.get(f, "")[:200] for f in FIELDS))
        except (InvalidInput, Conflict) as exc:
            error, status = exc.message, exc.status
        except TooManyAttempts as exc:
            error, status, headers = exc.message, exc.status, {"Retry-After": str(exc.retry_after)}
        else:
            flash("密码已修改；您在其他地方的登录已全部退出")
            return redirect(url_for("views.inbox"))
    return (render_template("account/password.html", error=error, first=g.must_change_password,
                            min_length=service().password_min_length()), status, headers)


@bp.post("/api/account/password")
@login_required
def api_password():
    body = _body(*FIELDS)
    values = [body.get(f, "") for f in FIELDS]
    if not all(isinstance(v, str) for v in values):
        raise InvalidInput("密码应为文字")
    service().change_password(g.actor, session.get("token"), *(v[:200] for v in values))
    return jsonify({"ok": True})
