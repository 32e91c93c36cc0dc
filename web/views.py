"""HTML pages. Each handler: parse input, call one use case, render. Task forms are rendered generically."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_from_directory, url_for

from engine.clock import LOCAL_TZ, now
from engine.errors import ConfirmationRequired, InvalidInput

from .auth import check_csrf, login_required, permission_required, service
from .formdata import CONFIRM_FIELD, from_html, parse_int

bp = Blueprint("views", __name__)


@bp.get("/")
def index():
    return redirect(url_for("views.inbox") if g.actor else url_for("auth.login"))


@bp.get("/favicon.ico")
def favicon():
    """The site's icon, where browsers ask for it on every page."""
    return send_from_directory(current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400)


@bp.get("/inbox")
@login_required
def inbox():
    params = ("limit", "after", "stage", "item", "department", "unit", "due_before")
    args = {k: request.args.get(k) for k in params if request.args.get(k)}
    status, error = 200, None
    try:
        page = service().inbox_page(g.actor, **args)
    except InvalidInput as exc:
        status, error = 422, exc.message
        page = {"tasks": [], "total": 0, "next": None}
    filters = {k: v for k, v in args.items() if k not in ("after", "limit")}
    return render_template("inbox.html", tasks=page["tasks"], page=page, filters=filters, error=error,
                           paged="after" in args, limit=args.get("limit"), units=_filter_units(),
                           stages=service().current.manifest.get("stages", []),
                           # a department's own staff see only its tasks (and those of no department)
                           departments={} if g.actor.department else service().department_names(),
                           notifications=service().notifications(g.actor)), status


def _filter_units() -> list[dict]:
    """The units a staff member may filter the inbox by (an applicant's inbox holds only its own unit)."""
    if not set(g.actor.roles) - {"applicant"}:
        return []
    return [u for u in service().units() if u.get("status") in (None, "approved")]


@bp.get("/cases")
@login_required
def cases():
    args = request.args
    result = service().search_cases(g.actor, q=args.get("q"), unit=args.get("unit"), project=args.get("project"),
                                    status=args.get("status"), page=parse_int(args.get("page")) or 1)
    return render_template("cases.html", result=result, args=args,
                           outcomes=service().current.manifest.get("outcomes", {}))


@bp.route("/cases/new", methods=["GET", "POST"])
@login_required
def new_case():
    process_id = request.args.get("process") or next(iter(service().current.manifest["processes"]))
    unit_id = request.values.get("unit_id", "")[:20] or None
    form = service().start_form(g.actor, process_id, unit_id=unit_id)
    values, errors, status = form["defaults"], None, 200
    if request.method == "POST":
        check_csrf()
        submitted = from_html(form["schema"], request.form)
        try:
            started = service().start_case(g.actor, process_id, submitted, unit_id=unit_id)
        except InvalidInput as exc:
            errors, status, values = exc, 422, dict(submitted, **form["defaults"])
        else:
            flash(f"申请已提交，办件编号 {started.case_no}；请打印本页“单据”中的申请表和承诺书，盖章签字"
                  + ("，并在“申报材料”中逐项上传申报材料" if service().start_materials(process_id) else ""))  # x-files
            return redirect(url_for("views.case", case_no=started.case_no))
    return render_template("start.html", form=form, values=values, errors=errors, unit_id=unit_id), status


@bp.get("/cases/<case_no>")
@login_required
def case(case_no: str):
    return render_template("case.html", view=service().get_case(g.actor, case_no))


@bp.route("/tasks/<task_id>", methods=["GET", "POST"])
@login_required
def task(task_id: str):
    view = service().get_task(g.actor, task_id)
    values, errors, status, confirm = view["defaults"], None, 200, None
    if request.method == "POST":
        check_csrf()
        values = from_html(view["schema"], request.form)
        try:
            result = service().complete_task(g.actor, task_id, values, confirmed=_confirmed())
        except InvalidInput as exc:
            errors, status = exc, 422
        except ConfirmationRequired as exc:     # the step ends the case: ask, with the form as it was filled in
            confirm, status = exc.message, 409
        else:
            msg = f"已办理：{view['task']['name']}"
            if result.get("document"):
                msg += f"，已出具{result['document']['kind']}（{result['document']['number']}）"
            flash(msg)
            return redirect(url_for("views.case", case_no=result["case_no"]))
    return render_template("task.html", view=view, values=values, errors=errors, confirm=confirm), status


def _confirmed() -> bool:
    """Whether the person confirmed the consequence the page named (the 确定 button of its confirmation box)."""
    return request.form.get(CONFIRM_FIELD) == "1"


