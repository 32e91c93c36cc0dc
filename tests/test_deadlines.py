"""Statutory clocks at the ClockState level (engine.deadlines): due date, yellow and red moments, used/left, text.

Every expected date below is counted by hand against the official 2026 schedule (chinese_calendar 1.11.0, the same
as the State Council notice):
  Spring Festival: 2026-02-15 (Sun) .. 02-23 (Mon) rest; Sat 02-14 and Sat 02-28 are make-up working days.
  Mid-autumn: 2026-09-25 (Fri) .. 09-27 (Sun) rest.
  National Day: 2026-10-01 (Thu) .. 10-07 (Wed) rest; Sun 09-20 and Sat 10-10 are make-up working days;
  Thu 10-08 and Fri 10-09 are ordinary working days.
  No holiday between 2026-12-14 and 12-31.  2026-03-02, 09-28, 12-14 are Mondays; 2027-01-01 is a Friday.
2027 is not covered by the package: weekends only, and every result that looked at a 2027 day is provisional (暂定).
Any 2027 schedule below is MADE-UP TEST DATA, not the real 2027 holidays.

Rules under test (domain): the day of receipt is not counted; received on a rest day counts as received on the next
working day; yellow from 00:00 (Asia/Shanghai) of the working day on which 80% of the limit is used, or one
working day is left, whichever comes first (on the day of receipt when the limit is one day); red from 00:00 of the
day after the due date; a 补正 pause excludes the working days after the request day through the day the materials
are complete; an approved extension adds working days.
"""
from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest

from engine.clock import LOCAL_TZ
from engine.deadlines import ClockState, case_summary, day_start, local_date
from engine.workcal import WorkCalendar, YearData

D = date
CAL = WorkCalendar()

# MADE-UP TEST DATA for 2027 (not the official schedule): Fri 01-01 and Mon 01-04 rest, Sat 01-09 a make-up day.
ADMIN_2027 = YearData(complete=True,
                      days={D(2027, 1, 1): "rest", D(2027, 1, 4): "rest", D(2027, 1, 9): "work"},
                      names={D(2027, 1, 1): "元旦（测试数据）", D(2027, 1, 4): "元旦（测试数据）",
                             D(2027, 1, 9): "元旦（测试数据）"})
CAL_2027 = WorkCalendar({2027: ADMIN_2027})


