"""Case materials (issue 17): the materials page of a case (each required material of its service items with its
versions), uploads (multipart, streamed to disk by Werkzeug, then into the file store in chunks) and downloads.
Every rule is the engine's (``engine.usecases.files``); a refusal is a Chinese 4xx page (JSON under /api)."""
from __future__ import annotations

import tempfile

from flask import Blueprint, flash, g, redirect, render_template, request, send_file, url_for

from engine.errors import InvalidInput, TooLarge
from engine.filestore import size_text

from .auth import check_csrf, login_required, service

bp = Blueprint("files", __name__)

FORM_OVERHEAD = 256 * 1024     # the multipart envelope and the small fields around one file
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'; form-action 'none'"


@bp.before_app_request
def prepare_upload():
    """An upload may be as large as the file limit (plus its envelope); its file part is spooled to a temporary
    file on disk (never held in memory), closed at the end of the request whatever happened — also when the client
    went away mid-body and Werkzeug never handed the part over."""
    if request.method == "POST" and request.endpoint == "files.upload":
        request.max_content_length = service().file_limits.file_bytes + FORM_OVERHEAD
        spools = g.upload_spools = []

        def spool(total_content_length, content_type, filename=None, content_length=None):
            handle = tempfile.TemporaryFile("rb+")
            spools.append(handle)
            return handle
        request._get_file_stream = spool


@bp.teardown_app_request
def close_spools(_exc):
    for handle in g.pop("upload_spools", []):
        handle.close()


def _upload(case_no: str) -> dict:
    """Check the size declared before reading a byte, then the CSRF token, then hand the file to the engine."""
    limit = service().file_limits.file_bytes
    if request.content_length is not None and request.content_length > limit + FORM_OVERHEAD:
        raise TooLarge(f"文件超过 {size_text(limit)} 上限，请压缩或分拆后重新上传")
    check_csrf()
    sent = request.files.get("file")
    if sent is None or not sent.filename:
        raise InvalidInput("请选择要上传的文件", {"file": "未选择文件"})
    stream = sent.stream
    if stream.seekable():
        stream.seek(0)        # a request run again after its session was confirmed reads the file from its start
    try:
        return service().upload_file(g.actor, case_no, request.form.get("item", "")[:32],
                                     request.form.get("material", "")[:100], sent.filename, stream)
    except BaseException:
        sent.close()          # a refused upload's spooled copy goes at once
        raise


@bp.get("/cases/<case_no>/materials")
@login_required
def materials(case_no: str):
    view = service().case_materials(g.actor, case_no)
    return render_template("materials.html", view=view, case=service().get_case(g.actor, case_no)["case"])


@bp.post("/cases/<case_no>/materials")
@login_required
def upload(case_no: str):
    done = _upload(case_no)
    flash(f"已上传「{done['material']}」第 {done['version']} 版：{done['name']}（{size_text(done['size'])}）")
    return redirect(_back(case_no) + f"#item-{done['item']}")


@bp.post("/cases/<case_no>/materials/mark")
@login_required
def mark(case_no: str):
    check_csrf()
    done = service().mark_material(g.actor, case_no, request.form.get("item", "")[:32],
                                   request.form.get("material", "")[:100], request.form.get("status", "")[:20],
                                   request.form.get("reason", "")[:600])
    flash(f"已登记「{done['material']}」：{done['status_name']}")
    return redirect(_back(case_no) + f"#item-{done['item']}")


def _back(case_no: str) -> str:
    """Where a form on the materials panel returns: the page it was sent from (a path of this site), else the
    case's materials page."""
    back = request.form.get("next", "")
    if not (back.startswith("/") and not back.startswith("//") and "\\" not in back and back.isprintable()):
        back = url_for("files.materials", case_no=case_no)
    return back[:300]


@bp.get("/cases/<case_no>/files/<int:file_id>")
@login_required
def download(case_no: str, file_id: int):
    got = service().case_file(g.actor, case_no, file_id, preview=request.args.get("preview") == "1")
    inline = request.args.get("preview") == "1" and got["previewable"]
    response = send_file(got["file"], mimetype=got["content_type"], as_attachment=not inline,
                         download_name=got["name"], etag=got["sha256"], max_age=0, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_CSP + ("" if inline else "; sandbox")
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
