"""Statutory clocks (限时办结): due date, working days used and left, warning level — from a working-day calendar.

Rules (domain.md): the day the department receives an item is not counted; an item received on a rest day counts
from the next working day. A 补正 pause stops the clock from the day after it starts through the day the materials
are complete; counting runs on from the next working day. An approved extension (延期) adds working days.
Yellow when 80% of the limit is used or one working day is left; red when the due date has passed.
"""
from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from .clock import LOCAL_TZ
from .workcal import WorkCalendar

LEVELS = ("green", "yellow", "red")
LEVEL_NAMES = {"green": "绿灯", "yellow": "黄牌", "red": "红牌", "paused": "暂停（补正中）", "ended": "已停止计时",
               "done": "按时办结",
               "late": "超期办结"}


def local_date(moment: datetime) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LOCAL_TZ).date()


def day_start(day: date) -> datetime:
    """00:00 of a local date, in UTC."""
    return datetime.combine(day, time.min, LOCAL_TZ).astimezone(UTC)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass
class ClockState:
    """One item's clock. ``pauses`` and ``extensions`` are JSON-ready lists; the rest is derived by ``compute``."""

    key: str
    title: str
    department: str | None
    limit_days: int
    started_at: datetime
    pauses: list[dict] = field(default_factory=list)
    extensions: list[dict] = field(default_factory=list)
    stopped_at: datetime | None = None
    warned: list[str] = field(default_factory=list)   # levels a BPMN timer has already announced
    stop_reason: str | None = None                      # stopped without a decision (the case ended): why
    # derived
    due_date: date | None = None
    yellow_at: datetime | None = None
    red_at: datetime | None = None
    provisional: bool = False
    level: str = "green"

    @property
    def total_days(self) -> int:
        return self.limit_days + sum(int(e["days"]) for e in self.extensions)

    @property
    def paused_at(self) -> datetime | None:
        open_pause = next((p for p in self.pauses if not p.get("end")), None)
        return _parse(open_pause["start"]) if open_pause else None

    def _skip(self, closed_only: bool = False):
        """Working days excluded by pauses: (day of the 补正 request, day the materials were complete]; with
        ``closed_only``, only the pauses that have ended."""
        ranges = []
        for p in self.pauses:
            if closed_only and not p.get("end"):
                continue
            start = local_date(_parse(p["start"]))
            end = local_date(_parse(p["end"])) if p.get("end") else date.max
            ranges.append((start, end))
        if not ranges:
            return None
        return lambda d: any(a < d <= b for a, b in ranges)

    def compute(self, cal: WorkCalendar, now: datetime) -> "ClockState":
        """Fill the derived fields for the moment ``now``."""
        start = local_date(self.started_at)
        total = self.total_days
        if self.paused_at is not None:
            # the due date as it stood when the 补正 began: the real one can only be later (the pause adds its
            # working days once the materials are complete), so the case's deadline never moves earlier meanwhile
            due = cal.add_workdays(start, total, self._skip(closed_only=True))
            self.due_date = due.value
            self.yellow_at = self.red_at = None
            self.provisional = due.provisional
            self.level = "paused" if self.stopped_at is None else self.level
        else:
            skip = self._skip()
            due = cal.add_workdays(start, total, skip)
            yellow_n = min(math.ceil(total * 0.8), total - 1)
            yellow = cal.add_workdays(start, max(yellow_n, 0), skip)
            self.due_date = due.value
            self.provisional = due.provisional or yellow.provisional
            self.yellow_at = max(day_start(yellow.value), self.started_at) if yellow_n > 0 else self.started_at
            self.red_at = day_start(due.value + timedelta(days=1))
        # an extension can move a level's moment back into the future: it may then be announced again
        moments = {"yellow": self.yellow_at, "red": self.red_at}
        self.warned = [w for w in self.warned if moments.get(w) is None or moments[w] <= now]
        if self.stopped_at is not None and self.stop_reason:
            self.level = "ended"
        elif self.stopped_at is not None:
            late = self.due_date is not None and local_date(self.stopped_at) > self.due_date
            self.level = "late" if late else "done"
        elif self.paused_at is None:
            self.level = "red" if now >= self.red_at else "yellow" if now >= self.yellow_at else "green"
        return self

    def days(self, cal: WorkCalendar, now: datetime) -> tuple[int, int, bool]:
        """Working days used and left at ``now`` (left < 0: overdue by that many), and whether provisional."""
        end = self.stopped_at or self.paused_at or now
        used = cal.workdays_between(local_date(self.started_at), local_date(end), self._skip())
        return used.value, self.total_days - used.value, used.provisional or self.provisional

    def describe(self, cal: WorkCalendar, now: datetime) -> dict:
        used, left, provisional = self.days(cal, now)
        if self.level == "paused":
            text = f"补正暂停中（已用{used}个工作日）"
        elif self.level == "ended":
            text = f"已停止计时：{self.stop_reason}（已用{used}个工作日）"
        elif self.level in ("done", "late"):
            text = "按时办结" if self.level == "done" else f"超期办结（超{-left}个工作日）" if left < 0 else "超期办结"
        elif left < 0:
            text = f"已超期{-left}个工作日"
        elif self.level == "red":  # the due date has passed, but no working day since (a weekend or holiday)
            text = f"已超过办结期限（{self.due_date}）"
        else:
            text = f"剩余{left}个工作日"
        if provisional and self.level not in ("done", "late", "ended"):
            text += "（暂定）"
        return {"key": self.key, "title": self.title, "department": self.department, "level": self.level,
                "level_name": LEVEL_NAMES[self.level], "text": text, "used": used, "left": left,
                "limit_days": self.limit_days, "extension_days": self.total_days - self.limit_days,
                "due_date": self.due_date, "provisional": provisional, "pauses": self.pauses,
                "extensions": self.extensions}

    # ---- transitions (each returns a description for the event log) ----
    def pause(self, at: datetime, reason: str) -> dict:
        self.pauses = [*self.pauses, {"start": at.isoformat(), "end": None, "reason": reason}]
        return {"clock": self.key, "reason": reason}

    def resume(self, at: datetime) -> dict:
        self.pauses = [dict(p, end=p.get("end") or at.isoformat()) for p in self.pauses]
        return {"clock": self.key}

    def extend(self, days: int, reason: str, approved_by: str, at: datetime) -> dict:
        entry = {"days": int(days), "reason": reason, "approved_by": approved_by, "at": at.isoformat()}
        self.extensions = [*self.extensions, entry]
        return {"clock": self.key, **entry}

    def stop(self, at: datetime, reason: str | None = None) -> dict:
        """The item is decided (no ``reason``), or its handling ended without a decision (``reason``: the case was
        terminated or ended); an open 补正 pause ends with it, so a stopped clock never resumes."""
        if self.paused_at is not None:
            self.pauses = [dict(p, end=p.get("end") or at.isoformat()) for p in self.pauses]
        self.stopped_at = at
        self.stop_reason = (reason or "")[:200] or None
        return {"clock": self.key, **({"reason": self.stop_reason} if self.stop_reason else {})}

    def to_row(self) -> dict:
        return {"key": self.key, "title": self.title, "department": self.department, "limit_days": self.limit_days,
                "extension_days": self.total_days - self.limit_days, "started_at": self.started_at,
                "paused_at": self.paused_at, "pauses": self.pauses, "extensions": self.extensions,
                "due_date": self.due_date, "yellow_at": self.yellow_at, "red_at": self.red_at,
                "provisional": self.provisional, "level": self.level, "stopped_at": self.stopped_at,
                "warned": self.warned, "stop_reason": self.stop_reason}

    @classmethod
    def from_row(cls, row) -> "ClockState":
        def aware(v):
            return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v
        return cls(key=row.key, title=row.title, department=row.department, limit_days=row.limit_days,
                   started_at=aware(row.started_at), pauses=list(row.pauses or []), extensions=list(row.extensions or []),
                   stopped_at=aware(row.stopped_at), due_date=row.due_date, yellow_at=aware(row.yellow_at),
                   red_at=aware(row.red_at), provisional=row.provisional, level=row.level,
                   warned=list(row.warned or []), stop_reason=getattr(row, "stop_reason", None))

    def copy(self) -> "ClockState":
        return replace(self, pauses=list(self.pauses), extensions=list(self.extensions), warned=list(self.warned))