def L(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    """A moment in Asia/Shanghai."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=LOCAL_TZ)


def clock(limit: int, received: datetime, key: str = "xf") -> ClockState:
    return ClockState(key, "消防（设计审查/验收）", "zjj", limit, started_at=received)


def computed(limit: int, received: datetime, now: datetime | None = None, cal: WorkCalendar = CAL) -> ClockState:
    return clock(limit, received).compute(cal, now or received)


# ---- due date, yellow and red moments ---------------------------------------------------------------------------
# (received, limit, due date, yellow moment (local), red moment (local), provisional) — counts by hand in each comment.
CASES = [
    pytest.param(
        # Mon 03-02 (not counted): 03..06 = 1..4, 09..13 = 5..9, 16..20 = 10..14, Mon 23 = 15 -> due 03-23.
        # yellow: min(ceil(15*0.8)=12, 15-1=14) = 12th day = Wed 03-18.
        L(2026, 3, 2, 9), 15, D(2026, 3, 23), L(2026, 3, 18), L(2026, 3, 24), False, id="15d-ordinary-march"),
    pytest.param(
        # 1-day limit: 1st working day after Mon 03-02 is Tue 03-03 -> due 03-03.
        # yellow: min(ceil(0.8)=1, 0) = 0 -> one day is left from the moment of receipt: yellow at once.
        L(2026, 3, 2, 9), 1, D(2026, 3, 3), L(2026, 3, 2, 9), L(2026, 3, 4), False, id="1d-yellow-at-once"),
    pytest.param(
        # Fri 02-13: Sat 02-14 make-up = 1, 15..23 rest, Tue 24 = 2, 25 = 3, 26 = 4, Fri 27 = 5 -> due 02-27.
        # yellow: min(4, 4) = 4th day = Thu 02-26 (80% used and one day left coincide). red: Sat 02-28 00:00
        # (a make-up working day, but red starts at midnight after the due date whatever kind of day it is).
        L(2026, 2, 13, 9), 5, D(2026, 2, 27), L(2026, 2, 26), L(2026, 2, 28), False, id="5d-spring-festival"),
    pytest.param(
        # Received on the make-up Sat 02-14 (a working day: it is the receipt day and not counted).
        # Tue 02-24 = 1, 25, 26, 27 = 2..4, Sat 28 = 5, 03-02..06 = 6..10, 09..13 = 11..15, 16..20 = 16..20 -> 03-20.
        # yellow: min(16, 19) = 16th day = Mon 03-16.
        L(2026, 2, 14, 10), 20, D(2026, 3, 20), L(2026, 3, 16), L(2026, 3, 21), False, id="20d-on-make-up-saturday"),
    pytest.param(
        # Received Wed 02-18 (Spring Festival rest) -> counts as received Tue 02-24 (not counted).
        # Wed 25 = 1, 26 = 2, 27 = 3, Sat 28 = 4 (make-up), Mon 03-02 = 5 -> due 03-02; yellow 4th day = Sat 02-28.
        L(2026, 2, 18, 11), 5, D(2026, 3, 2), L(2026, 2, 28), L(2026, 3, 3), False, id="5d-received-in-festival"),
    pytest.param(
        # Received Sat 03-07 (ordinary weekend) -> received Mon 03-09. Tue 10 = 1 .. Fri 13 = 4, Mon 16 = 5.
        # yellow 4th = Fri 03-13.
        L(2026, 3, 7, 10), 5, D(2026, 3, 16), L(2026, 3, 13), L(2026, 3, 17), False, id="5d-received-saturday"),
    pytest.param(
        # Received Sun 02-22 (festival) -> Tue 02-24; 1-day limit: Wed 02-25. Yellow at once (one day left).
        L(2026, 2, 22, 10), 1, D(2026, 2, 25), L(2026, 2, 22, 10), L(2026, 2, 26), False, id="1d-received-in-festival"),
    pytest.param(
        # Wed 09-30: 10-01..07 rest; Thu 10-08 = 1, Fri 09 = 2, Sat 10-10 (make-up) = 3, Mon 12 = 4, Tue 13 = 5.
        # yellow 4th = Mon 10-12.
        L(2026, 9, 30, 9), 5, D(2026, 10, 13), L(2026, 10, 12), L(2026, 10, 14), False, id="5d-national-day"),
    pytest.param(
        # Fri 09-18: Sat 19 rest, Sun 09-20 (make-up) = 1, Mon 21 = 2, 22 = 3, 23 = 4, Thu 24 = 5 (25..27 Mid-autumn).
        # yellow 4th = Wed 09-23; red Fri 09-25 00:00 (a holiday).
        L(2026, 9, 18, 9), 5, D(2026, 9, 24), L(2026, 9, 23), L(2026, 9, 25), False, id="5d-make-up-sunday"),
    pytest.param(
        # Fri 09-18: Sun 20 = 1, 21..24 = 2..5, (25..27 rest), 28..30 = 6..8, (10-01..07 rest), 10-08 = 9, 09 = 10,
        # Sat 10-10 = 11, Mon 12 = 12, 13 = 13, 14 = 14, Thu 15 = 15 -> due 10-15. yellow 12th = Mon 10-12.
        L(2026, 9, 18, 9), 15, D(2026, 10, 15), L(2026, 10, 12), L(2026, 10, 16), False,
        id="15d-mid-autumn-and-national-day"),
    pytest.param(
        # Mon 09-28: 29 = 1, 30 = 2, (10-01..07), 08 = 3, 09 = 4, Sat 10 = 5, 12..16 = 6..10, 19..23 = 11..15,
        # 26..30 = 16..20 -> due Fri 10-30. yellow 16th = Mon 10-26.
        L(2026, 9, 28, 9), 20, D(2026, 10, 30), L(2026, 10, 26), L(2026, 10, 31), False, id="20d-national-day"),
    pytest.param(
        # Received on the make-up Sat 10-10 (working day, not counted): 12..16 = 1..5, 19..23 = 6..10 -> 10-23.
        # yellow: min(ceil(8.0)=8, 9) = 8th = Wed 10-21 (the 80% rule, two days left).
        L(2026, 10, 10, 9), 10, D(2026, 10, 23), L(2026, 10, 21), L(2026, 10, 24), False, id="10d-on-make-up-saturday"),
    pytest.param(
        # 3-day limit: yellow min(ceil(2.4)=3, 2) = 2 -> the one-day-left rule comes first.
        # Mon 03-02: 03 = 1, 04 = 2, 05 = 3 -> due Thu 03-05; yellow Wed 03-04.
        L(2026, 3, 2, 9), 3, D(2026, 3, 5), L(2026, 3, 4), L(2026, 3, 6), False, id="3d-one-day-left-rule"),
    pytest.param(
        # Received 23:30 local on Fri 03-06 (15:30 UTC, same date): 09..12 = 1..4, Fri 13 = 5 -> 03-13; yellow Thu 12.
        L(2026, 3, 6, 23, 30), 5, D(2026, 3, 13), L(2026, 3, 12), L(2026, 3, 14), False, id="5d-late-friday-evening"),
    pytest.param(
        # Received 00:30 local on Sat 03-07 = 16:30 UTC on Fri 03-06: the LOCAL date counts, a Saturday ->
        # received Mon 03-09; 10..13 = 1..4, Mon 16 = 5 -> 03-16 (not 03-13 as the UTC date would give).
        L(2026, 3, 7, 0, 30), 5, D(2026, 3, 16), L(2026, 3, 13), L(2026, 3, 17), False, id="5d-utc-friday-local-saturday"),
    pytest.param(
        # Mon 12-14: 15..18 = 1..4, 21..25 = 5..9, 28..31 = 10..13; 2027 unknown -> weekends only: Fri 01-01 = 14,
        # Mon 01-04 .. Fri 08 = 15..19, Mon 01-11 = 20 -> due 2027-01-11, provisional. yellow 16th = Tue 2027-01-05.
        L(2026, 12, 14, 9), 20, D(2027, 1, 11), L(2027, 1, 5), L(2027, 1, 12), True, id="20d-into-2027-provisional"),
    pytest.param(
        # Mon 12-14, 5 days: 15..18 = 1..4, Mon 21 = 5 -> stays in 2026: NOT provisional.
        L(2026, 12, 14, 9), 5, D(2026, 12, 21), L(2026, 12, 18), L(2026, 12, 22), False, id="5d-december-not-provisional"),
    pytest.param(
        # Thu 12-31, 1 day: Fri 2027-01-01 under the weekend rule -> provisional; yellow at once.
        L(2026, 12, 31, 9), 1, D(2027, 1, 1), L(2026, 12, 31, 9), L(2027, 1, 2), True, id="1d-new-year-provisional"),
]


@pytest.mark.parametrize("received, limit, due, yellow, red, provisional", CASES)
def test_due_yellow_red(received, limit, due, yellow, red, provisional):
    c = computed(limit, received)
    assert (c.due_date, c.yellow_at, c.red_at, c.provisional) == (due, yellow, red, provisional)
    # The moments are local midnights (or the receipt itself), stored as aware datetimes.
    assert c.red_at == day_start(due + timedelta(days=1))
    # Cross-check with the calendar: the due date is the limit-th working day after the (effective) receipt day.
    assert CAL.add_workdays(local_date(received), limit).value == due


def test_yellow_moment_rule_per_limit():
    # The yellow day number for each limit: min(ceil(80%), limit - 1).
    expected = {1: 0, 2: 1, 3: 2, 5: 4, 10: 8, 15: 12, 20: 16, 30: 24}
    assert {n: min(math.ceil(n * 0.8), n - 1) for n in expected} == expected
    # From Mon 2026-03-02 the k-th working day is known by hand: 03-03 (1) .. 03-06 (4), 03-09 (5), 03-12 (8),
    # 03-18 (12), 03-24 (16), 04-03 (24: 03-30 = 20, 03-31 = 21, 04-01 = 22, 04-02 = 23, 04-03 = 24).
    days = {1: D(2026, 3, 3), 2: D(2026, 3, 4), 4: D(2026, 3, 6), 8: D(2026, 3, 12), 12: D(2026, 3, 18),
            16: D(2026, 3, 24), 24: D(2026, 4, 3)}
    for limit, n in expected.items():
        c = computed(limit, L(2026, 3, 2, 9))
        assert c.yellow_at == (L(2026, 3, 2, 9) if n == 0 else day_start(days[n])), limit


def test_levels_switch_exactly_at_local_midnight():
    # 15 days from Mon 03-02: yellow from 03-18 00:00, red from 03-24 00:00 (Asia/Shanghai).
    received = L(2026, 3, 2, 9)
    assert computed(15, received, L(2026, 3, 17, 23, 59, 59)).level == "green"
    assert computed(15, received, L(2026, 3, 18)).level == "yellow"
    # 03-18 00:00 local is 03-17 16:00 UTC: the same instant, still yellow.
    assert computed(15, received, datetime(2026, 3, 17, 16, 0, tzinfo=UTC)).level == "yellow"
    assert computed(15, received, L(2026, 3, 23, 23, 59, 59)).level == "yellow"
    assert computed(15, received, L(2026, 3, 24)).level == "red"
    # A 1-day item is yellow as soon as it is received (one working day left) and red from 00:00 after its due date.
    assert computed(1, received, received).level == "yellow"
    assert computed(1, received, L(2026, 3, 3, 23, 59)).level == "yellow"
    assert computed(1, received, L(2026, 3, 4)).level == "red"


# ---- used / left / text -------------------------------------------------------------------------------------------
def describe(limit, received, now, cal=CAL, c=None):
    c = c or clock(limit, received)
    c.compute(cal, now)
    return c.describe(cal, now)


@pytest.mark.parametrize("now, used, left, level, text", [
    # 15 days from Mon 03-02 (due 03-23). Used = working days d with 03-02 < d <= today.
    # Tue 03-10: 03..06 (4), 09, 10 -> 6 used, 9 left.
    (L(2026, 3, 10, 14), 6, 9, "green", "剩余9个工作日"),
    # The day of receipt itself: nothing used.
    (L(2026, 3, 2, 17), 0, 15, "green", "剩余15个工作日"),
    # Sat 03-07: the weekend adds nothing: 03..06 -> 4 used.
    (L(2026, 3, 7, 12), 4, 11, "green", "剩余11个工作日"),
    # Wed 03-18 (yellow day): 03..06, 09..13, 16..18 -> 12 used (80%), 3 left.
    (L(2026, 3, 18, 9), 12, 3, "yellow", "剩余3个工作日"),
    # Due date Mon 03-23: 15 used, 0 left, still yellow until midnight.
    (L(2026, 3, 23, 10), 15, 0, "yellow", "剩余0个工作日"),
    # Wed 03-25: 24, 25 beyond the due date -> 17 used, overdue by 2.
    (L(2026, 3, 25, 10), 17, -2, "red", "已超期2个工作日"),
    # Mon 03-30: 24..27 and 30 -> overdue by 5 (the weekend is not counted).
    (L(2026, 3, 30, 10), 20, -5, "red", "已超期5个工作日"),
])
def test_used_left_and_text(now, used, left, level, text):
    d = describe(15, L(2026, 3, 2, 9), now)
    assert (d["used"], d["left"], d["level"], d["text"], d["provisional"]) == (used, left, level, text, False)
    assert d["due_date"] == D(2026, 3, 23) and d["limit_days"] == 15 and d["extension_days"] == 0


def test_red_on_a_rest_day_after_a_friday_due_date_does_not_say_days_are_left():
    # 5 days from Fri 03-06: 09..13 -> due Fri 03-13; red from Sat 03-14 00:00.  On Sat 03-14 no working day has
    # passed since the due date (used 5, left 0), but the due date HAS passed: the item is red and overdue, so its
    # text must not announce working days remaining ("剩余0个工作日" beside a red light contradicts itself).
    d = describe(5, L(2026, 3, 6, 9), L(2026, 3, 14, 10))
    assert (d["level"], d["used"], d["left"]) == ("red", 5, 0)
    assert not d["text"].startswith("剩余"), d["text"]


def test_provisional_text_and_admin_data_for_2027():
    received = L(2026, 12, 14, 9)
    # Tue 12-15: 1 used of 20, due 2027-01-11 under the weekend rule -> provisional.
    d = describe(20, received, L(2026, 12, 15, 10))
    assert (d["used"], d["left"], d["text"], d["provisional"]) == (1, 19, "剩余19个工作日（暂定）", True)
    # Wed 2027-01-13: Dec 15..31 (13), Fri 01-01 (14), 01-04..08 (19), Mon 11 (20), Tue 12 (21), Wed 13 (22)
    # -> overdue by 2, provisional.
    d = describe(20, received, L(2027, 1, 13, 10))
    assert (d["level"], d["used"], d["left"], d["text"]) == ("red", 22, -2, "已超期2个工作日（暂定）")

    # With the administrator's 2027 schedule (MADE-UP TEST DATA: 01-01 and 01-04 rest, Sat 01-09 worked):
    # Dec = 13, (01-01 rest), (Sat 2, Sun 3), (01-04 rest), Tue 05 = 14, 06 = 15, 07 = 16, 08 = 17, Sat 09 = 18,
    # Mon 11 = 19, Tue 12 = 20 -> due 2027-01-12, known, not provisional. yellow 16th = Thu 2027-01-07.
    c = computed(20, received, L(2026, 12, 15, 10), CAL_2027)
    assert (c.due_date, c.yellow_at, c.red_at, c.provisional) == (D(2027, 1, 12), L(2027, 1, 7), L(2027, 1, 13), False)
    d = describe(20, received, L(2026, 12, 15, 10), CAL_2027)
    assert (d["text"], d["provisional"]) == ("剩余19个工作日", False)
    # Wed 2027-01-13: Dec 13 + 05..09 (18) + 11 (19) + 12 (20) + 13 (21) -> overdue by 1, not provisional.
    d = describe(20, received, L(2027, 1, 13, 10), CAL_2027)
    assert (d["level"], d["left"], d["text"]) == ("red", -1, "已超期1个工作日")


def test_incomplete_admin_year_applies_its_days_but_stays_provisional():
    # MADE-UP TEST DATA, year NOT complete: only 2027-01-01 entered as rest.
    # Dec = 13, (01-01 rest), 04..08 = 14..18, Mon 11 = 19, Tue 12 = 20 -> due 01-12, still provisional.
    cal = WorkCalendar({2027: YearData(complete=False, days={D(2027, 1, 1): "rest"})})
    c = computed(20, L(2026, 12, 14, 9), L(2026, 12, 15, 10), cal)
    assert (c.due_date, c.provisional) == (D(2027, 1, 12), True)
    assert c.describe(cal, L(2026, 12, 15, 10))["text"] == "剩余19个工作日（暂定）"


def test_recomputing_with_2027_data_moves_the_clock():
    # The same ClockState, computed first without and then with the 2027 data (what import_calendar triggers).
    c = clock(20, L(2026, 12, 14, 9))
    c.compute(CAL, L(2026, 12, 20))
    assert (c.due_date, c.provisional) == (D(2027, 1, 11), True)
    c.compute(CAL_2027, L(2026, 12, 20))
    assert (c.due_date, c.provisional, c.red_at) == (D(2027, 1, 12), False, L(2027, 1, 13))


# ---- 补正 pauses --------------------------------------------------------------------------------------------------
def test_pause_excludes_working_days_after_the_request_through_completion():
    c = clock(15, L(2026, 3, 2, 9))
    # Requested Mon 03-09 10:00 (day 5: 03..06, 09), complete Thu 03-12 15:00.
    c.pause(L(2026, 3, 9, 10), "补交消防设计文件")
    # While paused: no warning moments, level paused, used frozen at the request day (5); the due date is the one it
    # had when the 补正 began (15 working days from 03-02: 03-23), the earliest it can be once the pause ends.
    c.compute(CAL, L(2026, 3, 11, 10))
    assert (c.level, c.due_date, c.yellow_at, c.red_at) == ("paused", date(2026, 3, 23), None, None)
    assert c.paused_at == L(2026, 3, 9, 10)
    d = c.describe(CAL, L(2026, 3, 11, 10))
    assert (d["used"], d["text"], d["level_name"]) == (5, "补正暂停中（已用5个工作日）", "暂停（补正中）")

    c.resume(L(2026, 3, 12, 15))
    assert c.paused_at is None and c.pauses[0]["end"] == L(2026, 3, 12, 15).isoformat()
    # Excluded: (03-09, 03-12] = Tue 10, Wed 11, Thu 12 (3 days). 03..06 = 1..4, 09 = 5, 13 = 6, 16..20 = 7..11,
    # 23 = 12, 24 = 13, 25 = 14, Thu 26 = 15 -> due 03-26 (03-23 + 3 working days). yellow 12th = Mon 03-23.
    c.compute(CAL, L(2026, 3, 16, 10))
    assert (c.due_date, c.yellow_at, c.red_at, c.level) == (D(2026, 3, 26), L(2026, 3, 23), L(2026, 3, 27), "green")
    # Mon 03-16: 03..06 (4), 09 (5), 13 (6), 16 (7) -> 7 used, 8 left.
    d = c.describe(CAL, L(2026, 3, 16, 10))
    assert (d["used"], d["left"], d["text"]) == (7, 8, "剩余8个工作日")


def test_pause_resumed_the_same_day_excludes_nothing():
    # (03-09, 03-09] is empty: due stays 03-23.
    c = clock(15, L(2026, 3, 2, 9))
    c.pause(L(2026, 3, 9, 10), "补正")
    c.resume(L(2026, 3, 9, 16))
    assert c.compute(CAL, L(2026, 3, 10)).due_date == D(2026, 3, 23)


def test_pause_over_a_weekend_excludes_only_its_working_days():
    # Requested Fri 03-06, complete Mon 03-09: (03-06, 03-09] holds one working day (Mon 09) -> due 03-23 + 1 = 03-24.
    c = clock(15, L(2026, 3, 2, 9))
    c.pause(L(2026, 3, 6, 16), "补正")
    c.resume(L(2026, 3, 9, 11))
    assert c.compute(CAL, L(2026, 3, 10)).due_date == D(2026, 3, 24)


def test_pause_across_the_spring_festival():
    # 10 days from Mon 02-09: 10 = 1, 11 = 2, Thu 12 = 3 (request day, counted).  Complete Wed 02-25.
    # Excluded (02-12, 02-25] working days: Fri 13, Sat 14 (make-up), Tue 24, Wed 25 = 4.
    # Then Thu 26 = 4, Fri 27 = 5, Sat 28 = 6 (make-up), 03-02 = 7, 03 = 8, 04 = 9, Thu 03-05 = 10 -> due 03-05.
    # (Without the pause: 13 = 4, 14 = 5, 24..27 = 6..9, Sat 28 = 10 -> 02-28.)  yellow: 8th = Tue 03-03.
    c = clock(10, L(2026, 2, 9, 9))
    assert c.compute(CAL, L(2026, 2, 10)).due_date == D(2026, 2, 28)
    c.pause(L(2026, 2, 12, 15), "补正")
    c.resume(L(2026, 2, 25, 10))
    c.compute(CAL, L(2026, 2, 26))
    assert (c.due_date, c.yellow_at, c.red_at) == (D(2026, 3, 5), L(2026, 3, 3), L(2026, 3, 6))


# ---- extensions -----------------------------------------------------------------------------------------------------
def test_extension_adds_working_days():
    c = clock(15, L(2026, 3, 2, 9))
    payload = c.extend(3, "需组织专家现场核查", "supervisor1", L(2026, 3, 20, 10))
    assert payload["days"] == 3 and payload["approved_by"] == "supervisor1"
    # 15 + 3 = 18: 03-23 = 15, 24 = 16, 25 = 17, Thu 26 = 18 -> due 03-26.
    # yellow: min(ceil(14.4)=15, 17) = 15th = Mon 03-23. red Fri 03-27 00:00.
    c.compute(CAL, L(2026, 3, 24, 10))
    assert (c.due_date, c.yellow_at, c.red_at, c.total_days) == (D(2026, 3, 26), L(2026, 3, 23), L(2026, 3, 27), 18)
    # Tue 03-24 (past the original due date): 16 used, 2 left, yellow — not red.
    d = c.describe(CAL, L(2026, 3, 24, 10))
    assert (d["level"], d["used"], d["left"], d["text"], d["extension_days"]) == ("yellow", 16, 2, "剩余2个工作日", 3)


def test_extension_and_pause_together():
    # Pause 03-09 -> 03-12 (3 days excluded, due 03-26) plus 3 days extension: 27 = 16, 30 = 17, Tue 31 = 18.
    # yellow 15th counted day = Thu 03-26.
    c = clock(15, L(2026, 3, 2, 9))
    c.pause(L(2026, 3, 9, 10), "补正")
    c.resume(L(2026, 3, 12, 15))
    c.extend(3, "需组织专家现场核查", "supervisor1", L(2026, 3, 20, 10))
    c.compute(CAL, L(2026, 3, 20, 10))
    assert (c.due_date, c.yellow_at, c.red_at) == (D(2026, 3, 31), L(2026, 3, 26), L(2026, 4, 1))


def test_extension_across_national_day():
    # 5 days from Fri 09-18 -> due Thu 09-24 (see CASES); +5: (25..27 Mid-autumn) 28 = 6, 29 = 7, 30 = 8,
    # (10-01..07) Thu 10-08 = 9, Fri 10-09 = 10 -> due 10-09. yellow: min(8, 9) = 8th = Wed 09-30.
    c = clock(5, L(2026, 9, 18, 9))
    c.extend(5, "国庆假期前材料未齐", "supervisor1", L(2026, 9, 22))
    c.compute(CAL, L(2026, 9, 22))
    assert (c.due_date, c.yellow_at, c.red_at) == (D(2026, 10, 9), L(2026, 9, 30), L(2026, 10, 10))


# ---- stopped clocks ---------------------------------------------------------------------------------------------------
def test_stopped_in_time_and_late():
    c = clock(15, L(2026, 3, 2, 9))
    c.stop(L(2026, 3, 20, 15))
    c.compute(CAL, L(2026, 4, 1))
    d = c.describe(CAL, L(2026, 4, 1))
    assert (c.level, d["text"], d["used"]) == ("done", "按时办结", 14)
    # Stopped on the due date itself (23:00 local) is still in time.
    c = clock(15, L(2026, 3, 2, 9))
    c.stop(L(2026, 3, 23, 23))
    assert c.compute(CAL, L(2026, 4, 1)).level == "done"
    # Stopped Wed 03-25: 17 used of 15 -> late by 2.
    c = clock(15, L(2026, 3, 2, 9))
    c.stop(L(2026, 3, 25, 10))
    c.compute(CAL, L(2026, 4, 1))
    d = c.describe(CAL, L(2026, 4, 1))
    assert (c.level, d["level_name"], d["text"], d["left"]) == ("late", "超期办结", "超期办结（超2个工作日）", -2)


def test_row_round_trip_keeps_the_computation():
    c = clock(15, L(2026, 3, 2, 9))
    c.pause(L(2026, 3, 9, 10), "补正")
    c.resume(L(2026, 3, 12, 15))
    c.extend(2, "理由", "supervisor1", L(2026, 3, 13))
    c.compute(CAL, L(2026, 3, 16))

    class Row:
        pass

    row = Row()
    for k, v in c.to_row().items():
        setattr(row, k, v)
    # SQLite gives naive UTC datetimes back: from_row must read them as UTC.
    row.started_at = c.started_at.astimezone(UTC).replace(tzinfo=None)
    back = ClockState.from_row(row).compute(CAL, L(2026, 3, 16))
    # 03-26 (with the pause) + 2: Fri 27 = 16, Mon 30 = 17 -> 03-30.
    assert (back.due_date, back.yellow_at, back.red_at, back.level) == (c.due_date, c.yellow_at, c.red_at, c.level)
    assert back.due_date == D(2026, 3, 30)


def test_case_summary_is_the_latest_due_and_worst_level():
    now = L(2026, 3, 19, 10)
    a = clock(15, L(2026, 3, 2, 9)).compute(CAL, now)               # due 03-23, yellow since 03-18
    b = ClockState("hp", "环评", "sthj", 20, L(2026, 3, 2, 9)).compute(CAL, now)  # due 03-30, green (yellow 03-24)
    assert (a.level, b.level, b.due_date) == ("yellow", "green", D(2026, 3, 30))
    assert case_summary([a, b]) == (D(2026, 3, 30), "yellow")
    a.stop(now)
    a.compute(CAL, now)
    assert case_summary([a, b]) == (D(2026, 3, 30), "green")
