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
    assert re.search(r'<dd id="case-due">.*?2026-03-30', page, re.S)
    assert "原期限 2026-03-30，补正完成后顺延" in text_of(page)
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
    assert row[3:] == ["不予受理", "不予受理", "2026-03-02 09:00", "未受理"]


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
    assert row[3:] == ["已终止", "已终止", "2026-03-02 09:00", "2026-03-03 10:00"]


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
    assert case_list_row(html_login(app, "agent1"), active)[3:] == ["代办受理", "办理中", "2026-03-02 11:30", "尚未受理"]


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
    assert "已督办（2026-03-25 09:0" in rows[0] and f'href="/cases/{no}#event-' in rows[0]
