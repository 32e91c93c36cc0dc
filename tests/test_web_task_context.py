"""Each task page shows what its decision needs, as the task's ``show`` property declares it; a step that ends a case
asks for confirmation first (the task's ``confirm`` / ``confirm_when``, a message's ``confirm``).

Through the Flask test client as the people act: the page is read as HTML (its sections of facts and tables), the
refused step is checked to have changed nothing (status, timeline, open tasks, documents read back through the API).
The service clock is set first in every test. Hand-checked dates (2026: no holiday in March):

* 消防 (15 working days) received Monday 2026-03-02: due Monday 2026-03-23. With a 补正 from Wednesday 03-04 to
  Thursday 03-05 the 5th is not counted: due Tuesday 03-24; on Tuesday 03-10, 5 working days are used (3, 4, 6, 9,
  10), 10 left. An approved extension of 5 more: 20 working days, due Tuesday 03-31.
* Without a pause, on Wednesday 03-25 消防 is 2 working days overdue (24th, 25th).
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from engine.clock import clock
from engine.demo import SAMPLE_APPLICATION
from engine.validation import validate_set
from engine.worker import run_once
from tests.webclient import api_login, html_login, token
from web import create_app

SH = ZoneInfo("Asia/Shanghai")
XF, HP = "消防（设计审查/验收）", "环评"
ZJJ, STHJ = "县住房和城乡建设局", "焦作市生态环境局武陟分局"
ACCEPT = {"review_decision": "受理", "authorization_checked": "true"}
COMMISSION = {"commission_signed": True, "materials_received": "营业执照、项目备案证明等", "service_mode_confirmed": "现场服务"}
REFUSAL = {"review_decision": "不予受理", "refusal_explanation": "项目不属于帮办代办服务范围"}
REFUSE_CONFIRM = "不予受理后办件即告结束，申请单位将收到不予受理告知书"
KEY = re.compile(r"[A-Za-z]+_[A-Za-z_]+")     # a field key such as project_name


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=SH)


@pytest.fixture
def app(svc):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


# ---- driving a case ------------------------------------------------------------------------------------------
def api_task(c, case_no: str, name: str, title: str | None = None) -> str:
    tasks = [t for t in c.get("/api/tasks").json["tasks"] if t["case_no"] == case_no and t["name"] == name
             and (title is None or t["title"] == title)]
    assert len(tasks) == 1, (name, title, tasks)
    return tasks[0]["task_id"]


def api_complete(c, case_no: str, name: str, data: dict, title: str | None = None) -> dict:
    r = c.post(f"/api/tasks/{api_task(c, case_no, name, title)}/complete", json=data)
    assert r.status_code == 200, r.text
    return r.json


def apply(app) -> str:
    r = api_login(app, "huarui").post("/api/cases", json={"process": "bangban_case", "data": SAMPLE_APPLICATION})
    assert r.status_code == 201, r.text
    return r.json["case_no"]


def dispatched(app, items=("hp", "xf")) -> str:
    case_no = apply(app)
    agent = api_login(app, "agent1")
    api_complete(agent, case_no, "受理审核", {"review_decision": "受理", "authorization_checked": True})
    api_complete(agent, case_no, "材料交接并签订委托书", COMMISSION)
    api_complete(agent, case_no, "分派服务事项", {"service_items": list(items)})
    return case_no


def snapshot(app, case_no: str) -> dict:
    v = api_login(app, "supervisor1").get(f"/api/cases/{case_no}").json
    return {"status": v["case"]["status"], "timeline": [e["hash"] for e in v["timeline"]],
            "open_tasks": sorted((t["task_id"], t["name"]) for t in v["open_tasks"]),
            "documents": [d["number"] for d in v["documents"]], "clocks": v["clocks"]}


# ---- reading a task page ---------------------------------------------------------------------------------------
def page_of(c, task_id: str) -> str:
    r = c.get(f"/tasks/{task_id}")
    assert r.status_code == 200, r.text[:2000]
    return r.text


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def sections(html: str) -> dict[str, str]:
    """data-view → the section's HTML."""
    return dict(re.findall(r'<section class="card context-view" data-view="([^"]+)">(.*?)</section>', html, re.S))


