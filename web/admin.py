"""Pages of the 系统管理员: 账号管理 (with the one-time password shown once), 批量导入, 部门管理, 服务站管理, and the
管理日志 the auditor and the supervisor read too. Each handler parses the form, calls one use case, renders."""
from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for

from engine.errors import BangbanError, InvalidInput
from engine.staff_import import MAX_BYTES, MAX_ROWS, credentials_csv, credentials_xlsx

from .auth import check_csrf, permission_required, service
from .formdata import parse_int

bp = Blueprint("admin", __name__, url_prefix="/admin")
IMPORT_REQUEST_LIMIT = MAX_BYTES * 2 + 256 * 1024    # the file, or its checked copy sent back (base64) with the form
RESEND_LIMIT = 2 * 1024 * 1024                       # a checked file up to this size is kept in the page for 导入
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@bp.before_request
def larger_limit_for_staff_files():
    if request.path.startswith("/admin/import"):
        request.max_content_length = IMPORT_REQUEST_LIMIT


@bp.errorhandler(413)
def too_large(_exc):
    return render_template("error.html", status=413, message=f"文件超过 {MAX_BYTES // (1024 * 1024)} MB 上限，请分成几个文件导入",
                           details=None), 413


def _account_fields(form) -> dict:
    return {"username": form.get("username", "")[:200], "display_name": form.get("display_name", "")[:200],
            "roles": [r[:40] for r in form.getlist("roles")[:20]], "department": form.get("department", "")[:100],
            "station": form.get("station", "")[:100], "phone": form.get("phone", "")[:60],
            "email": form.get("email", "")[:200]}


# ---- 账号管理 ----------------------------------------------------------------------------------------------------------
@bp.get("/users")
@permission_required("accounts")
def users():
    args = request.args
    active = {"1": True, "0": False}.get(args.get("active", "1"))
    result = service().list_staff(g.actor, q=args.get("q"), role=args.get("role"), department=args.get("department"),
                                  station=args.get("station"), active=active, page=parse_int(args.get("page")) or 1)
    return render_template("admin/users.html", result=result, args=args, choices=service().staff_choices(g.actor))


@bp.route("/users/new", methods=["GET", "POST"])
@permission_required("accounts")
def new_user():
    values, errors, status = {"roles": []}, None, 200
    if request.method == "POST":
        check_csrf()
        values = _account_fields(request.form)
        try:
            result = service().create_staff(g.actor, values)
        except BangbanError as exc:
            errors, status = exc, exc.status
        else:
            return render_template("admin/password.html", accounts=[result], title="账号已建立"), 200, NO_STORE
    return render_template("admin/user_form.html", values=values, errors=errors, editing=False,
                           choices=service().staff_choices(g.actor)), status


@bp.route("/users/<login>", methods=["GET", "POST"])
@permission_required("accounts")
def edit_user(login: str):
    user = service().get_staff(g.actor, login)
    values, errors, status = user, None, 200
    if request.method == "POST":
        check_csrf()
        values = dict(_account_fields(request.form), username=user["username"])
        try:
            result = service().update_staff(g.actor, user["username"], values)
        except BangbanError as exc:
            errors, status = exc, exc.status
        else:
            flash(f"账号 {user['username']} 已修改" if result["changed"] else f"账号 {user['username']} 没有变化")
            return redirect(url_for("admin.edit_user", login=user["username"]))
    return render_template("admin/user_form.html", values=values, user=user, errors=errors, editing=True,
                           choices=service().staff_choices(g.actor)), status


@bp.post("/users/<login>/active")
@permission_required("accounts")
def set_active(login: str):
    check_csrf()
    active = request.form.get("active") == "1"
    result = service().set_staff_active(g.actor, login, active, request.form.get("reason", "")[:400])
    flash(f"已启用账号 {result['username']}" if active else
          f"已停用账号 {result['username']}，结束了 {result['sessions_ended']} 个登录会话")
    return redirect(url_for("admin.edit_user", login=result["username"]))


@bp.post("/users/<login>/password")
@permission_required("accounts")
def reset_password(login: str):
    check_csrf()
    result = service().reset_staff_password(g.actor, login)
    return render_template("admin/password.html", accounts=[result], title="密码已重置",
                           sessions_ended=result["sessions_ended"]), 200, NO_STORE


