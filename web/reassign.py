"""改派: the form for one open task (from the case page or the supervisor's list) and its JSON API."""
from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for

from engine.errors import InvalidInput

from .api import _body
from .auth import check_csrf, permission_required, service

bp = Blueprint("reassign", __name__)


@bp.route("/tasks/<task_id>/reassign", methods=["GET", "POST"])
@permission_required("reassign")
def reassign_page(task_id: str):
    """The 改派 form; after it, back to the supervisor's list when it came from there, else to the case."""
    view = service().reassign_form(g.actor, task_id)
    values = {"to": "", "reason": "", "scope": "task"}
    errors, status = None, 200
    back = request.values.get("back") == "supervision"
    if request.method == "POST":
        check_csrf()
        values = {k: request.form.get(k, "")[:1000] for k in values}
        try:
            result = service().reassign_task(g.actor, task_id, values["to"], values["reason"], values["scope"] or "task")
        except InvalidInput as exc:
            errors, status = exc, 422
        else:
            name = next((c["display_name"] for c in view["candidates"] if c["username"] == result["to"]), result["to"])
            flash(f"已将「{view['task']['name']}」改派给{name}")
            if back:
                return redirect(url_for("views.supervision"))
            return redirect(url_for("views.case", case_no=result["case_no"]))
    return render_template("reassign/form.html", view=view, values=values, errors=errors, back=back), status


@bp.get("/api/tasks/<task_id>/reassign")
@permission_required("reassign")
def api_reassign_form(task_id: str):
    """The task, who holds it, the people it can go to and whether they can take over the case's lead."""
    return jsonify(service().reassign_form(g.actor, task_id))


@bp.post("/api/tasks/<task_id>/reassign")
@permission_required("reassign")
def api_reassign(task_id: str):
    body = _body("to", "reason", "scope")
    return jsonify(service().reassign_task(g.actor, task_id, body.get("to"), body.get("reason"),
                                           body.get("scope") or "task"))


@bp.get("/api/reassignments")
@permission_required("reassign")
def api_queue():
    """The open tasks no active account may act on now, each with the people it can go to."""
    return jsonify({"tasks": service().reassignment_queue(g.actor)})
