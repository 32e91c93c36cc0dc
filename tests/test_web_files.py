"""HTTP tests of case materials (issue 17): upload and download through the pages as people do, and every bad
input refused with a Chinese 4xx page and nothing half-written (no file in the store, no event, no row)."""
from __future__ import annotations

import io

import pytest

from engine.filestore import MB, FileStore
from tests import filesamples as f
from tests import helpers as h
from tests.test_files import HP, stored_files
from tests.webclient import chinese, html_login, token
from web import create_app


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "files"
    monkeypatch.setenv("BANGBAN_FILES_DIR", str(root))
    monkeypatch.setenv("BANGBAN_FILE_MAX_MB", "1")
    monkeypatch.delenv("BANGBAN_CASE_FILES_MAX_MB", raising=False)
    return FileStore(root)


@pytest.fixture
def app(svc, store):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


@pytest.fixture
def case_no(svc):
    h.freeze_clock()
    return h.start(svc)


def send(c, case_no: str, data: bytes, name: str = "报告书.pdf", item: str = "hp", material: str = HP,
         csrf: bool = True):
    page = c.get(f"/cases/{case_no}")
    fields = {"item": item, "material": material}
    if csrf:
        fields["csrf_token"] = token(page.text)
    body, content_type = multipart(fields, name, data)
    r = c.post(f"/cases/{case_no}/materials", data=body, content_type=content_type)
    h.tick()
    return r


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    """A browser's multipart/form-data body, in memory (Werkzeug's test client spools big bodies to a temporary
    file it never closes)."""
    boundary = "----bangbanTestBoundary7MA4YWxk"
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
              "Content-Type: application/octet-stream\r\n\r\n".encode())
    out.write(data)
    out.write(f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def fetch(c, url: str):
    """GET a file: its body read, and the response closed (so the stored file is closed)."""
    r = c.get(url)
    r.get_data()
    r.close()
    return r


def assert_refused(r, status: int, *words: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.mimetype == "text/html" and chinese(r.text) and "Traceback" not in r.text
    for w in words:
        assert w in r.text, (w, r.text[:2000])


def test_applicant_uploads_and_the_specialist_sees_and_previews(svc, app, store, case_no):
    c = html_login(app, "huarui")
    page = c.get(f"/cases/{case_no}/materials")
    assert page.status_code == 200 and "尚缺：环境影响报告书（表）、建设项目环评审批申请表" in page.text
    r = send(c, case_no, f.pdf("第一版"))
    assert r.status_code == 302
    page = c.get(r.headers["Location"])
    assert "已上传「环境影响报告书（表）」第 1 版" in page.text and "尚缺：建设项目环评审批申请表" in page.text
    assert send(c, case_no, f.pdf("第二版"), "报告书（补正）.pdf").status_code == 302
    page = c.get(f"/cases/{case_no}/materials")
    assert "第2版" in page.text and "1 个以前的版本" in page.text and "报告书（补正）.pdf" in page.text
    assert "上传新版本" in page.text
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, ["hp", "xf"])
    s = html_login(app, "zb_sthj")
    case_page = s.get(f"/cases/{case_no}").text
    assert 'id="materials-link"' in case_page and "环评：已上传 1/2 项，尚缺 建设项目环评审批申请表" in case_page
    page = s.get(f"/cases/{case_no}/materials")
    assert "环评" in page.text and "消防设计文件" not in page.text      # only the department's own item
    first = svc.case_materials(h.actor(svc, "zb_sthj"), case_no)["items"][0]["materials"][0]
    current, earlier = first["versions"]
    r = fetch(s, f"/cases/{case_no}/files/{earlier['id']}")
    assert r.status_code == 200 and r.data == f.pdf("第一版")
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    r = fetch(s, f"/cases/{case_no}/files/{current['id']}?preview=1")
    assert r.status_code == 200 and r.headers["Content-Disposition"].startswith("inline")
    assert r.mimetype == "application/pdf" and r.data == f.pdf("第二版")
    assert "sandbox" not in r.headers["Content-Security-Policy"]
    docx = svc.upload_file(h.actor(svc, "zb_sthj"), case_no, "hp", "建设项目环评审批申请表", "申请表.docx",
                           io.BytesIO(f.docx()))
    r = fetch(s, f"/cases/{case_no}/files/{docx['file_id']}?preview=1")     # no preview for a Word file
    assert r.headers["Content-Disposition"].startswith("attachment")
    log = html_login(app, "auditor1").get(f"/cases/{case_no}/materials").text.split('id="downloads"', 1)[1]
    assert log.count("焦作市生态环境局武陟分局专办员") == 3 and "预览" in log and f"{HP} 第1版（报告书.pdf）" in log
    assert 'id="downloads"' not in c.get(f"/cases/{case_no}/materials").text       # the applicant sees no log
    timeline = c.get(f"/cases/{case_no}").text
    assert "上传材料" in timeline and "file_uploaded" not in timeline
    h.assert_verified(svc, case_no)


BAD = [
    ("exe disguised as pdf", f.exe(), "setup.pdf", 422, "不支持此文件类型"),
    ("wrong type", b"plain text, not a document\n", "说明.pdf", 422, "不支持此文件类型"),
    ("extension mismatch", f.png(), "照片.pdf", 422, "扩展名与内容不符"),
    ("path traversal", f.pdf(), "../../../etc/cron.d/x.pdf", 422, "不能包含路径"),
    ("empty file", b"", "空.pdf", 422, "空的"),
    ("over the limit, declared", f.pdf(pad=MB + 300 * 1024), "大.pdf", 413, "1 MB"),
    ("over the limit, found while streaming", f.pdf(pad=MB + 10), "大.pdf", 413, "1 MB"),
]


@pytest.mark.parametrize("label,data,name,status,words", BAD, ids=[b[0] for b in BAD])
def test_bad_uploads_are_chinese_4xx_and_leave_nothing(svc, app, store, case_no, label, data, name, status, words):
    c = html_login(app, "huarui")
    before = h.event_types(svc, case_no)
    assert_refused(send(c, case_no, data, name), status, words)
    assert stored_files(store) == [] and not list(store.root.glob(".upload-*")) if store.root.exists() else True
    assert h.event_types(svc, case_no) == before
    assert svc.case_materials(h.actor(svc, "huarui"), case_no)["used"] == 0


def test_who_may_not_upload(svc, app, store, case_no):
    assert_refused(send(html_login(app, "jiahe"), case_no, f.pdf()), 404, "不存在")          # another unit
    assert_refused(send(html_login(app, "auditor1"), case_no, f.pdf()), 403, "只能查看")        # read only
    assert_refused(send(html_login(app, "supervisor1"), case_no, f.pdf()), 403, "不能上传")
    assert_refused(send(html_login(app, "huarui"), case_no, f.pdf(), item="zz"), 422, "服务事项")
    assert_refused(send(html_login(app, "huarui"), case_no, f.pdf(), material="不存在的材料"), 422, "申报材料")
    r = send(html_login(app, "huarui"), case_no, f.pdf(), csrf=False)
    assert 400 <= r.status_code < 500 and chinese(r.text)
    c = html_login(app, "huarui")
    assert_refused(c.get(f"/cases/{case_no}/files/999"), 404, "不存在")
    assert "上传" not in html_login(app, "auditor1").get(f"/cases/{case_no}/materials").text.split("</h1>", 1)[1] \
        .replace("上传的", "").replace("可上传", "").replace("再次上传", "").replace("未上传", "")
    assert stored_files(store) == []
    ok = send(c, case_no, f.pdf())
    assert ok.status_code == 302
    file_id = svc.case_materials(h.actor(svc, "huarui"), case_no)["items"][0]["materials"][0]["current"]["id"]
    assert_refused(html_login(app, "jiahe").get(f"/cases/{case_no}/files/{file_id}"), 404, "不存在")


def test_a_closed_case_refuses_uploads_with_409(svc, app, store, case_no):
    h.send(svc, "huarui", case_no, "withdrawal", reason="不再需要")
    c = html_login(app, "huarui")
    assert_refused(send(c, case_no, f.pdf()), 409, "不能再上传")
    assert stored_files(store) == []
    assert "上传新版本" not in c.get(f"/cases/{case_no}/materials").text


def test_task_pages_whose_form_declares_x_files_show_the_materials(svc, app, store, case_no):
    """受理审核 shows every item's materials; 部门办理 and the applicant's 补正材料 only their item's, and an upload from
    the task page returns to it."""
    agent = html_login(app, "agent1")
    review = h.find_task(svc, "agent1", "受理审核", case_no=case_no)["task_id"]
    page = agent.get(f"/tasks/{review}").text
    assert 'id="task-materials"' in page and "消防设计文件" in page and "用电申请表" in page
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, ["hp", "xf"])
    specialist = html_login(app, "zb_sthj")
    handle = h.find_task(svc, "zb_sthj", "部门办理", "环评", case_no=case_no)["task_id"]
    page = specialist.get(f"/tasks/{handle}").text
    assert 'id="task-materials"' in page and HP in page and "消防设计文件" not in page
    h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=case_no, **h.needs_correction("补交环评报告书"))
    applicant = html_login(app, "huarui")
    supplement = h.find_task(svc, "huarui", "补正材料", case_no=case_no)["task_id"]
    page = applicant.get(f"/tasks/{supplement}")
    assert HP in page.text and "消防设计文件" not in page.text
    fields = {"item": "hp", "material": HP, "next": f"/tasks/{supplement}", "csrf_token": token(page.text)}
    body, content_type = multipart(fields, "环评报告书（补正）.pdf", f.pdf("补正"))
    r = applicant.post(f"/cases/{case_no}/materials", data=body, content_type=content_type)
    assert r.status_code == 302 and r.headers["Location"].startswith(f"/tasks/{supplement}")
    fields["next"] = "//evil.example/x"
    body, content_type = multipart(fields, "再一版.pdf", f.pdf("再一版"))
    r = applicant.post(f"/cases/{case_no}/materials", data=body, content_type=content_type)
    assert r.headers["Location"].startswith(f"/cases/{case_no}/materials")
    page = specialist.get(f"/tasks/{h.find_task(svc, 'huarui', '补正材料', case_no=case_no)['task_id']}")
    assert page.status_code == 403                                    # the applicant's task is not the specialist's
    assert "第2版" in specialist.get(f"/cases/{case_no}/materials").text
    h.assert_verified(svc, case_no)


