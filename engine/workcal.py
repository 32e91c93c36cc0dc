"""Working-day calendar: counts statutory time limits in working days (工作日).

Over 400 lines: the calendar, its official data, the administrators' file format and its parser belong
together; each part is small.

A working day is Monday to Friday, minus statutory holidays, plus make-up working days (调休上班, often a Saturday or
Sunday).  The day of acceptance is not counted (开始的当日不计入), and an application received on a rest day counts as
received on the next working day.

Two sources of holiday data are combined:

* the official schedule in the ``chinese-calendar`` package (``chinese_calendar.holidays`` and
  ``chinese_calendar.workdays``; 1.11.0 covers 2004-2026).  Only its data dicts are read, so its
  ``NotImplementedError`` for other years can never escape from here;
* the administrator's table (:class:`YearData` per year), which overrides the official data day by day (corrections)
  and supplies the years the package does not cover.

A year is *known* if the package covers it or the administrator marked it complete.  For a year that is not known,
Saturday and Sunday are rest days and Monday to Friday working days, the administrator's entries already made for it
still apply, and every result that depended on a day of such a year is marked provisional (暂定).

The module is pure: no database, no web framework, no wall clock.  Results are plain :class:`datetime.date` values.
"""
from __future__ import annotations

import csv
import io
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

import chinese_calendar

__all__ = [
    "MAX_WORKDAYS",
    "CalendarFileError",
    "DayCount",
    "DayResult",
    "WorkCalendar",
    "YearData",
    "format_calendar_file",
    "parse_calendar_file",
]

REST = "rest"
WORK = "work"
KINDS = (REST, WORK)

#: The largest number of working days :meth:`WorkCalendar.add_workdays` accepts.
MAX_WORKDAYS = 10000
#: How many calendar years a single computation may walk through before it gives up (guards every loop).
MAX_SCAN_YEARS = 100

_N_MESSAGE = f"工作日数应为 0 到 {MAX_WORKDAYS} 之间的整数"


