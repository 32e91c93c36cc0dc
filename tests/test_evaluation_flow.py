"""办结 at delivery, evaluation deadlines (reminder, 未评价) and the 差评 loop, through the engine use cases and the
timer worker with the clock moved.

Dates (2026 schedule, no holidays in March): the case is delivered on Mon 2026-03-02 (local). A 5-working-day clock
started that day counts 03..06 (1..4) and Mon 03-09 (5) = due date; yellow (80% used) from the 4th working day,
Fri 03-06 00:00 local, red from Tue 03-10 00:00 local (= 03-09 16:00 UTC).

Every test runs warm and cold and ends with every case passing ``audit verify``.
"""
from __future__ import annotations

from datetime import datetime

import pytest

import tests.helpers as h
from engine.clock import LOCAL_TZ, clock

pytestmark = [pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True),
              pytest.mark.usefixtures("all_cases_verified")]

NOT_SIGNED = "申请单位送达后5个工作日内未签收办结单，以送达办结"


def L(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ)


@pytest.fixture(autouse=True)
def frozen_clock():
    h.freeze_clock()


def delivered(svc, items=("hp",)) -> str:
    """A case delivered on Mon 2026-03-02 (the 办结单 issued, waiting for the applicant's signature)."""
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, list(items))
    h.approve_items(svc, case_no, list(items))
    h.collect_and_deliver(svc, case_no)
    return case_no


def status_changes(svc, case_no) -> list[str]:
    return [f"{e.payload['from']}>{e.payload['to']}" for e in h.events(svc, case_no) if e.type == "status_changed"]


# ---- item 4: 办结 at delivery ---------------------------------------------------------------------------------
def test_signing_the_receipt_completes_the_case_while_ratings_stay_open(svc):
    case_no = delivered(svc)
    assert h.case_row(svc, case_no).status == "active"
    h.complete(svc, "huarui", "签收办结单", case_no=case_no, **h.receipt())
    row = h.case_row(svc, case_no)
    assert (row.status, row.stage) == ("completed", "事后评价")
    assert status_changes(svc, case_no) == ["active>completed"]
    # The ratings are open tasks of a 已办结 case: in the raters' inboxes and on the case page.
    assert h.inbox_names(svc, "huarui") == [("评价代办服务", None)]
    assert h.inbox_names(svc, "window1") == [("评价部门业务专办窗口", h.DEPT_NAMES["sthj"])]
    page = h.view(svc, case_no)
    assert page["case"]["status_name"] == "已办结"
    assert sorted(t["name"] for t in page["open_tasks"]) == ["评价代办服务", "评价部门业务专办窗口"]
    assert page["case"]["details"] == []               # signed: no note on how it was completed
    assert page["clocks"]["receipt"]["level"] == "done"                 # signed in time
    h.assert_round_trip(svc, case_no)
    # Rating later changes nothing of the status.
    h.complete(svc, "huarui", "评价代办服务", case_no=case_no, **h.rating())
    h.rate_departments(svc, case_no)
    assert h.case_row(svc, case_no).status == "completed"
    assert status_changes(svc, case_no) == ["active>completed"]
    assert h.open_tasks(svc, case_no) == []


def test_unsigned_receipt_completes_the_case_at_delivery_after_five_working_days(svc):
    case_no = delivered(svc)
    clock.set(L(2026, 3, 9, 23, 0))           # the 5th working day: still waiting for the signature
    svc.fire_due()
    assert h.case_row(svc, case_no).status == "active"
    assert h.inbox_names(svc, "huarui") == [("签收办结单", None)]
    clock.set(L(2026, 3, 10, 9, 0))           # the 6th working day: not signed within 5 working days
    svc.fire_due()
    row = h.case_row(svc, case_no)
    assert (row.status, row.stage) == ("completed", "事后评价")
    assert h.inbox_names(svc, "huarui") == [("评价代办服务", None)]       # the receipt task is gone
    evs = h.events(svc, case_no)
    fired = [e.payload["timer"] for e in evs if e.type == "timer_fired"]
    assert "逾期未签收" in fired
    assert [e.task_name for e in evs if e.type == "task_ended"] == ["签收办结单"]
    assert status_changes(svc, case_no) == ["active>completed"]
    page = h.view(svc, case_no)
    assert page["case"]["details"] == [{"name": "completion_basis", "title": "办结方式", "value": NOT_SIGNED}]
    assert page["case"]["status_name"] == "已办结"
    h.assert_round_trip(svc, case_no)


# ---- item 5: evaluation deadlines, reminder, 未评价 --------------------------------------------------------------
def notices(svc, username: str) -> list[str]:
    return [n["text"] for n in svc.notifications(h.actor(svc, username), limit=100)]


