"""HTTP tests of the statutory clocks (限时办结) and the working-day calendar, as their users meet them.

Every request goes through the Flask test client; besides HTTP, a test only sets the service's clock
(``engine.clock.clock.set``, always first: nothing here depends on the wall clock) and runs the timer worker
(``engine.worker.run_once``), as the ``bangban worker`` process would. Refused requests are checked three ways: the
status code, a Chinese message, and an unchanged case and calendar (read back through the JSON API).

Hand-checked dates (2026 schedule of the chinese-calendar package: no holiday in March 2026; the weekend rule for
2027 until that year is entered). A case dispatched on Monday 2026-03-02 09:00 Asia/Shanghai:

* 消防 (limit 15 working days): the day of receipt is not counted, so it is due on the 15th working day after it,
  Monday 2026-03-23; yellow from the 12th working day (ceil(80% of 15)), Wednesday 2026-03-18; red from 2026-03-24.
  On 2026-03-25 it is overdue by 2 working days (24th and 25th).
* 环评 (limit 20): due 2026-03-30, yellow from the 16th working day, 2026-03-24.

A case dispatched on Thursday 2026-12-10: 环评 is due on the 20th working day, which falls in 2027: 2026-12-11 (1),
12-14..18 (6), 12-21..25 (11), 12-28..31 (15), then 2027-01-01 (16, a Friday under the weekend rule) and
01-04..07 (20): 2027-01-07, provisional (暂定). With 2027-01-01 entered as 元旦 (a rest day) it is 2027-01-08, final.
消防 (15) is due 2026-12-31 and is not provisional.
"""
from __future__ import annotations

import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from engine.clock import clock
from engine.demo import SAMPLE_APPLICATION
from engine.worker import run_once
from tests import helpers as h
from tests.webclient import api_login, assert_json_error, chinese, html_login, token
from web import create_app

PROCESS = "bangban_case"
SH = ZoneInfo("Asia/Shanghai")

XF = "消防（设计审查/验收）"
HP = "环评"
ZJJ = "县住房和城乡建设局"
STHJ = "焦作市生态环境局武陟分局"

ACCEPT = {"review_decision": "受理", "authorization_checked": True}
COMMISSION = {"commission_signed": True, "materials_received": "营业执照、项目备案证明等", "service_mode_confirmed": "现场服务"}
EXTENSION_REASON = "需组织专家现场核查消防设施"

FLASH = re.compile(r'<div class="flash no-print" role="status">([^<]+)</div>')
LIGHT = re.compile(r'<span class="light light-(\w+)" title="([^"]*)">●</span>\s*<span class="clock-text">([^<]*)</span>')

# The administrator's file for 2027 (test data, not the real schedule), as Excel saves a CSV: with a BOM.
CALENDAR_2027 = "\n".join([
    "date,kind,name",
    "# 2027 年放假安排（测试数据）",
    "2027-01-01,休息日,元旦",
    "2027-02-06,工作日,春节",
    "2027-02-08,休息日,春节",
    "2027-02-09,休息日,春节",
    "2027-02-10,休息日,春节",
    "2027-02-11,休息日,春节",
    "2027-02-12,休息日,春节",
    "2027-10-01,休息日,国庆节",
    "",
])
CALENDAR_2027_DAYS = [
    {"day": "2027-01-01", "kind": "rest", "name": "元旦"}, {"day": "2027-02-06", "kind": "work", "name": "春节"},
    *({"day": f"2027-02-{d:02d}", "kind": "rest", "name": "春节"} for d in range(8, 13)),
    {"day": "2027-10-01", "kind": "rest", "name": "国庆节"}]


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