@dataclass(frozen=True)
class YearData:
    """The administrator's schedule for one year.

    ``days`` maps a date of that year to ``"rest"`` (a holiday, 休息日) or ``"work"`` (a make-up working day, 调休上班);
    ``complete`` says the administrator has entered the whole year.  ``names`` optionally names an entry (e.g. 春节).
    """

    complete: bool
    days: Mapping[date, str]
    names: Mapping[date, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DayCount:
    """A number of working days; ``provisional`` if it depended on a day of a year that is not known."""

    value: int
    provisional: bool


@dataclass(frozen=True)
class DayResult:
    """A date; ``provisional`` if it depended on a day of a year that is not known."""

    value: date
    provisional: bool


# --------------------------------------------------------------------------- official data (chinese_calendar)

_HOLIDAY_NAMES: dict[str, str] = {h.value: h.chinese for h in chinese_calendar.Holiday}
_official_index: dict[int, dict[date, tuple[str, str | None]]] | None = None
_official_years: range | None = None


def _official() -> tuple[range, dict[int, dict[date, tuple[str, str | None]]]]:
    """The package's data, indexed by year: ``{year: {date: (kind, Chinese name)}}``, and the covered years.

    The covered range is computed exactly as the package validates dates (min..max year of ``holidays``).
    """
    global _official_index, _official_years
    if _official_index is None or _official_years is None:
        index: dict[int, dict[date, tuple[str, str | None]]] = {}
        for table, kind in ((chinese_calendar.holidays, REST), (chinese_calendar.workdays, WORK)):
            for d, name in table.items():
                index.setdefault(d.year, {})[d] = (kind, _HOLIDAY_NAMES.get(name, name))
        years = [d.year for d in chinese_calendar.holidays]
        _official_years = range(min(years), max(years) + 1) if years else range(0)
        _official_index = index
    return _official_years, _official_index


# --------------------------------------------------------------------------- per-year tables


class _Year:
    """Precomputed working days of one year under one calendar."""

    __slots__ = ("first", "flags", "work", "known")

    def __init__(self, first: int, flags: bytearray, known: bool):
        self.first = first  # ordinal of 1 January
        self.flags = flags  # flags[ordinal - first] == 1 on a working day
        self.work = [first + i for i, f in enumerate(flags) if f]  # sorted ordinals of the working days
        self.known = known


def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_WORKDAYS:
        raise ValueError(_N_MESSAGE)


class WorkCalendar:
    """Working-day arithmetic over the official schedule plus the administrator's table ``admin`` (year -> YearData).

    Instances are immutable in behaviour (the per-year tables are caches); use :meth:`with_admin` for other data.
    """

    def __init__(self, admin: Mapping[int, YearData] | None = None):
        checked: dict[int, YearData] = {}
        for year, data in (admin or {}).items():
            if isinstance(year, bool) or not isinstance(year, int):
                raise ValueError(f"年份 {year!r} 无效")
            for d, kind in data.days.items():
                if not isinstance(d, date) or d.year != year:
                    raise ValueError(f"{year} 年的日历数据中含有不属于该年的日期 {d!r}")
                if kind not in KINDS:
                    raise ValueError(f"{d.isoformat()} 的类型 {kind!r} 无效（应为 rest 或 work）")
            checked[year] = data
        self._admin = checked
        self._years: dict[int, _Year] = {}

    # ----------------------------------------------------------------------- data

    @property
    def admin(self) -> Mapping[int, YearData]:
        """The administrator's table this calendar was built with."""
        return self._admin

    def with_admin(self, admin: Mapping[int, YearData] | None) -> WorkCalendar:
        """A new calendar with other administrator data (this one is unchanged)."""
        return WorkCalendar(admin)

    def official_years(self) -> range:
        """The years the ``chinese_calendar`` package has official data for."""
        return _official()[0]

    def year_known(self, year: int) -> bool:
        """True if the package covers ``year`` or the administrator marked it complete."""
        data = self._admin.get(year)
        return year in _official()[0] or (data is not None and data.complete)

    def _year(self, year: int) -> _Year:
        y = self._years.get(year)
        if y is None:
            y = self._years[year] = self._build(year)
        return y

    def _build(self, year: int) -> _Year:
        if not 1 <= year <= 9999:
            raise ValueError("日期超出可计算的范围")
        first = date(year, 1, 1).toordinal()
        size = date(year + 1, 1, 1).toordinal() - first if year < 9999 else 365
        wd0 = date(year, 1, 1).weekday()
        flags = bytearray(1 if (wd0 + i) % 7 < 5 else 0 for i in range(size))
        years, official = _official()
        overrides: dict[date, str] = {}
        if year in years:
            overrides.update({d: kind for d, (kind, _) in official.get(year, {}).items()})
        data = self._admin.get(year)
        if data is not None:
            overrides.update(data.days)
        for d, kind in overrides.items():
            flags[d.toordinal() - first] = 1 if kind == WORK else 0
        return _Year(first, flags, self.year_known(year))

    # ----------------------------------------------------------------------- single days

    def is_workday(self, d: date) -> bool:
        """True if ``d`` is a working day (never raises for years the package does not cover)."""
        y = self._year(d.year)
        return bool(y.flags[d.toordinal() - y.first])

    def day_kind(self, d: date) -> tuple[str, str | None, str]:
        """``(kind, name, source)`` for ``d``.

        ``kind`` is ``"work"`` or ``"rest"``; ``name`` the holiday a holiday or make-up day belongs to (e.g. 春节), or
        None; ``source`` is ``"admin"`` (the administrator's entry), ``"official"`` (a year the package covers) or
        ``"weekend-rule"`` (any other year: Saturday/Sunday rest).
        """
        data = self._admin.get(d.year)
        if data is not None and d in data.days:
            return data.days[d], data.names.get(d), "admin"
        years, official = _official()
        if d.year in years:
            entry = official.get(d.year, {}).get(d)
            if entry is not None:
                return entry[0], entry[1], "official"
            return (WORK if d.weekday() < 5 else REST), None, "official"
        return (WORK if d.weekday() < 5 else REST), None, "weekend-rule"

    # ----------------------------------------------------------------------- counting

    def _first_work_from(self, o: int) -> tuple[int, bool]:
        """The first working day on or after ordinal ``o``, and whether an unknown year was examined."""
        year = date.fromordinal(o).year
        y = self._year(year)
        provisional = not y.known
        if y.flags[o - y.first]:
            return o, provisional
        for _ in range(MAX_SCAN_YEARS):
            i = bisect_left(y.work, o)
            if i < len(y.work):
                return y.work[i], provisional
            year += 1
            y = self._year(year)
            provisional = provisional or not y.known
        raise ValueError(f"{MAX_SCAN_YEARS} 年内没有工作日")

    def effective_start(self, received: date) -> DayResult:
        """The day from which a time limit runs: ``received`` itself on a working day, else the next working day."""
        o, provisional = self._first_work_from(received.toordinal())
        return DayResult(date.fromordinal(o), provisional)

    def add_workdays(self, start: date, n: int, skip: Callable[[date], bool] | None = None) -> DayResult:
        """The ``n``-th working day after :meth:`effective_start` of ``start`` (that start day itself not counted).

        ``n == 0`` gives the effective start.  ``skip(d)`` returning True excludes an otherwise working day ``d`` from
        the count (the clock is paused, e.g. while waiting for 补正 materials); it is called on working days only.
        Raises ValueError for ``n`` outside 0..10000 or when no result exists within 100 years.
        """
        _check_n(n)
        o, provisional = self._first_work_from(start.toordinal())
        if n == 0:
            return DayResult(date.fromordinal(o), provisional)
        year = date.fromordinal(o).year
        y = self._year(year)
        i = bisect_right(y.work, o)
        remaining = n
        for _ in range(MAX_SCAN_YEARS):
            provisional = provisional or not y.known
            work = y.work
            if skip is None:
                if remaining <= len(work) - i:
                    return DayResult(date.fromordinal(work[i + remaining - 1]), provisional)
                remaining -= len(work) - i
            else:
                for k in range(i, len(work)):
                    if not skip(date.fromordinal(work[k])):
                        remaining -= 1
                        if remaining == 0:
                            return DayResult(date.fromordinal(work[k]), provisional)
            year += 1
            y = self._year(year)
            i = 0
        raise ValueError(f"{MAX_SCAN_YEARS} 年内数不到 {n} 个工作日")

    def workdays_between(self, start: date, end: date, skip: Callable[[date], bool] | None = None) -> DayCount:
        """The number of working days ``d`` with ``effective_start(start) < d <= end`` (0 if ``end`` is not later).

        ``skip`` excludes days as in :meth:`add_workdays`.  Provisional if any day from ``start`` to the effective
        start or to ``end`` (whichever is later) lies in a year that is not known.
        """
        lo, provisional = self._first_work_from(start.toordinal())
        hi = end.toordinal()
        if hi <= lo:
            return DayCount(0, provisional)
        first_year, last_year = date.fromordinal(lo).year, end.year
        if last_year - first_year >= MAX_SCAN_YEARS:
            raise ValueError(f"起止日期相隔不能超过 {MAX_SCAN_YEARS} 年")
        count = 0
        for year in range(first_year, last_year + 1):
            y = self._year(year)
            provisional = provisional or not y.known
            a = bisect_right(y.work, lo) if year == first_year else 0
            b = bisect_right(y.work, hi) if year == last_year else len(y.work)
            if skip is None:
                count += b - a
            else:
                work = y.work
                count += sum(1 for k in range(a, b) if not skip(date.fromordinal(work[k])))
        return DayCount(count, provisional)


# --------------------------------------------------------------------------- the administrator's import file

_KIND_WORDS = {
    "休息日": REST,
    "rest": REST,
    "holiday": REST,
    "工作日": WORK,
    "work": WORK,
    "workday": WORK,
}
_DIRECTIVE = re.compile(r"^#\s*(complete|incomplete|已完整|未完整)\s*[:：]\s*(.*?)\s*$", re.IGNORECASE)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_HEADER = ["date", "kind", "name"]
_HEADERS = (_HEADER, _HEADER[:2], ["日期", "类型", "名称"], ["日期", "类型"])   # English or Chinese column names


class CalendarFileError(ValueError):
    """The import file has problems; ``problems`` lists every one of them (Chinese, with line numbers)."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        self.message = "日历文件有 {} 处问题：\n{}".format(len(self.problems), "\n".join(self.problems))
        super().__init__(self.message)


MAX_NAME = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def parse_calendar_file(text: str) -> dict[int, YearData]:
    """Read the administrator's holiday import file.

    Format (UTF-8 CSV; a leading BOM is ignored)::

        date,kind,name
        # 2027 年（示例）
        2027-01-01,休息日,元旦
        2027-02-06,工作日,春节
        # incomplete: 2028
        2028-01-01,rest,元旦
        # complete: 2029

    * The first line that is neither blank nor a ``#`` line must be the header ``date,kind,name`` or ``日期,类型,名称``
      (``name``/``名称`` may be left out of the header and of any row).
    * ``date`` is ``YYYY-MM-DD``; ``kind`` is ``休息日``/``rest``/``holiday`` (a holiday) or ``工作日``/``work``/
      ``workday`` (a make-up working day), case-insensitive; ``name`` is optional (e.g. 春节) and may be quoted.
    * Blank lines and lines starting with ``#`` are ignored, except the two directives ``# complete: YEAR`` and
      ``# incomplete: YEAR`` (also ``# 已完整: YEAR`` and ``# 未完整: YEAR``; several years may be separated by
      commas or spaces; a full-width colon is accepted).
    * Every year that has a row or a ``# complete`` directive is complete, unless ``# incomplete: YEAR`` says otherwise.
      ``# complete: YEAR`` alone declares a year with no holidays at all.

    Raises :class:`CalendarFileError` listing all problems: missing header, bad dates, unknown kinds, wrong column
    count, the same date twice with different kinds, a year both complete and incomplete.
    """
    problems: list[str] = []
    rows: dict[date, tuple[int, str, str]] = {}
    complete_years: dict[int, int] = {}
    incomplete_years: dict[int, int] = {}
    header_seen = False
    lines = text.lstrip("\ufeff").splitlines()
    for lineno, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = _DIRECTIVE.match(line)
            if m:
                target = complete_years if m.group(1).lower() in ("complete", "已完整") else incomplete_years
                tokens = [t for t in re.split(r"[\s,，]+", m.group(2)) if t]
                if not tokens:
                    problems.append(f"第 {lineno} 行：{m.group(1)} 后缺少年份")
                for token in tokens:
                    if re.fullmatch(r"\d{4}", token) and 1 <= int(token) <= 9999:
                        target.setdefault(int(token), lineno)
                    else:
                        problems.append(f"第 {lineno} 行：年份 {token} 无效")
            continue
        cells = [c.strip() for c in next(csv.reader([line]))]
        if not header_seen:
            header_seen = True
            if [c.lower() for c in cells] in _HEADERS:
                continue
            problems.append(f"第 {lineno} 行：缺少表头“日期,类型,名称”")
        if cells and cells[0].lower() == "complete":
            problems.append(f"第 {lineno} 行：标记完整年份请写作“# complete: 年份”")
            continue
        if len(cells) not in (2, 3):
            problems.append(f"第 {lineno} 行：应有 2 或 3 列（日期,类型,名称），实有 {len(cells)} 列")
            continue
        d = _parse_date(cells[0])
        kind = _KIND_WORDS.get(cells[1].lower())
        name = cells[2] if len(cells) == 3 else ""
        if _CONTROL.search(name):
            problems.append(f"第 {lineno} 行：名称含有不允许的控制字符")
            continue
        if len(name) > MAX_NAME:
            problems.append(f"第 {lineno} 行：名称不能超过 {MAX_NAME} 个字")
            continue
        if d is None:
            problems.append(f"第 {lineno} 行：日期 {cells[0]} 无效" + ("" if cells[0] else "（为空）"))
        if kind is None:
            problems.append(f"第 {lineno} 行：类型 {cells[1]} 无法识别（应为 休息日/rest/holiday 或 工作日/work/workday）")
        if d is None or kind is None:
            continue
        previous = rows.get(d)
        if previous is None:
            rows[d] = (lineno, kind, name)
        elif previous[1] != kind:
            problems.append(f"第 {lineno} 行：日期 {d.isoformat()} 与第 {previous[0]} 行重复且类型不同")
        elif name and not previous[2]:
            rows[d] = (previous[0], kind, name)
    for year in sorted(set(complete_years) & set(incomplete_years)):
        problems.append(
            f"第 {incomplete_years[year]} 行：{year} 年已在第 {complete_years[year]} 行标为已完整，不能再标为未完整"
        )
    if problems:
        raise CalendarFileError(problems)
    result: dict[int, YearData] = {}
    years = {d.year for d in rows} | set(complete_years) | set(incomplete_years)
    for year in sorted(years):
        days = {d: kind for d, (_, kind, _) in sorted(rows.items()) if d.year == year}
        names = {d: name for d, (_, _, name) in sorted(rows.items()) if d.year == year and name}
        result[year] = YearData(complete=year not in incomplete_years, days=days, names=names)
    return result


def _parse_date(text: str) -> date | None:
    m = _DATE.match(text)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def format_calendar_file(admin: Mapping[int, YearData]) -> str:
    """Write ``admin`` in the format :func:`parse_calendar_file` reads (each year with an explicit directive)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    out.write("date,kind,name\n")
    for year in sorted(admin):
        data = admin[year]
        out.write(f"# {'complete' if data.complete else 'incomplete'}: {year}\n")
        for d in sorted(data.days):
            writer.writerow([d.isoformat(), "休息日" if data.days[d] == REST else "工作日", data.names.get(d, "")])
    return out.getvalue()