def signed(svc, items=("hp",)) -> str:
    case_no = delivered(svc, items)
    h.complete(svc, "huarui", "签收办结单", case_no=case_no, **h.receipt())
    return case_no


def evaluation_rows(svc, case_no) -> dict[str, tuple]:
    ev = h.view(svc, case_no)["evaluations"]
    return {r["key"]: (r["status"], r["rating"], r["national_level"]) for r in ev["rows"]}


def test_each_evaluation_invites_its_rater_with_a_deadline(svc):
    case_no = signed(svc)
    assert any("请对帮办代办服务进行综合评价，请于" in t and "逾期记为未评价" in t for t in notices(svc, "huarui"))
    assert any(t.startswith("【新待办】评价部门业务专办窗口（焦作市生态环境局武陟分局）") and "请于2026年3月9日前办理" in t
               for t in notices(svc, "window1"))
    page = h.view(svc, case_no)
    assert page["clocks"]["评价:agent"]["level"] == "green" and page["clocks"]["评价:agent"]["left"] == 5
    assert page["evaluations"]["counts"] == {"total": 2, "rated": 0, "unrated": 0, "pending": 2, "excluded": 0, "poor": 0}
    h.complete(svc, "huarui", "评价代办服务", case_no=case_no, **h.rating("非常满意"))
    assert evaluation_rows(svc, case_no)["agent"] == ("已评价", "非常满意", "非常满意")
    assert h.view(svc, case_no)["clocks"]["评价:agent"]["level"] == "done"


def test_reminder_then_unrated_after_the_deadline(svc):
    case_no = signed(svc)
    clock.set(L(2026, 3, 5, 12))               # 3rd working day: nothing yet
    svc.fire_due()
    assert not any(t.startswith("【评价提醒】") for t in notices(svc, "huarui"))
    clock.set(L(2026, 3, 6, 9))                # 4th working day (80% of 5 used): yellow, the reminder
    svc.fire_due()
    reminders = [t for t in notices(svc, "huarui") if t.startswith("【评价提醒】")]
    assert reminders == ["【评价提醒】请对牵头代办人进行评价，评价期限即将届满，逾期将记为未评价"]
    assert h.inbox_names(svc, "huarui") == [("评价代办服务", None)]
    svc.fire_due()                             # not repeated
    assert len([t for t in notices(svc, "huarui") if t.startswith("【评价提醒】")]) == 1
    # The window rates its department in time; the applicant does not.
    h.rate_departments(svc, case_no)
    clock.set(L(2026, 3, 10, 9))               # the deadline has passed: the evaluation closes as 未评价
    svc.fire_due()
    assert h.inbox_names(svc, "huarui") == []
    assert h.open_tasks(svc, case_no) == []
    rows = evaluation_rows(svc, case_no)
    assert rows == {"agent": ("未评价", None, None), "dept:sthj": ("已评价", "满意", "满意")}
    counts = h.view(svc, case_no)["evaluations"]["counts"]
    assert (counts["rated"], counts["unrated"], counts["pending"]) == (1, 1, 0)   # 未评价 is not a rating
    evs = h.events(svc, case_no)
    assert [e.task_name for e in evs if e.type == "task_ended"] == ["评价代办服务"]
    assert "逾期未评价" in [e.payload["timer"] for e in evs if e.type == "timer_fired"]
    # No 评价表 for the unrated one; the case stays 已办结 and its workflow has ended.
    assert [k for k, _, _ in h.documents(svc, case_no)].count("评价表") == 1
    row = h.case_row(svc, case_no)
    assert row.status == "completed" and row.due_date is None
    h.assert_round_trip(svc, case_no)


# ---- item 6: the 差评 loop -------------------------------------------------------------------------------------
AGENT = "牵头代办人"
STHJ = h.DEPT_NAMES["sthj"]
CALLBACK = {"callback_method": "电话回访", "callback_contact": "张华瑞 13800000000", "callback_record": "反映送达不及时"}


def poorly_rated(svc, value: str = "不满意") -> str:
    """A signed case whose applicant gave its lead agent a 差评 (the window rated its department 满意)."""
    case_no = signed(svc)
    h.rate_departments(svc, case_no)
    h.complete(svc, "huarui", "评价代办服务", case_no=case_no, **h.rating(value, comments="送达不及时"))
    return case_no


def followup(svc, case_no, key: str = "agent") -> dict:
    return next(r for r in h.view(svc, case_no)["evaluations"]["rows"] if r["key"] == key)


