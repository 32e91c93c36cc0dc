"""The calendar's history: which working-day calendar was in force at any instant, for audit replay.

Every change an administrator makes to the calendar (a day set, changed or removed, a year marked complete or not, a
file imported) is stored append-only in ``calendar_changes``: one row per day or year it touched, with the kind and
name (or the completeness) before and after, who made it, when, and ``since`` — the day from which the service
recomputed running clocks afterwards. The rows of one administrator's action share a ``change_no`` (a *batch*).

Replay (:mod:`engine.audit`) does each step with the calendar in force when it happened, and at each later change
does what the live service did then: the new calendar, and — for a case whose clocks the change may move (a running
clock that is provisional, paused, or due on or after ``since``) — a recomputation at the change's time. So a holiday
entered after the fact neither fails an untampered case nor lets a wrong stored due date pass.

Baseline. Nothing was recorded before the migration that created the table (``20261130_0006``); the best known
calendar for any earlier instant is the one at migration time (which is what replay used before). The migration
therefore writes one ``baseline`` row per administrator's day and year then present, and the history is applied
forwards: the baseline is in force from the beginning of time, each batch from its ``at`` on. A history read this way
needs nothing but its own rows (an exported dossier carries them), and its end state can be compared with the tables.

Pure: no database, no web framework. Rows are database rows or a dossier's dicts.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from .clock import clock
from .errors import InvalidInput
from .workcal import WorkCalendar, YearData

BASELINE = "baseline"
#: What an administrator's action was, as the calendar page names it.
SOURCE_NAMES = {BASELINE: "迁移时的日历（基线）", "set_day": "设置日期", "remove_day": "删除日期",
                "set_year": "设置年份", "import": "导入日历文件"}
KIND_NAMES = {"rest": "休息日", "work": "工作日", None: "无人工设置"}


def _get(r, name):
    return r.get(name) if isinstance(r, dict) else getattr(r, name, None)


def _moment(v) -> datetime:
    if isinstance(v, str):
        v = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return v.replace(tzinfo=UTC) if v.tzinfo is None else v


def _day(v) -> date | None:
    if v is None or isinstance(v, date) and not isinstance(v, datetime):
        return v
    return date.fromisoformat(str(v)[:10])


@dataclass(frozen=True)
class Batch:
    """One administrator's action: when, from which day clocks were recomputed, and its rows."""

    change_no: int
    at: datetime
    since: date | None
    rows: tuple


