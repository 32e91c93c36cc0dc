"""HTML pages. Each handler: parse input, call one use case, render. Task forms are rendered generically."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from engine.errors import InvalidInput

from .auth import check_csrf, login_required, service
from .formdata import from_html, parse_int

bp = Blueprint("views", __name__)


@bp.get("/")
def index():
    return redirect(url_for("views.inbox") if g.actor else url_for("auth.login"))


@bp.get("/inbox")
@login_required
def inbox():
    return render_template("inbox.html", tasks=service().inbox(g.actor))


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
    form = service().start_form(g.actor, process_id)
    values, errors, status = form["defaults"], None, 200
    if request.method == "POST":
        check_csrf()
        values = from_html(form["schema"], request.form)
        unit_id = request.form.get("unit_id")
        try:
            started = service().start_case(g.actor, process_id, values, unit_id=parse_int(unit_id))
        except InvalidInput as exc:
            errors, status = exc, 422
        else:
            flash(f"申请已提交，办件编号 {started.case_no}")
            return redirect(url_for("views.case", case_no=started.case_no))
    return render_template("start.html", form=form, values=values, errors=errors,
                           unit_id=request.form.get("unit_id")), status


@bp.get("/cases/<case_no>")
@login_required
def case(case_no: str):
    return render_template("case.html", view=service().get_case(g.actor, case_no))


@bp.route("/tasks/<task_id>", methods=["GET", "POST"])
@login_required
def task(task_id: str):
    view = service().get_task(g.actor, task_id)
    values, errors, status = view["defaults"], None, 200
    if request.method == "POST":
        check_csrf()
        values = from_html(view["schema"], request.form)
        try:
            result = service().complete_task(g.actor, task_id, values)
        except InvalidInput as exc:
            errors, status = exc, 422
        else:
            msg = f"已办理：{view['task']['name']}"
            if result.get("document"):
                msg += f"，已出具{result['document']['kind']}（{result['document']['number']}）"
            flash(msg)
            return redirect(url_for("views.case", case_no=result["case_no"]))
    return render_template("task.html", view=view, values=values, errors=errors), status


@bp.route("/cases/<case_no>/actions/<key>", methods=["GET", "POST"])
@login_required
def action(case_no: str, key: str):
    view = service().message_form(g.actor, case_no, key)
    values, errors, status = {}, None, 200
    if request.method == "POST":
        check_csrf()
        values = from_html(view["schema"], request.form)
        try:
            service().send_message(g.actor, case_no, key, values)
        except InvalidInput as exc:
            errors, status = exc, 422
        else:
            flash(f"已提交：{view['label']}")
            return redirect(url_for("views.case", case_no=case_no))
    return render_template("action.html", view=view, values=values, errors=errors), status


@bp.get("/cases/<case_no>/documents/<int:doc_id>")
@login_required
def document(case_no: str, doc_id: int):
    return render_template("document.html", doc=service().get_document(g.actor, case_no, doc_id))


@bp.get("/cases/<case_no>/application")
@login_required
def application(case_no: str):
    return render_template("application.html", app_view=service().application(g.actor, case_no))