def _message_page(case_no: str | None, key: str, task_id: str | None = None):
    view = service().message_form(g.actor, case_no, key, task_id)
    values, errors, status, confirm = {}, None, 200, None
    if request.method == "POST":
        check_csrf()
        values = from_html(view["schema"], request.form)
        try:
            result = service().send_message(g.actor, case_no, key, values, task_id, confirmed=_confirmed())
        except InvalidInput as exc:
            errors, status = exc, 422
        except ConfirmationRequired as exc:
            confirm, status = exc.message, 409
        else:
            flash(f"已提交：{view['label']}")
            return redirect(url_for("views.case", case_no=result["case_no"]))
    return render_template("action.html", view=view, values=values, errors=errors, confirm=confirm), status


@bp.route("/cases/<case_no>/actions/<key>", methods=["GET", "POST"])
@login_required
def action(case_no: str, key: str):
    return _message_page(case_no, key)


@bp.route("/tasks/<task_id>/actions/<key>", methods=["GET", "POST"])
@login_required
def task_action(task_id: str, key: str):
    return _message_page(None, key, task_id)


@bp.get("/supervision")
@permission_required("supervision")
def supervision():
    return render_template("supervision.html", view=service().supervision(g.actor, request.args.get("department")),
                           departments=service().department_names(), demo_clock=current_app.config.get("DEMO_CLOCK"),
                           reassign=service().reassignment_queue(g.actor)
                           if "reassign" in service().permissions(g.actor) else None)


@bp.route("/calendar", methods=["GET", "POST"])
@permission_required("supervision")
def calendar_page():
    year = parse_int(request.values.get("year")) or now().astimezone(LOCAL_TZ).year
    errors, status, result = None, 200, None
    if request.method == "POST":
        check_csrf()
        service().check_permission(g.actor, "calendar")
        form = request.form
        try:
            action = form.get("action")
            if action == "import":
                upload = request.files.get("file")
                text = upload.read().decode("utf-8-sig") if upload and upload.filename else form.get("text", "")
                result = service().import_calendar(g.actor, text)
            elif action in ("set", "remove"):
                day = parse_date(form.get("day"))
                result = service().set_calendar_day(g.actor, day, form.get("kind") if action == "set" else None,
                                                    form.get("name", ""))
                year = day.year
            elif action == "complete":
                result = service().set_calendar_year(g.actor, year, form.get("complete") == "true", form.get("note"))
            else:
                raise InvalidInput("未知的操作")
        except (InvalidInput, UnicodeDecodeError) as exc:
            errors = exc if isinstance(exc, InvalidInput) else InvalidInput("文件不是 UTF-8 编码的文本")
            status = 422
        else:
            flash(f"日历已更新，重新计算了 {result['recomputed_cases']} 件办件的时限")
            return redirect(url_for("views.calendar_page", year=year))
    return render_template("calendar.html", view=service().calendar_year(g.actor, year), errors=errors,
                           changes=service().calendar_changes(g.actor)), status


@bp.post("/demo/clock")
@permission_required("supervision")
def demo_clock():
    """Demo mode only (``bangban serve --demo-clock``): move the service's clock forward to show warnings."""
    if not current_app.config.get("DEMO_CLOCK"):
        abort(404)
    check_csrf()
    days = parse_int(request.form.get("days")) or 1
    service().advance_demo_clock(g.actor, min(days, 60))
    flash(f"演示时钟已前进 {min(days, 60)} 天")
    return redirect(url_for("views.supervision"))


@bp.get("/cases/<case_no>/audit")
@permission_required("audit")
def audit(case_no: str):
    """The auditor's replay page: every event, stepped through on the diagram."""
    import json
    view = service().audit_steps(g.actor, case_no)
    verification = service().audit_case(case_no, g.actor)
    steps_json = json.dumps({"steps": view["steps"]}, ensure_ascii=False, default=str).replace("</", "<\\/")
    return render_template("audit.html", view=view, verification=verification, steps_json=steps_json)


@bp.get("/cases/<case_no>/documents/<int:doc_id>")
@login_required
def document(case_no: str, doc_id: int):
    doc = service().render_document(g.actor, case_no, doc_id, request.url_root)
    return _document_page(doc, url_for("views.document_pdf", case_no=case_no, doc_id=doc_id))


@bp.get("/cases/<case_no>/documents/<int:doc_id>/pdf")
@login_required
def document_pdf(case_no: str, doc_id: int):
    return _pdf_response(service().render_document(g.actor, case_no, doc_id, request.url_root))


@bp.get("/cases/<case_no>/print/<kind>")
@login_required
def application_document(case_no: str, kind: str):
    doc = service().render_application_document(g.actor, case_no, kind, request.url_root)
    return _document_page(doc, url_for("views.application_document_pdf", case_no=case_no, kind=kind))


