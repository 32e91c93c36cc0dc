"""What a case says about itself is true (issue 16, point 6), and urgency is visible (point 5): each through the pages
people read, on the frozen test clock.
"""
from __future__ import annotations

import re
from datetime import date, datetime

import pytest

from engine.clock import LOCAL_TZ, clock
from engine.worker import run_once
from tests import helpers as h
from tests.conftest import actor
from tests.test_browser import live_server  # noqa: F401  (a fixture)
from tests.webclient import api_login, html_login
from web import create_app

L = LOCAL_TZ


@pytest.fixture
def app(svc):
    h.freeze_clock(datetime(2026, 3, 2, 9, tzinfo=L))
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def case_list_row(c, case_no: str) -> list[str]:
    page = c.get("/cases").text
    for row in re.findall(r"<tr(?: [^>]*)?>(.*?)</tr>", page, re.S):
        if f">{case_no}<" in row:
            return [text_of(td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    raise AssertionError(f"办件查询中没有 {case_no}")


def case_items(c, case_no: str) -> dict[str, str]:
    page = c.get(f"/cases/{case_no}").text
    table = re.search(r'<table class="list" id="items">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [text_of(td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        out[cells[0]] = cells[3]
    return out


# ---- 全案办结期限 while an item waits for 补正 --------------------------------------------------------------------------
def test_the_case_deadline_does_not_move_earlier_while_an_item_is_paused(svc, app):
    no = h.start(svc, service_items=["hp", "xf"])
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp", "xf"])            # 环评 20 working days (03-30), 消防 15 (03-23)
    assert h.case_row(svc, no).due_date == date(2026, 3, 30)
    clock.set(datetime(2026, 3, 9, 10, tzinfo=L))
    h.complete(svc, "zb_sthj", "部门办理", h.ITEM_NAMES["hp"], case_no=no, **h.needs_correction("补充环评专章"))
    assert h.case_row(svc, no).due_date == date(2026, 3, 30)      # not 03-23, the one running item's
    page = api_login(app, "agent1").get(f"/cases/{no}").text
    assert re.search(r'<dd id="case-due">.*?2026年3月30日', page, re.S)
    assert "原期限 2026年3月30日，补正完成后顺延" in text_of(page)
    clock.set(datetime(2026, 3, 12, 15, tzinfo=L))
    h.complete(svc, "huarui", "补正材料", h.ITEM_NAMES["hp"], case_no=no, **h.supplement())
    assert h.case_row(svc, no).due_date == date(2026, 4, 2)       # 3 working days of 补正 added
    h.assert_event_chain(svc, no)
    assert svc.audit_case(no)["ok"]


# ---- items, stage, acceptance time and the reason of a closed case ------------------------------------------------
def test_a_refused_case_shows_its_reason_at_the_top_and_no_item_waits_for_dispatch(svc, app):
    no = h.start(svc)
    clock.set(datetime(2026, 3, 3, 10, tzinfo=L))
    h.complete(svc, "agent1", "受理审核", case_no=no, review_decision="不予受理",
               refusal_explanation="申请事项不属于帮办代办服务范围")
    agent = html_login(app, "agent1")
    page = agent.get(f"/cases/{no}").text
    top = page[:page.index('id="stages"')]
    assert re.search(r'id="case-outcome".*?不予受理的原因及解释.*?申请事项不属于帮办代办服务范围', top, re.S)
    assert set(case_items(agent, no).values()) == {"未分派（不予受理）"}
    row = case_list_row(agent, no)
    assert row[3:] == ["不予受理", "不予受理", "2026年3月2日 09:00", "未受理"]


def test_a_terminated_case_lists_no_item_as_waiting_and_no_stage_of_work(svc, app):
    no = h.start(svc, service_items=["hp", "gd"])
    clock.set(datetime(2026, 3, 3, 10, tzinfo=L))
    h.accept_and_commission(svc, no)
    h.send(svc, "agent1", no, "termination", reason="国家法律法规规章和政策发生调整", remark="产业政策调整，项目暂缓")
    h.complete(svc, "agent1", "办理终止手续", case_no=no, **h.slip("国家法律法规规章和政策发生调整"))
    assert h.case_row(svc, no).status == "terminated"
    agent = html_login(app, "agent1")
    assert set(case_items(agent, no).values()) == {"未分派（已终止）"}
    page = agent.get(f"/cases/{no}").text
    assert re.search(r'id="case-outcome".*?终止原因.*?国家法律法规规章和政策发生调整', page[:page.index('id="stages"')], re.S)
    row = case_list_row(agent, no)
    assert row[3:] == ["已终止", "已终止", "2026年3月2日 09:00", "2026年3月3日 10:00"]


def test_a_completed_case_in_its_evaluations_shows_as_completed_not_as_a_stage(svc, app):
    no = h.start(svc, service_items=["gd"])
    clock.set(datetime(2026, 3, 2, 11, tzinfo=L))
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["gd"])
    h.approve_items(svc, no, ["gd"])
    h.collect_and_deliver(svc, no)
    h.complete(svc, "huarui", "签收办结单", case_no=no, **h.receipt())
    assert (h.case_row(svc, no).status, h.case_row(svc, no).stage) == ("completed", "事后评价")
    row = case_list_row(html_login(app, "agent1"), no)
    assert row[3:5] == ["已办结", "已办结"]
    clock.set(datetime(2026, 3, 2, 11, 30, tzinfo=L))
    active = h.start(svc)
    assert case_list_row(html_login(app, "agent1"), active)[3:] == ["代办受理", "办理中", "2026年3月2日 11:30", "尚未受理"]


# ---- 送达日期 not in the future -----------------------------------------------------------------------------------------
def test_a_delivery_date_in_the_future_is_refused(svc, app):
    no = h.start(svc, service_items=["gd"])
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["gd"])
    h.approve_items(svc, no, ["gd"])
    h.complete(svc, "agent1", "汇总办理结果", case_no=no, results_collected=True)
    agent = api_login(app, "agent1")
    task = h.find_task(svc, "agent1", "统一送达", case_no=no)["task_id"]
    r = agent.post(f"/api/tasks/{task}/complete", json=h.deliver(delivery_date="2026-03-03"))
    assert r.status_code == 422 and "送达日期" in r.json["message"] and "不能晚于今天" in r.json["message"], r.json
    assert agent.post(f"/api/tasks/{task}/complete", json=h.deliver(delivery_date="2026-03-02")).status_code == 200


# ---- urgency: inbox marks, 督办 on the supervision page, the supervisor's rows filled ----------------------------------
def test_red_items_are_marked_and_their_supervision_is_linked(svc, app):
    no = h.start(svc, service_items=["xf", "hp"])
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["xf", "hp"])                # 消防 due 03-23, 环评 03-30
    clock.set(datetime(2026, 3, 25, 9, tzinfo=L))
    assert run_once(svc) == 1
    zjj = html_login(app, "zb_zjj")
    inbox = zjj.get("/inbox").text
    row = re.search(r'<tr class="urgency-red">(.*?)</tr>', inbox, re.S).group(1)
    assert '<span class="badge badge-red urgency">超期</span>' in row and no in row
    sthj = html_login(app, "zb_sthj").get("/inbox").text
    assert '<span class="badge badge-yellow urgency">临期</span>' in sthj

    supervisor = html_login(app, "supervisor1")
    page = supervisor.get("/supervision").text
    rows = re.findall(r"<tr>(.*?)</tr>", re.search(r'id="warnings">.*?<tbody>(.*?)</tbody>', page, re.S).group(1), re.S)
    task = h.find_task(svc, "supervisor1", "督办", case_no=no)
    assert "已发起，待督办" in rows[0] and f'href="/tasks/{task["task_id"]}"' in rows[0]
    assert "督办" not in text_of(rows[1]).replace("时限督办", "")      # the yellow item has none
    # the supervisor's own 督办 row: its stage and the item's clock
    own = re.search(r'<tr class="urgency-red">(.*?)</tr>', supervisor.get("/inbox").text, re.S).group(1)
    assert "限时办结" in own and "已超期2个工作日" in own
    h.complete(svc, "supervisor1", "督办", case_no=no, supervise_method="电话督办", supervise_opinion="请于两个工作日内办结",
               rectify_by="2026-03-27")
    page = supervisor.get("/supervision").text
    rows = re.findall(r"<tr>(.*?)</tr>", re.search(r'id="warnings">.*?<tbody>(.*?)</tbody>', page, re.S).group(1), re.S)
    assert "已督办（2026年3月25日 09:0" in rows[0] and f'href="/cases/{no}#event-' in rows[0]


