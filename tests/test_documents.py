"""Printed documents (issue 18): every kind from its template in processes/documents/, as the page and as a PDF
whose extracted text holds the annex's sentences and labels in order; the same content printed again after the
template changed; 扫码验真 for a valid, an altered and an unknown number; templates checked by validation."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from sqlalchemy import text

from engine import documents as templates
from engine.processes import read_dir
from engine.validation import validate_set
from tests import helpers as h
from tests.conftest import actor
from tests.webclient import html_login
from web import create_app

GOLDEN = Path(__file__).parent / "golden_documents"
HP = "环评"
KINDS = ("申请表", "承诺书", "委托书", "代办委托协议", "补正告知书", "不予受理告知书", "办结单", "终止单", "评价表")
needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
                                   reason="需要 poppler-utils（./run test 会安装）")

# What each annex prints, in order (annex 2-6 of the seed; the others as the templates word them). Every sentence
# and field label must be in the PDF's text, in this order.
ANNEX = {
    "申请表": ["帮办代办服务申请表", "编号", "申请单位情况", "项目单位名称", "邮编", "项目单位地址", "项目单位负责人",
            "联系电话", "项目单位经办人", "联系电话", "项目基本情况", "项目名称", "项目编号", "投资总额", "建设规模",
            "建设地址", "资金来源", "政府投资□", "国内企业投资", "外商投资□", "其他□", "土地性质", "划拨", "出让",
            "是否重点项目", "是□", "否", "委托帮办代办事项", "全部", "部分", "是否开工", "具体服务事项", "企业开办手续",
            "企业登记□公章刻制□申领发票和税控设备□参保登记□银行开户□公积金登记□", "项目建设手续", "项目立项□规划□能评□",
            "安评□消防", "人防□施工监管□验收□", "项目配套手续", "供电□供水□供气□供暖□通信□网络□", "备注",
            "本人承诺以上信息及提交的相关资料全部属实，如因信息失实引发的一切后果由本人自行承担。", "单位（盖章）签字：",
            "____年__月__日",
            "注：1.请申请人出示由申请单位出具的相关业务委托办理书面证明。2.在帮办代办申请受理后，因帮办代办项目不符合现行法律法规"
            "规章和政策规定或国家法律法规规章和政策发生调整、出现不可抗力导致项目不具备办理条件的；或申请单位申请终止帮办代办服务的，"
            "或申请单位不配合或弄虚作假导致项目办理无法推进的，应与申请单位办理终止帮办代办服务手续，填写《帮办代办服务项目终止单》，"
            "注明终止原因，移交相关资料。"],
    "承诺书": ["申请帮办代办服务承诺书", "本单位", "向县政务服务中心申请提供帮办代办服务。并承诺履行以下义务：",
            "一、配合填写《帮办代办服务申请表》编制项目报批计划。组织项目申报材料，在帮办代办人员指导下有序申报。",
            "二、联系、督促委托单位，按要求补充、完善相关申报资料。", "三、因帮办代办工作需要，协助配合召开项目协调会。",
            "四、及时办理各种缴费手续，并认真履行项目业主应当履行的其他职责。",
            "五、对建设项目及相关申报材料真实性合法性负责，并承担相应的法律责任。",
            "六、帮办代办事项完成、审批结果送达后，配合填写《帮办代办服务项目办结单》《帮办代办服务评价表》。",
            "七、因项目或事项本身不具备办理条件，或申报材料有弄虚作假及其他违法违规情况的。配合填写《帮办代办服务项目终止单》，"
            "终止帮办代办服务。", "单位（盖章）", "项目经办人签字：", "____年__月__日"],
    "办结单": [*(s for copy in ("第一联", "第二联") for s in (
        f"帮办代办项目办结单（{copy}）", "（第一联：企业留存第二联：政务服务中心留存）", "编号：",
        "兹有帮办代办项目（名称：", "）（项目编号：", "），已于", "完成委托帮办代办事项。有关资料已移交完毕。现作办结处理。",
        "项目经办人签字：", "帮办代办人员签字：")), ],
    "终止单": ["帮办代办服务项目终止单", "编号：", "兹有帮办代办项目（名称：", "）（项目编号：", "），现因",
            "，经双方认可，于", "终止帮办代办委托，有关资料已移交完毕。", "项目经办人签字：", "帮办代办人员签字：",
            "____年__月__日"],
    "评价表": ["帮办代办服务评价表", "兹有帮办代办项目（名称：", "）（项目编号：", "），已于",
            "完成帮办代办服务工作，请对帮办代办服务进行综合评价：", "非常满意", "满意", "不满意", "非常不满意",
            "为进一步提升我们的服务质量，请您留下宝贵的意见和建议：", "项目评价人："],
    "委托书": ["帮办代办服务委托书", "编号：", "委托方（申请单位）", "项目单位负责人", "项目单位经办人", "受托方",
            "帮办代办人员", "项目名称", "项目编号", "办件编号", "委托范围", "委托事项", "服务方式", "委托期限",
            "交接材料清单", "除法律法规明确规定必须由企业和群众交纳的费用外", "委托方（盖章）", "项目经办人签字",
            "受托方（盖章）", "帮办代办人员签字"],
    "代办委托协议": ["帮办代办委托协议", "编号：", "委托方（申请单位）", "受托方", "项目首席服务员", "委托范围", "委托事项",
                "委托期限", "自本协议签订之日起", "委托方（盖章）", "受托方（盖章）", "项目首席服务员签字"],
    "补正告知书": ["补正材料告知书（一次性告知）", "编号：", "现将需补正的全部材料一次性告知如下：", "请于", "前提交补正材料。",
              "经办部门（盖章）", "经办人签字"],
    "不予受理告知书": ["帮办代办服务不予受理告知书", "编号：", "经审核，决定不予受理。", "原因及解释：", "帮办代办人员签字："],
}


# ---- issuing every kind ----------------------------------------------------------------------------------------
def _completed_case(svc) -> str:
    """A case with a 补正 round, delivered, signed and rated: 委托书, 补正告知书, 办结单, 评价表."""
    case_no = h.start(svc, service_items=["hp", "xf"])
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, ["hp", "xf"])
    h.complete(svc, "zb_sthj", "部门办理", HP, case_no=case_no, **h.needs_correction("补充环境影响报告表及公示材料"))
    h.complete(svc, "huarui", "补正材料", HP, case_no=case_no, **h.supplement())
    h.complete(svc, "zb_sthj", "部门办理", HP, case_no=case_no, **h.approve("武环审〔2026〕1号"))
    h.approve_items(svc, case_no, ["xf"])
    h.collect_and_deliver(svc, case_no)
    h.complete(svc, "huarui", "签收办结单", case_no=case_no, **h.receipt())
    h.complete(svc, "huarui", "评价代办服务", case_no=case_no, **h.rating("非常满意", comments="服务周到"))
    return case_no


def _refused_case(svc) -> str:
    case_no = h.start(svc)
    h.complete(svc, "agent1", "受理审核", case_no=case_no, review_decision="不予受理",
               refusal_explanation="项目不属于帮办代办服务范围，已当面解释")
    return case_no


def _key_case(svc) -> str:
    case_no = h.start(svc, key_project="重点项目", service_items=["hp"])
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    h.complete(svc, "window1", "指派项目首席服务员", case_no=case_no, chief_officer="chief1",
               designated_by="县发展和改革委员会（重点项目）", assign_note="重点项目")
    h.complete(svc, "chief1", "签订代办委托协议", case_no=case_no, **h.agreement())
    return case_no


def _terminated_case(svc) -> str:
    case_no = h.start(svc)
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    h.send(svc, "agent1", case_no, "termination", reason="出现不可抗力导致项目不具备办理条件", remark="项目暂缓")
    h.complete(svc, "agent1", "办理终止手续", case_no=case_no, **h.slip("出现不可抗力导致项目不具备办理条件"))
    return case_no


def _doc_id(svc, case_no: str, kind: str) -> int:
    with svc.db.unit_of_work(write=False) as uow:
        rows = uow.repo.documents_for_case(uow.repo.case_by_no(case_no).id)
    return next(r.id for r in rows if r.kind == kind)


def _render(svc, case_no: str, kind: str, user: str = "supervisor1") -> dict:
    if kind in templates.APPLICATION_KINDS:
        return svc.render_application_document(actor(svc, user), case_no, kind, "http://bangban.test/")
    return svc.render_document(actor(svc, user), case_no, _doc_id(svc, case_no, kind), "http://bangban.test/")


@pytest.fixture
def issued(svc):
    """One case per path, and which case holds each kind (on the frozen clock: the same dates every day)."""
    h.freeze_clock()
    done, refused, key, ended = _completed_case(svc), _refused_case(svc), _key_case(svc), _terminated_case(svc)
    return {"申请表": done, "承诺书": done, "委托书": done, "补正告知书": done, "办结单": done, "评价表": done,
            "不予受理告知书": refused, "代办委托协议": key, "终止单": ended}


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-raw", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def _squeezed(s: str) -> str:
    return re.sub(r"\s+", "", s).replace("\u200b", "")


def assert_in_order(haystack: str, needles: list[str], what: str) -> None:
    text_, at = _squeezed(haystack), 0
    for needle in needles:
        found = text_.find(_squeezed(needle), at)
        assert found >= 0, f"{what}：在「{text_[at:at + 80]}…」之后找不到「{needle}」"
        at = found + len(_squeezed(needle))


# ---- the tests ---------------------------------------------------------------------------------------------------
def test_the_templates_of_the_process_set_are_valid_and_one_per_kind(process_files):
    assert sorted(templates.template_kinds(process_files)) == sorted(KINDS)
    assert templates.template_problems(process_files, set(KINDS)) == []


def test_validation_reports_a_broken_template_and_an_unknown_variable():
    files = read_dir(Path(__file__).parent.parent / "processes")
    broken = dict(files, **{"documents/办结单.html": b"{% for x in %}"})
    messages = [p.message for p in validate_set(broken)]
    assert any("documents/办结单.html" in m and "语法有误" in m for m in messages), messages
    unknown = dict(files, **{"documents/终止单.html": b"<p>{{ secret_key }}{{ data.unit_name }}</p>"})
    messages = [p.message for p in validate_set(unknown)]
    assert any("documents/终止单.html" in m and "secret_key" in m for m in messages), messages
    missing = {k: v for k, v in files.items() if k != "documents/补正告知书.html"}
    messages = [p.message for p in validate_set(missing)]
    assert any("补正告知书" in m and "模板" in m for m in messages), messages


def test_a_template_cannot_reach_python_internals(svc, issued):
    """The sandbox refuses what a hostile template would try (class hierarchy walking)."""
    evil = b"{{ data.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(Exception) as caught:
        templates.render(evil, "documents/x.html", {"kind": "x", "number": "1", "issued_date": None}, {}, "中心", None)
    assert "单据模板无法生成：使用了沙箱不允许的操作" in str(caught.value)


@needs_poppler
@pytest.mark.parametrize("kind", KINDS)
def test_each_kinds_pdf_holds_its_annex_in_order(svc, issued, kind, tmp_path):
    doc = _render(svc, issued[kind], kind)
    pdf = svc.document_pdf(doc)
    assert pdf.startswith(b"%PDF")
    fonts = subprocess.run(["pdffonts", str(_write(tmp_path, pdf))], capture_output=True, check=True).stdout.decode()
    assert "WenQuanYi" in fonts or "Noto" in fonts
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:] if line.strip()), fonts   # embedded
    text_ = _pdf_text(pdf, tmp_path)
    assert_in_order(text_, ANNEX[kind], kind)
    assert doc["number"] in _squeezed(text_)
    assert "扫码验真" in text_
    pages = subprocess.run(["pdfinfo", str(_write(tmp_path, pdf))], capture_output=True, check=True).stdout.decode()
    assert "595.276 x 841.89" in pages or "595.28 x 841.89" in pages          # A4
    assert re.search(r"Pages:\s+1\b", pages), f"{kind} 应印在一张 A4 纸上：{pages}"


def _write(tmp_path: Path, pdf: bytes) -> Path:
    path = tmp_path / "check.pdf"
    path.write_bytes(pdf)
    return path


@needs_poppler
def test_the_closing_slips_two_copies_share_one_sheet_with_the_cut_line(svc, issued, tmp_path):
    doc = _render(svc, issued["办结单"], "办结单")
    text_ = _pdf_text(svc.document_pdf(doc), tmp_path)
    first, cut, second = text_.find("（第一联）"), text_.find("裁切线"), text_.find("（第二联）")
    assert 0 <= first < cut < second
    assert "\f" not in text_.rstrip("\f")                  # one page: no page break inside
    assert _squeezed(text_).count("2026年3月2日完成委托帮办代办事项") == 2    # 送达日期 printed as 年月日 in both copies


@needs_poppler
@pytest.mark.parametrize("kind", KINDS)
def test_nothing_runs_off_the_a4_page(svc, issued, kind, tmp_path):
    """Rendered at 40 dpi, the outer margin strips of the page stay white: nothing overflows the sheet."""
    pdf = _write(tmp_path, svc.document_pdf(_render(svc, issued[kind], kind)))
    subprocess.run(["pdftoppm", "-r", "40", "-gray", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")], check=True)
    page = next(tmp_path.glob("p*.pgm")).read_bytes()
    width, height, pixels = _pgm(page)
    margin = 8                                           # 8 px at 40 dpi ≈ 5 mm, inside the 15 mm page margin
    for y in range(height):
        row = pixels[y * width:(y + 1) * width]
        edge = row[:margin] + row[-margin:] if margin <= y < height - margin else row
        assert min(edge) > 200, f"{kind}：第 {y} 行像素在页边之外有内容"


def _pgm(data: bytes) -> tuple[int, int, bytes]:
    parts = data.split(maxsplit=4)
    assert parts[0] == b"P5"
    width, height = int(parts[1]), int(parts[2])
    return width, height, parts[4][-width * height:]


def test_application_prints_every_field_even_empty_and_ticks_choices(svc, issued):
    html = _render(svc, issued["申请表"], "申请表")["html"]
    # the sample leaves 投资总额, 建设规模, 建设地址 and 备注 empty: their rows are still there, blank
    flat = html.replace("\n", "")
    for label in ("建设地址", "备注"):
        assert f'{label}</td><td colspan="3"></td>' in flat, label
    assert '投资总额</td><td></td>' in flat and '建设规模</td><td></td>' in flat
    assert "None" not in flat
    assert "环评☑" in html and "消防☑" in html and "供电□" in html
    assert "____年__月__日" in html


def test_golden_html_of_each_kind(svc, issued):
    """The page each template renders for a fixed scenario, compared with the stored file (numbers, dates and the
    QR code, which change with the clock and the host, are masked). Set BANGBAN_UPDATE_GOLDEN=1 to rewrite."""
    import os
    for kind in KINDS:
        html = _masked(_render(svc, issued[kind], kind)["html"])
        path = GOLDEN / f"{kind}.html"
        if os.environ.get("BANGBAN_UPDATE_GOLDEN"):
            path.write_text(html, encoding="utf-8")
        assert path.exists(), f"缺少 {path.name}：运行 BANGBAN_UPDATE_GOLDEN=1 pytest {__file__} -k golden 生成并检查后提交"
        assert html == path.read_text(encoding="utf-8"), f"{kind} 的 HTML 与 {path.name} 不同"


def _masked(html: str) -> str:
    html = re.sub(r"<svg.*?</svg>", "<svg>QR</svg>", html, flags=re.S)
    html = re.sub(r"\?h=[0-9a-f]+", "?h=HASH", html)
    return re.sub(r"410823\d{12}", "CASENO", html)


def test_printing_again_after_the_template_changed_gives_the_same_content(svc, issued, tmp_path):
    case_no = issued["办结单"]
    before = _render(svc, case_no, "办结单")
    changed = {"documents/办结单.html": svc.current.files["documents/办结单.html"].replace(
        "现作办结处理。".encode(), "现作办结处理（新模板）。".encode())}
    svc.publish(None, changed, "改办结单措辞")
    assert "新模板".encode() in svc.current.files["documents/办结单.html"]
    again = _render(svc, case_no, "办结单")
    assert again["html"] == before["html"]
    assert "新模板" not in again["html"]
    if shutil.which("pdftotext"):          # and so does the PDF made from it
        assert _pdf_text(svc.document_pdf(again), tmp_path) == _pdf_text(svc.document_pdf(before), tmp_path)
    # a document issued after the change prints with the new wording
    fresh = _completed_case(svc)
    assert "现作办结处理（新模板）。" in _render(svc, fresh, "办结单")["html"]
    h.assert_verified(svc, case_no)


# ---- 扫码验真 ------------------------------------------------------------------------------------------------
@pytest.fixture
def web(svc):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


def _verify_path(html: str) -> str:
    url = re.search(r"扫码验真：([^<\s]+)", html).group(1).replace("&amp;", "&")
    assert url.startswith("bangban.test/verify/")            # printed without the scheme, as typed
    parts = urlsplit("http://" + url)
    return unquote(parts.path) + "?" + parts.query


def test_verification_page_for_a_valid_an_altered_and_an_unknown_number(svc, issued, web):
    case_no = issued["办结单"]
    path = _verify_path(_render(svc, case_no, "办结单")["html"])
    c = web.test_client()                                         # no login
    r = c.get(path)
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and "验证通过" in body
    number = next(n for k, n, _ in h.documents(svc, case_no) if k == "办结单")
    assert "办结单" in body
    assert number in body and "武陟县政务服务中心" in body
    row = h.case_row(svc, case_no)
    for personal in (row.unit_name, row.title, "huarui", "agent1"):   # nothing personal
        assert personal not in body

    # the application's 申请表 carries its own code
    apply_path = _verify_path(_render(svc, case_no, "申请表")["html"])
    assert "验证通过" in c.get(apply_path).get_data(as_text=True)

    # altered: the stored content no longer hashes to what was issued
    doc_id = _doc_id(svc, case_no, "办结单")
    h.drop_append_only_guards(svc.db.engine)
    with svc.db.engine.begin() as conn:
        data = conn.execute(text("SELECT data FROM documents WHERE id = :i"), {"i": doc_id}).scalar_one()
        data = json.loads(data) if isinstance(data, str) else data
        conn.execute(text("UPDATE documents SET data = :d WHERE id = :i"),
                     {"d": json.dumps(dict(data, project_name="改过的名称"), ensure_ascii=False), "i": doc_id})
    r = c.get(path)
    assert r.status_code == 404 and "验证未通过" in r.get_data(as_text=True)

    # unknown: a number never issued, or the right number with a wrong code, say the same
    for bad in (path.replace("h=", "h=0"), "/verify/" + "武帮代结〔2099〕9999号" + "?h=abcdefabcdef", "/verify/x"):
        r = c.get(bad)
        assert r.status_code == 404 and "未找到与该编号和验证码相符的单据" in r.get_data(as_text=True)


def test_verification_is_throttled_against_enumeration(svc, web):
    c = web.test_client()
    from engine.usecases.documents import VERIFY_FAILURES
    for i in range(VERIFY_FAILURES):
        assert c.get(f"/verify/武帮代结〔2026〕{i:04d}号?h=000000000000").status_code == 404
    r = c.get("/verify/武帮代结〔2026〕0001号?h=000000000000")
    assert r.status_code == 429 and "查询过于频繁" in r.get_data(as_text=True)


def test_document_page_and_pdf_through_the_web(svc, issued, web):
    case_no = issued["办结单"]
    c = html_login(web, "agent1")
    case_page = c.get(f"/cases/{case_no}").get_data(as_text=True)
    links = re.findall(r'href="(/cases/[^"]+/documents/\d+)"', case_page)
    assert links
    page = c.get(links[0])
    assert page.status_code == 200 and "下载 PDF" in page.get_data(as_text=True)
    pdf = c.get(links[0] + "/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    for kind in templates.APPLICATION_KINDS:
        r = c.get(f"/cases/{case_no}/print/{kind}")
        assert r.status_code == 200 and "扫码验真" in r.get_data(as_text=True)
        assert c.get(f"/cases/{case_no}/print/{kind}/pdf").data.startswith(b"%PDF")
    assert c.get(f"/cases/{case_no}/print/别的").status_code == 404
    other = html_login(web, "jiahe")                 # another unit's applicant
    assert other.get(links[0] + "/pdf").status_code == 404


def test_a_process_owner_edits_a_template_through_the_api(svc, web):
    """Templates are files of the process set: validated and published like the forms (the modeler sends them)."""
    from tests.webclient import api_login
    owner = api_login(web, "owner1")
    name = "documents/终止单.html"
    current = owner.get("/api/processes/versions").json["versions"]
    files = owner.get(f"/api/processes/versions/{current[0]['id']}/files").json["files"]
    assert name in files
    r = owner.post("/api/processes/validate", json={"files": {name: files[name] + "{{ data.__class__ }}{{ os }}"}})
    assert r.status_code == 200 and r.json["ok"] is False
    assert any(p["file"] == name and "os" in p["message"] for p in r.json["problems"]), r.json["problems"]
    changed = files[name].replace("有关资料已移交完毕。", "有关资料已全部移交完毕。")
    r = owner.post("/api/processes/publish", json={"files": {name: changed}, "comment": "终止单措辞"})
    assert r.status_code == 201, r.text
    assert svc.current.files[name].decode() == changed
    r = owner.post("/api/processes/validate", json={"files": {"documents/x.py": "print(1)"}})
    assert r.status_code == 422


def test_a_changed_template_shows_in_the_version_diff(process_files):
    from engine.versions import diff_files
    name = "documents/评价表.html"
    changed = dict(process_files, **{name: process_files[name] + "<p>新增一行</p>".encode()})
    assert [(c["category"], c["kind_name"], c["name"]) for c in diff_files(process_files, changed)] == \
        [("单据模板", "修改", "评价表")]
    removed = {k: v for k, v in process_files.items() if k != name}
    assert [(c["category"], c["kind_name"]) for c in diff_files(process_files, removed)] == [("单据模板", "删除")]


def test_a_document_issued_before_templates_existed_prints_with_todays_template(svc, issued):
    """A document stored without its template reference (as issued before this feature) still prints, with the
    current template, from its recorded data."""
    case_no = issued["终止单"]
    doc_id = _doc_id(svc, case_no, "终止单")
    h.drop_append_only_guards(svc.db.engine)
    with svc.db.engine.begin() as conn:
        data = conn.execute(text("SELECT data FROM documents WHERE id = :i"), {"i": doc_id}).scalar_one()
        data = json.loads(data) if isinstance(data, str) else data
        old = {k: v for k, v in data.items() if k not in ("template", "application", "service_items", "department")}
        conn.execute(text("UPDATE documents SET data = :d WHERE id = :i"),
                     {"d": json.dumps(old, ensure_ascii=False), "i": doc_id})
    html = _render(svc, case_no, "终止单")["html"]
    assert "帮办代办服务项目终止单" in html and "出现不可抗力导致项目不具备办理条件" in html
