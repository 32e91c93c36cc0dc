"""Statutory clocks through the engine use cases (engine.services.Bangban) and the timer worker, with the clock moved.

The service item used throughout is 消防（设计审查/验收） (code xf, 县住房和城乡建设局 zjj, 15 working days); 环评 (hp,
焦作市生态环境局武陟分局 sthj) has 20.  Dates are counted by hand (2026 schedule: see tests/test_deadlines.py):
  dispatched Mon 2026-03-02 -> 15 days: 03..06 (1..4), 09..13 (5..9), 16..20 (10..14), Mon 03-23 (15) = due date;
  yellow on the 12th working day Wed 03-18 from 00:00 local (= 03-17 16:00 UTC); red from Tue 03-24 00:00 local
  (= 03-23 16:00 UTC).
  20 days (hp): 03-24 (16th) is its yellow day, 03-30 its due date.
Any 2027 schedule below is MADE-UP TEST DATA, not the real 2027 holidays.

Every test runs warm and cold (each step in a service opened afresh from the database) and ends with every case
passing ``audit verify``.
"""
from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime

import pytest

import tests.helpers as h
from engine import processes
from engine.clock import LOCAL_TZ, clock, now
from engine.deadlines import ClockState
from engine.runtime import CaseRun
from engine.services import Bangban
from engine.worker import run_once
from tests.conftest import ROOT, actor

XF = "消防（设计审查/验收）"
XF_DEPT = "县住房和城乡建设局"
HP = "环评"
YELLOW_XF = f"【黄牌预警】{XF}（{XF_DEPT}）办理时限即将届满，请抓紧办理"
RED_XF = f"【红牌超期】{XF}（{XF_DEPT}）已超过办理时限，已提请督办"
SUPERVISE_TITLE = f"{XF}（{XF_DEPT}）"


pytestmark = [pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True),
              pytest.mark.usefixtures("all_cases_verified")]


def L(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ)


