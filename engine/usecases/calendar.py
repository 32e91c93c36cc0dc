"""The working-day calendar: official data plus the administrators' days; every change recomputes the clocks
it may move, and is recorded in the calendar's history (``engine.calhistory``) in the same transaction."""
from __future__ import annotations

from datetime import date, timedelta
from time import monotonic

from .. import calhistory, forms
from ..access import Actor
from ..clock import LOCAL_TZ, clock, now
from ..db import UnitOfWork
from ..errors import (
    InvalidInput,
    NotFound,
)
from ..workcal import CalendarFileError, WorkCalendar, YearData, parse_calendar_file
from .base import CALENDAR_TTL


class CalendarUseCases:
    """Use cases: The working-day calendar: official data plus the administrators' days; every change recomputes the clocks."""

    def calendar(self, uow: UnitOfWork | None = None) -> WorkCalendar:
        """Official data plus the administrators' table. Inside a use case that changes clocks (``uow`` given) the
        table's version is always checked, so no worker or web process recomputes a clock from a stale calendar;
        pages re-check at most every ``CALENDAR_TTL`` seconds."""
        cached = self._calendar
        moment = monotonic()
        if uow is None and cached is not None and moment - cached[0] < CALENDAR_TTL:
            return cached[1]
        if uow is None:
            with self.db.unit_of_work(write=False) as read:
                return self.calendar(read)
        version = uow.repo.calendar_version()
        if cached is not None and cached[2] == version:
            self._calendar = (moment, cached[1], version)
            return cached[1]
        cal = self._read_calendar(uow)
        self._calendar = (moment, cal, version)
        return cal

    def calendar_history(self, uow: UnitOfWork) -> calhistory.CalendarHistory:
        """The calendar's history for audit replay, read once per calendar version (a ``verify --all`` run reads it
        once, and its calendars are built once per change, shared by every case)."""
        version = uow.repo.calendar_version()
        cached = self._calendar_history
        if cached is not None and cached[0] == version:
            return cached[1]
        history = calhistory.CalendarHistory(uow.repo.calendar_changes())
        self._calendar_history = (version, history)
        return history

    def calendar_changes(self, actor: Actor, limit: int = 50) -> list[dict]:
        """The latest changes of the calendar, newest first, as the calendar page lists them (who, when, what)."""
        self._check_permission(actor, "supervision")
        with self.db.unit_of_work(write=False) as uow:
            rows = uow.repo.calendar_changes(latest=limit)
        return [calhistory.describe(r) for r in rows]

    @staticmethod
    def _record_change(uow: UnitOfWork, source: str, by: str, at, since: date, rows: list[dict]) -> None:
        """Append one action's rows to the calendar's history (one ``change_no`` for all of them)."""
        number = uow.repo.next_number("calendar", "change")
        blank = dict.fromkeys(("day", "kind_before", "name_before", "kind_after", "name_after", "complete_before",
                               "complete_after"))
        uow.repo.add_calendar_changes([{**blank, **r, "change_no": number, "at": at, "by": by[:64], "source": source,
                                        "since": since} for r in rows])

    @staticmethod
    def _read_calendar(uow: UnitOfWork) -> WorkCalendar:
        complete = {r.year: r.complete for r in uow.repo.calendar_years()}
        days: dict[int, dict] = {year: {} for year in complete}
        names: dict[int, dict] = {year: {} for year in complete}
        for d in uow.repo.calendar_days():
            days.setdefault(d.year, {})[d.day] = d.kind
            names.setdefault(d.year, {})[d.day] = d.name
        return WorkCalendar({year: YearData(complete.get(year, False), ds, names.get(year, {}))
                             for year, ds in days.items()})

    def calendar_year(self, actor: Actor, year: int) -> dict:
        """A year as the calendar page shows it: whether its schedule is known, and the administrators' days."""
        self._check_permission(actor, "supervision")
        if not 2000 <= int(year) <= 2100:
            raise InvalidInput("年份应在 2000 到 2100 之间")
        cal = self.calendar()
        with self.db.unit_of_work(write=False) as uow:
            years = {r.year: r for r in uow.repo.calendar_years()}
            days = uow.repo.calendar_days(int(year))
        row = years.get(int(year))
        this_year = now().astimezone(LOCAL_TZ).year
        official = int(year) in cal.official_years()
        holidays = []
        if official:
            d = date(int(year), 1, 1)
            while d.year == int(year):
                kind, name, source = cal.day_kind(d)
                if source == "official" and (kind == "rest") != (d.weekday() >= 5):
                    holidays.append({"day": d, "kind": kind, "name": name or ""})
                d += timedelta(days=1)
        return {"year": int(year), "official": official, "complete": bool(row and row.complete),
                "known": cal.year_known(int(year)), "note": row.note if row else "",
                "updated_at": row.updated_at if row else None, "updated_by": row.updated_by if row else None,
                "admin_days": [{"day": d.day, "kind": d.kind, "name": d.name} for d in days],
                "official_days": holidays,
                "years": sorted(set(years) | {int(year)} | {this_year, this_year + 1})}

    def set_calendar_day(self, actor: Actor, day: date, kind: str | None, name: str = "") -> dict:
        """Add, change (kind ``rest``/``work``) or remove (kind None) an administrator's day; recompute clocks."""
        self._check_permission(actor, "calendar")
        if kind not in (None, "rest", "work"):
            raise InvalidInput("类型应为休息日或工作日")
        name = forms.plain_text(name, "名称", 50)
        at = now()
        with self.db.unit_of_work() as uow:
            before = uow.repo.calendar_day(day)
            if kind is None:
                if not uow.repo.delete_calendar_day(day):
                    raise NotFound("该日期没有人工设置")
            else:
                uow.repo.set_calendar_day(day, kind, name)
            uow.repo.touch_calendar_year(day.year, None, at, actor.username)
            self._record_change(uow, "remove_day" if kind is None else "set_day", actor.username, at, day,
                                [calhistory.day_row(day, before, kind, name)])
            uow.commit()
        return self._after_calendar_change(actor, day)

    def set_calendar_year(self, actor: Actor, year: int, complete: bool, note: str | None = None) -> dict:
        self._check_permission(actor, "calendar")
        at = now()
        with self.db.unit_of_work() as uow:
            before = uow.repo.calendar_year(int(year))
            uow.repo.touch_calendar_year(int(year), bool(complete), at, actor.username, (note or "")[:200] or None)
            self._record_change(uow, "set_year", actor.username, at, date(int(year), 1, 1),
                                [calhistory.year_row(int(year), before, bool(complete))])
            uow.commit()
        return self._after_calendar_change(actor, date(int(year), 1, 1))

    def import_calendar(self, actor: Actor | None, text: str) -> dict:
        """Import an administrator's file (``engine.workcal.parse_calendar_file``): each year in it is replaced."""
        if actor is not None:
            self._check_permission(actor, "calendar")
        try:
            years = parse_calendar_file(text)
        except CalendarFileError as exc:
            raise InvalidInput(exc.message, details=exc.problems) from exc
        if not years:
            raise InvalidInput("日历文件中没有任何日期或年份，未做任何更改")
        by = actor.username if actor else "命令行导入"
        at = now()
        with self.db.unit_of_work() as uow:
            changes: list[dict] = []
            for year, data in sorted(years.items()):
                changes.append(calhistory.year_row(year, uow.repo.calendar_year(year), data.complete))
                changes += calhistory.year_rows(year, uow.repo.calendar_days(year),
                                                {d: (k, data.names.get(d, "")) for d, k in data.days.items()})
                uow.repo.replace_calendar_year(year, [{"day": d, "kind": k, "name": data.names.get(d, "")}
                                                      for d, k in sorted(data.days.items())])
                uow.repo.touch_calendar_year(year, data.complete, at, by)
            self._record_change(uow, "import", by, at, date(min(years), 1, 1), changes)
            uow.commit()
        result = self._after_calendar_change(actor, date(min(years), 1, 1))
        result["years"] = sorted(years)
        return result

    def _after_calendar_change(self, actor: Actor | None, since: date) -> dict:
        """Recompute every running clock the change may move (provisional ones, or due on or after ``since``)."""
        with self.db.unit_of_work(write=False) as uow:
            case_ids = uow.repo.case_ids_with_clocks_from(since)
        for case_id in case_ids:
            with clock.step() as step, self.db.unit_of_work() as uow:
                case = uow.repo.case_by_id(case_id, lock=True)
                at = step.after(case.updated_at)
                self._tick(uow, case, at)
                uow.commit()
        return {"recomputed_cases": len(case_ids)}
