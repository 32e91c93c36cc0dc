"""Pages of the key-project register (重点项目 / 重点企业认定): the list with search, adding, revoking. Each handler
parses the form, calls one use case of :mod:`engine.usecases.keyregister` and renders; who may do what is the engine's."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from engine.errors import InvalidInput

from .auth import check_csrf, permission_required, service
from .formdata import parse_int

bp = Blueprint("keyregister", __name__, url_prefix="/keyregister")


@bp.get("")
@permission_required("key_register")
def register():
    view = service().key_register(g.actor, request.args.get("kind"), request.args.get("q"),
                                  parse_int(request.args.get("page")) or 1)
    return render_template("keyregister/list.html", view=view, args=request.args)


@bp.route("/new", methods=["GET", "POST"])
@permission_required("key_projects", "key_enterprises")
def add():
    kind = request.values.get("kind") or "project"
    values, error, status = {"kind": kind}, None, 200
    if request.method == "POST":
        check_csrf()
        form = request.form
        values = {k: form.get(k, "") for k in ("kind", "code", "name", "document_no", "valid_from", "valid_to")}
        try:
            added = service().add_key_designation(g.actor, values["kind"], values["code"], values["name"],
                                                  values["document_no"], values["valid_from"], values["valid_to"] or None)
        except InvalidInput as exc:
            error, status = exc, 422
        else:
            flash(f"已登记：{added['code']} {added['name']}（{added['document_no']}）")
            return redirect(url_for("keyregister.register", kind=added["kind"]))
    view = service().key_register(g.actor, page=1)
    if values["kind"] not in view["manage_kinds"] and view["manage_kinds"]:
        values["kind"] = view["manage_kinds"][0]
    return render_template("keyregister/new.html", values=values, error=error, view=view), status


@bp.post("/<designation_id>/revoke")
@permission_required("key_projects", "key_enterprises")
def revoke(designation_id: str):
    check_csrf()
    number = parse_int(designation_id)
    if number is None:
        abort(404, description="没有这条认定记录")
    try:
        service().revoke_key_designation(g.actor, number, request.form.get("reason", ""))
    except InvalidInput as exc:
        view = service().key_register(g.actor)
        return render_template("keyregister/list.html", view=view, args={}, error=exc, revoking=number), 422
    flash("认定已撤销")
    return redirect(url_for("keyregister.register"))