def U(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def utc(value: datetime | None) -> datetime | None:
    """Stored times as aware UTC (SQLite hands back naive UTC, PostgreSQL aware)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


DISPATCH = L(2026, 3, 2, 9)   # Mon 2026-03-02 09:00 local


def dispatched(svc: Bangban, items: list[str], at: datetime = DISPATCH) -> str:
    """A case accepted and dispatched at ``at`` (each step moves the clock on by a minute)."""
    clock.set(at)
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, items)
    return case_no


def case_id(svc: Bangban, case_no: str) -> int:
    return h.case_row(svc, case_no).id


def clock_row(svc: Bangban, case_no: str, key: str):
    with svc.db.unit_of_work(write=False) as uow:
        rows = {r.key: r for r in uow.repo.clocks_for_case(case_id(svc, case_no))}
    return rows[key]


def timers(svc: Bangban, case_no: str) -> list[tuple[str, datetime]]:
    with svc.db.unit_of_work(write=False) as uow:
        return sorted((t.name, utc(t.due_at)) for t in uow.repo.timers_for_case(case_id(svc, case_no)))


def fired(svc: Bangban, case_no: str) -> list[tuple[str, str]]:
    return [(e.payload["timer"], e.payload.get("title")) for e in h.events(svc, case_no) if e.type == "timer_fired"]


def texts(svc: Bangban, username: str) -> list[str]:
    return [n["text"] for n in svc.notifications(actor(svc, username), limit=100)]


def task_clock(svc: Bangban, username: str, case_no: str, name: str = "部门办理") -> dict:
    return h.find_task(svc, username, name, case_no=case_no)["clock"]


def worker(svc: Bangban, at: datetime) -> int:
    clock.set(at)
    return run_once(svc)


# ---- (a) green -> yellow -> red -> 督办 ----------------------------------------------------------------------------------
def test_item_goes_green_yellow_red_and_is_escalated(svc):
    no = dispatched(svc, ["xf"])
    row = clock_row(svc, no, "xf")
    assert (row.level, row.due_date, row.limit_days, row.department, row.lead_user) == \
        ("green", date(2026, 3, 23), 15, "zjj", "agent1")
    assert (utc(row.yellow_at), utc(row.red_at)) == (U(2026, 3, 17, 16), U(2026, 3, 23, 16))
    assert timers(svc, no) == [("红牌超期", U(2026, 3, 23, 16)), ("黄牌预警", U(2026, 3, 17, 16))]
    assert task_clock(svc, "zb_zjj", no)["text"] == "剩余15个工作日"
    assert (h.case_row(svc, no).warning, h.case_row(svc, no).due_date) == ("green", date(2026, 3, 23))

    # Nothing is due yet, also one second before yellow.
    assert worker(svc, L(2026, 3, 2, 12)) == 0
    assert worker(svc, datetime(2026, 3, 17, 23, 59, 59, tzinfo=LOCAL_TZ)) == 0
    assert fired(svc, no) == []

    # ---- yellow: Wed 03-18 09:00 (12 of 15 used)
    assert worker(svc, L(2026, 3, 18, 9)) == 1
    assert fired(svc, no) == [("黄牌预警", XF)]
    assert clock_row(svc, no, "xf").level == "yellow"
    assert timers(svc, no) == [("红牌超期", U(2026, 3, 23, 16))]
    assert YELLOW_XF in texts(svc, "agent1")        # the lead agent
    assert YELLOW_XF in texts(svc, "zb_zjj")        # the department (dept:zjj)
    assert YELLOW_XF not in texts(svc, "zb_sthj")   # another department
    assert task_clock(svc, "zb_zjj", no)["text"] == "剩余3个工作日"
    sup = svc.supervision(actor(svc, "supervisor1"))
    assert [(i["key"], i["level"], i["text"], i["case_no"]) for i in sup["items"]] == [("xf", "yellow", "剩余3个工作日", no)]
    assert (sup["yellow"], sup["red"]) == (1, 0)
    assert "督办" not in [t["name"] for t in svc.inbox(actor(svc, "supervisor1"))]
    assert worker(svc, L(2026, 3, 18, 10)) == 0     # a second round fires nothing
    assert fired(svc, no) == [("黄牌预警", XF)]

    # Save/restore: the stored state (with its clocks) gives the same ready tasks and the same waiting timers.
    _assert_restores(svc, no)

    # ---- red: Tue 03-24 09:00 (16 used of 15)
    assert worker(svc, L(2026, 3, 24, 9)) == 1
    assert fired(svc, no) == [("黄牌预警", XF), ("红牌超期", XF)]
    row = clock_row(svc, no, "xf")
    assert (row.level, row.due_date) == ("red", date(2026, 3, 23))
    assert timers(svc, no) == []
    assert (h.case_row(svc, no).warning, h.case_row(svc, no).due_date) == ("red", date(2026, 3, 23))
    assert RED_XF in texts(svc, "agent1") and RED_XF in texts(svc, "zb_zjj")
    supervise = [t for t in svc.inbox(actor(svc, "supervisor1")) if t["name"] == "督办"]
    assert [(t["title"], t["case_no"]) for t in supervise] == [(SUPERVISE_TITLE, no)]
    assert XF in supervise[0]["title"]
    sup = svc.supervision(actor(svc, "supervisor1"))
    assert [(i["key"], i["level"], i["text"], i["title"]) for i in sup["items"]] == [("xf", "red", "已超期1个工作日", XF)]
    assert sup["red"] == 1
    assert task_clock(svc, "zb_zjj", no)["text"] == "已超期1个工作日"
    # The department is still the one to act; the specialist's task is still open.
    assert h.open_tasks(svc, no) == sorted([("部门办理", XF), ("督办", SUPERVISE_TITLE)])

    # The timeline shows both timers.
    fired_rows = [e for e in h.view(svc, no)["timeline"] if e["type"] == "timer_fired"]
    assert [(e["label"], e["summary"], e["actor"]) for e in fired_rows] == [
        ("时限预警", f"黄牌预警：{XF}", "系统"), ("时限预警", f"红牌超期：{XF}", "系统")]
    h.assert_event_chain(svc, no)
    _assert_restores(svc, no)

    # The supervisor acts; the department then decides (late).
    h.complete(svc, "supervisor1", "督办", SUPERVISE_TITLE, case_no=no, supervise_method="电话督办",
               supervise_opinion="请于两个工作日内办结", rectify_by="2026-03-27")
    h.complete(svc, "zb_zjj", "部门办理", XF, case_no=no, **h.approve("XF-2026-001"))
    row = clock_row(svc, no, "xf")
    assert row.level == "late" and row.stopped_at is not None
    assert timers(svc, no) == []
    assert h.case_row(svc, no).warning is None
    assert svc.supervision(actor(svc, "supervisor1"))["items"] == []
    assert worker(svc, L(2026, 4, 30, 9)) == 0


def _assert_restores(svc: Bangban, case_no: str) -> None:
    h.assert_round_trip(svc, case_no)   # ready tasks == inbox rows; dump(load(state)) == state
    row = h.case_row(svc, case_no)
    ps = svc.version(row.version_id)
    with svc.db.unit_of_work(write=False) as uow:
        clocks = {r.key: ClockState.from_row(r) for r in uow.repo.clocks_for_case(row.id)}
    run = CaseRun.load(ps, row.process_id, row.state, row.case_vars, clocks, svc.calendar())
    stored = {(t.task_id, t.name, utc(t.due_at)) for t in _timer_rows(svc, row.id)}
    assert {(tid, name, utc(due)) for tid, name, due in run.waiting_timers()} == stored
    assert sorted((t.id, t.name, t.title, t.clock_key) for t in run.ready_tasks()) == \
        sorted((r.task_id, r.name, r.title, r.clock_key) for r in h.case_inbox(svc, case_no))


def _timer_rows(svc: Bangban, cid: int) -> list:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.timers_for_case(cid)


# ---- (b) 补正 pauses the clock ---------------------------------------------------------------------------------------------
def test_correction_pause_moves_due_date_and_timers(svc):
    no = dispatched(svc, ["xf"])
    # Mon 03-09 10:00 (5 working days used): the department asks for 补正.
    clock.set(L(2026, 3, 9, 10))
    h.complete(svc, "zb_zjj", "部门办理", XF, case_no=no, **h.needs_correction("补交消防设计文件"))
    row = clock_row(svc, no, "xf")
    assert (row.level, row.due_date, row.yellow_at, row.red_at) == ("paused", date(2026, 3, 23), None, None)
    assert utc(row.paused_at) == U(2026, 3, 9, 2)
    assert [p["reason"] for p in row.pauses] == ["补交消防设计文件"]
    assert timers(svc, no) == []          # the department's task and its timers are gone while the applicant corrects
    assert h.open_tasks(svc, no) == [("补正材料", XF)]
    assert "clock_paused" in h.event_types(svc, no)
    # The worker leaves a paused clock alone, even past the original yellow and red moments.
    assert worker(svc, L(2026, 3, 11, 10)) == 0
    assert clock_row(svc, no, "xf").level == "paused"

    # Thu 03-12 15:00 the applicant hands in the materials: excluded (03-09, 03-12] = 10, 11, 12 -> 3 working days.
    clock.set(L(2026, 3, 12, 15))
    h.complete(svc, "huarui", "补正材料", XF, case_no=no, **h.supplement())
    row = clock_row(svc, no, "xf")
    # 03..06 (1..4), 09 (5), 13 (6), 16..20 (7..11), 23 (12: yellow), 24, 25, Thu 26 (15) -> due 03-26.
    assert (row.level, row.due_date, row.paused_at) == ("green", date(2026, 3, 26), None)
    assert (utc(row.yellow_at), utc(row.red_at)) == (U(2026, 3, 22, 16), U(2026, 3, 26, 16))
    assert row.pauses[0]["end"] is not None
    assert timers(svc, no) == [("红牌超期", U(2026, 3, 26, 16)), ("黄牌预警", U(2026, 3, 22, 16))]
    assert h.event_types(svc, no).count("clock_resumed") == 1
    # Mon 03-16: 03..06, 09, 13, 16 -> 7 used, 8 left.
    clock.set(L(2026, 3, 16, 10))
    assert task_clock(svc, "zb_zjj", no)["text"] == "剩余8个工作日"

    # Wed 03-18 (the old yellow day) and Tue 03-24 (the old red day) no longer fire red.
    assert worker(svc, L(2026, 3, 18, 9)) == 0
    assert worker(svc, L(2026, 3, 24, 9)) == 1
    assert fired(svc, no) == [("黄牌预警", XF)]
    assert clock_row(svc, no, "xf").level == "yellow"
    assert worker(svc, L(2026, 3, 27, 9)) == 1
    assert fired(svc, no) == [("黄牌预警", XF), ("红牌超期", XF)]
    assert clock_row(svc, no, "xf").level == "red"
    _assert_restores(svc, no)


def test_warning_already_given_is_not_repeated_after_a_correction_round(svc):
    # Yellow fires on Wed 03-18; on Thu 03-19 the department asks for 补正; materials complete Fri 03-20.
    # Excluded (03-19, 03-20] = Fri 20 -> due 03-24; the yellow moment (03-18, before the pause) is unchanged, so the
    # item is simply still yellow: the lead agent and the department were already warned and must not be warned again.
    no = dispatched(svc, ["xf"])
    assert worker(svc, L(2026, 3, 18, 9)) == 1
    clock.set(L(2026, 3, 19, 10))
    h.complete(svc, "zb_zjj", "部门办理", XF, case_no=no, **h.needs_correction("补交消防设计文件"))
    clock.set(L(2026, 3, 20, 10))
    h.complete(svc, "huarui", "补正材料", XF, case_no=no, **h.supplement())
    worker(svc, L(2026, 3, 20, 11))
    row = clock_row(svc, no, "xf")
    assert (row.level, row.due_date) == ("yellow", date(2026, 3, 24))
    assert timers(svc, no) == [("红牌超期", U(2026, 3, 24, 16))]
    assert texts(svc, "agent1").count(YELLOW_XF) == 1
    assert fired(svc, no) == [("黄牌预警", XF)]


def test_escalation_already_made_is_not_repeated_after_a_correction_round(svc):
    # Red fires on Tue 03-24 (with yellow: the worker had not run before); the supervisor gets one 督办.  The department
    # then asks for 补正 (03-24 10:00), the materials are complete Wed 03-25: excluded (03-24, 03-25] = 25, all after
    # the 15th working day (Mon 03-23), so the due date stays 03-23 and the item is still overdue, as it was.
    # Nothing new happened to the deadline, so there must be no second 督办 and no second red notice.
    no = dispatched(svc, ["xf"])
    assert worker(svc, L(2026, 3, 24, 9)) == 1
    assert sorted(fired(svc, no)) == sorted([("黄牌预警", XF), ("红牌超期", XF)])
    clock.set(L(2026, 3, 24, 10))
    h.complete(svc, "zb_zjj", "部门办理", XF, case_no=no, **h.needs_correction("补交消防设计文件"))
    clock.set(L(2026, 3, 25, 10))
    h.complete(svc, "huarui", "补正材料", XF, case_no=no, **h.supplement())
    worker(svc, L(2026, 3, 25, 11))
    row = clock_row(svc, no, "xf")
    assert (row.level, row.due_date) == ("red", date(2026, 3, 23))
    supervise = [t for t in svc.inbox(actor(svc, "supervisor1")) if t["name"] == "督办" and t["case_no"] == no]
    assert len(supervise) == 1
    assert texts(svc, "agent1").count(RED_XF) == 1


# ---- (c) extensions ---------------------------------------------------------------------------------------------------------
def _request_extension(svc: Bangban, no: str, days: int = 3) -> None:
    task = h.find_task(svc, "zb_zjj", "部门办理", XF, case_no=no)
    svc.send_message(actor(svc, "zb_zjj"), None, "extension_request",
                     {"extension_days": days, "extension_reason": "需组织专家现场核查"}, task_id=task["task_id"])
    h.tick()


def test_extension_refused_changes_nothing_approved_moves_due_date_and_red_timer(svc):
    no = dispatched(svc, ["xf"])
    assert worker(svc, L(2026, 3, 18, 9)) == 1          # yellow given
    clock.set(L(2026, 3, 20, 10))
    before = (clock_row(svc, no, "xf").due_date, timers(svc, no))
    assert before == (date(2026, 3, 23), [("红牌超期", U(2026, 3, 23, 16))])

    # A refused request.
    _request_extension(svc, no)
    approve = h.find_task(svc, "supervisor1", "审批延期申请", case_no=no)
    assert approve["title"] == XF
    h.complete(svc, "supervisor1", "审批延期申请", XF, case_no=no, extension_decision="不予批准",
               extension_opinion="理由不充分，请按期办结")
    row = clock_row(svc, no, "xf")
    assert (row.due_date, row.extension_days, row.extensions, row.level) == (date(2026, 3, 23), 0, [], "yellow")
    assert timers(svc, no) == before[1]
    assert "clock_extended" not in h.event_types(svc, no)
    assert f"延期申请（{XF}）审批结果：不予批准" in texts(svc, "zb_zjj")

    # An approved request for 3 working days: 15 + 3 = 18 -> 03-23 (15), 24, 25, Thu 03-26 (18);
    # yellow: min(ceil(14.4) = 15, 17) = 15th = Mon 03-23 (00:00 local = 03-22 16:00 UTC).
    _request_extension(svc, no)
    h.complete(svc, "supervisor1", "审批延期申请", XF, case_no=no, extension_decision="批准延期",
               extension_days_approved=3, extension_opinion="同意延期三个工作日")
    row = clock_row(svc, no, "xf")
    assert (row.due_date, row.extension_days, row.level) == (date(2026, 3, 26), 3, "green")
    assert [(e["days"], e["approved_by"], e["reason"]) for e in row.extensions] == [(3, "supervisor1", "需组织专家现场核查")]
    assert (utc(row.yellow_at), utc(row.red_at)) == (U(2026, 3, 22, 16), U(2026, 3, 26, 16))
    assert timers(svc, no) == [("红牌超期", U(2026, 3, 26, 16))]
    assert h.event_types(svc, no).count("clock_extended") == 1
    assert h.event_types(svc, no).count("extension_requested") == 2
    assert f"延期申请（{XF}）审批结果：批准延期" in texts(svc, "zb_zjj")
    assert task_clock(svc, "zb_zjj", no)["text"] == "剩余4个工作日"   # Fri 03-20: 14 used of 18

    # The old red moment passes quietly; the new one escalates.
    worker(svc, L(2026, 3, 24, 9))                      # may refresh the level; fires nothing
    assert ("红牌超期", XF) not in fired(svc, no)
    assert clock_row(svc, no, "xf").level == "yellow"
    assert worker(svc, L(2026, 3, 27, 9)) == 1
    assert fired(svc, no) == [("黄牌预警", XF), ("红牌超期", XF)]
    assert clock_row(svc, no, "xf").level == "red"
    assert [t["title"] for t in svc.inbox(actor(svc, "supervisor1")) if t["name"] == "督办"] == [SUPERVISE_TITLE]


# ---- (d) a case accepted late in 2026, and the administrator's 2027 data ----------------------------------------------------
CAL_2027 = "date,kind,name\n# 2027 年（测试数据，不是官方安排）\n2027-01-01,休息日,元旦（测试数据）\n"


def test_december_case_is_provisional_until_2027_is_imported(svc):
    # 环评 (20 days) dispatched Mon 2026-12-14: 15..18 (1..4), 21..25 (5..9), 28..31 (10..13); 2027 unknown ->
    # weekend rule: Fri 01-01 (14), 01-04..08 (15..19), Mon 01-11 (20) -> due 2027-01-11, provisional;
    # yellow 16th = Tue 01-05 (00:00 local = 01-04 16:00 UTC).
    no = dispatched(svc, ["hp"], L(2026, 12, 14, 9))
    row = clock_row(svc, no, "hp")
    assert (row.due_date, row.provisional, row.level) == (date(2027, 1, 11), True, "green")
    assert (utc(row.yellow_at), utc(row.red_at)) == (U(2027, 1, 4, 16), U(2027, 1, 11, 16))
    assert timers(svc, no) == [("红牌超期", U(2027, 1, 11, 16)), ("黄牌预警", U(2027, 1, 4, 16))]
    assert task_clock(svc, "zb_sthj", no)["text"] == "剩余20个工作日（暂定）"
    assert h.view(svc, no)["clocks"]["hp"]["provisional"] is True

    # The administrator imports 2027 (MADE-UP TEST DATA: 01-01 rest; the year complete).
    clock.set(L(2026, 12, 15, 10))
    result = svc.import_calendar(None, CAL_2027)
    assert result["years"] == [2027] and result["recomputed_cases"] == 1
    # Dec (13), (01-01 rest), Mon 01-04 (14), 05 (15), Wed 06 (16: yellow), 07, 08 (18), Mon 11 (19), Tue 12 (20).
    row = clock_row(svc, no, "hp")
    assert (row.due_date, row.provisional) == (date(2027, 1, 12), False)
    assert (utc(row.yellow_at), utc(row.red_at)) == (U(2027, 1, 5, 16), U(2027, 1, 12, 16))
    assert timers(svc, no) == [("红牌超期", U(2027, 1, 12, 16)), ("黄牌预警", U(2027, 1, 5, 16))]
    assert task_clock(svc, "zb_sthj", no)["text"] == "剩余19个工作日"   # Tue 12-15: 1 used
    assert h.case_row(svc, no).due_date == date(2027, 1, 12)

    # A further correction by the administrator (MADE-UP: Fri 2027-01-08 rest) moves it again: 11 (19), 13 (20).
    svc.set_calendar_day(actor(svc, "supervisor1"), date(2027, 1, 8), "rest", "测试数据")
    row = clock_row(svc, no, "hp")
    assert (row.due_date, row.provisional, utc(row.red_at)) == (date(2027, 1, 13), False, U(2027, 1, 13, 16))
    assert timers(svc, no)[0] == ("红牌超期", U(2027, 1, 13, 16))

    # The timers fire on the recomputed moments only.
    assert worker(svc, L(2027, 1, 5, 9)) == 0
    assert worker(svc, L(2027, 1, 6, 9)) == 1
    assert fired(svc, no) == [("黄牌预警", HP)]


def test_worker_with_a_calendar_read_before_the_import_does_not_undo_the_recomputation(svc, db):
    """The web process imports 2027; a separate worker process (``bangban worker``) had read the calendar shortly before.
    Its next tick of the case must not put the recomputed clock back on the old (provisional) calendar."""
    worker_process = Bangban.open(db, processes.read_dir(ROOT / "processes"))
    # 环评 (20 days) and 供水 (gs, 5 days: 15..18, Mon 12-21 -> due 12-21, yellow 4th = Fri 12-18) dispatched 12-14.
    no = dispatched(svc, ["hp", "gs"], L(2026, 12, 14, 9))
    worker_process.calendar()                     # e.g. read during an earlier round of the worker
    clock.set(L(2026, 12, 15, 10))
    svc.import_calendar(None, CAL_2027)
    assert (clock_row(svc, no, "hp").due_date, clock_row(svc, no, "hp").provisional) == (date(2027, 1, 12), False)
    # Fri 12-18: 供水's yellow timer is due; the worker process ticks the case.
    assert worker(svc=worker_process, at=L(2026, 12, 18, 9)) == 1
    assert clock_row(svc, no, "gs").level == "yellow"
    row = clock_row(svc, no, "hp")
    assert (row.due_date, row.provisional, utc(row.red_at)) == (date(2027, 1, 12), False, U(2027, 1, 12, 16))
    assert ("红牌超期", U(2027, 1, 12, 16)) in timers(svc, no)


def test_one_day_item_is_yellow_from_dispatch(svc):
    # 企业登记 (qydj, 县市场监督管理局, 1 working day) dispatched Mon 03-02: due Tue 03-03; one day is left at once, so
    # the clock is yellow from its start and its yellow timer is due at once (the next worker round fires it);
    # red from Wed 03-04 00:00 local (= 03-03 16:00 UTC).
    no = dispatched(svc, ["qydj"])
    row = clock_row(svc, no, "qydj")
    assert (row.due_date, row.level, utc(row.red_at)) == (date(2026, 3, 3), "yellow", U(2026, 3, 3, 16))
    assert utc(row.yellow_at) == utc(row.started_at)
    assert timers(svc, no) == sorted([("红牌超期", U(2026, 3, 3, 16)), ("黄牌预警", utc(row.started_at))])
    assert run_once(svc) == 1
    assert fired(svc, no) == [("黄牌预警", "企业登记")]
    assert "【黄牌预警】企业登记（县市场监督管理局）办理时限即将届满，请抓紧办理" in texts(svc, "agent1")
    assert run_once(svc) == 0
    assert worker(svc, L(2026, 3, 4, 9)) == 1
    assert fired(svc, no) == [("黄牌预警", "企业登记"), ("红牌超期", "企业登记")]


# ---- (e) the worker is safe to restart --------------------------------------------------------------------------------------
def test_timers_due_while_no_worker_ran_fire_once_on_the_next_run(svc, db):
    nos = [dispatched(svc, ["xf"]), dispatched(svc, ["xf", "hp"])]
    # No worker ran from 03-02 to Wed 03-25: xf's yellow (03-18) and red (03-24) and hp's yellow (03-24) are all due.
    clock.set(L(2026, 3, 25, 9))
    restarted = Bangban.open(db, processes.read_dir(ROOT / "processes"))   # a freshly started worker process
    assert restarted.current_version_id == svc.current_version_id
    assert run_once(restarted) == 2
    assert sorted(fired(svc, nos[0])) == sorted([("红牌超期", XF), ("黄牌预警", XF)])
    assert sorted(fired(svc, nos[1])) == sorted([("红牌超期", XF), ("黄牌预警", HP), ("黄牌预警", XF)])
    assert [clock_row(svc, nos[1], k).level for k in ("xf", "hp")] == ["red", "yellow"]
    counts = {no: h.event_types(svc, no).count("timer_fired") for no in nos}
    supervise = sorted(t["case_no"] for t in svc.inbox(actor(svc, "supervisor1")) if t["name"] == "督办")
    assert supervise == sorted(nos)

    # Running again — the same worker, or another fresh one — fires nothing twice.
    assert run_once(restarted) == 0
    assert run_once(Bangban.open(db, processes.read_dir(ROOT / "processes"))) == 0
    assert {no: h.event_types(svc, no).count("timer_fired") for no in nos} == counts == {nos[0]: 2, nos[1]: 3}
    assert texts(svc, "agent1").count(RED_XF) == 2 and texts(svc, "agent1").count(YELLOW_XF) == 2
    assert sorted(t["case_no"] for t in svc.inbox(actor(svc, "supervisor1")) if t["name"] == "督办") == supervise
    with db.unit_of_work(write=False) as uow:
        assert uow.repo.count_due_timers(now()) == 0


# ---- (f) a web request and the worker ------------------------------------------------------------------------------------------
def test_web_request_then_worker_fire_a_due_timer_once(svc):
    # 环评 and 消防 dispatched 03-02; at Thu 03-19 10:00 xf's yellow (03-18) is due and has not fired.
    no = dispatched(svc, ["hp", "xf"])
    clock.set(L(2026, 3, 19, 10))
    h.complete(svc, "zb_sthj", "部门办理", HP, case_no=no, **h.approve("HP-2026-001"))
    run_once(svc)
    run_once(svc)
    assert fired(svc, no) == [("黄牌预警", XF)]
    assert texts(svc, "agent1").count(YELLOW_XF) == 1
    assert clock_row(svc, no, "hp").level == "done" and clock_row(svc, no, "xf").level == "yellow"
    assert timers(svc, no) == [("红牌超期", U(2026, 3, 23, 16))]


def _complete_in_thread(svc: Bangban, username: str, task_id: str, form: dict, errors: list) -> threading.Thread:
    def run():
        try:
            svc.complete_task(actor(svc, username), task_id, form)
        except Exception as exc:  # reported by the test
            errors.append(exc)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_web_request_while_the_worker_holds_the_due_timer(svc):
    """The worker has claimed the case of a due timer (tick_next: ``next_due_case``, which locks the case row) when a
    web request on the same case comes in. Both must succeed and the timer must fire exactly once."""
    no = dispatched(svc, ["hp", "xf"])
    clock.set(L(2026, 3, 19, 10))
    hp_task = h.find_task(svc, "zb_sthj", "部门办理", HP, case_no=no)
    errors: list = []
    # The steps of Bangban.tick_next, with the web request let in while the worker holds the case.
    with svc.db.unit_of_work() as uow:
        at = now()
        claimed = uow.repo.next_due_case(at)
        assert claimed is not None and claimed.id == case_id(svc, no)
        web = _complete_in_thread(svc, "zb_sthj", hp_task["task_id"], h.approve("HP-2026-001"), errors)
        time.sleep(1.0)   # the request runs until it waits for a lock (the case row on PostgreSQL, SQLite's write lock)
        try:
            svc._tick(uow, claimed, at)
            uow.commit()
        except Exception as exc:
            errors.append(exc)
    web.join(60)
    assert errors == []
    assert fired(svc, no) == [("黄牌预警", XF)]
    assert "task_completed" in [e.type for e in h.events(svc, no) if e.task_id == hp_task["task_id"]]
    run_once(svc)
    assert fired(svc, no) == [("黄牌预警", XF)]


def test_web_requests_racing_the_worker_fire_each_timer_once(svc):
    """Free-running: a worker round and web requests on cases with due timers at the same time (on PostgreSQL this
    reproduces, most of the time, the lock-order problem the test above forces)."""
    nos = [dispatched(svc, ["hp", "xf"]) for _ in range(4)]
    clock.set(L(2026, 3, 19, 10))
    tasks = [h.find_task(svc, "zb_sthj", "部门办理", HP, case_no=no)["task_id"] for no in nos]
    errors: list = []

    def work():
        try:
            run_once(svc)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work)]
    threads[0].start()
    threads += [_complete_in_thread(svc, "zb_sthj", t, h.approve("HP-2026-001"), errors) for t in tasks]
    for t in threads:
        t.join(60)
    run_once(svc)
    assert errors == []
    for no in nos:
        assert fired(svc, no) == [("黄牌预警", XF)]
        assert clock_row(svc, no, "hp").level == "done"


# ---- (g) a case's clocks end with it ------------------------------------------------------------------------------------
TERMINATE = {"reason": "国家法律法规规章和政策发生调整", "remark": "政策调整"}
ENDED = "办件终止：国家法律法规规章和政策发生调整"


def _terminate(svc: Bangban, no: str) -> None:
    h.send(svc, "agent1", no, "termination", **TERMINATE)


def _assert_ended(svc: Bangban, no: str, keys: list[str]) -> None:
    """Every clock stopped with the termination as its reason; nothing left to warn about, now or later."""
    for key in keys:
        row = clock_row(svc, no, key)
        assert (row.level, row.stop_reason, row.paused_at) == ("ended", ENDED, None)
        assert row.stopped_at is not None and all(p["end"] for p in row.pauses)
    assert timers(svc, no) == []
    assert (h.case_row(svc, no).warning, h.case_row(svc, no).due_date) == (None, None)
    assert [i for i in svc.supervision(actor(svc, "supervisor1"))["items"] if i["case_no"] == no] == []
    page = h.view(svc, no)
    assert {k: c["level"] for k, c in page["clocks"].items()} == dict.fromkeys(keys, "ended")
    assert all(c["text"].startswith("已停止计时") for c in page["clocks"].values())
    assert {i["code"]: i["state"] for i in page["items"]} == dict.fromkeys(keys, "未办理")
    stopped = [e.payload for e in h.events(svc, no) if e.type == "clock_stopped"]
    assert sorted(p["clock"] for p in stopped) == sorted(keys) and {p["reason"] for p in stopped} == {ENDED}
    # Weeks later the worker finds nothing to announce, and the slip ends the case with its clocks still ended.
    assert worker(svc, L(2026, 4, 30, 9)) == 0
    h.complete(svc, "agent1", "办理终止手续", case_no=no, **h.slip(TERMINATE["reason"]))
    assert h.case_row(svc, no).status == "terminated"
    assert {i["code"]: i["state"] for i in h.view(svc, no)["items"]} == dict.fromkeys(keys, "未办理")
    assert [i for i in svc.supervision(actor(svc, "supervisor1"))["items"] if i["case_no"] == no] == []


def test_termination_during_a_correction_stops_the_paused_clock_for_good(svc):
    no = dispatched(svc, ["xf", "hp"])
    clock.set(L(2026, 3, 9, 10))
    h.complete(svc, "zb_zjj", "部门办理", XF, case_no=no, **h.needs_correction("补交消防设计文件"))
    assert clock_row(svc, no, "xf").level == "paused"
    clock.set(L(2026, 3, 10, 10))
    _terminate(svc, no)
    assert "clock_resumed" not in h.event_types(svc, no)      # the pause ended with the clock, it did not resume
    assert h.open_tasks(svc, no) == [("办理终止手续", None)]
    _assert_ended(svc, no, ["xf", "hp"])


def test_termination_while_an_extension_waits_for_approval_ends_the_approval(svc):
    no = dispatched(svc, ["xf"])
    clock.set(L(2026, 3, 16, 10))
    _request_extension(svc, no)
    assert ("审批延期申请", XF) in h.open_tasks(svc, no)
    _terminate(svc, no)
    assert h.open_tasks(svc, no) == [("办理终止手续", None)]
    ended = [e.task_name for e in h.events(svc, no) if e.type == "task_ended"]
    assert sorted(ended) == ["审批延期申请", "部门办理"]
    assert "clock_extended" not in h.event_types(svc, no)
    _assert_ended(svc, no, ["xf"])


def test_termination_after_yellow_takes_the_item_off_the_supervision_page(svc):
    no = dispatched(svc, ["xf"])
    assert worker(svc, L(2026, 3, 18, 9)) == 1
    assert [i["level"] for i in svc.supervision(actor(svc, "supervisor1"))["items"]] == ["yellow"]
    clock.set(L(2026, 3, 19, 9))
    _terminate(svc, no)
    _assert_ended(svc, no, ["xf"])


def test_termination_after_red_ends_the_open_supervision_task_too(svc):
    no = dispatched(svc, ["xf"])
    assert worker(svc, L(2026, 3, 24, 9)) == 1
    assert ("督办", SUPERVISE_TITLE) in h.open_tasks(svc, no)
    clock.set(L(2026, 3, 25, 9))
    _terminate(svc, no)
    assert h.open_tasks(svc, no) == [("办理终止手续", None)]
    assert [t for t in svc.inbox(actor(svc, "supervisor1")) if t["case_no"] == no] == []
    assert "督办" in [e.task_name for e in h.events(svc, no) if e.type == "task_ended"]
    _assert_ended(svc, no, ["xf"])


def test_a_refused_case_lists_its_items_as_not_handled(svc):
    clock.set(DISPATCH)
    no = h.start(svc, service_items=["xf", "hp"])
    h.complete(svc, "agent1", "受理审核", case_no=no, review_decision="不予受理", refusal_explanation="不属于服务事项")
    assert {i["code"]: i["state"] for i in h.view(svc, no)["items"]} == {"xf": "未分派（不予受理）", "hp": "未分派（不予受理）"}