def test_x_files_takes_item_or_case_only():
    from engine.forms import check_schema as problems
    schema = {"type": "object", "properties": {}, "x-files": "everything"}
    assert any("x-files" in p for p in problems(schema))
    assert not any("x-files" in p for p in problems(dict(schema, **{"x-files": "item"})))


def test_the_agent_records_paper_and_not_applicable_on_the_materials_page(svc, app, store, case_no):
    agent = html_login(app, "agent1")
    page = agent.get(f"/cases/{case_no}/materials")
    assert 'class="mark-form"' in page.text and "未交接" in page.text
    assert 'class="mark-form"' not in html_login(app, "huarui").get(f"/cases/{case_no}/materials").text
    fields = {"csrf_token": token(page.text), "item": "hp", "material": "建设项目环评审批申请表", "status": "not_applicable",
              "reason": ""}
    assert_refused(agent.post(f"/cases/{case_no}/materials/mark", data=fields), 422, "原因")
    r = agent.post(f"/cases/{case_no}/materials/mark", data=dict(fields, reason="登记表项目无需此表"))
    assert r.status_code == 302
    page = agent.get(r.headers["Location"])
    assert "已登记「建设项目环评审批申请表」：不适用" in page.text and "不适用：登记表项目无需此表" in page.text
    applicant = html_login(app, "huarui")
    mine = dict(fields, reason="x", csrf_token=token(applicant.get(f"/cases/{case_no}").text))
    assert_refused(applicant.post(f"/cases/{case_no}/materials/mark", data=mine), 403, "不能登记")
    assert "材料交接登记" in agent.get(f"/cases/{case_no}").text
    h.assert_verified(svc, case_no)