def test_poor_rating_is_called_back_rectified_and_confirmed_by_the_rater(svc):
    case_no = poorly_rated(svc)
    row = followup(svc, case_no)
    assert (row["status"], row["rating"], row["national_level"], row["poor"], row["followup"]) == \
        ("已评价", "不满意", "不满意", True, "待回访")
    # 回访 by the county bureau, on a 1-working-day clock.
    assert h.inbox_names(svc, "supervisor1", case_no) == [("差评回访", AGENT)]
    page = h.view(svc, case_no)
    assert page["clocks"]["回访:agent"]["limit_days"] == 1 and page["clocks"]["回访:agent"]["level"] in ("yellow", "green")
    assert h.case_row(svc, case_no).status == "completed"
    h.complete(svc, "supervisor1", "差评回访", AGENT, case_no=case_no, **CALLBACK)
    # 整改 by the rated agent, on a 5-working-day clock; the agent is told.
    assert h.inbox_names(svc, "agent1", case_no) == [("差评整改", AGENT)]
    assert h.inbox_names(svc, "agent2", case_no) == []
    assert any(t.startswith("【差评整改】牵头代办人收到差评") for t in notices(svc, "agent1"))
    assert h.view(svc, case_no)["clocks"]["整改:agent"]["limit_days"] == 5
    h.complete(svc, "agent1", "差评整改", AGENT, case_no=case_no, rectify_action="已整改",
               rectify_measures="已向申请单位致歉，今后送达当日电话告知")
    assert h.view(svc, case_no)["clocks"]["整改:agent"]["level"] == "done"
    # The result goes back to the rater, who confirms.
    assert any(t.startswith("【整改反馈】您对牵头代办人的差评已整改：已向申请单位致歉") for t in notices(svc, "huarui"))
    h.complete(svc, "huarui", "确认整改结果", case_no=case_no, confirmation="认可整改结果", confirmation_comments="满意")
    row = followup(svc, case_no)
    assert row["followup"] == "已整改，评价人认可整改结果" and row["callback"] == "反映送达不及时"
    assert row["rectification"] == "已向申请单位致歉，今后送达当日电话告知" and not row["excluded"]
    assert h.open_tasks(svc, case_no) == []
    assert h.view(svc, case_no)["evaluations"]["counts"] == \
        {"total": 2, "rated": 2, "unrated": 0, "pending": 0, "excluded": 0, "poor": 1}
    h.assert_round_trip(svc, case_no)


def test_rejected_appeal_sends_the_department_back_to_rectify_and_the_window_may_disagree(svc):
    case_no = signed(svc)
    h.complete(svc, "huarui", "评价代办服务", case_no=case_no, **h.rating("满意"))
    h.complete(svc, "window1", "评价部门业务专办窗口", STHJ, case_no=case_no, **h.rating("非常不满意"))
    h.complete(svc, "supervisor1", "差评回访", STHJ, case_no=case_no, **CALLBACK)
    assert h.inbox_names(svc, "zb_sthj", case_no) == [("差评整改", STHJ)]
    assert h.inbox_names(svc, "zb_zjj", case_no) == []
    rectify = h.find_task(svc, "zb_sthj", "差评整改", STHJ, case_no)
    assert svc.get_task(h.actor(svc, "zb_sthj"), rectify["task_id"])["actions"] == []   # no 延期 after 办结
    h.complete(svc, "zb_sthj", "差评整改", STHJ, case_no=case_no, rectify_action="申诉（恶意评价）",
               appeal_reason="评价与办理情况不符")
    # While the supervisor decides, the 整改 clock is paused.
    assert h.view(svc, case_no)["clocks"]["整改:dept:sthj"]["level"] == "paused"
    h.complete(svc, "supervisor1", "审理差评申诉", STHJ, case_no=case_no, appeal_decision="申诉不成立",
               appeal_decision_reason="经核实，该部门确有延误")
    assert h.inbox_names(svc, "zb_sthj", case_no) == [("差评整改", STHJ)]        # back to rectify
    assert h.view(svc, case_no)["clocks"]["整改:dept:sthj"]["level"] in ("green", "yellow")
    h.complete(svc, "zb_sthj", "差评整改", STHJ, case_no=case_no, rectify_action="已整改", rectify_measures="已优化内部流转")
    h.complete(svc, "window1", "确认整改结果", STHJ, case_no=case_no, confirmation="不认可", confirmation_comments="仍需改进")
    row = followup(svc, case_no, "dept:sthj")
    assert (row["rating"], row["followup"], row["excluded"]) == ("非常不满意", "已整改，评价人不认可整改结果", False)
    assert h.open_tasks(svc, case_no) == []
    h.assert_round_trip(svc, case_no)


