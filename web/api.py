"""JSON API: the same use cases as the pages (documented in web/static/openapi.json)."""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request, session

from engine.errors import InvalidInput

from .auth import login_required, permission_required, service, start_session
from .formdata import parse_int, parse_json_body

bp = Blueprint("api", __name__, url_prefix="/api")


def _body(*allowed: str) -> dict:
    """The request's JSON object; ``allowed``: its only permitted top-level fields (none given: a form's data,
    whose fields the form itself checks)."""
    if not request.is_json:
        raise InvalidInput("请求体应为 JSON（Content-Type: application/json）")
    try:
        return parse_json_body(request.get_data(cache=True), frozenset(allowed) if allowed else None)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _actor_dict(actor, must_change_password: bool = False) -> dict:
    names = service().role_names()
    return {"id": actor.id, "username": actor.username, "display_name": actor.display_name,
            "roles": list(actor.roles), "role_names": [names.get(r, r) for r in actor.roles],
            "department": actor.department, "unit_id": actor.unit_id, "must_change_password": must_change_password}


@bp.post("/login")
def login():
    body = _body("username", "password")
    done = service().login(str(body.get("username", ""))[:64], str(body.get("password", ""))[:128],
                           request.remote_addr)
    start_session(done.token)
    return jsonify(_actor_dict(done.actor, done.must_change_password))


@bp.post("/logout")
def logout():
    service().logout(session.get("token"))
    session.clear()
    return jsonify({"ok": True})


@bp.get("/me")
@login_required
def me():
    return jsonify(_actor_dict(g.actor, g.must_change_password))


INBOX_PARAMS = ("limit", "after", "stage", "item", "department", "unit", "due_before")


@bp.get("/tasks")
@login_required
def tasks():
    args = request.args
    return jsonify(service().inbox_page(g.actor, **{k: args.get(k) for k in INBOX_PARAMS}))


@bp.get("/tasks/<task_id>")
@login_required
def task(task_id: str):
    return jsonify(service().get_task(g.actor, task_id))


@bp.post("/tasks/<task_id>/complete")
@login_required
def complete(task_id: str):
    return jsonify(service().complete_task(g.actor, task_id, _body()))


@bp.get("/processes/<process_id>/start-form")
@login_required
def start_form(process_id: str):
    return jsonify(service().start_form(g.actor, process_id))


@bp.post("/cases")
@login_required
def start_case():
    body = _body("data", "unit_id", "process")
    unit_id = body.get("unit_id")
    if unit_id is not None and (isinstance(unit_id, bool) or not isinstance(unit_id, int)):
        raise InvalidInput("unit_id 应为整数")
    data = body.get("data")
    if not isinstance(data, dict):
        raise InvalidInput("data 应为申请表对象")
    process_id = str(body.get("process") or next(iter(service().current.manifest["processes"])))
    started = service().start_case(g.actor, process_id, data, unit_id=unit_id)
    return jsonify({"case_no": started.case_no, "status": started.status, "tasks": started.tasks}), 201


@bp.get("/cases")
@login_required
def cases():
    a = request.args
    return jsonify(service().search_cases(g.actor, q=a.get("q"), unit=a.get("unit"), project=a.get("project"),
                                          status=a.get("status"), page=parse_int(a.get("page")) or 1))


@bp.get("/cases/<case_no>")
@login_required
def case(case_no: str):
    return jsonify(service().get_case(g.actor, case_no))


@bp.get("/cases/<case_no>/messages/<key>")
@login_required
def message_form(case_no: str, key: str):
    """The form of a message this user may send to the case now (申请终止, 决定终止), with its choices."""
    return jsonify(service().message_form(g.actor, case_no, key))


@bp.post("/cases/<case_no>/messages/<key>")
@login_required
def message(case_no: str, key: str):
    return jsonify(service().send_message(g.actor, case_no, key, _body()))


@bp.get("/cases/<case_no>/documents/<int:doc_id>")
@login_required
def document(case_no: str, doc_id: int):
    return jsonify(service().get_document(g.actor, case_no, doc_id))


@bp.get("/tasks/<task_id>/messages/<key>")
@login_required
def task_message_form(task_id: str, key: str):
    """The form of a message sent from one of the user's tasks (申请延期), with its choices."""
    return jsonify(service().message_form(g.actor, None, key, task_id))