def test_the_department_attaches_the_licence_scan_which_is_not_a_required_material(svc, app, store, case_no):
    """``x-files-extra`` of 部门办理: the 批文/证照扫描件 is listed with the item, uploaded by its department only,
    never counted as missing."""
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, ["hp"])
    applicant = html_login(app, "huarui")
    assert_refused(send(applicant, case_no, f.pdf(), "批文.pdf", material="批文/证照扫描件"), 403, "办理结果")
    specialist = html_login(app, "zb_sthj")
    handle = h.find_task(svc, "zb_sthj", "部门办理", "环评", case_no=case_no)["task_id"]
    page = specialist.get(f"/tasks/{handle}").text
    assert "批文/证照扫描件" in page and "办理结果（非申报材料）" in page
    assert send(specialist, case_no, f.pdf("批文"), "环评批复.pdf", material="批文/证照扫描件").status_code == 302
    hp = svc.case_materials(h.actor(svc, "huarui"), case_no)["items"][0]
    assert "批文/证照扫描件" not in hp["missing"] and HP in hp["missing"]
    assert "由负责部门上传" in applicant.get(f"/cases/{case_no}/materials").text
    h.assert_verified(svc, case_no)


def test_an_upload_cut_off_mid_body_leaves_nothing(svc, app, store, case_no):
    c = html_login(app, "huarui")
    page = c.get(f"/cases/{case_no}")
    body, content_type = multipart({"csrf_token": token(page.text), "item": "hp", "material": HP}, "报告书.pdf",
                                   f.pdf(pad=600_000))
    before = h.event_types(svc, case_no)
    r = c.post(f"/cases/{case_no}/materials", input_stream=io.BytesIO(body[: len(body) // 2]), content_type=content_type,
               environ_overrides={"CONTENT_LENGTH": str(len(body))})
    assert 400 <= r.status_code < 500 and chinese(r.text), (r.status_code, r.text[:300])
    assert stored_files(store) == [] and h.event_types(svc, case_no) == before