def test_upheld_appeal_excludes_the_rating_from_the_figures_but_keeps_it(svc):
    case_no = poorly_rated(svc, "非常不满意")
    h.complete(svc, "supervisor1", "差评回访", AGENT, case_no=case_no, **CALLBACK)
    h.complete(svc, "agent1", "差评整改", AGENT, case_no=case_no, rectify_action="申诉（恶意评价）",
               appeal_reason="申请单位因私人纠纷恶意评价")
    h.complete(svc, "supervisor1", "审理差评申诉", AGENT, case_no=case_no, appeal_decision="申诉成立",
               appeal_decision_reason="经调查属恶意评价")
    assert h.open_tasks(svc, case_no) == []
    row = followup(svc, case_no)
    assert (row["status"], row["rating"], row["excluded"], row["appeal_decision"]) == \
        ("已评价", "非常不满意", True, "经调查属恶意评价")
    counts = h.view(svc, case_no)["evaluations"]["counts"]
    assert (counts["rated"], counts["excluded"], counts["poor"]) == (1, 1, 0)   # only the department's rating counts
    assert any("申诉成立：经调查属恶意评价" in t for t in notices(svc, "huarui"))
    assert [k for k, _, _ in h.documents(svc, case_no)].count("评价表") == 2      # the 评价表 is never withdrawn
    assert h.view(svc, case_no)["clocks"]["整改:agent"]["level"] in ("done", "ended")
    h.assert_round_trip(svc, case_no)


def test_callback_and_rectification_clocks_turn_red_and_reach_the_supervisor(svc):
    case_no = poorly_rated(svc)                 # rated Mon 2026-03-02: 回访 due the next working day
    clock.set(L(2026, 3, 4, 9))                # Wed: the 回访 is overdue
    svc.fire_due()
    assert any(t.startswith("【红牌超期】差评回访（牵头代办人）") for t in notices(svc, "supervisor1"))
    red = [i for i in svc.supervision(h.actor(svc, "supervisor1"))["items"] if i["case_no"] == case_no]
    assert [(i["title"], i["level"]) for i in red] == [("差评回访（牵头代办人）", "red")]
    h.complete(svc, "supervisor1", "差评回访", AGENT, case_no=case_no, **CALLBACK)
    clock.set(L(2026, 3, 9, 9))                # 3rd working day of 5 since Wed 03-04: nothing yet
    svc.fire_due()
    assert not any(t.startswith("【黄牌预警】差评整改") for t in notices(svc, "agent1"))
    clock.set(L(2026, 3, 10, 9))               # 4th working day: yellow, the agent is reminded
    svc.fire_due()
    assert any(t.startswith("【黄牌预警】差评整改（牵头代办人）") for t in notices(svc, "agent1"))
    clock.set(L(2026, 3, 12, 9))               # past the 5 working days (due Wed 03-11): red, to the supervisor
    svc.fire_due()
    assert any(t.startswith("【红牌超期】差评整改（牵头代办人）") for t in notices(svc, "supervisor1"))
    h.complete(svc, "agent1", "差评整改", AGENT, case_no=case_no, rectify_action="已整改", rectify_measures="已整改到位")
    assert h.view(svc, case_no)["clocks"]["整改:agent"]["level"] == "late"
    # The rater has 5 working days to confirm (from Thu 03-12: due Thu 03-19); then it is recorded as not confirmed.
    assert h.inbox_names(svc, "huarui", case_no) == [("确认整改结果", None)]
    clock.set(L(2026, 3, 20, 9))
    svc.fire_due()
    assert h.open_tasks(svc, case_no) == []
    assert followup(svc, case_no)["followup"] == "已整改，评价人逾期未确认整改结果"
    assert "逾期未确认" in [e.payload["timer"] for e in h.events(svc, case_no) if e.type == "timer_fired"]
    h.assert_round_trip(svc, case_no)


def test_a_supervisor_reassigns_a_rectification_of_a_completed_case(svc):
    case_no = poorly_rated(svc)
    h.complete(svc, "supervisor1", "差评回访", AGENT, case_no=case_no, **CALLBACK)
    task = h.find_task(svc, "agent1", "差评整改", AGENT, case_no)
    svc.reassign_task(h.actor(svc, "supervisor1"), task["task_id"], "agent2", "原代办员长期请假", "task")
    h.tick()
    assert h.inbox_names(svc, "agent1", case_no) == [] and h.inbox_names(svc, "agent2", case_no) == [("差评整改", AGENT)]
    h.complete(svc, "agent2", "差评整改", AGENT, case_no=case_no, rectify_action="已整改", rectify_measures="已整改到位")
    assert h.case_row(svc, case_no).status == "completed"
    assert h.inbox_names(svc, "huarui", case_no) == [("确认整改结果", None)]