# ---- 批量导入 ----------------------------------------------------------------------------------------------------------
@bp.route("/import", methods=["GET", "POST"])
@permission_required("accounts")
def import_staff():
    result, errors, status, kept = None, None, 200, None
    if request.method == "POST":
        check_csrf()
        upload = request.files.get("file")
        try:
            if upload and upload.filename:
                data, filename = upload.read(MAX_BYTES + 1), upload.filename[:200]
            else:
                data, filename = _kept_file(request.form.get("content", "")), request.form.get("filename", "")[:200]
            dry_run = request.form.get("action") != "import"
            result = service().import_staff(g.actor, data, filename, dry_run=dry_run)
        except BangbanError as exc:
            errors, status = exc, exc.status
        else:
            if not dry_run:
                return render_template("admin/password.html", accounts=result["accounts"], title="导入完成",
                                       imported=result), 200, NO_STORE
            if len(data) <= RESEND_LIMIT:
                kept = {"content": base64.b64encode(data).decode("ascii"), "filename": filename}
    return render_template("admin/import.html", result=result, errors=errors, kept=kept, max_rows=MAX_ROWS,
                           max_mb=MAX_BYTES // (1024 * 1024)), status


def _kept_file(content: str) -> bytes:
    if not content:
        raise InvalidInput("请选择要导入的文件（CSV 或 XLSX）")
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("页面已过期，请重新选择文件") from None


@bp.post("/import/credentials")
@permission_required("accounts")
def download_credentials():
    """The list of logins and one-time passwords just shown, as a file (made from what the page sent: the server keeps
    no password). Cells are guarded against formula injection."""
    check_csrf()
    form = request.form
    logins, names, passwords = form.getlist("username"), form.getlist("display_name"), form.getlist("password")
    if not logins or len(logins) > MAX_ROWS or not len(logins) == len(names) == len(passwords):
        raise InvalidInput("没有可下载的账号列表")
    rows = [{"username": u[:64], "display_name": n[:64], "password": p[:64]}
            for u, n, p in zip(logins, names, passwords, strict=True)]
    if form.get("format") == "xlsx":
        body, mime, ext = credentials_xlsx(rows), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"
    else:
        body, mime, ext = credentials_csv(rows), "text/csv; charset=utf-8", "csv"
    return Response(body, mimetype=mime, headers={
        **NO_STORE, "Content-Disposition": f"attachment; filename=one-time-passwords.{ext}; "
                                           f"filename*=UTF-8''%E4%B8%80%E6%AC%A1%E6%80%A7%E5%AF%86%E7%A0%81.{ext}"})


# ---- 部门管理 ----------------------------------------------------------------------------------------------------------
@bp.route("/departments", methods=["GET", "POST"])
@permission_required("departments")
def departments():
    errors, status = None, 200
    if request.method == "POST":
        check_csrf()
        form = request.form
        try:
            action, code = form.get("action"), form.get("code", "")[:40]
            if action == "add":
                service().add_department(g.actor, code, form.get("name", "")[:200], form.get("phone", "")[:60])
                flash(f"已新增部门 {code}")
            elif action == "edit":
                service().edit_department(g.actor, code, form.get("name", "")[:200], form.get("phone", "")[:60],
                                          True if form.get("activate") == "1" else None)
                flash(f"已保存部门 {code}")
            elif action == "remove":
                result = service().remove_department(g.actor, code, form.get("reason", "")[:400])
                flash(f"部门 {code} 有历史记录，已停用（保留记录）" if result["result"] == "deactivated"
                      else f"已删除部门 {code}")
            else:
                raise InvalidInput("未知的操作")
        except BangbanError as exc:
            errors, status = exc, exc.status
        else:
            return redirect(url_for("admin.departments"))
    return render_template("admin/departments.html", rows=service().departments(g.actor), errors=errors,
                           form=request.form if errors else {}), status


# ---- 服务站管理 --------------------------------------------------------------------------------------------------------
@bp.route("/stations", methods=["GET", "POST"])
@permission_required("stations")
def stations():
    from engine.usecases.directory import STATION_KINDS
    errors, status = None, 200
    if request.method == "POST":
        check_csrf()
        form = request.form
        try:
            action, code = form.get("action"), form.get("code", "")[:40]
            name, kind, phone = form.get("name", "")[:200], form.get("kind", "")[:40], form.get("phone", "")[:60]
            if action == "add":
                service().add_station(g.actor, code, name, kind, phone)
                flash(f"已新增服务站 {code}")
            elif action == "edit":
                service().edit_station(g.actor, code, name, kind, phone)
                flash(f"已保存服务站 {code}")
            elif action in ("deactivate", "activate"):
                service().set_station_active(g.actor, code, action == "activate", form.get("reason", "")[:400])
                flash(f"已{'启用' if action == 'activate' else '停用'}服务站 {code}")
            else:
                raise InvalidInput("未知的操作")
        except BangbanError as exc:
            errors, status = exc, exc.status
        else:
            return redirect(url_for("admin.stations"))
    return render_template("admin/stations.html", rows=service().stations(g.actor), errors=errors, kinds=STATION_KINDS,
                           form=request.form if errors else {}), status


# ---- 管理日志 ----------------------------------------------------------------------------------------------------------
@bp.get("/log")
@permission_required("admin_log", "audit")
def log():
    args = request.args
    view = service().admin_log(g.actor, args.get("kind"), args.get("target"), parse_int(args.get("before")))
    return render_template("admin/log.html", view=view, args=args)