# ---- the app and its clients (the approach of tests/test_web.py) --------------------------------------------
class RecordingClient(FlaskClient):
    """A test client that keeps every response body, so the module can check none shows a traceback."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        self.application.extensions["test_responses"].append(
            (response.request.method, response.request.path, response.status_code, response.get_data(as_text=True)))
        return response


def make_app(svc, **config):
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True, **config})
    app.test_client_class = RecordingClient
    app.extensions["test_responses"] = []
    return app


def assert_no_traceback(app) -> None:
    leaked = [(m, p, s) for m, p, s, body in app.extensions["test_responses"] if "Traceback" in body]
    assert not leaked, f"这些响应的正文中出现了 Python Traceback：{leaked}"


@pytest.fixture
def app(svc):
    app = make_app(svc)
    yield app
    assert_no_traceback(app)


@pytest.fixture
def demo_app(svc):
    app = make_app(svc, DEMO_CLOCK=True)
    yield app
    assert_no_traceback(app)












def assert_html_error(r, status: int, *fragments: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:1000])
    assert r.mimetype == "text/html"
    assert chinese(r.text)
    for f in fragments:
        assert f in r.text, (f, r.text[:3000])


def flash_of(html: str) -> list[str]:
    return FLASH.findall(html)


def follow(c: FlaskClient, r) -> str:
    """The page a successful form post redirects to."""
    assert r.status_code == 302, (r.status_code, r.text[:3000])
    page = c.get(r.headers["Location"])
    assert page.status_code == 200
    return page.text


# ---- driving a case through the API ---------------------------------------------------------------------------
def api_task(c: FlaskClient, case_no: str, name: str, title: str | None = None) -> str:
    r = c.get("/api/tasks")
    assert r.status_code == 200
    found = [t for t in r.json["tasks"] if t["case_no"] == case_no and t["name"] == name
             and (title is None or t["title"] == title)]
    assert len(found) == 1, (name, title, [(t["name"], t["title"]) for t in r.json["tasks"]])
    return found[0]["task_id"]


def api_complete(c: FlaskClient, case_no: str, name: str, data: dict, title: str | None = None) -> None:
    r = c.post(f"/api/tasks/{api_task(c, case_no, name, title)}/complete", json=data)
    assert r.status_code == 200, r.text


def dispatch_case(app, when: datetime, items=("hp", "xf")) -> str:
    """huarui applies, agent1 accepts, signs the commission and dispatches ``items``, all at ``when``."""
    clock.set(when)
    r = api_login(app, "huarui").post("/api/cases", json={"process": PROCESS, "data": SAMPLE_APPLICATION})
    assert r.status_code == 201, r.text
    case_no = r.json["case_no"]
    agent = api_login(app, "agent1")
    api_complete(agent, case_no, "受理审核", ACCEPT)
    api_complete(agent, case_no, "材料交接并签订委托书", COMMISSION)
    api_complete(agent, case_no, "分派服务事项", {"service_items": list(items)})
    return case_no


def snapshot(app, case_no: str) -> dict:
    """What a refused request must leave as it was, read by the supervisor through the API."""
    r = api_login(app, "supervisor1").get(f"/api/cases/{case_no}")
    assert r.status_code == 200
    v = r.json
    return {"status": v["case"]["status"], "timeline": len(v["timeline"]), "last_event": v["timeline"][-1]["hash"],
            "open_tasks": sorted((t["task_id"], t["name"]) for t in v["open_tasks"]), "clocks": v["clocks"],
            "items": [i["state"] for i in v["items"]]}


def calendar_state(app) -> dict:
    c = api_login(app, "supervisor1")
    out = {}
    for year in (2026, 2027):
        r = c.get(f"/api/calendar/{year}")
        assert r.status_code == 200, r.text
        out[year] = {k: r.json[k] for k in ("official", "complete", "known", "note", "admin_days", "updated_at")}
    return out


# ---- reading pages --------------------------------------------------------------------------------------------
def inbox_rows(c: FlaskClient, case_no: str, name: str, title: str | None = None) -> list[str]:
    page = c.get("/inbox")
    assert page.status_code == 200
    return [row for row in re.findall(r"<tr(?: [^>]*)?>(.*?)</tr>", page.text, re.S)
            if f">{case_no}<" in row and f"<strong>{name}</strong>" in row and (title is None or title in row)]


def inbox_row(c: FlaskClient, case_no: str, name: str, title: str | None = None) -> str:
    rows = inbox_rows(c, case_no, name, title)
    assert len(rows) == 1, f"待办中应恰有一条「{name}」（{title}）：{rows}"
    return rows[0]


def task_id_of(row: str) -> str:
    return re.search(r'href="/tasks/([^"]+)"', row).group(1)


def light(html: str) -> tuple[str, str, str]:
    """(level, tooltip, text) of the one clock light in ``html``."""
    found = LIGHT.findall(html)
    assert len(found) == 1, found
    return found[0]


def item_clock(html: str, name: str) -> tuple[str, str]:
    """(level, the whole clock cell as text) of the item ``name`` in the 服务事项 table of a case page."""
    table = re.search(r'<table class="list" id="items">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        if re.match(rf"\s*<td>{re.escape(name)}</td>", row):
            cell = re.search(r'<td class="clock-cell">(.*?)</td>', row, re.S).group(1)
            level = re.search(r'class="light light-(\w+)"', cell).group(1)
            return level, re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", cell)).replace("●", "")
    raise AssertionError(f"服务事项表中没有「{name}」")


def case_due(html: str) -> tuple[str, str]:
    """(level, text) of the case's own due date (全案办结期限: the latest of its running clocks, its worst light)."""
    m = re.search(r'<dd id="case-due"><span class="light light-(\w+)">●</span>(.*?)</dd>', html, re.S)
    assert m, "办件页上没有全案办结期限"
    return m.group(1), m.group(2).strip()


def case_page(c: FlaskClient, case_no: str) -> str:
    r = c.get(f"/cases/{case_no}")
    assert r.status_code == 200
    return r.text


