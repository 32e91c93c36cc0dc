"""The calendar of the day (issue 12, point 5): every change of the working-day calendar is recorded (who, when, what),
and audit replay evaluates each step with the calendar in force when it happened.

Dates (2026: no holiday in March; 2027 below is MADE-UP TEST DATA, not the real schedule): 消防 (xf, 15 working days)
dispatched Mon 2026-03-02 -> yellow Wed 03-18 (12th), due Mon 03-23. With Mon 03-16 and Tue 03-17 made rest days
afterwards: 03..06 (1..4), 09..13 (5..9), 18 (10), 19 (11), Fri 20 (12: yellow), 23, 24, Wed 25 (15) = due.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import Boolean, Date, DateTime, bindparam, text
from sqlalchemy.exc import DBAPIError

import tests.helpers as h
from engine import audit
from engine.calhistory import CalendarHistory
from engine.cli import cli
from engine.clock import LOCAL_TZ, clock
from engine.db import Database, normalize_url
from engine.migrate import alembic_config
from engine.worker import run_once
from tests.conftest import actor
from tests.test_web_clocks import follow, make_app
from tests.webclient import html_login, token

XF = "消防（设计审查/验收）"
HP = "环评"


def L(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ)


def dispatched(svc, items: list[str], at: datetime) -> str:
    clock.set(at)
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, items)
    return no


def clock_row(svc, no: str, key: str):
    with svc.db.unit_of_work(write=False) as uow:
        return {r.key: r for r in uow.repo.clocks_for_case(h.case_row(svc, no).id)}[key]


def fired(svc, no: str) -> list[str]:
    return [e.payload["timer"] for e in h.events(svc, no) if e.type == "timer_fired"]


def worker(svc, at: datetime) -> int:
    clock.set(at)
    return run_once(svc)


def changes(svc) -> list:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.calendar_changes()


def utc(v: datetime) -> datetime:
    return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


def verified(svc, no: str) -> dict:
    result = svc.audit_case(no)
    assert result["ok"], result["text"]
    return result


def tamper_due_date(svc, no: str, key: str, due: date) -> None:
    with svc.db.engine.begin() as conn:
        conn.execute(text("UPDATE clocks SET due_date = :d WHERE case_id = :c AND key = :k")
                     .bindparams(bindparam("d", type_=Date)), {"d": due, "c": h.case_row(svc, no).id, "k": key})


def yellow_then_rest_days(svc) -> str:
    """The issue's false alarm: the yellow timer fired, then the supervisor made two earlier days rest days."""
    no = dispatched(svc, ["xf"], L(2026, 3, 2, 9))
    assert clock_row(svc, no, "xf").due_date == date(2026, 3, 23)
    assert worker(svc, L(2026, 3, 18, 9)) == 1 and fired(svc, no) == ["黄牌预警"]
    clock.set(L(2026, 3, 18, 10))
    supervisor = actor(svc, "supervisor1")
    assert svc.set_calendar_day(supervisor, date(2026, 3, 16), "rest", "测试休息")["recomputed_cases"] == 1
    clock.set(L(2026, 3, 18, 10, 5))
    svc.set_calendar_day(supervisor, date(2026, 3, 17), "rest", "测试休息")
    row = clock_row(svc, no, "xf")
    assert (row.due_date, row.level) == (date(2026, 3, 25), "green")
    return no


