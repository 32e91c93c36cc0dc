"""A fast generator of open tasks for READ benchmarks and tests of the inbox (not for stepping cases).

Starting 10,000 cases through ``start_case`` is realistic but takes minutes; the inbox only reads the ``cases`` and
``inbox`` tables, so this inserts consistent rows there directly, in one transaction of the repository's
connection: an active case per task (its own case number, the version in use, a real unit and creator) and one
READY task on it, with the due date and warning moment a running clock would project (``inbox.due_date``,
``inbox.warn_at``; ``cases.due_date``/``warning`` alike). The workflow state of these cases is empty: they can be
listed, counted and filtered, never completed — use ``start_case`` for anything that steps a case.

``task_specs`` describes rows one by one (tests choose each due date); ``preload_inbox`` makes ``n`` tasks for one
audience with a realistic mix of urgency: a quarter red, a quarter yellow, a third green, the rest without a clock.
"""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import insert, select

from engine.clock import LOCAL_TZ, now
from engine.deadlines import ClockState
from engine.inboxq import audience_key
from engine.models import Case, Clock, InboxTask

STAGES = ("代办受理", "联合办理", "限时办结", "统一送达")
ITEMS = (("hp", "环评", "sthj"), ("xf", "消防（设计审查/验收）", "zjj"), ("gd", "供电", "gdgs"))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, LOCAL_TZ).astimezone(UTC)


def insert_tasks(svc, specs: list[dict], prefix: str = "P") -> list[str]:
    """Insert one case and one open task per spec; returns the task ids in spec order. A spec may give: role
    (default ``agent``), department, assignee, unit_id (default the first unit), stage, clock_key, title, name,
    created_at, and either due_date and warn_at (the inbox row's only: no clock row) or ``clock`` =
    (started_at, limit_days): a running clock row computed with the service's calendar now, whose due date and
    warning moment the inbox row then carries, as the step would project them."""
    cal, moment = svc.calendar(), now()
    for s in specs:
        if s.get("clock"):
            started, limit = s["clock"]
            c = ClockState(s.get("clock_key") or "hp", s.get("title") or "事项", s.get("department"), limit,
                           started).compute(cal, moment)
            s["_clock"] = c
            s.setdefault("clock_key", c.key)
            s["due_date"], s["warn_at"] = c.due_date, c.yellow_at
    with svc.db.unit_of_work() as uow:
        units = {u.id: u.name for u in uow.repo.units()}
        creator = uow.repo.user_by_username("agent1").id
        first_unit = min(units)
        version_id = svc.current_version_id
        base = datetime(2026, 3, 1, tzinfo=UTC)
        case_rows, task_rows = [], []
        for n, s in enumerate(specs):
            created = s.get("created_at") or base + timedelta(seconds=n)
            unit = s.get("unit_id", first_unit)
            due = s.get("due_date")
            case_rows.append({"case_no": f"{prefix}{uuid.uuid4().hex[:20]}", "version_id": version_id,
                              "process_id": "bangban_case", "title": s.get("case_title", f"预置项目{n}"),
                              "unit_id": unit, "unit_name": units[unit], "status": "active",
                              "stage": s.get("stage", "联合办理"), "lead_user": "agent1", "created_by": creator,
                              "created_at": created, "updated_at": created, "row_version": 1, "event_seq": 0,
                              "last_hash": "", "state": "{}", "case_vars": {}, "due_date": due,
                              "warning": None if due is None else "green"})
        cases = Case.__table__
        for i in range(0, len(case_rows), 1000):
            uow.repo.conn.execute(insert(cases), case_rows[i:i + 1000])
        ids = dict(uow.repo.conn.execute(select(cases.c.case_no, cases.c.id)
                                         .where(cases.c.case_no.like(f"{prefix}%"))).all())
        out = []
        for s, c in zip(specs, case_rows, strict=True):
            tid = str(uuid.uuid4())
            out.append(tid)
            task_rows.append({"task_id": tid, "case_id": ids[c["case_no"]], "element_id": "Task_Department",
                              "name": s.get("name", "部门办理"), "title": s.get("title"), "role": s.get("role", "agent"),
                              "department": s.get("department"), "assignee": s.get("assignee"),
                              "unit_id": c["unit_id"], "stage": c["stage"], "form": "department.json",
                              "clock_key": s.get("clock_key"), "created_at": c["created_at"],
                              "audience": audience_key(s.get("role", "agent"), s.get("department"), s.get("assignee")),
                              "due_date": s.get("due_date"), "warn_at": s.get("warn_at")})
        for i in range(0, len(task_rows), 1000):
            uow.repo.conn.execute(insert(InboxTask.__table__), task_rows[i:i + 1000])
        clock_rows = [dict(s["_clock"].to_row(), case_id=ids[c["case_no"]], lead_user="agent1")
                      for s, c in zip(specs, case_rows, strict=True) if s.get("_clock")]
        for i in range(0, len(clock_rows), 1000):
            uow.repo.conn.execute(insert(Clock.__table__), clock_rows[i:i + 1000])
        uow.commit()
    return out


def urgency_spec(kind: str, today: date, k: int) -> dict:
    """Clock fields of a task that is ``kind`` (red/yellow/green/none) on ``today``; ``k`` varies the dates."""
    if kind == "red":
        due = today - timedelta(days=1 + k % 7)
        return {"due_date": due, "warn_at": day_start(due - timedelta(days=3))}
    if kind == "yellow":
        return {"due_date": today + timedelta(days=k % 3), "warn_at": day_start(today - timedelta(days=k % 2))}
    if kind == "green":
        due = today + timedelta(days=5 + k % 20)
        return {"due_date": due, "warn_at": day_start(due - timedelta(days=3))}
    return {}


def clock_spec(kind: str, today: date, k: int) -> dict:
    """A running clock that is about ``kind`` on ``today`` (started so many days ago with such a limit)."""
    if kind == "none":
        return {}
    ago, limit = {"red": (25 + k % 9, 5), "yellow": (12, 10), "green": (k % 6, 20)}[kind]
    return {"clock": (day_start(today - timedelta(days=ago)) + timedelta(hours=2), limit)}


def preload_inbox(svc, n: int, today: date, role: str = "agent", department: str | None = None,
                  prefix: str = "P", clocks: bool = True) -> list[str]:
    """``n`` open tasks of one audience with a realistic urgency mix on ``today``: with clock rows computed by
    the service's calendar (``clocks``), or with dates set on the inbox rows only."""
    specs = []
    for k in range(n):
        kind = ("red", "yellow", "green", "green", "none", "green", "red", "yellow", "none", "green", "none",
                "none")[k % 12]
        code, title, _dept = ITEMS[k % 3]
        spec = {"role": role, "department": department, "stage": STAGES[k % 4], "title": title,
                **(clock_spec if clocks else urgency_spec)(kind, today, k)}
        if kind != "none":
            spec["clock_key"] = code
        specs.append(spec)
    return insert_tasks(svc, specs, prefix=prefix)
