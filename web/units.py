"""Applicant units: online registration (anonymous), its review by the 综合窗口, a unit administrator's handlers.
Each handler parses the form, calls one use case of ``engine.usecases.units`` and renders the result."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from engine.errors import BangbanError, InvalidInput

from .auth import check_csrf, login_required, permission_required, service

bp = Blueprint("units", __name__)

REGISTRATION_FIELDS = ("name", "credit_code", "legal_representative", "address", "postcode", "leader_name",
                       "leader_phone", "contact_name", "contact_phone", "username", "display_name", "password",
                       "password_confirm")


@bp.route("/register", methods=["GET", "POST"])
def register():
    """单位注册: open to anyone (no login)."""
    values, errors, status = {}, None, 200
    if request.method == "POST":
        check_csrf()
        values = {k: request.form.get(k, "")[:300] for k in REGISTRATION_FIELDS}
        try:
            result = service().register_unit(values, address=request.remote_addr)
        except InvalidInput as exc:
            errors, status = exc, 422
        else:
            return render_template("units/registered.html", result=result)
        values = {k: v for k, v in values.items() if not k.startswith("password")}
    return render_template("units/register.html", values=values, errors=errors), status


@bp.route("/units/registrations", methods=["GET", "POST"])
@permission_required("unit_registrations")
def registrations():
    """单位注册审核 (综合窗口): approve, or reject with a reason."""
    errors, status, failed_id = None, 200, None
    if request.method == "POST":
        check_csrf()
        failed_id = request.form.get("unit_id", "")[:20]
        try:
            result = service().review_unit(g.actor, failed_id, request.form.get("decision", "")[:16],
                                           request.form.get("reason", "")[:600])
        except InvalidInput as exc:
            errors, status = exc, 422
        else:
            flash(f"已审核：{result['name']}（{result['status_name']}）")
            return redirect(url_for("units.registrations"))
    show = request.args.get("status", "pending")[:16]
    return render_template("units/registrations.html", units=service().unit_registrations(g.actor, show or None),
                           show=show, errors=errors, failed_id=failed_id), status


@bp.route("/units/handlers", methods=["GET", "POST"])
@login_required
def handlers():
    """本单位经办人 (the unit's administrator): add a handler (one-time password) or deactivate one."""
    errors, status, created, values = None, 200, None, {}
    if request.method == "POST":
        check_csrf()
        action = request.form.get("action")
        try:
            if action == "add":
                values = {k: request.form.get(k, "")[:100] for k in ("username", "display_name", "phone", "unit_admin")}
                created = service().add_unit_handler(g.actor, values)
                values = {}
            elif action == "remove":
                removed = service().remove_unit_handler(g.actor, request.form.get("user_id", "")[:20])
                flash(f"已停用经办人 {removed['username']}")
                return redirect(url_for("units.handlers"))
            else:
                raise InvalidInput("未知的操作")
        except InvalidInput as exc:
            errors, status = exc, 422
        except BangbanError as exc:
            if exc.status != 409:
                raise
            errors, status = exc, 409
    view = service().unit_handlers(g.actor)
    return render_template("units/handlers.html", view=view, errors=errors, created=created, values=values), status