@bp.get("/cases/<case_no>/print/<kind>/pdf")
@login_required
def application_document_pdf(case_no: str, kind: str):
    return _pdf_response(service().render_application_document(g.actor, case_no, kind, request.url_root))


def _document_page(doc: dict, pdf_url: str):
    from markupsafe import Markup

    from engine.documents import PAGE_CSS
    return render_template("document.html", doc=dict(doc, html=Markup(doc["html"])), pdf_url=pdf_url,
                           page_css=Markup(PAGE_CSS))


def _pdf_response(doc: dict):
    from urllib.parse import quote
    body = service().document_pdf(doc)
    filename = quote(f"{doc['kind']}-{doc['number']}.pdf")
    return current_app.response_class(body, mimetype="application/pdf", headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{filename}", "Cache-Control": "private, no-store"})


@bp.get("/verify/<path:number>")
def verify(number: str):
    """扫码验真: public, no login; nothing personal (engine.usecases.documents.verify_document)."""
    result = service().verify_document(number, request.args.get("h"), request.remote_addr)
    return render_template("verify.html", result=result), 200 if result["status"] == "valid" else 404


@bp.get("/cases/<case_no>/application")
@login_required
def application(case_no: str):
    return render_template("application.html", app_view=service().application(g.actor, case_no))


def parse_date(raw: str | None) -> date:
    try:
        return date.fromisoformat((raw or "").strip())
    except ValueError:
        raise InvalidInput("日期应为 YYYY-MM-DD 格式") from None


# ---- process owners: versions, differences, the modeler ----------------------------------------------------------
@bp.get("/processes")
@permission_required("processes")
def processes():
    versions = service().process_versions(g.actor)
    return render_template("processes/list.html", versions=versions,
                           can_publish="process_publish" in service().permissions(g.actor))


@bp.get("/processes/diff")
@permission_required("processes")
def process_diff():
    service().check_permission(g.actor, "processes")
    old_ref, new_ref = request.args.get("old", ""), request.args.get("new", "")
    if not old_ref or not new_ref:
        raise InvalidInput("请选择要比较的两个版本（old 与 new）")
    old_id, new_id = service().resolve_version(old_ref), service().resolve_version(new_ref)
    versions = {v["id"]: v for v in service().process_versions(g.actor)}
    return render_template("processes/diff.html", changes=service().diff_versions(g.actor, old_id, new_id),
                           old=versions.get(old_id), new=versions.get(new_id), versions=list(versions.values()),
                           technical="process_publish" in service().permissions(g.actor))


@bp.get("/processes/modeler")
@permission_required("process_publish")
def process_modeler():
    service().check_permission(g.actor, "process_publish")
    versions = service().process_versions(g.actor)
    latest = next(v for v in versions if v["latest"])
    return render_template("processes/modeler.html", version=latest, files=service().version_files(g.actor, latest["id"]))


# ---- bpmn-js, installed by npm (web/frontend), served from its dist folder only -------------------------------------
BPMN_JS_DIST = Path(__file__).resolve().parent / "frontend" / "node_modules" / "bpmn-js" / "dist"
_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_VENDOR_FILE = re.compile(rf"(?:{_PART}\.js|assets/(?:{_PART}/)*{_PART}\.(?:css|woff2?|ttf|eot|svg))")


@bp.get("/vendor/bpmn-js/<path:filename>", merge_slashes=False)
def bpmn_js(filename: str):
    """Only ``dist/*.js`` and ``dist/assets/**`` of the installed bpmn-js; anything else (``..``, absolute or encoded
    paths, other files) is 404."""
    if not _VENDOR_FILE.fullmatch(filename) or ".." in filename:
        abort(404)
    path = (BPMN_JS_DIST / filename).resolve()
    if not path.is_relative_to(BPMN_JS_DIST.resolve()) or not path.is_file():
        abort(404)
    return send_from_directory(BPMN_JS_DIST, filename, max_age=86400)


MODELER_BUILD = Path(__file__).resolve().parent / "frontend" / "build"
MODELER_FILES = frozenset({"bangban-modeler.js", "bangban-modeler.css"})


@bp.get("/vendor/bangban-modeler/<filename>")
def modeler_bundle(filename: str):
    """The modeler bundle: bpmn-js with bpmn-js-properties-panel and its Chinese words (bpmn-js-i18n), built by esbuild
    from web/frontend/src (``npm run build``, run by ./run after ``npm ci``). Only its two files."""
    if filename not in MODELER_FILES or not (MODELER_BUILD / filename).is_file():
        abort(404)
    return send_from_directory(MODELER_BUILD, filename, max_age=3600)
