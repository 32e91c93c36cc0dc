"""HTTP tests of the Flask layer: whole cases through the HTML pages and the JSON API, and everything that must be refused.

Every request goes through the Flask test client; the engine is only reached through HTTP. Refused requests are
checked three ways: the status code, a Chinese message in the body, and an unchanged case (timeline, open tasks,
documents and status read back through ``GET /api/cases/<no>``). No response body may contain a Python traceback.
"""
from __future__ import annotations

import json
import re

import pytest
from flask.testing import FlaskClient

from engine.clock import service_today
from engine.demo import SAMPLE_APPLICATION
from tests import helpers as h
from tests.webclient import PASSWORD, api_login, assert_json_error, chinese, html_login, token
from web import create_app

PROCESS = "bangban_case"

APPLICATION = SAMPLE_APPLICATION
ITEM_NAMES = {"hp": "环评", "xf": "消防（设计审查/验收）", "gd": "供电"}
DEPT_NAMES = {"sthj": "焦作市生态环境局武陟分局", "zjj": "县住房和城乡建设局", "gdgs": "国网武陟县供电公司"}

ACCEPT = {"review_decision": "受理", "authorization_checked": True}
COMMISSION = {"commission_signed": True, "materials_received": "营业执照、项目备案证明等", "service_mode_confirmed": "现场服务"}
DELIVER = {"delivery_method": "邮寄", "tracking_no": "SF123456789", "delivery_date": "2026-03-02",
           "work_record": "全程代办完成，批文已邮寄送达", "filed": True}
SLIP = {"termination_reason": "出现不可抗力导致项目不具备办理条件", "termination_date": "2026-03-10",
        "materials_returned": "申请材料原件全部退还", "both_signed": True}



