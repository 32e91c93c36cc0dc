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
    h.complete(svc, "huarui", "评价代办服务", case_no=case_no, **h.rating("张华瑞"))
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
    assert any(t.startswith("【评价邀请】帮办代办服务已办结，请对牵头代办人进行评价（5个工作日内") for t in notices(svc, "huarui"))
    assert any("请对焦作市生态环境局武陟分局进行评价" in t for t in notices(svc, "window1"))
    page = h.view(svc, case_no)
    assert page["clocks"]["评价:agent"]["level"] == "green" and page["clocks"]["评价:agent"]["left"] == 5
    assert page["evaluations"]["counts"] == {"total": 2, "rated": 0, "unrated": 0, "pending": 2, "excluded": 0, "poor": 0}
    h.complete(svc, "huarui", "评价代办服务", case_no=case_no, **h.rating("张华瑞", "非常满意"))
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