# ---- forms: carry over what is known, show what applies, offer what the person may choose, ask to tick --------------
def test_forms_carry_over_the_service_mode_the_termination_reason_and_the_requested_days(svc, app):
    no = h.start(svc, service_mode="上门服务", service_items=["xf"])
    h.complete(svc, "agent1", "受理审核", case_no=no, **h.accept())
    agent = html_login(app, "agent1")
    page = agent.get(f"/tasks/{h.find_task(svc, 'agent1', '材料交接并签订委托书', case_no=no)['task_id']}").text
    assert re.search(r'<option value="上门服务" selected>', page)
    h.complete(svc, "agent1", "材料交接并签订委托书", case_no=no, **h.commission())
    h.dispatch(svc, no, ["xf"])
    task = h.find_task(svc, "zb_zjj", "部门办理", h.ITEM_NAMES["xf"], case_no=no)
    svc.send_message(actor(svc, "zb_zjj"), None, "extension_request",
                     {"extension_days": 4, "extension_reason": "需要专家现场核查"}, task_id=task["task_id"])
    approve = h.find_task(svc, "supervisor1", "审批延期申请", case_no=no)["task_id"]
    supervisor = html_login(app, "supervisor1")
    page = supervisor.get(f"/tasks/{approve}").text
    assert re.search(r'name="extension_days_approved" id="f-extension_days_approved" value="4"', page)
    row = next(r for r in re.findall(r"<tr(?: [^>]*)?>(.*?)</tr>", supervisor.get("/inbox").text, re.S) if approve in r)
    cells = [text_of(td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[4] == "限时办结" and cells[6].startswith("● 剩余15个工作日"), cells     # the item's clock
    h.send(svc, "huarui", no, "termination_request", reason="出现不可抗力导致项目不具备办理条件")
    h.complete(svc, "agent1", "审核终止申请", case_no=no, termination_decision="同意终止", termination_opinion="同意")
    page = agent.get(f"/tasks/{h.find_task(svc, 'agent1', '办理终止手续', case_no=no)['task_id']}").text
    assert re.search(r'<option value="出现不可抗力导致项目不具备办理条件" selected>', page)


def test_the_applicant_is_not_offered_the_agents_termination_reason(svc, app):
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    applicant = html_login(app, "huarui").get(f"/cases/{no}/actions/termination_request").text
    agent = html_login(app, "agent1").get(f"/cases/{no}/actions/termination").text
    assert "申请单位申请终止帮办代办服务" in applicant and "申请单位不配合或弄虚作假" not in applicant
    assert "申请单位不配合或弄虚作假导致项目办理无法推进" in agent
    r = api_login(app, "huarui").post(f"/api/cases/{no}/messages/termination_request",
                                      json={"reason": "申请单位不配合或弄虚作假导致项目办理无法推进"})
    assert r.status_code == 422, r.text


def test_an_unticked_box_is_asked_to_be_ticked(svc, app):
    no = h.start(svc)
    task = h.find_task(svc, "agent1", "受理审核", case_no=no)["task_id"]
    r = api_login(app, "agent1").post(f"/api/tasks/{task}/complete", json={"review_decision": "受理"})
    assert r.status_code == 422 and "请勾选「已核验申请单位出具的业务委托办理书面证明」" in r.json["message"], r.json
    assert "为必填项" not in r.json["message"]


def test_the_review_form_shows_the_refusal_reason_only_when_refusing(svc, app):
    from engine.forms import shown_when
    assert shown_when(svc.current.form("review.json")) == {"refusal_explanation": {"review_decision": ["不予受理"]},
                                                            "authorization_checked": {"review_decision": ["受理"]}}
    assert shown_when(svc.current.form("deliver.json")) == {"tracking_no": {"delivery_method": ["邮寄"]}}
    no = h.start(svc)
    page = html_login(app, "agent1").get(f"/tasks/{h.find_task(svc, 'agent1', '受理审核', case_no=no)['task_id']}").text
    assert 'data-field="refusal_explanation" data-shown-when="{&#34;review_decision&#34;: [&#34;' in page
    assert "form-conditions.js" in page


@pytest.mark.browser
def test_the_refusal_reason_appears_and_goes_with_the_choice_in_a_browser(svc, live_server):  # noqa: F811
    from tests.test_browser import chromium_page, login, require_chromium
    require_chromium()
    h.freeze_clock(datetime(2026, 3, 2, 9, tzinfo=L))
    no = h.start(svc)
    task = h.find_task(svc, "agent1", "受理审核", case_no=no)["task_id"]
    with chromium_page(live_server) as page:
        login(page, "agent1")
        page.goto(f"/tasks/{task}")
        reason = page.locator('[data-field="refusal_explanation"]')
        check = page.locator('[data-field="authorization_checked"]')
        assert not reason.is_visible() and not check.is_visible()
        page.get_by_label("不予受理", exact=True).check()
        assert reason.is_visible() and not check.is_visible()
        page.locator("#f-refusal_explanation").fill("不属于服务范围")
        page.get_by_label("受理", exact=True).check()
        assert not reason.is_visible() and check.is_visible()
        assert page.locator("#f-refusal_explanation").is_disabled()