def pairs(html: str) -> list[tuple[str, str]]:
    return [(text(dt), text(dd)) for dt, dd in re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", html, re.S)]


def facts_of(html: str) -> list[tuple[str, str]]:
    """The facts at the head of a task page (case, then what ``show`` names)."""
    return pairs(re.search(r'<div class="card">\s*<dl class="facts">(.*?)</dl>', html, re.S).group(1))


def table(html: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S).group(1)
    return [[text(td) for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)] for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def title_of(section: str) -> str:
    return text(re.search(r"<h2>(.*?)</h2>", section, re.S).group(1)).replace("●", "").strip()


def post(c, url: str, data: dict, confirmed: bool = False):
    form = c.get(url)
    assert form.status_code == 200, form.text[:2000]
    body = {**data, "csrf_token": token(form.text)}
    if confirmed:
        body["confirmed_step"] = "1"
    return c.post(url, data=body)


def assert_asks(r, *words: str) -> str:
    """A 409 page with the confirmation box naming the consequence (and the form as it was filled in)."""
    assert r.status_code == 409, (r.status_code, r.text[:2000])
    box = re.search(r'<div class="confirm-box".*?</div>', r.text, re.S)
    assert box, r.text[:3000]
    for w in words:
        assert w in box.group(0), (w, box.group(0))
    assert 'name="confirmed_step" value="1"' in box.group(0) and ">确定</button>" in box.group(0)
    assert ">取消</a>" in box.group(0)
    return r.text


# =============================================================================================================
# Decisions with their context
# =============================================================================================================
def test_review_shows_the_application_as_submitted_with_field_titles(app):
    clock.set(at(3, 2))
    case_no = apply(app)
    agent = html_login(app, "agent1")
    html = page_of(agent, api_task(api_login(app, "agent1"), case_no, "受理审核"))
    section = sections(html)["application"]
    assert title_of(section).startswith("帮办代办服务申请表") and "打印申请表" in section
    shown = dict(pairs(section))
    assert shown["项目单位名称"] == "武陟县华瑞食品有限公司"
    assert shown["项目名称"] == "年产万吨食品项目"
    assert shown["项目编号"] == "2026-410823-14-03-000001"
    assert shown["是否重点项目/重点企业"] == "否"
    assert shown["具体服务事项"] == "环评、消防（设计审查/验收）、供电"
    assert shown["服务方式"] == "现场服务"
    assert len(shown) == len([v for v in SAMPLE_APPLICATION.values() if v not in (None, "", [])])
    # titles, never the keys of the form or the item codes
    assert not KEY.search(text(section)), KEY.findall(text(section))
    assert not re.search(r"\b(hp|xf|gd)\b", text(section))


def test_collect_shows_each_items_department_decision_and_licence_or_reason(app):
    clock.set(at(3, 2))
    case_no = dispatched(app)
    api_complete(api_login(app, "zb_sthj"), case_no, "部门办理",
                 {"item_decision": "准予许可", "licence_no": "焦环审〔2026〕12号"})
    api_complete(api_login(app, "zb_zjj"), case_no, "部门办理",
                 {"item_decision": "不予许可", "refusal_reason": "消防设计不符合《建筑设计防火规范》"})
    html = page_of(html_login(app, "agent1"), api_task(api_login(app, "agent1"), case_no, "汇总办理结果"))
    section = sections(html)["items"]
    assert title_of(section) == "各服务事项办理结果"
    assert [text(th) for th in re.findall(r"<th>(.*?)</th>", section)] == [
        "服务事项", "责任部门", "办理结果", "批文/证照编号或不予许可理由"]
    assert sorted(table(section)) == sorted([
        [HP, STHJ, "准予许可", "焦环审〔2026〕12号"],
        [XF, ZJJ, "不予许可", "消防设计不符合《建筑设计防火规范》"]])


def test_after_a_correction_the_department_sees_what_was_asked_and_what_was_supplied(app):
    clock.set(at(3, 2))
    case_no = dispatched(app, ("hp",))
    sthj_api, sthj = api_login(app, "zb_sthj"), html_login(app, "zb_sthj")
    first = facts_of(page_of(sthj, api_task(sthj_api, case_no, "部门办理")))
    assert [label for label, _ in first] == ["办件编号", "项目名称", "申请单位", "当前阶段", "服务事项", "申报材料", "限时办结"]
    clock.set(at(3, 4))
    api_complete(sthj_api, case_no, "部门办理", {"item_decision": "需要补正", "correction_due": "2026-03-16",
                                               "correction_request": "补充环境影响报告表及公示材料"})
    clock.set(at(3, 5))
    api_complete(api_login(app, "huarui"), case_no, "补正材料",
                 {"supplement_description": "已补充环境影响报告表（第二版）及网上公示截图", "supplement_complete": True})
    html = page_of(sthj, api_task(sthj_api, case_no, "部门办理"))
    facts = facts_of(html)
    assert ("已补正的材料说明", "已补充环境影响报告表（第二版）及网上公示截图") in facts
    assert ("需补正的全部材料（一次性告知）", "补充环境影响报告表及公示材料") in facts
    assert ("补正期限（申请单位最迟提交补正材料的日期）", "2026年3月16日") in facts
    assert ("服务事项", "环评（焦作市生态环境局武陟分局，时限20个工作日）") in facts


def test_extension_approval_shows_the_clock_with_its_pause_and_extensions(app):
    clock.set(at(3, 2))
    case_no = dispatched(app, ("xf",))
    zjj_api, zjj = api_login(app, "zb_zjj"), html_login(app, "zb_zjj")
    clock.set(at(3, 4))
    api_complete(zjj_api, case_no, "部门办理", {"item_decision": "需要补正", "correction_request": "补充消防设计图纸",
                                              "correction_due": "2026-03-13"})
    clock.set(at(3, 5))
    api_complete(api_login(app, "huarui"), case_no, "补正材料",
                 {"supplement_description": "已补充消防设计图纸", "supplement_complete": True})
    clock.set(at(3, 10))
    task_id = api_task(zjj_api, case_no, "部门办理")
    r = post(zjj, f"/tasks/{task_id}/actions/extension_request",
             {"extension_days": "5", "extension_reason": "需组织专家现场核查"})
    assert r.status_code == 302, r.text[:2000]     # asking for an extension is not final: no confirmation

    supervisor_api, supervisor = api_login(app, "supervisor1"), html_login(app, "supervisor1")
    approve = api_task(supervisor_api, case_no, "审批延期申请")
    section = sections(page_of(supervisor, approve))["clock"]
    assert title_of(section) == f"办理时限：{XF}"
    assert pairs(section) == [
        ("计时状态", "绿灯：剩余10个工作日"), ("开始计时", "2026年3月2日"), ("办理时限", "15个工作日"),
        ("办结期限", "2026年3月24日"), ("已用", "5个工作日"), ("剩余", "10个工作日"),
        ("补正暂停", "2026年3月4日起至2026年3月5日，补充消防设计图纸"), ("延期", "无")]
    assert ("延期理由", "需组织专家现场核查") in pairs(page_of(supervisor, approve))
    api_complete(supervisor_api, case_no, "审批延期申请",
                 {"extension_decision": "批准延期", "extension_days_approved": 5, "extension_opinion": "同意延期"})

    clock.set(at(3, 11))
    r = post(zjj, f"/tasks/{task_id}/actions/extension_request", {"extension_days": "3", "extension_reason": "专家意见待复核"})
    assert r.status_code == 302, r.text[:2000]
    shown = dict(pairs(sections(page_of(supervisor, api_task(supervisor_api, case_no, "审批延期申请")))["clock"]))
    assert shown["办理时限"] == "15个工作日，已延长5个工作日，共20个工作日"
    assert shown["办结期限"] == "2026年3月31日"
    assert (shown["已用"], shown["剩余"]) == ("6个工作日", "14个工作日")
    assert shown["延期"] == "延长5个工作日（2026年3月10日批准，理由：需组织专家现场核查）"


def test_supervision_shows_how_overdue_and_its_instruction_reaches_the_department(app):
    clock.set(at(3, 2))
    case_no = dispatched(app, ("xf", "hp"))
    clock.set(at(3, 25))
    run_once(app.extensions["bangban"])
    supervisor_api, supervisor = api_login(app, "supervisor1"), html_login(app, "supervisor1")
    supervise = api_task(supervisor_api, case_no, "督办")
    html = page_of(supervisor, supervise)
    shown = dict(pairs(sections(html)["clock"]))
    assert shown["计时状态"] == "红牌：已超期2个工作日"
    assert (shown["办结期限"], shown["已用"], shown["已超期"]) == ("2026年3月23日", "17个工作日", "2个工作日")
    assert "剩余" not in shown
    assert 'class="light light-red"' in sections(html)["clock"]

    zjj_api, zjj = api_login(app, "zb_zjj"), html_login(app, "zb_zjj")
    handle = api_task(zjj_api, case_no, "部门办理")
    assert "latest" not in sections(page_of(zjj, handle))       # no 督办 yet
    r = post(supervisor, f"/tasks/{supervise}", {"supervise_method": "书面督办", "rectify_by": "2026-03-27",
                                                  "supervise_opinion": "请于两个工作日内办结并报送结果"})
    assert r.status_code == 302, r.text[:2000]

    section = sections(page_of(zjj, handle))["latest"]
    assert title_of(section) == "督办"
    assert pairs(section) == [("办理人", "周科长"), ("办理日期", "2026年3月25日"), ("督办方式", "书面督办"),
                              ("督办意见", "请于两个工作日内办结并报送结果"), ("要求办结日期", "2026年3月27日")]
    # only the item it was about: 环评 (due 2026-03-30, not overdue) shows none
    hp = page_of(html_login(app, "zb_sthj"), api_task(api_login(app, "zb_sthj"), case_no, "部门办理"))
    assert "latest" not in sections(hp) and "督办意见" not in hp
    notices = [n["text"] for n in zjj_api.get("/api/notifications").json["notifications"]]
    assert [n for n in notices if n.startswith("【督办】")] == [
        f"【督办】办件 {case_no} 的服务事项「{XF}」（{ZJJ}）已超过办理时限。县行政审批和政务信息管理局书面督办，"
        "督办意见：请于两个工作日内办结并报送结果；要求办结日期：2026年3月27日。"]


# =============================================================================================================
# Confirmation before a step that ends a case
# =============================================================================================================
def test_refusal_is_taken_only_once_confirmed_and_acceptance_asks_nothing(app):
    clock.set(at(3, 2))
    case_no = apply(app)
    agent = html_login(app, "agent1")
    url = f"/tasks/{api_task(api_login(app, 'agent1'), case_no, '受理审核')}"
    before = snapshot(app, case_no)
    html = assert_asks(post(agent, url, REFUSAL), REFUSE_CONFIRM, "确定不予受理吗？")
    assert "项目不属于帮办代办服务范围</textarea>" in html            # the form as it was filled in
    assert re.search(r'value="不予受理" checked', html)
    assert snapshot(app, case_no) == before
    assert not [n for n in api_login(app, "huarui").get("/api/notifications").json["notifications"]
                if "不予受理" in n["text"]]
    # a form error is shown first, without asking
    r = post(agent, url, {"review_decision": "不予受理"})
    assert r.status_code == 422 and "confirm-box" not in r.text
    # confirmed: refused, with its notice
    r = post(agent, url, REFUSAL, confirmed=True)
    assert r.status_code == 302, re.findall(r'role="alert">(.*?)</div>', r.text, re.S)
    after = snapshot(app, case_no)
    assert after["status"] == "refused" and after["open_tasks"] == [] and len(after["documents"]) == 1

    other = apply(app)
    r = post(agent, f"/tasks/{api_task(api_login(app, 'agent1'), other, '受理审核')}", ACCEPT)
    assert r.status_code == 302, r.text[:2000]            # 受理 ends nothing: no question
    assert snapshot(app, other)["status"] == "active"
    # the JSON API (integrations) asks nothing: it is the person at a page who confirms
    third = apply(app)
    assert api_complete(api_login(app, "agent1"), third, "受理审核",
                        {"review_decision": "不予受理", "refusal_explanation": "重复申请"})["document"]


def test_termination_by_the_agent_and_its_slip_are_confirmed(app):
    clock.set(at(3, 2))
    case_no = dispatched(app)
    agent = html_login(app, "agent1")
    url = f"/cases/{case_no}/actions/termination"
    decision = {"reason": "出现不可抗力导致项目不具备办理条件", "remark": "项目用地被征收"}
    before = snapshot(app, case_no)
    html = assert_asks(post(agent, url, decision), "决定终止后，本办件的全部未办待办随即结束")
    assert f'href="/cases/{case_no}">取消</a>' in html
    assert snapshot(app, case_no) == before
    assert post(agent, url, decision, confirmed=True).status_code == 302
    assert [n for _, n in snapshot(app, case_no)["open_tasks"]] == ["办理终止手续"]

    slip = f"/tasks/{api_task(api_login(app, 'agent1'), case_no, '办理终止手续')}"
    form = {"termination_reason": decision["reason"], "termination_date": "2026-03-02",
            "materials_returned": "申请材料原件已退还申请单位", "both_signed": "true"}
    before = snapshot(app, case_no)
    assert_asks(post(agent, slip, form), "出具终止单")
    assert snapshot(app, case_no) == before
    r = post(agent, slip, form, confirmed=True)
    assert r.status_code == 302, r.text[:2000]
    after = snapshot(app, case_no)
    assert after["status"] == "terminated" and len(after["documents"]) == len(before["documents"]) + 1


def test_withdrawal_request_and_agreement_to_terminate_are_confirmed(app):
    clock.set(at(3, 2))
    huarui = html_login(app, "huarui")
    first = apply(app)
    before = snapshot(app, first)
    assert_asks(post(huarui, f"/cases/{first}/actions/withdrawal", {"reason": "重复提交"}), "撤回后本申请即告结束")
    assert snapshot(app, first) == before
    assert post(huarui, f"/cases/{first}/actions/withdrawal", {"reason": "重复提交"}, confirmed=True).status_code == 302
    assert snapshot(app, first)["status"] == "withdrawn"

    case_no = dispatched(app)
    request = {"reason": "申请单位申请终止帮办代办服务", "remark": "企业调整投资计划"}
    url = f"/cases/{case_no}/actions/termination_request"
    before = snapshot(app, case_no)
    assert_asks(post(huarui, url, request), "确定申请终止吗？")
    assert snapshot(app, case_no) == before
    assert post(huarui, url, request, confirmed=True).status_code == 302
    agent = html_login(app, "agent1")
    review = f"/tasks/{api_task(api_login(app, 'agent1'), case_no, '审核终止申请')}"
    before = snapshot(app, case_no)
    assert_asks(post(agent, review, {"termination_decision": "同意终止", "termination_opinion": "同意"}), "同意终止后")
    assert snapshot(app, case_no) == before
    # 不同意终止 ends nothing: no question
    assert post(agent, review, {"termination_decision": "不同意终止", "termination_opinion": "项目尚可推进"}).status_code == 302
    assert snapshot(app, case_no)["status"] == "active"
    assert "办理终止手续" not in [n for _, n in snapshot(app, case_no)["open_tasks"]]


# =============================================================================================================
# Validation of show and confirm
# =============================================================================================================
def _edit(files: dict, old: str, new: str) -> dict:
    text_ = files["bangban_case.bpmn"].decode()
    assert text_.count(old) == 1, old
    return dict(files, **{"bangban_case.bpmn": text_.replace(old, new).encode()})


def _problems(files: dict) -> list:
    return list(validate_set(files))


def test_validation_checks_show_views_and_confirm(process_files):
    handle = """name="show" value="item, correction_request, correction_due, supplement_description, \
latest(Task_Supervise, escalation['code'], item['code'])" />"""
    cases = [
        (handle, 'name="show" value="item, summary()" />', "视图「summary」不存在", "Task_Handle"),
        (handle, """name="show" value="item, latest(Task_Nowhere, escalation['code'], item['code'])" />""",
         "latest 的任务「Task_Nowhere」不是本文件中的用户任务", "Task_Handle"),
        (handle, 'name="show" value="item, clock(a, b)" />', "视图 clock 的参数不对", "Task_Handle"),
        (handle, 'name="show" value="item, application" />', "须写成 application()", "Task_Handle"),
        (handle, 'name="show" value="item, item[" />', "无法解析", "Task_Handle"),
        (handle, """name="show" value="clock(item.__class__)" />""", "属性 show 中视图 clock 的参数表达式未通过沙箱检查",
         "Task_Handle"),
        ('name="confirm" value="提交后出具终止单，本办件办理终止，不能再恢复办理。确定提交吗？" />',
         'name="confirm" value="Are you sure?" />', "属性 confirm 应为中文的确认提示", "Task_TerminationSlip"),
        ("""<spiffworkflow:property name="confirm_when" value="review_decision == '不予受理'" />""",
         """<spiffworkflow:property name="confirm_when" value="review_decision.__class__" />""",
         "属性 confirm_when 的表达式未通过沙箱检查", "Task_Review"),
        ('name="outcome" value="terminated" />',
         'name="outcome" value="terminated" /><spiffworkflow:property name="confirm" value="确定结束吗？" />',
         "属性 confirm 只能用于用户任务", "End_Terminated"),
    ]
    for old, new, message, element in cases:
        found = [p for p in _problems(_edit(process_files, old, new)) if message in p.message]
        assert len(found) == 1 and found[0].element == element, (message, [str(p) for p in _problems(
            _edit(process_files, old, new))])
    # a condition without the text would ask nobody
    refusal = "不予受理后办件即告结束，申请单位将收到不予受理告知书，不能再受理本申请。确定不予受理吗？"
    files = _edit(process_files, f'name="confirm" value="{refusal}" />', 'name="stage_note" value="" />')
    assert [p.element for p in _problems(files) if "confirm_when 须与 confirm" in p.message] == ["Task_Review"]
    # a message's confirm must be Chinese words
    manifest = json.loads(process_files["bangban.json"])
    manifest["messages"]["termination"]["confirm"] = 3
    files = dict(process_files, **{"bangban.json": json.dumps(manifest, ensure_ascii=False).encode()})
    assert any("消息 termination 的 confirm 应为中文的确认提示" in p.message for p in _problems(files))
    assert _problems(process_files) == []