# ---- the app and its clients -------------------------------------------------------------------------------
class RecordingClient(FlaskClient):
    """A test client that keeps every response body, so the module can check none shows a traceback."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        self.application.extensions["test_responses"].append(
            (response.request.method, response.request.path, response.status_code, response.get_data(as_text=True)))
        return response


@pytest.fixture
def app(svc):
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    app.test_client_class = RecordingClient
    app.extensions["test_responses"] = []
    yield app
    leaked = [(m, p, s) for m, p, s, body in app.extensions["test_responses"] if "Traceback" in body]
    assert not leaked, f"这些响应的正文中出现了 Python Traceback：{leaked}"












def assert_html_error(r, status: int, *fragments: str) -> None:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.mimetype == "text/html"
    assert chinese(r.text)
    for f in fragments:
        assert f in r.text, (f, r.text[:2000])


# ---- HTML helpers ------------------------------------------------------------------------------------------
def inbox_task(c: FlaskClient, case_no: str, name: str, title: str | None = None) -> str:
    """The task id of the one inbox row of this case with this task name (and item/department title)."""
    page = c.get("/inbox")
    assert page.status_code == 200
    ids = []
    for row in re.findall(r"<tr(?: [^>]*)?>(.*?)</tr>", page.text, re.S):
        if f">{case_no}<" in row and f"<strong>{name}</strong>" in row and (title is None or title in row):
            ids.append(re.search(r'href="/tasks/([^"]+)"', row).group(1))
    assert len(ids) == 1, f"待办中应恰有一条「{name}」（{title}），页面：{page.text[:3000]}"
    return ids[0]


def html_form(data: dict) -> dict:
    """What a browser posts: booleans as ticked checkboxes, lists as repeated fields."""
    out = {}
    for k, v in data.items():
        if v is True:
            out[k] = "true"
        elif v is False or v is None:
            continue
        else:
            out[k] = v
    return out


def html_task(c: FlaskClient, task_id: str, data: dict, expect_fields: tuple = ()) -> str:
    """Open a task page, fill its form, submit it; returns the flash shown on the case page after the redirect."""
    page = c.get(f"/tasks/{task_id}")
    assert page.status_code == 200, page.text[:500]
    for f in expect_fields or data:
        assert f'name="{f}"' in page.text, f"任务表单中没有字段 {f}"
    r = c.post(f"/tasks/{task_id}", data={**html_form(data), "csrf_token": token(page.text)})
    assert r.status_code == 302, r.text[:3000]
    case_page = c.get(r.headers["Location"])
    assert case_page.status_code == 200
    flash = re.search(r'<div class="flash no-print" role="status">([^<]+)</div>', case_page.text)
    assert flash, "提交后应提示办理结果"
    return flash.group(1)


def item_rows(html: str) -> list[list[str]]:
    """The cells of the 服务事项 table of a case page."""
    table = re.search(r'<table class="list" id="items">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [[cell.strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)]


# ---- API helpers -------------------------------------------------------------------------------------------
def api_task(c: FlaskClient, case_no: str, name: str, title: str | None = None) -> str:
    r = c.get("/api/tasks")
    assert r.status_code == 200
    found = [t for t in r.json["tasks"] if t["case_no"] == case_no and t["name"] == name
             and (title is None or t["title"] == title)]
    assert len(found) == 1, (name, title, [(t["name"], t["title"]) for t in r.json["tasks"]])
    return found[0]["task_id"]


def api_complete(c: FlaskClient, case_no: str, name: str, data: dict, title: str | None = None) -> dict:
    task_id = api_task(c, case_no, name, title)
    form = c.get(f"/api/tasks/{task_id}")
    assert form.status_code == 200 and form.json["task"]["name"] == name
    r = c.post(f"/api/tasks/{task_id}/complete", json=data)
    assert r.status_code == 200, r.text
    assert r.json["case_no"] == case_no
    return r.json


def api_start(c: FlaskClient, **overrides) -> str:
    r = c.post("/api/cases", json={"process": PROCESS, "data": {**APPLICATION, **overrides}})
    assert r.status_code == 201, r.text
    assert r.json["status"] == "active" and [t["name"] for t in r.json["tasks"]] == ["受理审核"]
    return r.json["case_no"]


def snapshot(app, case_no: str) -> dict:
    """What a refused request must leave as it was, read by the supervisor through the API."""
    r = api_login(app, "supervisor1").get(f"/api/cases/{case_no}")
    assert r.status_code == 200
    v = r.json
    return {"status": v["case"]["status"], "stage": v["case"]["stage"], "timeline": len(v["timeline"]),
            "last_event": v["timeline"][-1]["hash"], "documents": [d["number"] for d in v["documents"]],
            "open_tasks": sorted(t["task_id"] for t in v["open_tasks"]), "items": [i["state"] for i in v["items"]]}


def case_total(app) -> int:
    return api_login(app, "supervisor1").get("/api/cases").json["total"]


@pytest.fixture
def dispatched(app):
    """A case of huarui with its three items dispatched: 部门办理 is open at 生态环境, 住建 and 供电."""
    huarui = api_login(app, "huarui")
    case_no = api_start(huarui)
    agent = api_login(app, "agent1")
    api_complete(agent, case_no, "受理审核", ACCEPT)
    api_complete(agent, case_no, "材料交接并签订委托书", COMMISSION)
    api_complete(agent, case_no, "分派服务事项", {"service_items": ["hp", "xf", "gd"]})
    return case_no


# =============================================================================================================
# A whole ordinary case through the HTML pages
# =============================================================================================================
def test_whole_case_through_the_pages(app):
    # -- the applicant fills the application form ----------------------------------------------------------
    huarui = html_login(app, "huarui")
    form = huarui.get("/cases/new")
    assert form.status_code == 200
    assert "帮办代办服务申请表" in form.text
    assert 'value="武陟县华瑞食品有限公司"' in form.text  # the unit's details are filled in for the applicant
    for code in ("hp", "xf", "gd"):
        assert f'name="service_items" value="{code}"' in form.text
    data = {**html_form(APPLICATION), "total_investment": "5000", "project_code": "2026-410823-14-03-000001",
            "csrf_token": token(form.text)}
    r = huarui.post("/cases/new", data=data)
    assert r.status_code == 302, r.text[:3000]
    case_url = r.headers["Location"]
    case_no = case_url.rsplit("/", 1)[1]
    assert re.fullmatch(r"410823\d{8}\d{4}", case_no)
    page = huarui.get(case_url)
    assert f"申请已提交，办件编号 {case_no}" in page.text
    assert 'id="case-status">办理中<' in page.text
    assert "受理审核" in page.text

    # -- the agent accepts, signs the commission, dispatches the three items ------------------------------------
    agent = html_login(app, "agent1")
    flash = html_task(agent, inbox_task(agent, case_no, "受理审核"), ACCEPT)
    assert flash == "已办理：受理审核"
    flash = html_task(agent, inbox_task(agent, case_no, "材料交接并签订委托书"), COMMISSION)
    assert re.fullmatch(r"已办理：材料交接并签订委托书，已出具委托书（武帮代委〔\d{4}〕\d{4}号）", flash)
    html_task(agent, inbox_task(agent, case_no, "分派服务事项"), {"service_items": ["hp", "xf", "gd"]})
    page = agent.get(case_url)
    assert page.text.count("部门办理中") == 3

    # -- three specialists of three departments; 环评 needs a 补正 round by the applicant -----------------------
    sthj = html_login(app, "zb_sthj")
    inbox = sthj.get("/inbox").text
    assert ITEM_NAMES["hp"] in inbox and ITEM_NAMES["xf"] not in inbox and ITEM_NAMES["gd"] not in inbox
    html_task(sthj, inbox_task(sthj, case_no, "部门办理", "环评"),
              h.needs_correction("补交环境影响报告表及专家评审意见"))
    html_task(huarui, inbox_task(huarui, case_no, "补正材料", "环评"),
              {"supplement_description": "已补交环境影响报告表及专家评审意见", "supplement_complete": True})
    html_task(sthj, inbox_task(sthj, case_no, "部门办理", "环评"),
              {"item_decision": "准予许可", "licence_no": "武环审〔2026〕1号"})
    zjj = html_login(app, "zb_zjj")
    html_task(zjj, inbox_task(zjj, case_no, "部门办理", ITEM_NAMES["xf"]),
              {"item_decision": "准予许可", "licence_no": "武建消审〔2026〕7号"})
    gdgs = html_login(app, "zb_gdgs")
    html_task(gdgs, inbox_task(gdgs, case_no, "部门办理", "供电"),
              {"item_decision": "不予许可", "refusal_reason": "该区域变电容量不足，需待扩容后再行申请"})
    page = agent.get(case_url)
    for shown in ("武环审〔2026〕1号", "武建消审〔2026〕7号", "该区域变电容量不足"):  # in the timeline
        assert shown in page.text

    # -- the agent collects and delivers by post -------------------------------------------------------------------
    html_task(agent, inbox_task(agent, case_no, "汇总办理结果"), {"results_collected": True})
    flash = html_task(agent, inbox_task(agent, case_no, "统一送达"), DELIVER)
    assert "已出具办结单（武帮代结〔" in flash

    # -- the applicant signs the receipt and rates; the window rates each department --------------------------------
    html_task(huarui, inbox_task(huarui, case_no, "签收办结单"), {"results_received": True})
    flash = html_task(huarui, inbox_task(huarui, case_no, "评价代办服务"), {"rating": "非常满意"})
    assert "已出具评价表" in flash
    window = html_login(app, "window1")
    for dept in ("sthj", "zjj", "gdgs"):
        html_task(window, inbox_task(window, case_no, "评价部门业务专办窗口", DEPT_NAMES[dept]),
                  {"rating": "满意", "comments": "办理及时"})
    assert "暂无待办事项" in window.get("/inbox").text

    # -- the case page: 已办结, every stage done, documents printable -------------------------------------------------
    for c in (huarui, agent, window):
        page = c.get(case_url)
        assert page.status_code == 200
        assert 'id="case-status">已办结<' in page.text
        assert re.findall(r'class="stage stage-(\w+)"', page.text) == ["done"] * 5
        assert 'id="open-tasks"' not in page.text
    assert item_rows(page.text) == [
        ["环评", DEPT_NAMES["sthj"], "20", "准予许可", "武环审〔2026〕1号"],
        ["消防（设计审查/验收）", DEPT_NAMES["zjj"], "15", "准予许可", "武建消审〔2026〕7号"],
        ["供电", DEPT_NAMES["gdgs"], "15", "不予许可", "该区域变电容量不足，需待扩容后再行申请"]]
    # each item's statutory clock stopped when its department decided, within the limit
    assert len(re.findall(r'class="light light-done"', page.text)) == 3
    docs = re.findall(rf'href="/cases/{case_no}/documents/(\d+)" target="_blank">(\S+) (\S+)</a>', page.text)
    # the 补正 round of 环评 issued its 补正告知书 (BPMN 部门办理: document_when item_decision == '需要补正')
    assert [kind for _, kind, _ in docs] == ["委托书", "补正告知书", "办结单", "评价表", "评价表", "评价表", "评价表"]
    for doc_id, kind, number in docs:
        for c in (huarui, agent):
            r = c.get(f"/cases/{case_no}/documents/{doc_id}")
            assert r.status_code == 200
            assert number in r.text and kind in r.text
            if kind == "办结单":       # 附件4: both copies, the 送达日期 as 年月日
                flat = re.sub(r"<[^>]+>|\s+", "", r.text)
                assert "第二联" in r.text and flat.count("已于2026年3月2日完成委托帮办代办事项") == 2
            if kind == "补正告知书":
                assert "环评" in r.text and "一次性告知" in r.text
    # 附件6 as printed: who is rated, the completion date (the delivery), the question, the full prompt, and the
    # logged-in rater (never typed text)
    sheets = [huarui.get(f"/cases/{case_no}/documents/{doc_id}").text for doc_id, kind, _n in docs if kind == "评价表"]
    for sheet, rated, rater in zip(sheets, ["王代办", *(DEPT_NAMES[d] for d in ("sthj", "zjj", "gdgs"))],
                                   ["张经办（华瑞食品）（武陟县华瑞食品有限公司）"] + ["孙窗口"] * 3, strict=True):
        text = re.sub(r"<[^>]+>|\s+", "", sheet)
        assert "已于2026年3月2日完成帮办代办服务工作，请对帮办代办服务进行综合评价：" in text
        assert f"被评价对象：{rated}（" in text
        assert "为进一步提升我们的服务质量，请您留下宝贵的意见和建议：" in text
        assert f"项目评价人：{rater}" in text
    # 附件6 prints each level with its box after it: 非常满意☑满意□不满意□非常不满意□
    assert "非常满意☑满意□不满意□非常不满意□" in re.sub(r"<[^>]+>|\s+", "", sheets[0]) and "代办" in sheets[0]
    r = huarui.get(f"/cases/{case_no}/application")
    assert r.status_code == 200
    for shown in ("帮办代办服务申请表", case_no, "年产万吨食品项目", "环评", "消防（设计审查/验收）", "供电", "5000"):
        assert shown in r.text
    # the case is found in the search by its number
    assert case_no in huarui.get(f"/cases?q={case_no}").text


# =============================================================================================================
# The same through the JSON API, and an agent's decision to terminate a second case
# =============================================================================================================
def test_whole_case_through_the_api(app):
    huarui = api_login(app, "huarui")
    assert huarui.get("/api/me").json["roles"] == ["applicant"]
    form = huarui.get(f"/api/processes/{PROCESS}/start-form")
    assert form.status_code == 200 and form.json["defaults"]["unit_name"] == "武陟县华瑞食品有限公司"
    case_no = api_start(huarui)

    agent = api_login(app, "agent1")
    api_complete(agent, case_no, "受理审核", ACCEPT)
    result = api_complete(agent, case_no, "材料交接并签订委托书", COMMISSION)
    assert result["document"]["kind"] == "委托书"
    api_complete(agent, case_no, "分派服务事项", {"service_items": ["hp", "xf", "gd"], "dispatch_note": "要件齐全"})

    sthj, zjj, gdgs = (api_login(app, u) for u in ("zb_sthj", "zb_zjj", "zb_gdgs"))
    api_complete(sthj, case_no, "部门办理", h.needs_correction("补交环评报告"), "环评")
    api_complete(huarui, case_no, "补正材料", {"supplement_description": "已补交环评报告", "supplement_complete": True}, "环评")
    api_complete(sthj, case_no, "部门办理", {"item_decision": "准予许可", "licence_no": "武环审〔2026〕2号"}, "环评")
    api_complete(zjj, case_no, "部门办理", {"item_decision": "准予许可", "licence_no": "XF-2026-001"}, ITEM_NAMES["xf"])
    api_complete(gdgs, case_no, "部门办理", {"item_decision": "准予许可", "licence_no": "GD-2026-001"}, "供电")

    api_complete(agent, case_no, "汇总办理结果", {"results_collected": True})
    result = api_complete(agent, case_no, "统一送达", DELIVER)
    assert result["document"]["kind"] == "办结单"
    slip = agent.get(f"/api/cases/{case_no}/documents/{result['document']['id']}")
    assert slip.status_code == 200 and slip.json["data"]["form"]["tracking_no"] == "SF123456789"
    api_complete(huarui, case_no, "签收办结单", {"results_received": True})
    signed = huarui.get(f"/api/cases/{case_no}").json      # 办结 at signing, the rating still open
    assert signed["case"]["status_name"] == "已办结"
    assert [t["summary"] for t in signed["timeline"] if t["type"] == "status_changed"] == ["办理中 → 已办结"]
    assert "评价代办服务" in [t["name"] for t in signed["open_tasks"]]
    api_complete(huarui, case_no, "评价代办服务", {"rating": "满意"})
    window = api_login(app, "window1")
    for dept in DEPT_NAMES.values():
        api_complete(window, case_no, "评价部门业务专办窗口", {"rating": "非常满意"}, dept)

    view = huarui.get(f"/api/cases/{case_no}")
    assert view.status_code == 200
    v = view.json
    assert (v["case"]["status"], v["case"]["status_name"]) == ("completed", "已办结")
    assert [s["state"] for s in v["stages"]] == ["done"] * 5
    assert v["open_tasks"] == [] and v["actions"] == []
    assert [d["kind"] for d in v["documents"]] == ["委托书", "补正告知书", "办结单", "评价表", "评价表", "评价表", "评价表"]
    assert {i["code"]: (i["state"], i["licence_no"]) for i in v["items"]} == {
        "hp": ("准予许可", "武环审〔2026〕2号"), "xf": ("准予许可", "XF-2026-001"), "gd": ("准予许可", "GD-2026-001")}
    assert v["timeline"][0]["label"] == "提交申请" and [t["summary"] for t in v["timeline"]
                                                       if t["type"] == "status_changed"] == ["办理中 → 已办结"]
    assert case_no in [c["case_no"] for c in huarui.get("/api/cases").json["cases"]]
    assert huarui.post("/api/logout").json == {"ok": True}
    assert_json_error(huarui.get(f"/api/cases/{case_no}"), 401, "请先登录")

    # -- a second case: the lead agent decides to terminate it ------------------------------------------------------
    second = api_start(api_login(app, "huarui"), project_name="年产五千吨饮料项目", service_items=["hp"])
    api_complete(agent, second, "受理审核", ACCEPT)
    api_complete(agent, second, "材料交接并签订委托书", COMMISSION)
    assert [a["key"] for a in agent.get(f"/api/cases/{second}").json["actions"]] == ["termination"]
    # only the case's own agent may decide; another agent is refused and nothing changes
    before = snapshot(app, second)
    agent2 = api_login(app, "agent2")
    assert agent2.get(f"/api/cases/{second}").json["actions"] == []
    assert_json_error(agent2.post(f"/api/cases/{second}/messages/termination",
                                  json={"reason": "出现不可抗力导致项目不具备办理条件", "remark": "不可抗力"}), 403)
    assert snapshot(app, second) == before
    # the decision needs its 说明
    assert_json_error(agent.post(f"/api/cases/{second}/messages/termination",
                                 json={"reason": "出现不可抗力导致项目不具备办理条件"}), 422, "「说明」为必填项")
    assert snapshot(app, second) == before

    r = agent.post(f"/api/cases/{second}/messages/termination",
                   json={"reason": "出现不可抗力导致项目不具备办理条件", "remark": "项目用地被列入防洪规划"})
    assert r.status_code == 200 and r.json == {"case_no": second}
    v = agent.get(f"/api/cases/{second}").json
    assert [t["name"] for t in v["open_tasks"]] == ["办理终止手续"]
    assert "决定终止" in [e["label"] for e in v["timeline"]]
    result = api_complete(agent, second, "办理终止手续", SLIP)
    assert result["document"]["kind"] == "终止单"
    v = api_login(app, "huarui").get(f"/api/cases/{second}").json
    assert (v["case"]["status"], v["case"]["status_name"]) == ("terminated", "已终止")
    assert v["open_tasks"] == [] and v["actions"] == []
    assert "stopped" in [s["state"] for s in v["stages"]]
    assert [d["kind"] for d in v["documents"]] == ["委托书", "终止单"]
    # a terminated case takes no further messages
    before = snapshot(app, second)
    assert_json_error(agent.post(f"/api/cases/{second}/messages/termination",
                                 json={"reason": "出现不可抗力导致项目不具备办理条件", "remark": "再次终止"}), 409)
    assert snapshot(app, second) == before
    # and the first case was not touched by the second
    assert api_login(app, "supervisor1").get(f"/api/cases/{case_no}").json["case"]["status"] == "completed"


# =============================================================================================================
# What must be refused
# =============================================================================================================
def test_anonymous_pages_redirect_to_login_and_api_answers_401(app, dispatched):
    case_no = dispatched
    task_id = api_task(api_login(app, "zb_sthj"), case_no, "部门办理", "环评")
    before = snapshot(app, case_no)
    anon = app.test_client()
    for path in ("/inbox", "/cases", "/cases/new", f"/cases/{case_no}", f"/tasks/{task_id}",
                 f"/cases/{case_no}/application", f"/cases/{case_no}/documents/1",
                 f"/cases/{case_no}/actions/termination"):
        r = anon.get(path)
        assert r.status_code == 302, path
        assert r.headers["Location"].startswith("/login?next="), (path, r.headers["Location"])
    assert anon.get("/").headers["Location"] == "/login"
    r = anon.post(f"/tasks/{task_id}", data={"item_decision": "准予许可", "licence_no": "X-1"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    r = anon.post("/cases/new", data=html_form(APPLICATION))
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    page = anon.get(f"/cases/{case_no}", follow_redirects=True)
    assert page.status_code == 200 and "<h1>登录</h1>" in page.text and case_no not in page.text.split("<main>")[1]

    for method, path, body in (("get", "/api/me", None), ("get", "/api/tasks", None), ("get", "/api/cases", None),
                               ("get", f"/api/cases/{case_no}", None), ("get", f"/api/tasks/{task_id}", None),
                               ("get", f"/api/cases/{case_no}/documents/1", None),
                               ("post", "/api/cases", {"data": APPLICATION}),
                               ("post", f"/api/tasks/{task_id}/complete", {"item_decision": "准予许可", "licence_no": "X-1"}),
                               ("post", f"/api/cases/{case_no}/messages/termination",
                                {"reason": "出现不可抗力导致项目不具备办理条件", "remark": "匿名"})):
        r = getattr(anon, method)(path, json=body) if body is not None else getattr(anon, method)(path)
        assert_json_error(r, 401, "请先登录")
        assert r.json["error"] == "not_authenticated"

    # a wrong password is refused in Chinese on both doors
    page = anon.get("/login")
    r = anon.post("/login", data={"username": "agent1", "password": "wrong", "csrf_token": token(page.text)})
    assert_html_error(r, 401, "用户名或密码错误")
    assert_json_error(anon.post("/api/login", json={"username": "agent1", "password": "wrong"}), 401, "用户名或密码错误")
    assert_json_error(anon.get("/api/tasks"), 401)
    assert snapshot(app, case_no) == before
    assert case_total(app) == 1


def test_specialist_of_another_department_may_not_open_or_complete_an_item(app, dispatched):
    case_no = dispatched
    task_id = api_task(api_login(app, "zb_sthj"), case_no, "部门办理", "环评")
    before = snapshot(app, case_no)
    approve = {"item_decision": "准予许可", "licence_no": "冒办-1"}

    zjj_html = html_login(app, "zb_zjj")
    assert "环评" not in zjj_html.get("/inbox").text
    assert_html_error(zjj_html.get(f"/tasks/{task_id}"), 403, "您无权办理此待办")
    own = zjj_html.get(f"/tasks/{inbox_task(zjj_html, case_no, '部门办理', ITEM_NAMES['xf'])}")
    r = zjj_html.post(f"/tasks/{task_id}", data={**approve, "csrf_token": token(own.text)})
    assert_html_error(r, 403, "您无权办理此待办")
    # on the case page the other department's item has no 办理 button for them
    page = zjj_html.get(f"/cases/{case_no}")
    assert page.status_code == 200 and f'href="/tasks/{task_id}"' not in page.text

    zjj_api = api_login(app, "zb_zjj")
    assert_json_error(zjj_api.get(f"/api/tasks/{task_id}"), 403, "您无权办理此待办")
    assert_json_error(zjj_api.post(f"/api/tasks/{task_id}/complete", json=approve), 403, "您无权办理此待办")
    # an agent is no specialist either
    assert_json_error(api_login(app, "agent1").post(f"/api/tasks/{task_id}/complete", json=approve), 403)
    assert snapshot(app, case_no) == before


def test_another_units_applicant_neither_reads_nor_lists_nor_acts(app, dispatched):
    case_no = dispatched
    sthj = api_login(app, "zb_sthj")
    api_complete(sthj, case_no, "部门办理", h.needs_correction("补交环评报告"), "环评")
    huarui = api_login(app, "huarui")
    supplement_id = api_task(huarui, case_no, "补正材料", "环评")
    docs = huarui.get(f"/api/cases/{case_no}").json["documents"]
    own_case = api_start(api_login(app, "jiahe"), unit_name="河南嘉禾新材料科技有限公司", project_name="新材料项目")
    before = snapshot(app, case_no)

    jiahe = api_login(app, "jiahe")
    assert_json_error(jiahe.get(f"/api/cases/{case_no}"), 404, "办件不存在或您无权查看")
    assert_json_error(jiahe.get(f"/api/cases/{case_no}/documents/{docs[0]['id']}"), 404)
    listed = [c["case_no"] for c in jiahe.get("/api/cases").json["cases"]]
    assert listed == [own_case]
    assert jiahe.get(f"/api/cases?q={case_no}").json["total"] == 0
    assert [t["case_no"] for t in jiahe.get("/api/tasks").json["tasks"]] == []
    assert_json_error(jiahe.get(f"/api/tasks/{supplement_id}"), 403, "您无权办理此待办")
    assert_json_error(jiahe.post(f"/api/tasks/{supplement_id}/complete",
                                 json={"supplement_description": "冒名补正", "supplement_complete": True}), 403)
    assert_json_error(jiahe.post(f"/api/cases/{case_no}/messages/termination_request",
                                 json={"reason": "申请单位申请终止帮办代办服务"}), 404)

    jiahe_html = html_login(app, "jiahe")
    assert_html_error(jiahe_html.get(f"/cases/{case_no}"), 404, "办件不存在或您无权查看")
    assert_html_error(jiahe_html.get(f"/cases/{case_no}/application"), 404)
    assert_html_error(jiahe_html.get(f"/cases/{case_no}/documents/{docs[0]['id']}"), 404)
    assert_html_error(jiahe_html.get(f"/cases/{case_no}/actions/termination_request"), 404)
    listing = jiahe_html.get("/cases")
    assert listing.status_code == 200 and case_no not in listing.text and own_case in listing.text
    assert case_no not in jiahe_html.get("/inbox").text
    assert snapshot(app, case_no) == before


def test_completing_a_task_twice_conflicts_and_unknown_tasks_are_not_found(app, dispatched):
    case_no = dispatched
    sthj = api_login(app, "zb_sthj")
    task_id = api_task(sthj, case_no, "部门办理", "环评")
    approve = {"item_decision": "准予许可", "licence_no": "武环审〔2026〕3号"}
    assert sthj.post(f"/api/tasks/{task_id}/complete", json=approve).status_code == 200
    before = snapshot(app, case_no)
    assert_json_error(sthj.post(f"/api/tasks/{task_id}/complete", json=approve), 409, "已被办理")
    assert_json_error(sthj.get(f"/api/tasks/{task_id}"), 409, "已被办理")
    assert snapshot(app, case_no) == before

    # the same through the page: the form was open in a second tab and is posted again
    zjj = html_login(app, "zb_zjj")
    task_id = inbox_task(zjj, case_no, "部门办理", ITEM_NAMES["xf"])
    page = zjj.get(f"/tasks/{task_id}")
    form = {"item_decision": "准予许可", "licence_no": "XF-1", "csrf_token": token(page.text)}
    assert zjj.post(f"/tasks/{task_id}", data=form).status_code == 302
    before = snapshot(app, case_no)
    assert_html_error(zjj.post(f"/tasks/{task_id}", data=form), 409, "该待办已被办理")
    assert snapshot(app, case_no) == before

    for unknown in ("00000000-0000-0000-0000-000000000000", "nonexistent"):
        assert_json_error(sthj.get(f"/api/tasks/{unknown}"), 404, "待办不存在")
        assert_json_error(sthj.post(f"/api/tasks/{unknown}/complete", json=approve), 404, "待办不存在")
        assert_html_error(zjj.get(f"/tasks/{unknown}"), 404, "待办不存在")
        assert_html_error(zjj.post(f"/tasks/{unknown}", data=form), 404, "待办不存在")
    assert_json_error(sthj.get(f"/api/cases/{case_no}/documents/999"), 404, "单据不存在")
    assert_json_error(sthj.get("/api/cases/410823209912319999"), 404, "办件不存在")
    assert_json_error(api_login(app, "agent1").post(f"/api/cases/{case_no}/messages/nosuch", json={}), 404, "没有这项操作")
    assert snapshot(app, case_no) == before


@pytest.mark.parametrize("change, field, message", [
    ({"project_name": None}, "project_name", "「项目名称」为必填项"),
    ({"service_items": []}, "service_items", "「具体服务事项」至少选择 1 项"),
    ({"service_items": ["no_such_item"]}, "service_items", "「具体服务事项」的取值不在可选范围内"),
    ({"total_investment": "abc"}, "total_investment", "「投资总额（万元）」应为数字"),
    ({"total_investment": -5}, "total_investment", "「投资总额（万元）」不能小于 0"),
    ({"declaration": "yes"}, "declaration", "「本人承诺以上信息及提交的相关资料全部属实"),
    ({"construction_address": "址" * 201}, "construction_address", "「建设地址」不能超过 200 个字"),
    ({"project_name": "项" * 101}, "project_name", "「项目名称」不能超过 100 个字"),
    ({"remarks": "备" * 1001}, "remarks", "「备注」不能超过 1000 个字"),
    ({"approval_secret": "x"}, "approval_secret", "表单中有不允许的字段：approval_secret"),
], ids=["missing", "no-items", "unknown-item", "investment-text", "investment-negative", "declaration-text",
        "address-long", "name-long", "remarks-long", "extra-field"])
def test_invalid_application_is_refused_with_422(app, change, field, message):
    data = {k: v for k, v in {**APPLICATION, **change}.items() if v is not None}
    huarui = api_login(app, "huarui")
    body = assert_json_error(huarui.post("/api/cases", json={"data": data}), 422, message)
    assert body["error"] == "invalid_input" and field in body["details"]
    assert body["message"].startswith("表单填写有误")

    html = html_login(app, "huarui")
    page = html.get("/cases/new")
    r = html.post("/cases/new", data={**html_form(data), "csrf_token": token(page.text)})
    assert_html_error(r, 422, message.split("」")[0].lstrip("「"))
    assert 'role="alert"' in r.text and "表单填写有误" in r.text
    assert f'data-field="{field}"' not in r.text or re.search(rf'class="field has-error" data-field="{field}"', r.text)
    assert case_total(app) == 0


def test_invalid_task_forms_are_refused_with_422_and_change_nothing(app, dispatched):
    case_no = dispatched
    # bring the case to the applicant's rating, then send the rating in many wrong shapes
    sthj, zjj, gdgs, agent = (api_login(app, u) for u in ("zb_sthj", "zb_zjj", "zb_gdgs", "agent1"))
    api_complete(sthj, case_no, "部门办理", {"item_decision": "准予许可", "licence_no": "HP-1"}, "环评")
    api_complete(zjj, case_no, "部门办理", {"item_decision": "准予许可", "licence_no": "XF-1"}, ITEM_NAMES["xf"])
    api_complete(gdgs, case_no, "部门办理", {"item_decision": "准予许可", "licence_no": "GD-1"}, "供电")
    api_complete(agent, case_no, "汇总办理结果", {"results_collected": True})
    # 邮寄 needs a tracking number; an oversized work record is refused
    deliver_id = api_task(agent, case_no, "统一送达")
    before = snapshot(app, case_no)
    no_tracking = {k: v for k, v in DELIVER.items() if k != "tracking_no"}
    assert_json_error(agent.post(f"/api/tasks/{deliver_id}/complete", json=no_tracking), 422, "「邮寄单号」为必填项")
    assert_json_error(agent.post(f"/api/tasks/{deliver_id}/complete", json={**DELIVER, "work_record": "纪" * 4001}),
                      422, "「帮办代办情况工作纪实」不能超过 4000 个字")
    assert_json_error(agent.post(f"/api/tasks/{deliver_id}/complete", json={**DELIVER, "delivery_date": "2026-13-45"}),
                      422, "「送达日期」应为日期")
    assert snapshot(app, case_no) == before
    api_complete(agent, case_no, "统一送达", DELIVER)
    huarui = api_login(app, "huarui")
    api_complete(huarui, case_no, "签收办结单", {"results_received": True})

    rate_id = api_task(huarui, case_no, "评价代办服务")
    before = snapshot(app, case_no)
    good = {"rating": "满意"}
    for bad, message in (({"comments": "很好"}, "「综合评价」为必填项"),
                         ({**good, "rating": 123}, "「综合评价」应为文本"),
                         ({**good, "rating": "还行"}, "「综合评价」的取值不在可选范围内"),
                         ({**good, "rater_name": "张华瑞"}, "表单中有不允许的字段：rater_name"),
                         ({**good, "comments": "意" * 1001}, "「意见和建议」不能超过 1000 个字"),
                         ({**good, "stars": 5}, "表单中有不允许的字段：stars")):
        body = assert_json_error(huarui.post(f"/api/tasks/{rate_id}/complete", json=bad), 422, message)
        assert body["error"] == "invalid_input"
    # through the page: the form comes back with the message beside the field, the values kept
    html = html_login(app, "huarui")
    page = html.get(f"/tasks/{rate_id}")
    assert "评价人" not in page.text.split('<form', 1)[1].split('</form>', 1)[0]     # the rater is the logged-in user
    r = html.post(f"/tasks/{rate_id}", data={"comments": "很好", "csrf_token": token(page.text)})
    assert_html_error(r, 422, "「综合评价」为必填项")
    assert ">很好</textarea>" in r.text
    r = html.post(f"/tasks/{rate_id}", data={**good, "stars": "5", "csrf_token": token(page.text)})
    assert_html_error(r, 422, "表单中有不允许的字段：stars")
    assert snapshot(app, case_no) == before


def test_bodies_that_are_not_json_objects_are_refused(app, dispatched):
    case_no = dispatched
    sthj = api_login(app, "zb_sthj")
    task_id = api_task(sthj, case_no, "部门办理", "环评")
    before = snapshot(app, case_no)
    approve = json.dumps({"item_decision": "准予许可", "licence_no": "HP-1"})
    for path in (f"/api/tasks/{task_id}/complete", "/api/cases", f"/api/cases/{case_no}/messages/termination"):
        c = api_login(app, "zb_sthj" if "tasks" in path else "agent1")
        assert_json_error(c.post(path, data=approve, content_type="text/plain"), 422, "请求体应为 JSON")
        assert_json_error(c.post(path, data="item_decision=准予许可", content_type="application/x-www-form-urlencoded"),
                          422, "请求体应为 JSON")
        assert_json_error(c.post(path), 422, "请求体应为 JSON")
        for body in ("{not json", "[1, 2]", '"text"', "null", "\xff\xfe"):
            r = c.post(path, data=body.encode("latin-1") if body == "\xff\xfe" else body, content_type="application/json")
            assert 400 <= r.status_code < 500, (path, body, r.status_code)
            assert_json_error(r, r.status_code)
    huarui = api_login(app, "huarui")
    assert_json_error(huarui.post("/api/cases", json={"data": "申请表"}), 422, "data 应为申请表对象")
    assert_json_error(huarui.post("/api/cases", json={"data": APPLICATION, "unit_id": "1"}), 422, "unit_id 应为整数")
    assert_json_error(huarui.post("/api/login", data="username=huarui"), 422, "请求体应为 JSON")
    assert snapshot(app, case_no) == before
    assert case_total(app) == 1


def test_html_posts_without_a_valid_csrf_token_are_refused(app, dispatched):
    case_no = dispatched
    sthj = html_login(app, "zb_sthj")
    task_id = inbox_task(sthj, case_no, "部门办理", "环评")
    before = snapshot(app, case_no)
    approve = {"item_decision": "准予许可", "licence_no": "HP-1"}
    for form in (approve, {**approve, "csrf_token": ""}, {**approve, "csrf_token": "forged-token"}):
        assert_html_error(sthj.post(f"/tasks/{task_id}", data=form), 400, "页面已过期或来源不明")
    # a token from another session does not work either
    other = html_login(app, "zb_sthj")
    other_token = token(other.get(f"/tasks/{task_id}").text)
    assert_html_error(sthj.post(f"/tasks/{task_id}", data={**approve, "csrf_token": other_token}), 400, "页面已过期")
    assert snapshot(app, case_no) == before

    huarui = html_login(app, "huarui")
    assert_html_error(huarui.post("/cases/new", data=html_form(APPLICATION)), 400, "页面已过期或来源不明")
    assert case_total(app) == 1
    agent = html_login(app, "agent1")
    assert_html_error(agent.post(f"/cases/{case_no}/actions/termination",
                                 data={"reason": "出现不可抗力导致项目不具备办理条件", "remark": "无令牌"}), 400, "页面已过期")
    # login and logout need the token too; after a refused logout the user is still logged in
    assert_html_error(app.test_client().post("/login", data={"username": "agent1", "password": PASSWORD}), 400, "页面已过期")
    assert_html_error(agent.post("/logout"), 400, "页面已过期")
    assert agent.get("/inbox").status_code == 200
    assert snapshot(app, case_no) == before


def test_auditor_reads_every_case_but_every_write_is_refused(app, dispatched):
    case_no = dispatched
    other = api_start(api_login(app, "jiahe"), unit_name="河南嘉禾新材料科技有限公司", project_name="新材料项目")
    sthj_task = api_task(api_login(app, "zb_sthj"), case_no, "部门办理", "环评")
    review_task = api_task(api_login(app, "agent1"), other, "受理审核")
    before, before_other = snapshot(app, case_no), snapshot(app, other)

    auditor = api_login(app, "auditor1")
    assert sorted(c["case_no"] for c in auditor.get("/api/cases").json["cases"]) == sorted([case_no, other])
    for no in (case_no, other):
        v = auditor.get(f"/api/cases/{no}")
        assert v.status_code == 200 and v.json["actions"] == []
        assert not any(t["mine"] for t in v.json["open_tasks"])
    doc = auditor.get(f"/api/cases/{case_no}").json["documents"][0]
    assert auditor.get(f"/api/cases/{case_no}/documents/{doc['id']}").status_code == 200
    assert auditor.get("/api/tasks").json == {"tasks": [], "total": 0, "next": None}

    assert_json_error(auditor.post("/api/cases", json={"data": APPLICATION, "unit_id": 1}), 403, "只能查看")
    assert_json_error(auditor.post(f"/api/tasks/{sthj_task}/complete",
                                   json={"item_decision": "准予许可", "licence_no": "HP-1"}), 403)
    assert_json_error(auditor.post(f"/api/tasks/{review_task}/complete", json=ACCEPT), 403)
    for key, body in (("termination", {"reason": "出现不可抗力导致项目不具备办理条件", "remark": "审计终止"}),
                      ("termination_request", {"reason": "申请单位申请终止帮办代办服务"})):
        assert_json_error(auditor.post(f"/api/cases/{case_no}/messages/{key}", json=body), 403)

    html = html_login(app, "auditor1")
    for path in (f"/cases/{case_no}", f"/cases/{other}", f"/cases/{case_no}/application",
                 f"/cases/{case_no}/documents/{doc['id']}", "/cases"):
        assert html.get(path).status_code == 200, path
    assert "新建申请" not in html.get("/inbox").text
    assert_html_error(html.get("/cases/new"), 403)
    tok = token(html.get("/inbox").text)
    assert_html_error(html.post("/cases/new", data={**html_form(APPLICATION), "unit_id": "1", "csrf_token": tok}), 403)
    assert_html_error(html.get(f"/tasks/{review_task}"), 403)
    assert_html_error(html.post(f"/tasks/{review_task}", data={**html_form(ACCEPT), "csrf_token": tok}), 403)
    assert_html_error(html.get(f"/cases/{case_no}/actions/termination"), 403)
    decision = {"reason": "出现不可抗力导致项目不具备办理条件", "remark": "审计终止", "csrf_token": tok}
    assert_html_error(html.post(f"/cases/{case_no}/actions/termination", data=decision), 403)
    assert (snapshot(app, case_no), snapshot(app, other)) == (before, before_other)
    assert case_total(app) == 2


def test_oversized_request_bodies_are_refused_with_413(app, dispatched):
    case_no = dispatched
    sthj_api = api_login(app, "zb_sthj")
    task_id = api_task(sthj_api, case_no, "部门办理", "环评")
    before = snapshot(app, case_no)
    big = "环" * (100 * 1024)  # 300 KB in UTF-8
    r = sthj_api.post(f"/api/tasks/{task_id}/complete",
                      json={"item_decision": "准予许可", "licence_no": "HP-1", "handle_opinion": big})
    assert_json_error(r, 413, "提交的内容超过 256 KB 上限")
    r = api_login(app, "huarui").post("/api/cases", json={"data": {**APPLICATION, "remarks": big}})
    assert_json_error(r, 413, "提交的内容超过 256 KB 上限")
    # One rule, one status: 100 K Latin characters (100 KB) are over the form's 64 KB just as 100 K Chinese ones
    # (300 KB) are over the request's 256 KB — both 413, whatever the script.
    r = sthj_api.post(f"/api/tasks/{task_id}/complete",
                      json={"item_decision": "准予许可", "licence_no": "HP-1", "handle_opinion": "a" * (100 * 1024)})
    assert_json_error(r, 413, "上限为 64 KB")
    r = api_login(app, "huarui").post("/api/cases", json={"data": {**APPLICATION, "remarks": "a" * (100 * 1024)}})
    assert_json_error(r, 413, "上限为 64 KB")
    sthj = html_login(app, "zb_sthj")
    page = sthj.get(f"/tasks/{task_id}")
    r = sthj.post(f"/tasks/{task_id}", data={"item_decision": "准予许可", "licence_no": "HP-1", "handle_opinion": big,
                                            "csrf_token": token(page.text)})
    assert_html_error(r, 413, "提交的内容超过 256 KB 上限")
    # just under the limit is no 413 (the field's maxLength refuses it instead)
    r = sthj_api.post(f"/api/tasks/{task_id}/complete",
                      json={"item_decision": "准予许可", "licence_no": "HP-1", "handle_opinion": "意" * 1001})
    assert_json_error(r, 422, "「办理意见」不能超过 1000 个字")
    assert snapshot(app, case_no) == before
    assert case_total(app) == 1


def test_bad_urls_get_a_4xx_never_a_500(app, dispatched):
    case_no = dispatched
    before = snapshot(app, case_no)
    agent = html_login(app, "agent1")
    for path in ("/cases/%00", "/cases/%00/application", "/tasks/%00", "/tasks/../../etc", "/tasks/..%2F..%2Fetc%2Fpasswd",
                 "/tasks/%2e%2e", "/cases/" + "9" * 5000, "/cases/%E4%B8%AD%E6%96%87", "/cases/<script>",
                 f"/cases/{case_no}/documents/abc", f"/cases/{case_no}/documents/-1", f"/cases/{case_no}/documents/0",
                 f"/cases/{case_no}/actions/%00", f"/cases/{case_no}/actions/..%2F..", "/static/../../etc/passwd",
                 "/static/%2e%2e/%2e%2e/engine/db.py", "/nowhere", "/api/nowhere",
                 "/api/cases/%00", "/api/tasks/%00", "/api/tasks/../../etc", "/api/cases/%FF%FE",
                 f"/api/cases/{case_no}/documents/abc", f"/api/cases/{case_no}/messages/%00"):
        r = agent.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code)
        assert chinese(r.json["message"] if r.is_json else r.text), path
        if path.startswith("/api/"):
            assert r.is_json, path
    assert_json_error(agent.put(f"/api/cases/{case_no}/messages/termination"), 405, "不支持的请求方式")
    assert_json_error(agent.delete(f"/api/cases/{case_no}"), 405)
    assert_html_error(agent.put(f"/cases/{case_no}"), 405, "不支持的请求方式")
    # odd query strings are no error at all
    for path in ("/cases?page=abc", "/cases?page=-1", "/cases?page=99999999999999999999", "/cases?status=%00",
                 "/api/cases?page=0"):
        assert agent.get(path).status_code == 200, path
    # a search term too long or with a control character is refused in Chinese (tests/test_search_index.py)
    for path in ("/cases?q=" + "号" * 3000, "/api/cases?unit=%00"):
        r = agent.get(path)
        assert r.status_code == 422 and chinese(r.json["message"] if r.is_json else r.text), path
    assert snapshot(app, case_no) == before


def test_an_unexpected_error_is_a_chinese_500_without_traceback(app):
    def boom():
        raise RuntimeError("secret internals")
    app.add_url_rule("/api/_boom", "api_boom", boom)
    app.add_url_rule("/_boom", "boom", boom)
    c = app.test_client()
    r = c.get("/api/_boom")
    assert_json_error(r, 500, "系统内部错误")
    assert "secret internals" not in r.text and "RuntimeError" not in r.text
    r = c.get("/_boom")
    assert_html_error(r, 500, "系统内部错误")
    assert "secret internals" not in r.text and "RuntimeError" not in r.text


def test_an_items_result_shows_on_the_case_page_as_soon_as_its_department_decides(app, dispatched):
    # (once a decided item fell back to "待分派" without its licence number while the case was inside 帮办代办服务)
    case_no = dispatched
    api_complete(api_login(app, "zb_sthj"), case_no, "部门办理", {"item_decision": "准予许可", "licence_no": "HP-9"}, "环评")
    agent = html_login(app, "agent1")
    rows = item_rows(agent.get(f"/cases/{case_no}").text)
    assert [r[3:] for r in rows] == [["准予许可", "HP-9"], ["部门办理中", ""], ["部门办理中", ""]]
    api_complete(api_login(app, "zb_zjj"), case_no, "部门办理", {"item_decision": "准予许可", "licence_no": "XF-9"},
                 ITEM_NAMES["xf"])
    api_complete(api_login(app, "zb_gdgs"), case_no, "部门办理", {"item_decision": "不予许可", "refusal_reason": "容量不足"},
                 "供电")
    expected = [["准予许可", "HP-9"], ["准予许可", "XF-9"], ["不予许可", "容量不足"]]
    assert [r[3:] for r in item_rows(agent.get(f"/cases/{case_no}").text)] == expected
    api_complete(api_login(app, "agent1"), case_no, "汇总办理结果", {"results_collected": True})
    assert [r[3:] for r in item_rows(agent.get(f"/cases/{case_no}").text)] == expected


# =============================================================================================================
# Defects found while writing these tests: each asserts the correct behaviour (see the report of the test run)
# =============================================================================================================
@pytest.mark.parametrize("path", ["/cases?page=²", "/api/cases?page=²", "/cases?page=①"],
                         ids=["page-superscript", "api-page-superscript", "page-circled"])
def test_a_non_ascii_digit_page_number_is_no_server_error(app, path):
    # web/views.py cases() and web/api.py cases(): str.isdigit() accepts '²', int('²') then raises ValueError
    r = api_login(app, "agent1").get(path)
    assert r.status_code < 500, (path, r.status_code)


def test_a_huge_document_id_is_not_found_rather_than_a_server_error(app, dispatched):
    # engine/services.py get_document(): the id from <int:doc_id> goes to the database unchecked; SQLite raises
    # OverflowError (PostgreSQL a numeric-out-of-range error) for ids beyond 64 bits
    before = snapshot(app, dispatched)
    agent = api_login(app, "agent1")
    assert_json_error(agent.get(f"/api/cases/{dispatched}/documents/{2 ** 70}"), 404)
    assert_html_error(html_login(app, "agent1").get(f"/cases/{dispatched}/documents/{2 ** 70}"), 404)
    assert snapshot(app, dispatched) == before


def test_an_agents_unit_id_true_is_no_integer(app):
    # web/api.py start_case(): isinstance(True, int) is true, so {"unit_id": true} starts a case for unit 1
    agent = api_login(app, "agent1")
    assert_json_error(agent.post("/api/cases", json={"data": APPLICATION, "unit_id": True}), 422, "unit_id 应为整数")
    assert case_total(app) == 0


def test_an_agents_huge_unit_id_is_no_server_error(app):
    # engine/services.py start_case(): a unit id beyond 64 bits reaches uow.repo.unit() and the database fails (500)
    agent = api_login(app, "agent1")
    assert_json_error(agent.post("/api/cases", json={"data": APPLICATION, "unit_id": 2 ** 70}), 422, "申请单位不存在")
    assert case_total(app) == 0


def test_an_agents_non_ascii_digit_unit_id_is_no_server_error(app):
    # web/views.py new_case(): unit_id.isdigit() accepts '²', int('²') then raises ValueError (500)
    html = html_login(app, "agent1")
    page = html.get("/cases/new")
    r = html.post("/cases/new", data={**html_form(APPLICATION), "unit_id": "²", "csrf_token": token(page.text)})
    assert_html_error(r, 422, "请选择申请单位")
    assert case_total(app) == 0


def test_not_a_number_is_no_total_investment(app):
    # engine/forms.py validate(): NaN passes "type": "number" with minimum/maximum (every comparison with NaN is
    # false); it arrives as the JSON literal NaN through the API (json.loads accepts it) and as "nan" through
    # web/formdata.py from_html() (float("nan")), and is stored in the case
    huarui = api_login(app, "huarui")
    body = json.dumps({"data": APPLICATION})[:-2] + ', "total_investment": NaN}}'
    r = huarui.post("/api/cases", data=body, content_type="application/json")
    assert 400 <= r.status_code < 500 and r.is_json and chinese(r.json["message"]), (r.status_code, r.text)
    html = html_login(app, "huarui")
    page = html.get("/cases/new")
    r = html.post("/cases/new", data={**html_form(APPLICATION), "total_investment": "nan", "csrf_token": token(page.text)})
    assert_html_error(r, 422, "「投资总额（万元）」")
    assert case_total(app) == 0


def test_the_decision_form_after_a_correction_round_starts_blank(app, dispatched):
    # engine/runtime.py CaseRun.form_defaults() fills every form field found in the task data, so the second
    # 部门办理 after a 补正 round opens with 需要补正 already chosen and the old request in its textarea: submitted
    # as shown it starts another 补正 round, and an approval made on it records the stale 需补正的全部材料.
    case_no = dispatched
    api_complete(api_login(app, "zb_sthj"), case_no, "部门办理",
                 h.needs_correction("补交环评报告专家意见"), "环评")
    api_complete(api_login(app, "huarui"), case_no, "补正材料",
                 {"supplement_description": "已补交", "supplement_complete": True}, "环评")
    sthj = html_login(app, "zb_sthj")
    page = sthj.get(f"/tasks/{inbox_task(sthj, case_no, '部门办理', '环评')}")
    assert page.status_code == 200
    assert not re.search(r'value="需要补正"\s+checked', page.text)
    assert ">补交环评报告专家意见</textarea>" not in page.text


def test_a_whole_number_investment_prints_as_typed(app):
    # web/formdata.py from_html() turns every "number" field into a float, so 投资总额 typed as 5000 is stored as
    # 5000.0 and the printed 申请表 (engine/views.py fmt_value) shows "5000.0"; through the API 5000 stays 5000
    html = html_login(app, "huarui")
    page = html.get("/cases/new")
    r = html.post("/cases/new", data={**html_form(APPLICATION), "total_investment": "5000", "csrf_token": token(page.text)})
    assert r.status_code == 302
    printed = html.get(r.headers["Location"] + "/application").text
    assert "<td>5000</td>" in printed, re.findall(r"<td>5000[^<]*</td>", printed)


@pytest.mark.parametrize("target", ["/%09/example.com", "/%0d%0aSet-Cookie:%20x=1", "/%0aabc"],
                         ids=["tab-slash", "crlf", "newline"])
def test_the_login_redirect_stays_on_this_site(app, target):
    # web/auth.py _safe_next(): "/\t/example.com" passes the "//" check, and the tab is dropped from the Location
    # header, which becomes "//example.com" (an open redirect after login); a target with a newline makes
    # redirect() raise ValueError, so a correct login answers 500
    c = app.test_client()
    page = c.get("/login")
    r = c.post(f"/login?next={target}", data={"username": "agent1", "password": PASSWORD, "csrf_token": token(page.text)})
    assert r.status_code == 302, r.status_code
    location = r.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and not re.search(r"[\x00-\x1f\\\\]", location)


def test_malformed_bodies_get_a_4xx_and_change_nothing(app, dispatched):
    """Issue 9: what once gave a 500 — a lone surrogate, a body nested 1,000 deep, an unknown process, an unknown
    envelope field — now gets a Chinese 4xx, and nothing is written."""
    case_no = dispatched
    sthj = api_login(app, "zb_sthj")
    huarui = api_login(app, "huarui")
    task_id = api_task(sthj, case_no, "部门办理", "环评")
    before, total = snapshot(app, case_no), case_total(app)

    def raw(client, path, text: str):
        return client.post(path, data=text.encode("utf-8"), content_type="application/json")

    lone = '{"item_decision": "准予许可", "licence_no": "HP-\\ud800"}'
    assert_json_error(raw(sthj, f"/api/tasks/{task_id}/complete", lone), 422, "代理项")
    application = json.dumps({"data": APPLICATION}, ensure_ascii=False)[:-2] + ', "remarks": "\\udfff"}}'
    assert_json_error(raw(huarui, "/api/cases", application), 422, "代理项")
    assert_json_error(raw(sthj, f"/api/tasks/{task_id}/complete", "[" * 1000 + "]" * 1000), 422, "嵌套超过 16 层")
    assert_json_error(raw(sthj, f"/api/tasks/{task_id}/complete", '{"a":' + "[" * 17 + "]" * 17 + "}"), 422, "嵌套")
    assert_json_error(raw(sthj, f"/api/tasks/{task_id}/complete", '{"item_decision": '), 422, "不是有效的 JSON")
    assert_json_error(raw(sthj, f"/api/tasks/{task_id}/complete", "\xff\xfe"), 422)
    assert_json_error(huarui.post("/api/cases", json={"data": APPLICATION, "x": 1}), 422, "不允许的字段：x")
    assert_json_error(huarui.post("/api/cases", json={"data": APPLICATION, "process": "no_such"}), 404, "没有这个流程")
    assert_json_error(huarui.get("/api/processes/no_such/start-form"), 404, "没有这个流程")
    assert_json_error(huarui.post("/api/login", json={"username": "huarui", "password": "x", "remember": True}), 422,
                      "不允许的字段")
    assert snapshot(app, case_no) == before and case_total(app) == total

    # Text is stored in NFC: a decomposed é (e + combining acute) is stored as the single composed character.
    r = sthj.post(f"/api/tasks/{task_id}/complete",
                  json={"item_decision": "准予许可", "licence_no": "HP-Cafe\u0301", "handle_opinion": "准予"})
    assert r.status_code == 200, r.text
    items = {i["code"]: i for i in sthj.get(f"/api/cases/{case_no}").json["items"]}
    assert items["hp"]["licence_no"] == "HP-Caf\u00e9"


def zh_date(d) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def test_a_refused_application_gets_a_numbered_refusal_notice_the_applicant_can_print(app):
    # BPMN 受理审核: document 不予受理告知书 issued only when review_decision == '不予受理' (document_when).
    huarui = api_login(app, "huarui")
    case_no = api_start(huarui)
    result = api_complete(api_login(app, "agent1"), case_no, "受理审核",
                          {"review_decision": "不予受理", "refusal_explanation": "项目不属于帮办代办服务范围"})
    assert result["document"]["kind"] == "不予受理告知书" and result["document"]["number"] == "武帮代不受〔2026〕0001号"
    html = html_login(app, "huarui")
    sheet = html.get(f"/cases/{case_no}/documents/{result['document']['id']}")
    assert sheet.status_code == 200
    for words in ("帮办代办服务不予受理告知书", "武帮代不受〔2026〕0001号", "武陟县华瑞食品有限公司", "经审核，决定不予受理",
                  "原因及解释：项目不属于帮办代办服务范围", zh_date(service_today())):
        assert words in sheet.text, words
    assert "武帮代不受" in html.get(f"/cases/{case_no}").text         # listed on the case page
    # An accepted application issues none.
    other = api_start(huarui)
    assert api_complete(api_login(app, "agent2"), other, "受理审核", ACCEPT)["document"] is None


def test_a_correction_needs_a_deadline_not_in_the_past(app, dispatched):
    sthj = api_login(app, "zb_sthj")
    task_id = api_task(sthj, dispatched, "部门办理", "环评")
    missing = {"item_decision": "需要补正", "correction_request": "补交环评报告"}
    for data, message in ((missing, "「补正期限（申请单位最迟提交补正材料的日期）」为必填项"),
                          (h.needs_correction("补交环评报告", correction_due=service_today(-1).isoformat()),
                           f"不能早于今天（今天是{zh_date(service_today())}）")):
        r = sthj.post(f"/api/tasks/{task_id}/complete", json=data)
        assert r.status_code == 422 and message in r.json["message"], r.json
    today = service_today()
    api_complete(sthj, dispatched, "部门办理", h.needs_correction("补交环评报告", correction_due=today.isoformat()), "环评")
    huarui = html_login(app, "huarui")
    page = huarui.get(f"/tasks/{inbox_task(huarui, dispatched, '补正材料', '环评')}")
    assert "补交环评报告" in page.text and zh_date(today) in page.text, page.text