def case_summary(clocks) -> tuple[date | None, str | None]:
    """A case's own clock: the latest due date of its running clocks and the worst of their levels."""
    running = [c for c in clocks if c.stopped_at is None and c.level in LEVELS]
    paused = [c for c in clocks if c.stopped_at is None and c.level == "paused"]
    if not running and not paused:
        return None, None
    # a paused clock counts with the due date it had when the 补正 began (its earliest possible due date)
    due = max((c.due_date for c in running + paused if c.due_date), default=None)
    return due, max((c.level for c in running), key=LEVELS.index) if running else "paused"


# ---- the helper BPMN timer expressions call --------------------------------------------------------------------
FAR_FUTURE = "9999-12-31T00:00:00+00:00"
CURRENT: ContextVar[dict | None] = ContextVar("bangban_case_clocks", default=None)


def clock_due(key, level: str) -> str:
    """When a clock of the running case turns ``yellow`` or ``red`` (ISO time; far future while it is paused,
    stopped, not started, or that level was already announced by a timer — so a timer created again after a
    补正 round does not repeat a warning). Timer expressions call it, e.g. ``clock_due(item['code'], 'red')``."""
    c = (CURRENT.get() or {}).get(str(key))
    if c is None or c.stopped_at is not None or c.paused_at is not None or level in c.warned:
        return FAR_FUTURE
    at = {"yellow": c.yellow_at, "red": c.red_at}.get(level)
    return at.isoformat() if at is not None else FAR_FUTURE