@bp.post("/tasks/<task_id>/messages/<key>")
@login_required
def task_message(task_id: str, key: str):
    return jsonify(service().send_message(g.actor, None, key, _body(), task_id))


@bp.get("/notifications")
@login_required
def notifications():
    return jsonify({"notifications": service().notifications(g.actor), "unread": service().unread_notices(g.actor)})


@bp.get("/supervision")
@permission_required("supervision")
def supervision():
    return jsonify(service().supervision(g.actor, request.args.get("department")))


@bp.get("/calendar/<int:year>")
@permission_required("supervision")
def calendar_year(year: int):
    return jsonify(service().calendar_year(g.actor, year))


@bp.put("/calendar/days/<day>")
@permission_required("calendar")
def calendar_set_day(day: str):
    service().check_permission(g.actor, "calendar")
    body = _body("kind", "name")
    return jsonify(service().set_calendar_day(g.actor, _date(day), str(body.get("kind", "")), str(body.get("name", ""))))


@bp.delete("/calendar/days/<day>")
@permission_required("calendar")
def calendar_delete_day(day: str):
    service().check_permission(g.actor, "calendar")
    return jsonify(service().set_calendar_day(g.actor, _date(day), None))


@bp.post("/calendar/import")
@permission_required("calendar")
def calendar_import():
    service().check_permission(g.actor, "calendar")
    if request.is_json:
        text = str(_body("text").get("text", ""))
    else:
        text = request.get_data(as_text=True)
    return jsonify(service().import_calendar(g.actor, text))


def _date(raw: str):
    from datetime import date
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("日期应为 YYYY-MM-DD 格式") from None


def _files_body() -> tuple[dict[str, bytes], str]:
    body = _body("files", "comment")
    files = body.get("files")
    if not isinstance(files, dict) or not files:
        raise InvalidInput("files 应为 {文件名: 内容} 对象")
    out = {}
    for name, text in files.items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise InvalidInput("files 的文件名和内容都应为文本")
        if not (name.endswith(".bpmn") or name.endswith(".json") or (name.startswith("documents/") and name.endswith(".html"))) \
                or ".." in name or name.startswith("/"):
            raise InvalidInput(f"不允许的文件名：{name[:100]}")
        out[name] = text.encode("utf-8")
    return out, str(body.get("comment") or "")


@bp.get("/cases/<case_no>/diagram")
@login_required
def case_diagram(case_no: str):
    return jsonify(service().case_diagram(g.actor, case_no))


@bp.get("/processes/versions")
@permission_required("processes")
def process_versions():
    return jsonify({"versions": service().process_versions(g.actor)})


@bp.get("/processes/versions/<int:version_id>/files")
@permission_required("processes")
def process_files(version_id: int):
    return jsonify({"files": service().version_files(g.actor, version_id)})


@bp.get("/processes/versions/<int:old>/diff/<int:new>")
@permission_required("processes")
def process_diff(old: int, new: int):
    return jsonify({"changes": service().diff_versions(g.actor, old, new)})


@bp.post("/processes/validate")
@permission_required("processes")
def process_validate():
    service().check_permission(g.actor, "processes")
    files, _ = _files_body()
    problems = service().validate(g.actor, files)
    return jsonify({"ok": not problems, "problems": problems})


@bp.post("/processes/publish")
@permission_required("process_publish")
def process_publish():
    service().check_permission(g.actor, "process_publish")
    files, comment = _files_body()
    return jsonify(service().publish(g.actor, files, comment)), 201


@bp.get("/cases/<case_no>/audit")
@permission_required("audit")
def case_audit(case_no: str):
    """The case replayed step by step (auditors), with the result of the chain check and replay."""
    steps = service().audit_steps(g.actor, case_no)
    steps["verification"] = service().audit_case(case_no, g.actor)
    return jsonify(steps)


@bp.get("/cases/<case_no>/dossier")
@permission_required("audit")
def case_dossier(case_no: str):
    """The whole case as one JSON file (events, data, documents, process versions) for ``bangban audit verify --file``."""
    import json

    from flask import Response
    body = json.dumps(service().export_dossier(g.actor, case_no), ensure_ascii=False)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": f"attachment; filename=dossier-{case_no[:32]}.json"})


@bp.get("/openapi.json")
def openapi():
    from .openapi import response
    return response(current_app.extensions["bangban"])
