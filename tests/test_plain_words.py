"""Plain words on every page: a demo-like world (the demo's three sample cases, a refused case, a terminated one, an
item on 补正 with an extension, an overdue item with its 督办) and every GET page of every role but the process owner,
generated from the route table. The visible text (tags, scripts, styles and attribute values stripped) carries no
run of four or more Latin letters or underscores (an internal key such as ``item_decision``, an item code, an English
word, a package name) outside a short allow-list, and no hexadecimal hash such as a process version's.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import lxml.html
import pytest

from engine.clock import LOCAL_TZ, clock
from engine.demo import load_sample_cases
from engine.worker import run_once
from tests import helpers as h
from tests.conftest import actor
from tests.test_access_matrix import _login, _routes, _url, _users_by_role
from web import create_app

ALLOWED = {"PDF", "HTTP", "HTTPS", "URL", "CSV", "XLSX", "DOCX", "JSON", "BPMN"}
"""Names of file formats people know by these letters (an upload takes a PDF, DOCX or XLSX file; a download is a PDF)."""
TOKEN = re.compile(r"[A-Za-z0-9_]+")
LATIN = re.compile(r"(?=[A-Za-z_]{4,})_*[A-Za-z][A-Za-z_]*")
"""A run of four or more letters and underscores with a letter in it (a row of underscores is a line to sign on)."""
WEB_ADDRESS = re.compile(r"(?:https?://)?[A-Za-z0-9.-]+(?::\d+)?/verify/\S+")
"""The 扫码验真 address printed under a document's QR code (a web address is read as such, not as words)."""
HEX_HASH = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{8,}(?![0-9A-Za-z])")
OWNER_ROLES = {"process_owner"}
"""The process owner works with BPMN, forms and element ids by trade: not scanned here."""
OWNERS_PAGES = {"views.process_modeler"}
"""The modeler is the process owner's alone; the versions list and the diff are read by auditors and supervisors too,
in names (hashes, element ids, properties and scripts only for whoever may publish)."""


def visible_text(html: str) -> str:
    doc = lxml.html.fromstring(html)
    for bad in doc.xpath("//script|//style|//template|//noscript"):
        bad.drop_tree()
    return doc.text_content()


def shown_by_script(html: str) -> str:
    """What the audit replay's script writes into the page from its data: each step's label, task, actor, summary,
    fields and data changes (titles and values), so internal keys cannot reach the page that way either."""
    m = re.search(r'<script type="application/json" id="audit-data">(.*?)</script>', html, re.S)
    if not m:
        return ""
    out = []
    for step in json.loads(m.group(1).replace("<\\/", "</"))["steps"]:
        e = step["event"]
        out += [e["label"], e["task"], e["actor"], e["role"], e["summary"]]
        out += [f"{f['title']} {f['value']}" for f in e["fields"]]
        out += [f"{c['title']} {c['before']} {c['after']}" for c in step["change_rows"]]
        out += [f"{t['name']} {t.get('title') or ''}" for t in step["state"].get("open", [])]
    return " " + " ".join(str(x) for x in out if x)


def strange_words(text: str, data: set[str]) -> set[str]:
    """Tokens of Latin letters, digits and underscores with a run of four letters/underscores in them, unless a
    known format name or data (a login, a department's code); and hexadecimal hashes."""
    text = WEB_ADDRESS.sub(" ", text)
    words = {t for t in TOKEN.findall(text) if LATIN.search(t) and t not in ALLOWED and t not in data}
    return words | set(HEX_HASH.findall(text))


def test_the_scanner_finds_keys_codes_and_hashes():
    page = ("<html><head><style>.x{color:red}</style></head><body><p title='internal_title'>流程（版本 17f36614fa24）"
            "审核结论 item_decision：hp 准予 PDF 文件</p><script>var longName = 1;</script></body></html>")
    assert strange_words(visible_text(page), set()) == {"item_decision", "17f36614fa24"}
    assert strange_words("办件 4108232026030200001 邮寄单号 SF123456789 2026-03-02", set()) == set()
    assert strange_words("扫码验真：localhost:8000/verify/武帮代补〔2026〕0002号?h=c6a92a8c8493 编号", set()) == set()
    assert strange_words("扫码验真：verify c6a92a8c8493", set()) == {"verify", "c6a92a8c8493"}