class CalendarHistory:
    """The calendars in force over time: ``at(moment)``, ``calendar(i)`` after ``i`` batches, ``current``.

    Calendars are built lazily, once per batch, and shared by every replay that uses this history (one history per
    ``verify --all`` run, not one per case or event)."""

    def __init__(self, rows: Iterable = (), fixed: WorkCalendar | None = None):
        try:
            self._read(list(rows), fixed)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise InvalidInput("日历变更记录无法读取（记录缺项或格式不对）") from exc

    def _read(self, rows: list, fixed: WorkCalendar | None) -> None:
        ordered = sorted(rows, key=lambda r: int(_get(r, "seq")))
        self._base = [r for r in ordered if _get(r, "source") == BASELINE]
        grouped: dict[int, list] = {}
        for r in ordered:
            if _get(r, "source") != BASELINE:
                grouped.setdefault(int(_get(r, "change_no")), []).append(r)
        self.batches: list[Batch] = []
        for no, rs in sorted(grouped.items(), key=lambda kv: int(_get(kv[1][0], "seq"))):
            self.batches.append(Batch(no, _moment(_get(rs[0], "at")), _day(_get(rs[0], "since")), tuple(rs)))
        # the instant from which each batch is in force; kept non-decreasing even if clocks disagreed
        self._from: list[datetime] = []
        for b in self.batches:
            self._from.append(max(b.at, self._from[-1]) if self._from else b.at)
        self._fixed = fixed
        self._states: list[dict] | None = None
        self._calendars: dict[int, WorkCalendar] = {}
        self._all_states()      # a malformed row fails here, not in the middle of a replay

    @classmethod
    def fixed(cls, calendar: WorkCalendar) -> CalendarHistory:
        """A history with no changes: ``calendar`` at every instant (an old dossier without history)."""
        return cls((), fixed=calendar)

    # ---- states ----------------------------------------------------------------------------------------------------
    def _all_states(self) -> list[dict]:
        """The administrator's table after 0, 1, … batches: ``{year: (complete, {day: (kind, name)})}``."""
        if self._states is None:
            state: dict[int, tuple[bool, dict]] = {}
            for r in self._base:
                _apply(state, r)
            states = [_freeze(state)]
            for b in self.batches:
                for r in b.rows:
                    _apply(state, r)
                states.append(_freeze(state))
            self._states = states
        return self._states

    def admin(self, i: int) -> dict[int, tuple[bool, dict]]:
        """The administrator's table after ``i`` batches."""
        return self._all_states()[i]

    def calendar(self, i: int) -> WorkCalendar:
        """The calendar after the first ``i`` batches (0: the baseline)."""
        if self._fixed is not None:
            return self._fixed
        cal = self._calendars.get(i)
        if cal is None:
            admin = self.admin(i)
            cal = self._calendars[i] = WorkCalendar({
                y: YearData(complete, {d: k for d, (k, _) in days.items()},
                            {d: n for d, (_, n) in days.items() if n}) for y, (complete, days) in admin.items()})
        return cal

    def index_at(self, moment: datetime | None) -> int:
        """How many batches were in force at ``moment`` (all of them for None)."""
        return len(self.batches) if moment is None else bisect_right(self._from, _moment(moment))

    def at(self, moment: datetime) -> WorkCalendar:
        return self.calendar(self.index_at(moment))

    @property
    def current(self) -> WorkCalendar:
        return self.calendar(len(self.batches))

    def differs_from(self, years: Iterable, days: Iterable) -> bool:
        """Whether the history's end state is not the calendar tables' content (changed outside the service)."""
        table: dict[int, tuple[bool, dict]] = {int(_get(y, "year")): (bool(_get(y, "complete")), {}) for y in years}
        for d in days:
            day = _day(_get(d, "day"))
            table.setdefault(day.year, (False, {}))[1][day] = (_get(d, "kind"), _get(d, "name") or "")
        mine = self._all_states()[-1]
        norm = {y: (c, ds) for y, (c, ds) in table.items() if c or ds}
        return norm != {y: (c, ds) for y, (c, ds) in mine.items() if c or ds}

    def follow(self) -> Follower:
        return Follower(self)


def _apply(state: dict, r) -> None:
    year = int(_get(r, "year"))
    complete, days = state.get(year, (False, {}))
    days = dict(days)
    if _get(r, "day") is None:
        if _get(r, "complete_after") is not None:
            complete = bool(_get(r, "complete_after"))
    else:
        day = _day(_get(r, "day"))
        kind = _get(r, "kind_after")
        if kind not in (None, "rest", "work") or day.year != year:
            raise ValueError(f"{day} {kind}")
        if kind is None:
            days.pop(day, None)
        else:
            days[day] = (kind, _get(r, "name_after") or "")
    state[year] = (complete, days)


def _freeze(state: dict) -> dict:
    return {y: (c, dict(ds)) for y, (c, ds) in state.items()}


def as_history(calendar) -> CalendarHistory:
    """``calendar`` as a history: a history itself, or a fixed calendar."""
    return calendar if isinstance(calendar, CalendarHistory) else CalendarHistory.fixed(calendar)


def may_move(clocks: Iterable, since: date | None) -> bool:
    """Whether the live service recomputed a case after a change from ``since`` on: it has a running clock that is
    provisional, paused (no due date) or due on or after ``since`` (as ``case_ids_with_clocks_from`` selects)."""
    return any(c.stopped_at is None and (c.provisional or c.due_date is None or since is None or c.due_date >= since)
               for c in clocks)


class Follower:
    """One replay's walk through a history: the calendar for its first step, then each change as it comes."""

    def __init__(self, history: CalendarHistory):
        self.history = history
        self.applied = 0       # batches in force at the replay's last step
        self.stepped = 0       # the calendar the replay last computed clocks with

    def start(self, moment: datetime) -> WorkCalendar:
        self.applied = self.stepped = self.history.index_at(moment)
        return self.history.calendar(self.applied)

    def advance(self, run, until: datetime | None) -> None:
        """Apply to ``run`` each change made up to ``until`` (all for None) as the live service did: the new calendar,
        and a recomputation at the change's time when the change may move the case's clocks."""
        target = self.history.index_at(until)
        while self.applied < target:
            batch = self.history.batches[self.applied]
            self.applied += 1
            cal = self.history.calendar(self.applied)
            if may_move(run.clocks.values(), batch.since):
                with clock.at(batch.at):
                    run.recompute_clocks(cal)
                self.stepped = self.applied
            else:
                run.calendar = cal

    def step(self) -> None:
        """The replay did a step with the calendar now in force."""
        self.stepped = self.applied

    def choices(self) -> list[WorkCalendar]:
        """The calendars a clock of the case may last have been computed with: from the replay's last step on (a
        worker round that records no event may have recomputed it with a later one)."""
        return [self.history.calendar(i) for i in range(self.stepped, self.applied + 1)]