# ---- the false alarm of the issue --------------------------------------------------------------------------------
def test_rest_days_entered_after_a_yellow_warning_are_no_false_alarm(svc, db_url):
    no = yellow_then_rest_days(svc)
    verified(svc, no)
    # the case goes on under the new calendar: yellow again from Fri 03-20 (12th; already announced), decided that day
    assert worker(svc, L(2026, 3, 20, 9)) == 1 and fired(svc, no) == ["黄牌预警"]
    assert clock_row(svc, no, "xf").level == "yellow"
    verified(svc, no)
    clock.set(L(2026, 3, 20, 10))
    h.complete(svc, "zb_zjj", "部门办理", XF, case_no=no, **h.approve("XF-2026-001"))
    assert (clock_row(svc, no, "xf").level, clock_row(svc, no, "xf").due_date) == ("done", date(2026, 3, 25))
    verified(svc, no)
    result = CliRunner().invoke(cli, ["audit", "verify", "--all"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0 and "不通过 0 件" in result.output, result.output


@pytest.mark.parametrize("due", [date(2026, 3, 23), date(2026, 3, 30)], ids=["old-calendar", "any-date"])
def test_a_tampered_due_date_is_still_caught(svc, due):
    # 03-23 is what the calendar before the change gave: a stored value that "hides" the change is caught too.
    no = yellow_then_rest_days(svc)
    tamper_due_date(svc, no, "xf", due)
    result = svc.audit_case(no)
    assert not result["ok"]
    d = result["divergence"]
    assert (d["field"], d["task"]) == ("due_date", "xf") and "办结期限" in result["text"], result["text"]
    assert due.isoformat() in result["text"] and "2026-03-25" in result["text"]


def test_a_tampered_due_date_of_a_decided_item_is_caught(svc):
    no = yellow_then_rest_days(svc)
    clock.set(L(2026, 3, 19, 10))
    h.complete(svc, "zb_zjj", "部门办理", XF, case_no=no, **h.approve("XF-2026-001"))
    verified(svc, no)
    tamper_due_date(svc, no, "xf", date(2026, 3, 23))
    assert svc.audit_case(no)["divergence"]["field"] == "due_date"


# ---- a holiday import after the fact --------------------------------------------------------------------------------
CAL_2027 = ("date,kind,name\n# 2027 年（测试数据，不是官方安排）\n2027-01-01,休息日,元旦（测试数据）\n"
            "2027-01-04,休息日,补充放假（测试数据）\n")


def test_a_holiday_import_after_the_fact(svc, db_url, tmp_path):
    # 环评 (20 days) dispatched Mon 2026-12-14; 2027 unknown -> weekend rule: yellow 16th = Tue 01-05, due Mon 01-11.
    no = dispatched(svc, ["hp"], L(2026, 12, 14, 9))
    assert (clock_row(svc, no, "hp").due_date, clock_row(svc, no, "hp").provisional) == (date(2027, 1, 11), True)
    assert worker(svc, L(2027, 1, 5, 9)) == 1 and fired(svc, no) == ["黄牌预警"]
    # Tue 01-05 10:00: the 2027 file is imported with the command line; 01-01 and 01-04 (already past) are rest days:
    # Dec (13), Tue 01-05 (14), 06 (15), Thu 07 (16: yellow), 08, 11, 12, Wed 13 (20) = due.
    path = tmp_path / "2027.csv"
    path.write_text(CAL_2027, encoding="utf-8")
    clock.set(L(2027, 1, 5, 10))
    result = CliRunner().invoke(cli, ["calendar", "import", str(path)], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    row = clock_row(svc, no, "hp")
    assert (row.due_date, row.provisional, row.level) == (date(2027, 1, 13), False, "green")
    verified(svc, no)
    assert worker(svc, L(2027, 1, 7, 9)) == 1
    verified(svc, no)
    result = CliRunner().invoke(cli, ["audit", "verify", "--all"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    tamper_due_date(svc, no, "hp", date(2027, 1, 11))
    assert svc.audit_case(no)["divergence"]["field"] == "due_date"


# ---- every write path records who, when, what ----------------------------------------------------------------------
def test_each_write_path_records_who_when_and_what(svc, db_url, tmp_path):
    supervisor = actor(svc, "supervisor1")
    moments = [L(2026, 11, 1, 9, i) for i in range(8)]
    clock.set(moments[0])
    svc.set_calendar_day(supervisor, date(2027, 1, 4), "rest", "测试休息")           # add
    clock.set(moments[1])
    svc.set_calendar_day(supervisor, date(2027, 1, 4), "work", "测试上班")           # change
    clock.set(moments[2])
    svc.set_calendar_day(supervisor, date(2027, 1, 4), None)                         # remove
    clock.set(moments[3])
    svc.set_calendar_year(supervisor, 2027, True)                                    # year complete
    clock.set(moments[4])
    svc.import_calendar(supervisor, "date,kind,name\n2027-01-01,休息日,元旦\n2027-02-06,工作日,春节\n")
    clock.set(moments[5])
    path = tmp_path / "2028.csv"
    path.write_text("date,kind,name\n# incomplete: 2028\n2028-01-01,休息日,元旦\n", encoding="utf-8")
    assert CliRunner().invoke(cli, ["calendar", "import", str(path)], env={"DATABASE_URL": db_url}).exit_code == 0
    clock.set(moments[6])
    app = make_app(svc)
    web = html_login(app, "supervisor1")
    page = web.get("/calendar?year=2027").text
    follow(web, web.post("/calendar", data={"action": "set", "day": "2027-01-01", "kind": "rest", "name": "新年",
                                            "csrf_token": token(page)}))

    rows = changes(svc)
    got = [(r.change_no, utc(r.at), r.by, r.source, str(r.day) if r.day else r.year, r.kind_before, r.name_before,
            r.kind_after, r.name_after, r.complete_before, r.complete_after) for r in rows]
    at = [utc(m) for m in moments]
    assert got == [
        (1, at[0], "supervisor1", "set_day", "2027-01-04", None, None, "rest", "测试休息", None, None),
        (2, at[1], "supervisor1", "set_day", "2027-01-04", "rest", "测试休息", "work", "测试上班", None, None),
        (3, at[2], "supervisor1", "remove_day", "2027-01-04", "work", "测试上班", None, None, None, None),
        (4, at[3], "supervisor1", "set_year", 2027, None, None, None, None, False, True),
        (5, at[4], "supervisor1", "import", 2027, None, None, None, None, True, True),
        (5, at[4], "supervisor1", "import", "2027-01-01", None, None, "rest", "元旦", None, None),
        (5, at[4], "supervisor1", "import", "2027-02-06", None, None, "work", "春节", None, None),
        (6, at[5], "命令行导入", "import", 2028, None, None, None, None, None, False),
        (6, at[5], "命令行导入", "import", "2028-01-01", None, None, "rest", "元旦", None, None),
        (7, at[6], "supervisor1", "set_day", "2027-01-01", "rest", "元旦", "rest", "新年", None, None),
    ]
    assert [r.since for r in rows][:4] == [date(2027, 1, 4)] * 3 + [date(2027, 1, 1)]
    # the history's end state is the calendar tables' content
    with svc.db.unit_of_work(write=False) as uow:
        assert not CalendarHistory(rows).differs_from(uow.repo.calendar_years(), uow.repo.calendar_days())

    # the supervisor's page lists them, newest first, in Chinese
    page = web.get("/calendar?year=2027").text
    table = page[page.index('id="calendar-changes"'):]
    table = table[:table.index("</table>")]
    for words in ("2027-01-01：休息日（元旦） → 休息日（新年）", "2028-01-01：无人工设置 → 休息日（元旦）", "命令行导入",
                  "2028 年：未设置 → 未完整", "2027 年：未完整 → 已完整", "2027-01-04：工作日（测试上班） → 无人工设置",
                  "删除日期", "导入日历文件", "设置年份", "supervisor1"):
        assert words in table, words
    assert table.index("新年") < table.index("测试休息")


# ---- the calendar in force at an instant ---------------------------------------------------------------------------
def _row(seq, no, at, source="set_day", day=None, kind=None, year=2026, complete=None):
    return {"seq": seq, "change_no": no, "at": at, "by": "t", "source": source, "since": day, "year": year, "day": day,
            "kind_before": None, "name_before": None, "kind_after": kind, "name_after": "" if kind else None,
            "complete_before": None, "complete_after": complete}


def test_the_calendar_between_two_changes_is_the_first_ones():
    t1, t2 = datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)
    history = CalendarHistory([
        _row(1, 0, datetime(2026, 6, 1, tzinfo=UTC), "baseline", date(2026, 3, 9), "rest"),  # in force from the start
        _row(2, 1, t1, day=date(2026, 3, 10), kind="rest"),
        _row(3, 2, t2, day=date(2026, 3, 9), kind=None),
    ])
    rests = lambda cal: [d for d in (date(2026, 3, 9), date(2026, 3, 10)) if not cal.is_workday(d)]  # noqa: E731
    assert rests(history.at(t1 - timedelta(seconds=1))) == [date(2026, 3, 9)]
    assert rests(history.at(t1)) == rests(history.at(t2 - timedelta(seconds=1))) == [date(2026, 3, 9), date(2026, 3, 10)]
    assert rests(history.at(t2)) == rests(history.current) == [date(2026, 3, 10)]
    assert history.at(t1 + timedelta(days=1)) is history.at(t1 + timedelta(days=2))     # built once per change


def test_a_step_between_two_changes_is_replayed_with_the_calendar_then(svc):
    supervisor = actor(svc, "supervisor1")
    clock.set(L(2026, 3, 1, 9))
    svc.set_calendar_day(supervisor, date(2026, 3, 10), "rest", "测试休息")      # change 1: due 03-24
    no = dispatched(svc, ["xf"], L(2026, 3, 2, 9))
    clock.set(L(2026, 3, 5, 9))
    h.complete(svc, "zb_zjj", "部门办理", XF, case_no=no, **h.approve("XF-2026-001"))
    assert clock_row(svc, no, "xf").due_date == date(2026, 3, 24)
    clock.set(L(2026, 3, 6, 9))
    svc.set_calendar_day(supervisor, date(2026, 3, 10), None)                     # change 2: the day is a workday again
    # xf was decided between the two changes (nothing recomputed it): its due date stays as computed with change 1
    assert clock_row(svc, no, "xf").due_date == date(2026, 3, 24)
    verified(svc, no)
    with svc.db.unit_of_work(write=False) as uow:
        events = uow.repo.events_for_case(h.case_row(svc, no).id)
        history = svc.calendar_history(uow)
        version_of = svc._version_by_hash(uow)
        run, divergence = audit.replay(events, version_of, history)
        assert divergence is None and run.clocks["xf"].due_date == date(2026, 3, 24)
        run, _ = audit.replay(events, version_of, history.current)          # today's calendar for every step
        assert run.clocks["xf"].due_date == date(2026, 3, 23)


# ---- dossiers --------------------------------------------------------------------------------------------------
def test_a_dossier_carries_the_calendar_history(svc):
    no = yellow_then_rest_days(svc)
    dossier = json.loads(json.dumps(svc.export_dossier(actor(svc, "auditor1"), no)))
    assert [c["source"] for c in dossier["calendar_history"]] == ["set_day", "set_day"]
    assert audit.verify_dossier(dossier)["ok"]
    # the same offline answer as the database: a tampered due date fails, and so does a history with a change left out
    forged = json.loads(json.dumps(dossier))
    forged["clocks"][0]["due_date"] = "2026-03-23"
    assert audit.verify_dossier(forged)["divergence"]["field"] == "due_date"
    forged = json.loads(json.dumps(dossier))
    forged["calendar_history"] = forged["calendar_history"][:1]
    assert not audit.verify_dossier(forged)["ok"]
    forged = json.loads(json.dumps(dossier))
    forged["calendar_history"][0]["day"] = "not a day"
    text = audit.verify_dossier(forged)["text"]
    assert "日历变更记录无法读取" in text and not re.search(r"[A-Za-z]", text), text   # no exception name
    forged = json.loads(json.dumps(dossier))
    forged["versions"] = {}
    text = audit.verify_dossier(forged)["text"]
    assert "缺少办件所用的流程版本" in text and not re.search(r"[0-9a-f]{12}", text), text   # no hash
    # a dossier of the older format (no history) is checked with the calendar at export: here that is the false alarm
    del dossier["calendar_history"]
    assert not audit.verify_dossier(dossier)["ok"]


# ---- the table itself ------------------------------------------------------------------------------------------
def test_the_database_refuses_to_change_or_delete_calendar_changes(svc):
    clock.set(L(2026, 3, 1, 9))
    svc.set_calendar_day(actor(svc, "supervisor1"), date(2026, 3, 10), "rest", "测试休息")
    statements = ["UPDATE calendar_changes SET kind_after = 'work'", "DELETE FROM calendar_changes"]
    if svc.db.engine.dialect.name == "sqlite":
        statements.append("INSERT OR REPLACE INTO calendar_changes (seq, change_no, at, by, source, year) "
                          "VALUES (1, 9, '2026-01-01', 'x', 'set_day', 2026)")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            with svc.db.engine.begin() as conn:
                conn.execute(text(statement))
    assert [(r.seq, r.kind_after) for r in changes(svc)] == [(1, "rest")]


def test_an_existing_calendar_becomes_the_baseline(db_url):
    url = normalize_url(db_url)
    command.upgrade(alembic_config(url), "20261130_0004")
    database = Database(db_url)
    try:
        with database.engine.begin() as conn:
            conn.execute(text("INSERT INTO calendar_years (year, complete, note, updated_at, updated_by) "
                              "VALUES (2027, :t, '', :at, 'supervisor1')")
                         .bindparams(bindparam("t", type_=Boolean), bindparam("at", type_=DateTime(timezone=True))),
                         {"t": True, "at": datetime(2026, 11, 1, tzinfo=UTC)})
            conn.execute(text("INSERT INTO calendar_days (day, year, kind, name) VALUES (:d, 2027, 'rest', '元旦')")
                         .bindparams(bindparam("d", type_=Date)), {"d": date(2027, 1, 1)})
        command.upgrade(alembic_config(url), "head")
        with database.unit_of_work(write=False) as uow:
            rows = uow.repo.calendar_changes()
            assert [(r.source, r.by, r.year, str(r.day) if r.day else None, r.kind_after, r.complete_after)
                    for r in rows] == [("baseline", "数据迁移", 2027, None, None, True),
                                       ("baseline", "数据迁移", 2027, "2027-01-01", "rest", None)]
            history = CalendarHistory(rows)
            assert not history.differs_from(uow.repo.calendar_years(), uow.repo.calendar_days())
            # in force from the beginning of time, before the migration too
            early = history.at(datetime(2000, 1, 1, tzinfo=UTC))
            assert not early.is_workday(date(2027, 1, 1)) and early.year_known(2027)
    finally:
        database.dispose()