@pytest.fixture
def world(svc):
    """The demo's sample cases and the other ends a case can take, on the test clock."""
    h.freeze_clock(datetime(2026, 3, 2, 9, tzinfo=LOCAL_TZ))
    assert load_sample_cases(svc) == 3
    refused = h.start(svc, project_name="不予受理的项目")
    h.complete(svc, "agent1", "受理审核", case_no=refused, review_decision="不予受理",
               refusal_explanation="申请事项不属于帮办代办服务范围")
    ended = h.start(svc, project_name="终止的项目")
    h.accept_and_commission(svc, ended)
    h.dispatch(svc, ended, ["hp", "gd"])
    h.send(svc, "huarui", ended, "termination_request", reason="申请单位申请终止帮办代办服务")
    h.complete(svc, "agent1", "审核终止申请", case_no=ended, termination_decision="同意终止", termination_opinion="同意")
    h.complete(svc, "agent1", "办理终止手续", case_no=ended, **h.slip("申请单位申请终止帮办代办服务"))
    late = h.start(svc, project_name="超期督办的项目", service_items=["xf", "hp"])
    h.accept_and_commission(svc, late)
    h.dispatch(svc, late, ["xf", "hp"])
    h.complete(svc, "zb_sthj", "部门办理", h.ITEM_NAMES["hp"], case_no=late, **h.needs_correction("补充环评专章"))
    task = h.find_task(svc, "zb_zjj", "部门办理", h.ITEM_NAMES["xf"], case_no=late)
    svc.send_message(actor(svc, "zb_zjj"), None, "extension_request",
                     {"extension_days": 2, "extension_reason": "需要专家现场核查"}, task_id=task["task_id"])
    h.complete(svc, "supervisor1", "审批延期申请", case_no=late, extension_decision="批准延期", extension_days_approved=2,
               extension_opinion="同意")
    clock.set(datetime(2026, 4, 10, 9, tzinfo=LOCAL_TZ))
    run_once(svc)
    assert h.find_task(svc, "supervisor1", "督办", case_no=late)
    with svc.db.unit_of_work(write=False) as uow:
        case = uow.repo.case_by_no(late)
        task_id = uow.repo.inbox_for_case(case.id)[0].task_id
        doc_id = uow.conn.exec_driver_sql("SELECT id FROM documents ORDER BY id DESC LIMIT 1").scalar()
    return {"case_no": late, "task_id": task_id, "doc_id": doc_id, "key": "termination", "year": 2026,
            "process_id": "bangban_case", "day": "2026-10-01", "version_id": 1, "old": 1, "new": 1,
            "cases": [refused, ended, late]}


def test_no_page_of_a_demo_world_shows_an_internal_word_or_hash(svc, world):
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    users = {role: u for role, u in _users_by_role(svc).items() if role not in OWNER_ROLES}
    with svc.db.unit_of_work(write=False) as uow:      # data, not words: logins and the codes of departments/stations
        data = {r[0] for r in uow.conn.exec_driver_sql(
            "SELECT username FROM users UNION SELECT code FROM departments UNION SELECT code FROM stations")}
        case_numbers = [r[0] for r in uow.conn.exec_driver_sql("SELECT case_no FROM cases ORDER BY id")]
    found: dict[str, set[str]] = {}
    pages = 0
    for role, (username, _roles) in users.items():
        client = _login(app, username)
        urls = []
        for rule, method, _view in _routes(app):
            if (method != "GET" or rule.rule.startswith("/api/") or rule.endpoint.endswith("logout")
                    or rule.endpoint in OWNERS_PAGES):
                continue
            if "case_no" in rule.arguments and "doc_id" not in rule.arguments:
                urls += [_url(rule, dict(world, case_no=no)) for no in case_numbers]
            elif "task_id" in rule.arguments:      # every task in the person's inbox, not just one
                urls += [_url(rule, dict(world, task_id=t["task_id"])) for t in svc.inbox(actor(svc, username))]
                urls.append(_url(rule, world))
            else:
                urls.append(_url(rule, world))
        for url in urls:
            r = client.get(url)
            if r.status_code != 200 or r.mimetype != "text/html":
                continue
            pages += 1
            html = r.get_data(as_text=True)
            text = visible_text(html) + shown_by_script(html)
            for word in strange_words(text, data):
                i = text.index(word)
                found.setdefault(f"{url}（{role}）", set()).add(f"{word}：…{' '.join(text[i - 30:i + 30].split())}…")
    assert pages > 100
    assert not found, "页面上出现了内部代码、英文词或哈希：\n" + "\n".join(
        f"{k}: {sorted(v)}" for k, v in sorted(found.items()))


def test_favicon_is_served(svc):
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    with app.test_client().get("/favicon.ico") as r:
        assert r.status_code == 200 and r.mimetype.startswith("image/") and r.data[:4] == b"\x00\x00\x01\x00"
        html = app.test_client().get("/login").get_data(as_text=True)
    assert '<link rel="icon" href="/favicon.ico">' in html


def test_the_audit_replay_names_fields_items_and_people(svc, world):
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    html = _login(app, "auditor1").get(f"/cases/{world['case_no']}/audit").get_data(as_text=True)
    data = json.loads(re.search(r'id="audit-data">(.*?)</script>', html, re.S).group(1).replace("<\\/", "</"))
    rows = [(c["title"], c["before"], c["after"]) for s in data["steps"] for c in s["change_rows"]]
    assert ("办理结果", "", "需要补正") in rows
    assert ("需补正的全部材料（一次性告知）", "", "补充环评专章") in rows
    assert ("牵头代办人", "", "王代办") in rows and ("受理代办员", "", "王代办") in rows
    assert ("批准延长（工作日）", "", "2") in rows
    clock_lines = [s["event"]["summary"] for s in data["steps"] if s["event"]["type"].startswith("clock_")]
    assert "环评，原因：补充环评专章" in clock_lines
    assert "消防（设计审查/验收），延长2个工作日，理由：需要专家现场核查" in clock_lines
    assert "hp" not in " ".join(clock_lines) and "xf" not in " ".join(clock_lines)


def test_a_case_names_its_process_version_as_people_count_them(svc):
    h.freeze_clock(datetime(2026, 3, 2, 9, tzinfo=LOCAL_TZ))
    no = h.start(svc)
    with svc.db.unit_of_work(write=False) as uow:
        at = uow.repo.versions()[0].activated_at
    day = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(LOCAL_TZ)
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    page = _login(app, "huarui").get(f"/cases/{no}").get_data(as_text=True)
    assert f'<dd id="case-process">帮办代办服务（第1版，{day.year}年{day.month}月{day.day}日发布）</dd>' in page
    assert svc.current.hash[:12] not in page