def due_date_divergence(stored, replayed) -> tuple[str, object, object] | None:
    """The first clock whose stored due date is not what the replay gives with a calendar it may have been computed
    with: ``(clock key, stored, replayed)``, or None. ``stored``/``replayed`` are runs; the replay's calendars come
    from ``replayed.calendar_choices`` (its own calendar when absent)."""
    choices = getattr(replayed, "calendar_choices", None) or [replayed.calendar]
    for key in sorted(set(stored.clocks) & set(replayed.clocks)):
        have, mine = stored.clocks[key], replayed.clocks[key]
        if have.due_date == mine.due_date or (have.due_date is None and mine.paused_at is not None):
            continue     # a paused clock stored without its due date (as before paused clocks kept theirs)
        at = mine.stopped_at or mine.paused_at or mine.started_at
        options = {mine.copy().compute(cal, at).due_date for cal in choices}
        if have.due_date not in options:
            return key, have.due_date, mine.due_date
    return None


# ---- what a write changes (the rows the use cases store) ----------------------------------------------------------
def day_row(day: date, before, kind: str | None, name: str | None) -> dict:
    """The change of one administrator's day: ``before`` is its row (or None), ``kind`` None removes it."""
    return {"year": day.year, "day": day, "kind_before": _get(before, "kind") if before is not None else None,
            "name_before": (_get(before, "name") or "") if before is not None else None,
            "kind_after": kind, "name_after": (name or "") if kind is not None else None}


def year_row(year: int, before, complete: bool | None) -> dict:
    """The completeness of a year before (None: no row yet) and after (None: unchanged)."""
    was = bool(_get(before, "complete")) if before is not None else None
    return {"year": year, "day": None, "complete_before": was,
            "complete_after": was if complete is None else bool(complete)}


def year_rows(year: int, before_days: Iterable, after: dict[date, tuple[str, str]]) -> list[dict]:
    """Every day a year's replacement adds, changes or removes (``after``: ``{day: (kind, name)}``)."""
    old = {_day(_get(r, "day")): r for r in before_days}
    out = []
    for day in sorted(set(old) | set(after)):
        kind, name = after.get(day, (None, None))
        b = old.get(day)
        if b is None or kind != _get(b, "kind") or (name or "") != (_get(b, "name") or "") or kind is None:
            if b is not None or kind is not None:
                out.append(day_row(day, b, kind, name))
    return out


def _kind_text(kind, name) -> str:
    return KIND_NAMES.get(kind, str(kind)) + (f"（{name}）" if kind is not None and name else "")


def describe(r) -> dict:
    """One history row as the calendar page shows it: when, who, which action, and what changed (Chinese)."""
    year, day = _get(r, "year"), _day(_get(r, "day"))
    if day is not None:
        before = _kind_text(_get(r, "kind_before"), _get(r, "name_before"))
        after = _kind_text(_get(r, "kind_after"), _get(r, "name_after"))
        what = f"{day.isoformat()}：{after}" if _get(r, "source") == BASELINE else f"{day.isoformat()}：{before} → {after}"
    else:
        def flag(v):
            return "未设置" if v is None else "已完整" if v else "未完整"
        what = (f"{year} 年：{flag(_get(r, 'complete_after'))}" if _get(r, "source") == BASELINE
                else f"{year} 年：{flag(_get(r, 'complete_before'))} → {flag(_get(r, 'complete_after'))}")
    return {"seq": _get(r, "seq"), "change_no": _get(r, "change_no"), "at": _moment(_get(r, "at")),
            "by": _get(r, "by"), "source": SOURCE_NAMES.get(_get(r, "source"), _get(r, "source")), "what": what}