def timeline(html: str) -> list[tuple[str, str]]:
    """(label, the entry's text without blanks) of every entry of a case page's timeline."""
    section = re.search(r'<ol class="timeline" id="timeline">(.*?)</ol>', html, re.S).group(1)
    out = []
    for li in re.findall(r"<li(?: [^>]*)?>(.*?)</li>", section, re.S):
        label = re.search(r"<strong>(.*?)</strong>", li).group(1)
        out.append((label, re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", li))))
    return out


def supervision_rows(html: str) -> list[str]:
    body = re.search(r'<table class="list" id="warnings">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


def notifications(html: str) -> list[str]:
    m = re.search(r'<section class="card" id="notifications">(.*?)</section>', html, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", li)).replace("【未读】", "").strip()
            for li in re.findall(r"<li[^>]*>(.*?)</li>", m.group(1), re.S)] if m else []


def html_submit(c: FlaskClient, url: str, data: dict) -> str:
    """GET a form page, post ``data`` with its token, follow the redirect; returns the page shown after it."""
    page = c.get(url)
    assert page.status_code == 200, page.text[:1000]
    return follow(c, c.post(url, data={**data, "csrf_token": token(page.text)}))


# =============================================================================================================
# Green, yellow, red; 督办; notifications; timeline
# =============================================================================================================
def test_an_items_light_goes_green_yellow_red_and_red_raises_supervision(app):
    case_no = dispatch_case(app, at(2026, 3, 2))
    zjj = html_login(app, "zb_zjj")
    agent = html_login(app, "agent1")
    supervisor = html_login(app, "supervisor1")

    # -- day 0: green, the whole limit left ------------------------------------------------------------------------
    row = inbox_row(zjj, case_no, "部门办理", XF)
    level, tooltip, text = light(row)
    assert (level, text) == ("green", "剩余15个工作日")
    assert tooltip == "绿灯，办结期限 2026年3月23日"
    assert "期限 2026年3月23日" in row and "暂定" not in row
    task_page = zjj.get(f"/tasks/{task_id_of(row)}")
    assert task_page.status_code == 200
    clock_cell = re.search(r'<dd id="task-clock">(.*?)</dd>', task_page.text, re.S).group(1)
    assert light(clock_cell)[::2] == ("green", "剩余15个工作日")
    page = case_page(agent, case_no)
    assert item_clock(page, XF) == ("green", "剩余15个工作日期限2026年3月23日")
    assert item_clock(page, HP) == ("green", "剩余20个工作日期限2026年3月30日")
    assert case_due(page) == ("green", "2026年3月30日")
    page = supervisor.get("/supervision").text
    assert "红牌（超期） 0" in page and "黄牌（预警） 0" in page and "没有黄牌或红牌事项" in page
    assert "现在 2026年3月2日 09:00" in page

    # -- the evening before the yellow day: still green, nothing to do for the worker ------------------------------
    clock.set(at(2026, 3, 17, 23, 59))
    assert run_once(app.extensions["bangban"]) == 0
    assert light(inbox_row(zjj, case_no, "部门办理", XF))[::2] == ("green", "剩余4个工作日")
    assert "【黄牌预警】" not in zjj.get("/inbox").text

    # -- the yellow day (12 of 15 working days used) -------------------------------------------------------------
    clock.set(at(2026, 3, 18))
    assert run_once(app.extensions["bangban"]) == 1
    inbox = zjj.get("/inbox").text
    assert light(inbox_row(zjj, case_no, "部门办理", XF))[::2] == ("yellow", "剩余3个工作日")
    notes = notifications(inbox)
    assert [n for n in notes if "【黄牌预警】" in n] == [
        f"2026年3月18日 09:00 【黄牌预警】{XF}（{ZJJ}）办理时限即将届满，请抓紧办理 {case_no}"]
    # before it, only the department's new task (notifications.json), with its deadline
    assert [n for n in notes if "【黄牌预警】" not in n] == [
        f"2026年3月2日 09:00 【新待办】部门办理（{XF}）：办件 {case_no}（武陟县华瑞食品有限公司，年产万吨食品项目），"
        f"请于2026年3月23日前办理。 {case_no}"]
    page = case_page(agent, case_no)
    assert item_clock(page, XF) == ("yellow", "剩余3个工作日期限2026年3月23日")
    assert item_clock(page, HP)[0] == "green"
    assert case_due(page) == ("yellow", "2026年3月30日")
    page = supervisor.get("/supervision").text
    assert "红牌（超期） 0" in page and "黄牌（预警） 1" in page
    assert [light(r)[0] for r in supervision_rows(page)] == ["yellow"]
    assert "督办" not in [t["name"] for t in api_login(app, "supervisor1").get("/api/tasks").json["tasks"]]

    # -- the due day itself is still within the limit -------------------------------------------------------------
    clock.set(at(2026, 3, 23, 17, 0))
    run_once(app.extensions["bangban"])
    assert light(inbox_row(zjj, case_no, "部门办理", XF))[::2] == ("yellow", "剩余0个工作日")
    assert inbox_rows(supervisor, case_no, "督办") == []

    # -- two working days after the due date: red, 督办 for the supervisor, the lead agent notified ------------------
    clock.set(at(2026, 3, 25))
    assert run_once(app.extensions["bangban"]) == 1
    assert run_once(app.extensions["bangban"]) == 0  # nothing fires twice
    assert light(inbox_row(zjj, case_no, "部门办理", XF))[::2] == ("red", "已超期2个工作日")
    page = case_page(agent, case_no)
    assert item_clock(page, XF) == ("red", "已超期2个工作日期限2026年3月23日")
    assert item_clock(page, HP) == ("yellow", "剩余3个工作日期限2026年3月30日")
    assert case_due(page) == ("red", "2026年3月30日")
    supervise_row = inbox_row(supervisor, case_no, "督办", f"{XF}（{ZJJ}）")
    assert len(inbox_rows(supervisor, case_no, "督办")) == 1
    page = supervisor.get("/supervision").text
    assert '<span class="badge badge-red">红牌（超期） 1</span>' in page and "黄牌（预警） 1" in page
    rows = supervision_rows(page)
    assert [light(r)[::2] for r in rows] == [("red", "已超期2个工作日"), ("yellow", "剩余3个工作日")]
    assert XF in rows[0] and ZJJ in rows[0] and case_no in rows[0] and "王代办" in rows[0] and "2026年3月23日" in rows[0]
    assert HP in rows[1] and STHJ in rows[1]
    only_zjj = supervisor.get("/supervision?department=zjj").text
    assert [light(r)[0] for r in supervision_rows(only_zjj)] == ["red"]
    api = api_login(app, "agent1").get("/api/supervision")
    assert api.status_code == 200
    assert (api.json["red"], api.json["yellow"]) == (1, 1)
    assert [(i["key"], i["level"], i["left"], i["due_date"]) for i in api.json["items"]] == [
        ("xf", "red", -2, "2026-03-23"), ("hp", "yellow", 3, "2026-03-30")]
    agent_notes = notifications(agent.get("/inbox").text)
    assert f"2026年3月25日 09:00 【红牌超期】{XF}（{ZJJ}）已超过办理时限，已提请督办 {case_no}" in agent_notes
    assert f"2026年3月18日 09:00 【黄牌预警】{XF}（{ZJJ}）办理时限即将届满，请抓紧办理 {case_no}" in agent_notes
    assert any("【红牌超期】" in n and XF in n for n in notifications(zjj.get("/inbox").text))
    warnings = [text for label, text in timeline(case_page(agent, case_no)) if label == "时限预警"]
    assert sorted(w.split("：", 1)[1] for w in warnings) == sorted([f"黄牌预警：{XF}", f"黄牌预警：{HP}", f"红牌超期：{XF}"])

    # -- the supervisor records the 督办; the item stays red until the department decides ---------------------------
    page = html_submit(supervisor, f"/tasks/{task_id_of(supervise_row)}",
                       {"supervise_method": "电话督办", "supervise_opinion": "请于两个工作日内办结", "rectify_by": "2026-03-27"})
    assert flash_of(page) == ["已办理：督办"]
    assert item_clock(page, XF)[0] == "red"
    assert inbox_rows(supervisor, case_no, "督办") == []
    # the department decides: the clock stops, late
    page = html_submit(zjj, f"/tasks/{task_id_of(inbox_row(zjj, case_no, '部门办理', XF))}",
                       {"item_decision": "准予许可", "licence_no": "武建消审〔2026〕9号"})
    assert item_clock(page, XF) == ("late", "超期办结（超2个工作日）期限2026年3月23日")
    page = supervisor.get("/supervision").text
    assert "红牌（超期） 0" in page and "黄牌（预警） 1" in page


# =============================================================================================================
# 延期: the department's specialist asks, the supervisor approves
# =============================================================================================================
def test_a_specialist_requests_an_extension_and_the_supervisor_approves_it(app):
    case_no = dispatch_case(app, at(2026, 3, 2))
    clock.set(at(2026, 3, 20))  # 14 of 15 working days used: yellow
    run_once(app.extensions["bangban"])
    zjj = html_login(app, "zb_zjj")
    task_id = task_id_of(inbox_row(zjj, case_no, "部门办理", XF))
    form_url = f"/tasks/{task_id}/actions/extension_request"
    task_page = zjj.get(f"/tasks/{task_id}").text
    assert f'href="{form_url}">申请延期</a>' in task_page
    form = zjj.get(form_url)
    assert form.status_code == 200
    assert f"申请延期 · {case_no} · 部门办理（{XF}）" in form.text
    assert 'name="extension_days"' in form.text and 'name="extension_reason"' in form.text
    before = snapshot(app, case_no)

    # -- what is refused, changing nothing -------------------------------------------------------------------------
    r = zjj.post(form_url, data={"extension_days": "5", "csrf_token": token(form.text)})
    assert_html_error(r, 422, "「延期理由」为必填项")
    r = zjj.post(form_url, data={"extension_days": "5", "extension_reason": "   ", "csrf_token": token(form.text)})
    assert r.status_code == 422
    r = zjj.post(form_url, data={"extension_days": "5", "extension_reason": EXTENSION_REASON})
    assert_html_error(r, 400, "页面已过期或来源不明")
    # another department's specialist (involved in the case through 环评) may not ask for 消防
    sthj = html_login(app, "zb_sthj")
    assert sthj.get(f"/cases/{case_no}").status_code == 200
    assert_html_error(sthj.get(form_url), 403, "您无权办理此待办")
    tok = token(sthj.get("/inbox").text)
    assert_html_error(sthj.post(form_url, data={"extension_days": "5", "extension_reason": EXTENSION_REASON,
                                                "csrf_token": tok}), 403)
    # nor from a task of their own for someone else's clock, nor may the applicant
    own = task_id_of(inbox_row(sthj, case_no, "部门办理", HP))
    assert sthj.get(f"/tasks/{own}/actions/extension_request").status_code == 200
    assert_html_error(zjj.get(f"/tasks/{own}/actions/extension_request"), 403)
    huarui = html_login(app, "huarui")
    r = huarui.get(form_url)
    assert r.status_code in (403, 404) and chinese(r.text)
    r = huarui.post(form_url, data={"extension_days": "5", "extension_reason": EXTENSION_REASON,
                                    "csrf_token": token(huarui.get("/inbox").text)})
    assert r.status_code in (403, 404) and chinese(r.text)
    jiahe = html_login(app, "jiahe")  # another unit does not even see the case
    assert_html_error(jiahe.get(form_url), 404)
    # the same through the API
    body = {"extension_days": 5, "extension_reason": EXTENSION_REASON}
    assert_json_error(api_login(app, "zb_zjj").post(f"/api/tasks/{task_id}/messages/extension_request",
                                                    json={"extension_days": 5}), 422, "「延期理由」为必填项")
    assert_json_error(api_login(app, "zb_zjj").post(f"/api/tasks/{task_id}/messages/extension_request",
                                                    json={**body, "extension_days": 0}), 422, "申请延长")
    assert_json_error(api_login(app, "zb_sthj").post(f"/api/tasks/{task_id}/messages/extension_request", json=body), 403)
    r = api_login(app, "huarui").post(f"/api/tasks/{task_id}/messages/extension_request", json=body)
    assert r.status_code in (403, 404) and chinese(r.json["message"])
    assert_json_error(api_login(app, "supervisor1").post(f"/api/tasks/{task_id}/messages/extension_request", json=body),
                      403)
    assert snapshot(app, case_no) == before

    # -- the request ----------------------------------------------------------------------------------------------
    page = follow(zjj, zjj.post(form_url, data={"extension_days": "5", "extension_reason": EXTENSION_REASON,
                                                "csrf_token": token(form.text)}))
    assert flash_of(page) == ["已提交：申请延期"]
    assert "申请延期" in [label for label, _ in timeline(page)]
    assert item_clock(page, XF)[0] == "yellow"  # nothing changes before the approval
    # one request at a time
    assert f'href="{form_url}"' not in zjj.get(f"/tasks/{task_id}").text
    assert_json_error(api_login(app, "zb_zjj").post(f"/api/tasks/{task_id}/messages/extension_request", json=body),
                      409, "本办件已有待审批的延期申请")

    # -- the supervisor approves it through the task form ------------------------------------------------------------
    supervisor = html_login(app, "supervisor1")
    approve_url = f"/tasks/{task_id_of(inbox_row(supervisor, case_no, '审批延期申请', XF))}"
    approve_page = supervisor.get(approve_url).text
    assert EXTENSION_REASON in approve_page
    r = supervisor.post(approve_url, data={"extension_decision": "批准延期", "extension_opinion": "同意",
                                           "csrf_token": token(approve_page)})
    assert_html_error(r, 422, "「批准延长（工作日）」为必填项")
    page = follow(supervisor, supervisor.post(approve_url, data={
        "extension_decision": "批准延期", "extension_days_approved": "5", "extension_opinion": "同意延期5个工作日",
        "csrf_token": token(approve_page)}))
    assert flash_of(page) == ["已办理：审批延期申请"]
    # 15 + 5 = 20 working days: due 2026-03-30; 14 used, 6 left: green again (yellow from the 16th)
    level, text = item_clock(page, XF)
    assert (level, text) == ("green", "剩余6个工作日期限2026年3月30日已延期5个工作日")
    assert any(label == "延期（已批准）" and f"{XF}，延长5个工作日，理由：{EXTENSION_REASON}" in text
               for label, text in timeline(page))
    v = api_login(app, "agent1").get(f"/api/cases/{case_no}").json["clocks"]["xf"]
    assert (v["limit_days"], v["extension_days"], v["due_date"], v["left"]) == (15, 5, "2026-03-30", 6)
    inbox = zjj.get("/inbox").text
    assert light(inbox_row(zjj, case_no, "部门办理", XF))[::2] == ("green", "剩余6个工作日")
    assert any(f"延期申请（{XF}）审批结果：批准延期" in n for n in notifications(inbox))

    # -- the old due date passes without a red light or 督办 ---------------------------------------------------------
    clock.set(at(2026, 3, 23, 17, 0))
    run_once(app.extensions["bangban"])
    assert light(inbox_row(zjj, case_no, "部门办理", XF))[::2] == ("green", "剩余5个工作日")
    clock.set(at(2026, 3, 24))  # the old red day: 16 of 20 used, yellow again
    run_once(app.extensions["bangban"])
    assert light(inbox_row(zjj, case_no, "部门办理", XF))[::2] == ("yellow", "剩余4个工作日")
    assert inbox_rows(supervisor, case_no, "督办") == []
    clock.set(at(2026, 3, 31))
    run_once(app.extensions["bangban"])
    assert light(inbox_row(zjj, case_no, "部门办理", XF))[::2] == ("red", "已超期1个工作日")
    assert len(inbox_rows(supervisor, case_no, "督办", f"{XF}（{ZJJ}）")) == 1


# =============================================================================================================
# 补正 pauses the clock
# =============================================================================================================
def test_a_correction_round_pauses_the_items_clock(app):
    case_no = dispatch_case(app, at(2026, 3, 2))
    clock.set(at(2026, 3, 5))  # 3 working days used
    sthj = html_login(app, "zb_sthj")
    page = html_submit(sthj, f"/tasks/{task_id_of(inbox_row(sthj, case_no, '部门办理', HP))}",
                       h.needs_correction("补交环境影响报告表"))
    assert item_clock(page, HP) == ("paused", "补正暂停中（已用3个工作日）原期限2026年3月30日，补正完成后顺延")
    assert item_clock(page, XF)[0] == "green"
    assert any(label == "时限暂停（补正）" and f"{HP}，原因：补交环境影响报告表" in text for label, text in timeline(page))
    huarui = html_login(app, "huarui")
    row = inbox_row(huarui, case_no, "补正材料", HP)
    assert light(row)[::2] == ("paused", "补正暂停中（已用3个工作日）")

    # three weeks later the applicant still has not answered: still paused, never yellow or red
    clock.set(at(2026, 3, 26))
    run_once(app.extensions["bangban"])
    page = case_page(huarui, case_no)
    assert item_clock(page, HP) == ("paused", "补正暂停中（已用3个工作日）原期限2026年3月30日，补正完成后顺延")
    assert item_clock(page, XF)[0] == "red"
    assert [i["key"] for i in api_login(app, "supervisor1").get("/api/supervision").json["items"]] == ["xf"]
    assert len(inbox_rows(html_login(app, "supervisor1"), case_no, "督办")) == 1  # only for 消防

    # the materials are complete: counting goes on from the next working day, 17 left
    page = html_submit(huarui, f"/tasks/{task_id_of(row)}",
                       {"supplement_description": "已补交环境影响报告表", "supplement_complete": "true"})
    level, text = item_clock(page, HP)
    assert level == "green" and text.startswith("剩余17个工作日") and "补正暂停中" not in page
    assert "时限恢复计算" in [label for label, _ in timeline(page)]
    assert light(inbox_row(sthj, case_no, "部门办理", HP))[::2] == ("green", "剩余17个工作日")


# =============================================================================================================
# The working-day calendar page
# =============================================================================================================
def upload(content: bytes, filename: str = "2027.csv") -> tuple:
    return io.BytesIO(content), filename


def test_the_supervisor_keeps_the_working_day_calendar(app):
    case_no = dispatch_case(app, at(2026, 12, 10), items=("hp",))  # due in 2027: provisional
    supervisor = html_login(app, "supervisor1")

    page = supervisor.get("/calendar?year=2026")
    assert page.status_code == 200
    assert "本年采用国务院办公厅公布的放假安排" in page.text and "尚无完整的放假安排" not in page.text
    assert "官方放假安排（2026）" in page.text and "01-01 放假（元旦）" in page.text
    assert "<strong>2026</strong>" in supervisor.get("/calendar").text  # the service's year, not the wall clock's
    page = supervisor.get("/calendar?year=2027")
    assert page.status_code == 200
    assert "本年尚无完整的放假安排" in page.text and "暂定" in page.text
    assert 'id="add-day"' in page.text and 'id="import-form"' in page.text
    state = calendar_state(app)
    assert state[2026]["official"] is True
    assert {k: state[2027][k] for k in ("official", "complete", "known", "admin_days")} == {
        "official": False, "complete": False, "known": False, "admin_days": []}

    # -- a rest day added through the form, then removed ------------------------------------------------------------
    r = supervisor.post("/calendar", data={"action": "set", "day": "2027-01-04", "kind": "rest", "name": "测试休息",
                                           "csrf_token": token(page.text)})
    assert r.status_code == 302 and r.headers["Location"] == "/calendar?year=2027"
    page = supervisor.get(r.headers["Location"]).text
    assert flash_of(page) == ["日历已更新，重新计算了 1 件办件的时限"]
    days = re.search(r'<table class="list compact" id="admin-days">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    assert re.search(r"<td>2027-01-04</td><td>休息日</td><td>测试休息</td>", days)
    assert "本年尚无完整的放假安排" in page  # one day does not make the year complete
    assert calendar_state(app)[2027]["admin_days"] == [{"day": "2027-01-04", "kind": "rest", "name": "测试休息"}]
    assert item_clock(case_page(supervisor, case_no), HP) == ("green", "剩余20个工作日（暂定）期限2027年1月8日（暂定）")
    r = supervisor.post("/calendar", data={"action": "remove", "day": "2027-01-04", "csrf_token": token(page)})
    page = follow(supervisor, r)
    assert flash_of(page) == ["日历已更新，重新计算了 1 件办件的时限"]
    assert "2027-01-04" not in page[page.index('id="admin-days"'):page.index('id="calendar-changes"')]
    assert calendar_state(app)[2027]["admin_days"] == []
    assert item_clock(case_page(supervisor, case_no), HP) == ("green", "剩余20个工作日（暂定）期限2027年1月7日（暂定）")
    # removing a day that is not set
    r = supervisor.post("/calendar", data={"action": "remove", "day": "2027-01-04", "csrf_token": token(page)})
    assert_html_error(r, 404, "该日期没有人工设置")

    # -- the year's file, uploaded ----------------------------------------------------------------------------------
    r = supervisor.post("/calendar", data={"action": "import", "year": "2027", "csrf_token": token(page),
                                           "file": upload(("\ufeff" + CALENDAR_2027).encode("utf-8"))},
                        content_type="multipart/form-data")
    assert r.status_code == 302 and r.headers["Location"] == "/calendar?year=2027"
    page = supervisor.get(r.headers["Location"]).text
    assert flash_of(page) == ["日历已更新，重新计算了 1 件办件的时限"]
    assert "本年的放假安排已由管理员录入完整（supervisor1，" in page
    assert "尚无完整的放假安排" not in page
    assert "<td>2027-02-06</td><td>调休上班</td><td>春节</td>" in page
    state = calendar_state(app)[2027]
    assert (state["complete"], state["known"], state["admin_days"]) == (True, True, CALENDAR_2027_DAYS)
    assert item_clock(case_page(supervisor, case_no), HP) == ("green", "剩余20个工作日期限2027年1月8日")
    # the year can be marked incomplete again (and back)
    r = supervisor.post("/calendar", data={"action": "complete", "year": "2027", "complete": "false",
                                           "csrf_token": token(page)})
    page = follow(supervisor, r)
    assert "本年尚无完整的放假安排" in page
    assert item_clock(case_page(supervisor, case_no), HP) == ("green", "剩余20个工作日（暂定）期限2027年1月8日（暂定）")
    follow(supervisor, supervisor.post("/calendar", data={"action": "complete", "year": "2027", "complete": "true",
                                                          "csrf_token": token(page)}))
    assert calendar_state(app)[2027]["complete"] is True
    # a post without the page's token
    assert_html_error(supervisor.post("/calendar", data={"action": "set", "day": "2027-03-01", "kind": "rest"}), 400,
                      "页面已过期或来源不明")
    assert calendar_state(app)[2027]["admin_days"] == CALENDAR_2027_DAYS


BAD_FILES = {
    "invalid-date": ("date,kind,name\n2027-01-01,休息日,元旦\n2027-02-30,休息日,春节\n2027-13-01,rest\n".encode(),
                     ["日历文件有 2 处问题", "第 3 行：日期 2027-02-30 无效", "第 4 行：日期 2027-13-01 无效"]),
    "unknown-kind": ("date,kind,name\n2027-01-01,休息日,元旦\n\n2027-02-08,放假,春节\n".encode(),
                     ["日历文件有 1 处问题", "第 4 行：类型 放假 无法识别"]),
    "several": ("2027-01-01,休息日,元旦\n2027-02-08,休息日,春节,多余\n2027-02-09,工作日\n2027-02-09,休息日\n".encode(),
                ["第 1 行：缺少表头“日期,类型,名称”", "第 2 行：应有 2 或 3 列",
                 "第 4 行：日期 2027-02-09 与第 3 行重复且类型不同"]),
    "non-utf8": ("date,kind,name\n2027-01-01,休息日,元旦\n".encode("gbk"), ["文件不是 UTF-8 编码的文本"]),
    "empty": (b"", []),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_a_bad_calendar_file_is_refused_with_its_line_numbers_and_changes_nothing(app, name):
    # (empty: engine/workcal.py parse_calendar_file("") returns {} and engine/services.py import_calendar() reports
    # success, "重新计算了 N 件", recomputing from the wall clock's date.today(); an empty file must be refused)
    content, messages = BAD_FILES[name]
    case_no = dispatch_case(app, at(2026, 12, 10), items=("hp",))
    supervisor = html_login(app, "supervisor1")
    page = supervisor.get("/calendar?year=2027").text
    before, before_case = calendar_state(app), snapshot(app, case_no)

    r = supervisor.post("/calendar", data={"action": "import", "year": "2027", "csrf_token": token(page),
                                           "file": upload(content)}, content_type="multipart/form-data")
    assert_html_error(r, 422, *messages)
    assert 'role="alert"' in r.text and "<h1>工作日历" in r.text  # the calendar page again, with the problems
    for m in messages:
        if m.startswith("第 "):
            assert f"<li>{m}" in r.text, m  # each problem on its own line
    assert calendar_state(app) == before and snapshot(app, case_no) == before_case
    if name != "non-utf8":
        # the same pasted into the text field, and through the API
        r = supervisor.post("/calendar", data={"action": "import", "year": "2027", "csrf_token": token(page),
                                               "text": content.decode()})
        assert_html_error(r, 422, *messages)
        r = api_login(app, "supervisor1").post("/api/calendar/import", json={"text": content.decode()})
        assert_json_error(r, 422, *messages)
        if messages:
            assert [p for p in r.json["details"] if p.startswith("第 ")] == [m for m in r.json["details"]]
    else:
        r = api_login(app, "supervisor1").post("/api/calendar/import", data=content, content_type="text/csv")
        assert 400 <= r.status_code < 500 and r.is_json and chinese(r.json["message"]), (r.status_code, r.text)
    assert calendar_state(app) == before and snapshot(app, case_no) == before_case


def test_an_import_with_neither_file_nor_text_is_refused(app):
    # the form as a browser sends it when 导入 is clicked with no file chosen and nothing pasted: web/views.py
    # calendar_page() imports "" and engine/services.py import_calendar() accepts it as a successful import
    clock.set(at(2026, 12, 10))
    supervisor = html_login(app, "supervisor1")
    page = supervisor.get("/calendar?year=2027").text
    before = calendar_state(app)
    r = supervisor.post("/calendar", data={"action": "import", "year": "2027", "csrf_token": token(page),
                                           "file": upload(b"", ""), "text": ""}, content_type="multipart/form-data")
    assert_html_error(r, 422)
    assert calendar_state(app) == before


def test_the_calendar_through_the_api(app):
    case_no = dispatch_case(app, at(2026, 12, 10), items=("hp",))
    c = api_login(app, "supervisor1")
    r = c.get("/api/calendar/2026")
    assert r.status_code == 200 and r.json["official"] is True and r.json["year"] == 2026
    assert {"day": "2026-01-01", "kind": "rest", "name": "元旦"} in r.json["official_days"]
    r = c.get("/api/calendar/2027")
    assert (r.json["official"], r.json["complete"], r.json["known"]) == (False, False, False)
    assert_json_error(c.get("/api/calendar/1999"), 422, "年份应在 2000 到 2100 之间")

    r = c.put("/api/calendar/days/2027-01-04", json={"kind": "rest", "name": "测试休息"})
    assert r.status_code == 200 and r.json == {"recomputed_cases": 1}
    assert c.get(f"/api/cases/{case_no}").json["clocks"]["hp"]["due_date"] == "2027-01-08"
    before, before_case = calendar_state(app), snapshot(app, case_no)
    assert_json_error(c.put("/api/calendar/days/2027-01-05", json={"kind": "holiday"}), 422, "类型应为休息日或工作日")
    assert_json_error(c.put("/api/calendar/days/2027-02-30", json={"kind": "rest"}), 422, "日期应为 YYYY-MM-DD 格式")
    assert_json_error(c.put("/api/calendar/days/2027-01-05", data="kind=rest"), 422, "请求体应为 JSON")
    assert_json_error(c.delete("/api/calendar/days/2027-01-05"), 404, "该日期没有人工设置")
    assert calendar_state(app) == before and snapshot(app, case_no) == before_case
    r = c.delete("/api/calendar/days/2027-01-04")
    assert r.status_code == 200 and r.json == {"recomputed_cases": 1}
    assert c.get("/api/calendar/2027").json["admin_days"] == []
    assert c.get(f"/api/cases/{case_no}").json["clocks"]["hp"]["due_date"] == "2027-01-07"

    r = c.post("/api/calendar/import", json={"text": CALENDAR_2027})
    assert r.status_code == 200 and r.json == {"recomputed_cases": 1, "years": [2027]}
    y = c.get("/api/calendar/2027").json
    assert (y["complete"], y["known"], y["admin_days"], y["updated_by"]) == (True, True, CALENDAR_2027_DAYS, "supervisor1")
    hp = c.get(f"/api/cases/{case_no}").json["clocks"]["hp"]
    assert (hp["due_date"], hp["provisional"], hp["text"]) == ("2027-01-08", False, "剩余20个工作日")
    # a raw CSV body works as well
    r = c.post("/api/calendar/import", data=CALENDAR_2027.replace("国庆节", "国庆"), content_type="text/csv")
    assert r.status_code == 200 and r.json["years"] == [2027]
    assert c.get("/api/calendar/2027").json["admin_days"][-1] == {"day": "2027-10-01", "kind": "rest", "name": "国庆"}


# =============================================================================================================
# Who may see and change the calendar and the supervision list
# =============================================================================================================
def test_an_agent_sees_the_calendar_but_may_not_change_it(app):
    case_no = dispatch_case(app, at(2026, 12, 10), items=("hp",))
    before, before_case = calendar_state(app), snapshot(app, case_no)
    agent = html_login(app, "agent1")
    page = agent.get("/calendar?year=2027")
    assert page.status_code == 200
    assert "本年尚无完整的放假安排" in page.text
    assert 'id="add-day"' not in page.text and 'id="import-form"' not in page.text and 'name="action"' not in page.text
    assert agent.get("/supervision").status_code == 200
    tok = token(page.text)
    for data in ({"action": "set", "day": "2027-01-04", "kind": "rest", "name": "代办员添加"},
                 {"action": "remove", "day": "2027-01-04"},
                 {"action": "complete", "year": "2027", "complete": "true"},
                 {"action": "import", "year": "2027", "text": CALENDAR_2027}):
        assert_html_error(agent.post("/calendar", data={**data, "csrf_token": tok}), 403, "您的角色无权使用此功能")
    r = agent.post("/calendar", data={"action": "import", "year": "2027", "csrf_token": tok,
                                      "file": upload(CALENDAR_2027.encode())}, content_type="multipart/form-data")
    assert_html_error(r, 403, "您的角色无权使用此功能")
    api = api_login(app, "agent1")
    assert api.get("/api/calendar/2027").status_code == 200
    assert_json_error(api.put("/api/calendar/days/2027-01-04", json={"kind": "rest"}), 403, "您的角色无权使用此功能")
    assert_json_error(api.delete("/api/calendar/days/2027-01-04"), 403)
    assert_json_error(api.post("/api/calendar/import", json={"text": CALENDAR_2027}), 403)
    assert calendar_state(app) == before and snapshot(app, case_no) == before_case


@pytest.mark.parametrize("username", ["huarui", "zb_sthj"])
def test_applicants_and_specialists_have_no_calendar_and_no_supervision(app, username):
    case_no = dispatch_case(app, at(2026, 12, 10), items=("hp",))
    before, before_case = calendar_state(app), snapshot(app, case_no)
    c = html_login(app, username)
    inbox = c.get("/inbox").text
    assert "时限督办" not in inbox and "工作日历" not in inbox
    for path in ("/calendar", "/calendar?year=2027", "/supervision", "/supervision?department=sthj"):
        assert_html_error(c.get(path), 403, "您的角色无权使用此功能")
    tok = token(inbox)
    for data in ({"action": "set", "day": "2027-01-04", "kind": "rest"}, {"action": "remove", "day": "2027-01-04"},
                 {"action": "complete", "year": "2027", "complete": "true"},
                 {"action": "import", "year": "2027", "text": CALENDAR_2027}):
        assert_html_error(c.post("/calendar", data={**data, "csrf_token": tok}), 403)
    api = api_login(app, username)
    for path in ("/api/calendar/2026", "/api/calendar/2027", "/api/supervision"):
        assert_json_error(api.get(path), 403, "您的角色无权使用此功能")
    assert_json_error(api.put("/api/calendar/days/2027-01-04", json={"kind": "rest"}), 403)
    assert_json_error(api.delete("/api/calendar/days/2027-01-04"), 403)
    assert_json_error(api.post("/api/calendar/import", json={"text": CALENDAR_2027}), 403)
    assert calendar_state(app) == before and snapshot(app, case_no) == before_case


def test_a_refused_calendar_change_is_refused_whatever_it_contains(app):
    # A user without the calendar permission gets 403 for any change, not a validation message about input they
    # may not send at all: web/views.py calendar_page() parses the date (parse_date), decodes the upload and refuses
    # an unknown action (all 422) before the engine checks the permission; web/api.py calendar_set_day() and
    # calendar_delete_day() likewise parse the date (_date) first.
    clock.set(at(2026, 12, 10))
    before = calendar_state(app)
    agent = html_login(app, "agent1")
    tok = token(agent.get("/calendar?year=2027").text)
    for data in ({"action": "set", "day": "2027-02-30", "kind": "rest"}, {"action": "remove", "day": "明天"},
                 {"action": "import", "year": "2027", "text": "2027-02-30,放假"}, {"action": "nonsense"}):
        assert_html_error(agent.post("/calendar", data={**data, "csrf_token": tok}), 403)
    r = agent.post("/calendar", data={"action": "import", "year": "2027", "csrf_token": tok,
                                      "file": upload("date,kind\n2027-01-01,休息日\n".encode("gbk"))},
                   content_type="multipart/form-data")
    assert_html_error(r, 403)
    api = api_login(app, "huarui")
    assert_json_error(api.put("/api/calendar/days/2027-02-30", json={"kind": "rest"}), 403)
    assert_json_error(api.post("/api/calendar/import", json={"text": "2027-02-30,放假"}), 403)
    assert calendar_state(app) == before


# =============================================================================================================
# The demo clock
# =============================================================================================================
def test_the_demo_clock_exists_only_in_demo_mode(app):
    case_no = dispatch_case(app, at(2026, 3, 2))
    before = snapshot(app, case_no)
    supervisor = html_login(app, "supervisor1")
    page = supervisor.get("/supervision").text
    assert "演示时钟" not in page
    assert_html_error(supervisor.post("/demo/clock", data={"days": "30", "csrf_token": token(page)}), 404, "页面不存在")
    assert "现在 2026年3月2日 09:00" in supervisor.get("/supervision").text
    assert snapshot(app, case_no) == before


def test_the_demo_clock_moves_time_and_fires_what_fell_due(demo_app):
    app = demo_app
    case_no = dispatch_case(app, at(2026, 3, 2))
    before = snapshot(app, case_no)
    # the applicant may not move it
    huarui = html_login(app, "huarui")
    assert_html_error(huarui.post("/demo/clock", data={"days": "30", "csrf_token": token(huarui.get("/inbox").text)}),
                      403)
    supervisor = html_login(app, "supervisor1")
    page = supervisor.get("/supervision").text
    assert "演示时钟" in page and "现在 2026年3月2日 09:00" in page
    assert snapshot(app, case_no) == before

    r = supervisor.post("/demo/clock", data={"days": "30", "csrf_token": token(page)})
    assert r.status_code == 302 and r.headers["Location"] == "/supervision", (r.status_code, r.text[:1000])
    page = supervisor.get("/supervision").text
    assert flash_of(page) == ["演示时钟已前进 30 天"]
    assert "现在 2026年4月1日 09:00" in page
    assert "红牌（超期） 2" in page  # 消防 due 03-23, 环评 due 03-30
    assert [light(r)[0] for r in supervision_rows(page)] == ["red", "red"]
    assert item_clock(case_page(supervisor, case_no), XF)[0] == "red"
    assert len(inbox_rows(supervisor, case_no, "督办", f"{XF}（{ZJJ}）")) == 1
    assert len(inbox_rows(supervisor, case_no, "督办", f"{HP}（{STHJ}）")) == 1


# =============================================================================================================
# A due date in a year not yet entered is provisional
# =============================================================================================================
def test_a_due_date_in_a_year_not_yet_entered_is_provisional_until_it_is_imported(app):
    case_no = dispatch_case(app, at(2026, 12, 10))
    agent = html_login(app, "agent1")
    page = case_page(agent, case_no)
    assert item_clock(page, HP) == ("green", "剩余20个工作日（暂定）期限2027年1月7日（暂定）")
    assert item_clock(page, XF) == ("green", "剩余15个工作日期限2026年12月31日")
    assert case_due(page) == ("green", "2027年1月7日（暂定）")
    sthj = html_login(app, "zb_sthj")
    level, tooltip, text = light(inbox_row(sthj, case_no, "部门办理", HP))
    assert (level, text) == ("green", "剩余20个工作日（暂定）")
    assert api_login(app, "agent1").get(f"/api/cases/{case_no}").json["clocks"]["hp"]["provisional"] is True

    supervisor = html_login(app, "supervisor1")
    page = supervisor.get("/calendar?year=2027").text
    r = supervisor.post("/calendar", data={"action": "import", "year": "2027", "csrf_token": token(page),
                                           "file": upload(CALENDAR_2027.encode())}, content_type="multipart/form-data")
    assert flash_of(follow(supervisor, r)) == ["日历已更新，重新计算了 1 件办件的时限"]

    page = case_page(agent, case_no)
    assert item_clock(page, HP) == ("green", "剩余20个工作日期限2027年1月8日")
    assert case_due(page) == ("green", "2027年1月8日")
    assert "暂定" not in page
    assert light(inbox_row(sthj, case_no, "部门办理", HP))[::2] == ("green", "剩余20个工作日")
    hp = api_login(app, "agent1").get(f"/api/cases/{case_no}").json["clocks"]["hp"]
    assert (hp["provisional"], hp["due_date"]) == (False, "2027-01-08")
    # and the timers follow the new date: yellow from the 16th working day (2027-01-04 now), red after 01-08
    clock.set(at(2026, 12, 31, 23, 0))
    run_once(app.extensions["bangban"])
    assert light(inbox_row(sthj, case_no, "部门办理", HP))[::2] == ("green", "剩余5个工作日")
    clock.set(at(2027, 1, 4))
    run_once(app.extensions["bangban"])
    assert light(inbox_row(sthj, case_no, "部门办理", HP))[::2] == ("yellow", "剩余4个工作日")
    clock.set(at(2027, 1, 8, 18, 0))
    run_once(app.extensions["bangban"])
    assert light(inbox_row(sthj, case_no, "部门办理", HP))[0] == "yellow"
    assert inbox_rows(supervisor, case_no, "督办", f"{HP}（{STHJ}）") == []
    clock.set(at(2027, 1, 11))
    run_once(app.extensions["bangban"])
    assert light(inbox_row(sthj, case_no, "部门办理", HP))[::2] == ("red", "已超期1个工作日")
    assert len(inbox_rows(supervisor, case_no, "督办", f"{HP}（{STHJ}）")) == 1


def test_control_characters_and_long_names_are_refused_before_the_database(app):
    """What PostgreSQL cannot store (NUL) or a column cannot hold is a Chinese 422, never a 500 (found by the fuzzer)."""
    sup = api_login(app, "supervisor1")
    before = sup.get("/api/calendar/2034").json["admin_days"]
    assert_json_error(sup.put("/api/calendar/days/2034-01-06", json={"kind": "rest", "name": "元\u0000旦"}), 422,
                      "控制字符")
    assert_json_error(sup.put("/api/calendar/days/2034-01-06", json={"kind": "rest", "name": "元" * 51}), 422,
                      "不能超过 50 个字")
    bad = "date,kind,name\n2034-01-02,rest,元\u0000旦\n2034-01-03,rest," + "元" * 51 + "\n"
    body = assert_json_error(sup.post("/api/calendar/import", json={"text": bad}), 422)
    assert any("第 2 行" in d and "控制字符" in d for d in body["details"])
    assert any("第 3 行" in d and "50" in d for d in body["details"])
    assert sup.get("/api/calendar/2034").json["admin_days"] == before
    assert sup.get("/api/supervision?department=%00").status_code == 200
    owner = api_login(app, "owner1")
    files = {"catalogue.json": owner.get("/api/processes/versions/1/files").json["files"]["catalogue.json"] + "\n"}
    assert_json_error(owner.post("/api/processes/publish", json={"files": files, "comment": "发布\u0000说明"}), 422,
                      "控制字符")
