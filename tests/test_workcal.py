"""Working-day calendar (engine.workcal): hand-checked cases against the official 2026 schedule.

Official 2026 data used below (chinese_calendar 1.11.0, checked against the State Council notice):
  Spring Festival: 2026-02-15 (Sun) .. 2026-02-23 (Mon) rest; 2026-02-14 (Sat) and 2026-02-28 (Sat) worked.
  Mid-autumn: 2026-09-25 (Fri) .. 09-27 (Sun) rest.
  National Day: 2026-10-01 (Thu) .. 10-07 (Wed) rest; 2026-09-20 (Sun) and 2026-10-10 (Sat) worked;
  2026-10-08 (Thu) and 10-09 (Fri) are ordinary working days (in neither table).
Weekdays: 2026-01-01 is a Thursday, 2026-02-01 a Sunday, 2026-03-01 a Sunday, 2026-10-01 a Thursday,
2027-01-01 a Friday.
Any 2027 schedule below is MADE-UP TEST DATA, not the real 2027 holidays.
"""
from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest

from engine.workcal import (
    CalendarFileError,
    DayCount,
    DayResult,
    WorkCalendar,
    YearData,
    format_calendar_file,
    parse_calendar_file,
)

D = date
CAL = WorkCalendar()

# MADE-UP TEST DATA for 2027 (not the official schedule): New Year's Day 2027-01-01 (Fri) off.
TEST_2027 = YearData(complete=True, days={D(2027, 1, 1): "rest"}, names={D(2027, 1, 1): "元旦（测试数据）"})


def test_official_range_and_known_years():
    # chinese_calendar 1.11.0 has data for 2004..2026; 2027 is neither official nor marked complete.
    assert CAL.official_years() == range(2004, 2027)
    assert CAL.year_known(2026) and CAL.year_known(2004)
    assert not CAL.year_known(2027) and not CAL.year_known(2003)
    # Marking 2027 complete makes it known; an incomplete admin year stays unknown.
    assert WorkCalendar({2027: TEST_2027}).year_known(2027)
    assert not WorkCalendar({2027: YearData(complete=False, days={})}).year_known(2027)


def test_is_workday_matches_chinese_calendar_for_every_official_day():
    # Our per-year tables must agree with the package's own is_workday on every day it covers.
    d = D(2004, 1, 1)
    while d <= D(2026, 12, 31):
        assert CAL.is_workday(d) == chinese_calendar.is_workday(d), d
        d += timedelta(days=1)


def test_outside_official_years_never_raises():
    # chinese_calendar.is_workday raises NotImplementedError for 2027 and 2003; we fall back to the weekend rule.
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(D(2027, 1, 1))
    assert CAL.is_workday(D(2027, 1, 1))  # Friday
    assert not CAL.is_workday(D(2027, 1, 2))  # Saturday
    assert CAL.is_workday(D(2003, 10, 1))  # Wednesday; 2003 is not covered, so weekend rule only
    assert CAL.day_kind(D(2027, 1, 1)) == ("work", None, "weekend-rule")
    assert CAL.day_kind(D(2030, 6, 1)) == ("rest", None, "weekend-rule")  # 2030-06-01 is a Saturday


def test_day_kind_official():
    # 2026-02-16 is inside the Spring Festival break; 2026-02-14 (Sat) is its make-up working day;
    # 2026-03-03 is an ordinary Tuesday; 2026-03-07 an ordinary Saturday.
    assert CAL.day_kind(D(2026, 2, 16)) == ("rest", "春节", "official")
    assert CAL.day_kind(D(2026, 2, 14)) == ("work", "春节", "official")
    assert CAL.day_kind(D(2026, 10, 10)) == ("work", "国庆节", "official")
    assert CAL.day_kind(D(2026, 3, 3)) == ("work", None, "official")
    assert CAL.day_kind(D(2026, 3, 7)) == ("rest", None, "official")


def test_ordinary_weekdays():
    # Accepted Mon 2026-03-02 (not counted): Tue 03 = 1st working day; 04, 05, 06 = 2nd..4th; Mon 09 = 5th.
    assert CAL.add_workdays(D(2026, 3, 2), 1) == DayResult(D(2026, 3, 3), False)
    assert CAL.add_workdays(D(2026, 3, 2), 5) == DayResult(D(2026, 3, 9), False)
    # 10 working days: 03..06 (4), 09..13 (9), Mon 16 (10).
    assert CAL.add_workdays(D(2026, 3, 2), 10) == DayResult(D(2026, 3, 16), False)


def test_friday_plus_one_is_monday():
    # Accepted Fri 2026-03-06: Sat 07 and Sun 08 are rest, so the 1st working day is Mon 2026-03-09.
    assert CAL.add_workdays(D(2026, 3, 6), 1).value == D(2026, 3, 9)


def test_n_zero_is_the_effective_start():
    # n == 0 gives the effective start: a working day stays itself; Sat 2026-10-03 (National Day) moves to Thu 10-08.
    assert CAL.add_workdays(D(2026, 3, 2), 0) == DayResult(D(2026, 3, 2), False)
    assert CAL.add_workdays(D(2026, 10, 3), 0) == DayResult(D(2026, 10, 8), False)


def test_spring_festival_2026_accepted_friday_before():
    # Accepted Fri 2026-02-13. Sat 02-14 is a make-up working day -> 1st. 02-15..02-23 rest.
    # Tue 24 = 2nd, Wed 25 = 3rd, Thu 26 = 4th, Fri 27 = 5th, Sat 28 (make-up) = 6th, Mon 03-02 = 7th.
    assert CAL.add_workdays(D(2026, 2, 13), 1).value == D(2026, 2, 14)
    assert CAL.add_workdays(D(2026, 2, 13), 5).value == D(2026, 2, 27)
    assert CAL.add_workdays(D(2026, 2, 13), 6).value == D(2026, 2, 28)
    assert CAL.add_workdays(D(2026, 2, 13), 7).value == D(2026, 3, 2)


def test_spring_festival_2026_accepted_on_make_up_saturday():
    # Sat 2026-02-14 IS a working day, so it is the acceptance day itself (not moved) and is not counted.
    # Next working days: Tue 24 (1st), 25, 26, 27, Sat 28 (5th, make-up).
    assert CAL.effective_start(D(2026, 2, 14)) == DayResult(D(2026, 2, 14), False)
    assert CAL.add_workdays(D(2026, 2, 14), 1).value == D(2026, 2, 24)
    assert CAL.add_workdays(D(2026, 2, 14), 5).value == D(2026, 2, 28)


def test_make_up_saturday_2026_02_28_counts():
    # Accepted Fri 2026-02-27: Sat 28 is a make-up working day -> 1st; Sun 03-01 rest; Mon 03-02 -> 2nd.
    assert CAL.add_workdays(D(2026, 2, 27), 1).value == D(2026, 2, 28)
    assert CAL.add_workdays(D(2026, 2, 27), 2).value == D(2026, 3, 2)


def test_accepted_during_spring_festival():
    # Received Mon 2026-02-16 (holiday): counts as received on the next working day Tue 02-24, which is not counted.
    # 1st working day is then Wed 02-25; 4th is Sat 02-28 (make-up).
    assert CAL.effective_start(D(2026, 2, 16)) == DayResult(D(2026, 2, 24), False)
    assert CAL.add_workdays(D(2026, 2, 16), 1).value == D(2026, 2, 25)
    assert CAL.add_workdays(D(2026, 2, 16), 4).value == D(2026, 2, 28)


def test_national_day_2026_accepted_day_before():
    # Accepted Wed 2026-09-30. 10-01..10-07 rest. The data lists 10-08 (Thu) in neither table, so it is an ordinary
    # working day: 1st = Thu 10-08, 2nd = Fri 10-09, 3rd = Sat 10-10 (make-up), Sun 11 rest, 4th = Mon 10-12.
    assert chinese_calendar.is_workday(D(2026, 10, 8)) and chinese_calendar.is_workday(D(2026, 10, 9))
    assert CAL.add_workdays(D(2026, 9, 30), 1).value == D(2026, 10, 8)
    assert CAL.add_workdays(D(2026, 9, 30), 2).value == D(2026, 10, 9)
    assert CAL.add_workdays(D(2026, 9, 30), 3).value == D(2026, 10, 10)
    assert CAL.add_workdays(D(2026, 9, 30), 4).value == D(2026, 10, 12)


def test_make_up_saturday_2026_10_10_counts():
    # Accepted Fri 2026-10-09: Sat 10-10 is a make-up working day -> 1st; Sun 11 rest; Mon 12 -> 2nd.
    assert CAL.add_workdays(D(2026, 10, 9), 1).value == D(2026, 10, 10)
    assert CAL.add_workdays(D(2026, 10, 9), 2).value == D(2026, 10, 12)


def test_make_up_sunday_2026_09_20_and_mid_autumn():
    # Accepted Fri 2026-09-18: Sat 19 rest, Sun 09-20 is a make-up working day -> 1st.
    assert CAL.add_workdays(D(2026, 9, 18), 1).value == D(2026, 9, 20)
    # Accepted Thu 2026-09-24: Fri 25 .. Sun 27 Mid-autumn rest -> 1st is Mon 09-28.
    assert CAL.add_workdays(D(2026, 9, 24), 1).value == D(2026, 9, 28)


def test_received_on_rest_day_counts_from_next_working_day():
    # Sun 2026-03-08 -> effective start Mon 03-09 (not counted); 1st working day is Tue 03-10.
    assert CAL.effective_start(D(2026, 3, 8)) == DayResult(D(2026, 3, 9), False)
    assert CAL.add_workdays(D(2026, 3, 8), 1).value == D(2026, 3, 10)
    # Sat 2026-10-03 (National Day) -> effective start Thu 10-08; 1st = Fri 10-09, 2nd = Sat 10-10 (make-up).
    assert CAL.effective_start(D(2026, 10, 3)) == DayResult(D(2026, 10, 8), False)
    assert CAL.add_workdays(D(2026, 10, 3), 1).value == D(2026, 10, 9)
    assert CAL.add_workdays(D(2026, 10, 3), 2).value == D(2026, 10, 10)


def test_workdays_between_across_spring_festival():
    # Working days d with 02-13 < d <= 03-02: Sat 14, Tue 24, 25, 26, 27, Sat 28, Mon 03-02 = 7.
    assert CAL.workdays_between(D(2026, 2, 13), D(2026, 3, 2)) == DayCount(7, False)
    # From Sat 02-14 (a working day, not counted) to Mon 02-23: the whole stretch 15..23 is rest -> 0.
    assert CAL.workdays_between(D(2026, 2, 14), D(2026, 2, 23)) == DayCount(0, False)
    # Received Sun 02-15 -> effective start Tue 02-24; d in (24, 27] = 25, 26, 27 -> 3.
    assert CAL.workdays_between(D(2026, 2, 15), D(2026, 2, 27)) == DayCount(3, False)
    # End before or on the (effective) start -> 0.
    assert CAL.workdays_between(D(2026, 3, 2), D(2026, 3, 2)).value == 0
    assert CAL.workdays_between(D(2026, 3, 2), D(2026, 2, 1)).value == 0


def test_add_and_between_agree():
    # For every start in 2026 and n up to 40 (spanning into 2027): workdays_between(start, add_workdays(start, n)) == n.
    start = D(2026, 1, 1)
    while start.year == 2026:
        for n in (0, 1, 2, 5, 10, 20, 40):
            r = CAL.add_workdays(start, n)
            assert CAL.workdays_between(start, r.value) == DayCount(n, r.provisional), (start, n)
        start += timedelta(days=3)


def test_turn_of_year_without_2027_data_is_provisional():
    # Accepted Mon 2026-12-28. 2027 unknown -> weekends only: Tue 29 (1), Wed 30 (2), Thu 31 (3), Fri 2027-01-01 (4),
    # Mon 01-04 .. Fri 01-08 (5..9), Mon 01-11 (10). Days of 2027 were examined, so the result is provisional.
    assert CAL.add_workdays(D(2026, 12, 28), 10) == DayResult(D(2027, 1, 11), True)
    assert CAL.workdays_between(D(2026, 12, 28), D(2027, 1, 11)) == DayCount(10, True)
    # A result that stays inside 2026 is not provisional: Sun 12-20 -> start Mon 12-21; 22, 23, Thu 24 = 3rd.
    assert CAL.add_workdays(D(2026, 12, 20), 3) == DayResult(D(2026, 12, 24), False)
    # Received on an unknown-year rest day: Sat 2027-01-02 -> Mon 01-04, provisional.
    assert CAL.effective_start(D(2027, 1, 2)) == DayResult(D(2027, 1, 4), True)


def test_turn_of_year_with_complete_admin_2027():
    # MADE-UP TEST DATA: 2027-01-01 rest, year complete. Accepted Mon 2026-12-28: 29 (1), 30 (2), 31 (3),
    # 01-01 rest, Mon 01-04 .. Fri 01-08 (4..8), Mon 01-11 (9), Tue 01-12 (10). Known year -> not provisional.
    cal = CAL.with_admin({2027: TEST_2027})
    assert cal.add_workdays(D(2026, 12, 28), 10) == DayResult(D(2027, 1, 12), False)
    assert cal.workdays_between(D(2026, 12, 28), D(2027, 1, 12)) == DayCount(10, False)
    assert cal.day_kind(D(2027, 1, 1)) == ("rest", "元旦（测试数据）", "admin")
    # with_admin returned a new calendar; CAL itself still answers with the weekend rule.
    assert CAL.add_workdays(D(2026, 12, 28), 10).value == D(2027, 1, 11)


def test_incomplete_admin_year_applies_entries_but_stays_provisional():
    # Same MADE-UP entry (2027-01-01 rest) but the year is not marked complete: the entry is used (-> 01-12 as above)
    # yet 2027 is not known, so the result is still provisional.
    cal = WorkCalendar({2027: YearData(complete=False, days={D(2027, 1, 1): "rest"})})
    assert cal.add_workdays(D(2026, 12, 28), 10) == DayResult(D(2027, 1, 12), True)


def test_admin_overrides_official_2026():
    # MADE-UP correction: Sat 2026-03-07 worked, Mon 2026-03-09 rest. Accepted Fri 03-06:
    # Sat 07 (admin work) = 1st, Sun 08 rest, Mon 09 (admin rest), Tue 10 = 2nd.
    cal = WorkCalendar({2026: YearData(complete=True, days={D(2026, 3, 7): "work", D(2026, 3, 9): "rest"})})
    assert cal.add_workdays(D(2026, 3, 6), 1) == DayResult(D(2026, 3, 7), False)
    assert cal.add_workdays(D(2026, 3, 6), 2) == DayResult(D(2026, 3, 10), False)
    assert cal.day_kind(D(2026, 3, 9)) == ("rest", None, "admin")
    # Override of an official holiday: 2026-10-02 (Fri, National Day) made a working day. Accepted Wed 09-30:
    # 10-01 rest, Fri 10-02 (admin work) = 1st, 10-03..07 rest, Thu 10-08 = 2nd.
    cal = WorkCalendar({2026: YearData(complete=False, days={D(2026, 10, 2): "work"})})
    assert cal.add_workdays(D(2026, 9, 30), 1) == DayResult(D(2026, 10, 2), False)  # 2026 is official: known anyway
    assert cal.add_workdays(D(2026, 9, 30), 2).value == D(2026, 10, 8)


def test_skip_pauses_the_clock():
    # 补正 pause on Tue 2026-03-03 and Wed 03-04. Accepted Mon 03-02 with 5 working days:
    # without the pause Mon 03-09; with it, 03 and 04 are excluded: Thu 05 (1), Fri 06 (2), Mon 09 (3), 10 (4), 11 (5).
    paused = {D(2026, 3, 3), D(2026, 3, 4)}
    assert CAL.add_workdays(D(2026, 3, 2), 5).value == D(2026, 3, 9)
    assert CAL.add_workdays(D(2026, 3, 2), 5, skip=paused.__contains__).value == D(2026, 3, 11)
    assert CAL.workdays_between(D(2026, 3, 2), D(2026, 3, 11), skip=paused.__contains__) == DayCount(5, False)
    # A skipped rest day changes nothing (it was not counted anyway): Sat 03-07 skipped, still 03-09.
    assert CAL.add_workdays(D(2026, 3, 2), 5, skip={D(2026, 3, 7)}.__contains__).value == D(2026, 3, 9)


def test_n_out_of_range_is_refused():
    for bad in (-1, 10001, 1.5, True, "3"):
        with pytest.raises(ValueError, match="工作日数应为 0 到 10000 之间的整数"):
            CAL.add_workdays(D(2026, 3, 2), bad)  # type: ignore[arg-type]
    # The upper bound itself is accepted (about 40 years ahead, so provisional).
    assert CAL.add_workdays(D(2026, 3, 2), 10000).provisional


def test_loops_are_bounded_when_everything_is_skipped():
    # A skip() that excludes every day can never reach n: the scan stops after 100 years with a ValueError.
    with pytest.raises(ValueError, match="100 年内"):
        CAL.add_workdays(D(2026, 3, 2), 1, skip=lambda d: True)


def test_admin_data_is_validated():
    with pytest.raises(ValueError, match="不属于该年"):
        WorkCalendar({2027: YearData(complete=True, days={D(2026, 1, 1): "rest"})})
    with pytest.raises(ValueError, match="类型"):
        WorkCalendar({2027: YearData(complete=True, days={D(2027, 1, 1): "休息日"})})


SAMPLE_FILE = """\ufeffdate,kind,name
# MADE-UP TEST DATA (not the official schedule)
2027-01-01,休息日,元旦
2027-02-06,工作日,春节

2027-02-08,rest,春节
2027-02-09,Holiday,
# incomplete: 2028
2028-01-01,workday,"名称, 含逗号"
# complete: 2029
"""


def test_parse_calendar_file():
    admin = parse_calendar_file(SAMPLE_FILE)
    # 2027 has rows -> complete by default; 2028 is declared incomplete; 2029 is complete with no entries.
    assert sorted(admin) == [2027, 2028, 2029]
    assert admin[2027] == YearData(
        complete=True,
        days={D(2027, 1, 1): "rest", D(2027, 2, 6): "work", D(2027, 2, 8): "rest", D(2027, 2, 9): "rest"},
        names={D(2027, 1, 1): "元旦", D(2027, 2, 6): "春节", D(2027, 2, 8): "春节"},
    )
    assert admin[2028] == YearData(complete=False, days={D(2028, 1, 1): "work"}, names={D(2028, 1, 1): "名称, 含逗号"})
    assert admin[2029] == YearData(complete=True, days={}, names={})


def test_parse_calendar_file_lists_all_problems_with_line_numbers():
    text = "\n".join(
        [
            "date,kind,name",  # 1
            "2027-01-01,休息日,元旦",  # 2
            "2027-02-30,休息日,春节",  # 3: no 30 February
            "2027-02-06,放假,春节",  # 4: unknown kind
            "2027-01-01,工作日,元旦",  # 5: same date as line 2, other kind
            "2027-01-01,rest,元旦",  # 6: same date, same kind -> fine
            "2027/03/01,xx",  # 7: two problems on one line
            "2027-03-02",  # 8: one column
            "# incomplete: 2027",  # 9: fine
            "# complete: 2027",  # 10: contradicts line 9
        ]
    )
    with pytest.raises(CalendarFileError) as err:
        parse_calendar_file(text)
    assert err.value.problems == [
        "第 3 行：日期 2027-02-30 无效",
        "第 4 行：类型 放假 无法识别（应为 休息日/rest/holiday 或 工作日/work/workday）",
        "第 5 行：日期 2027-01-01 与第 2 行重复且类型不同",
        "第 7 行：日期 2027/03/01 无效",
        "第 7 行：类型 xx 无法识别（应为 休息日/rest/holiday 或 工作日/work/workday）",
        "第 8 行：应有 2 或 3 列（日期,类型,名称），实有 1 列",
        "第 9 行：2027 年已在第 10 行标为已完整，不能再标为未完整",
    ]
    assert "7 处问题" in str(err.value)


def test_parse_calendar_file_requires_header():
    with pytest.raises(CalendarFileError) as err:
        parse_calendar_file("2027-01-01,休息日,元旦\n")
    assert err.value.problems == ["第 1 行：缺少表头“日期,类型,名称”"]
    # The chosen directive is the comment form; a column-style "complete,2027" line is pointed at it.
    with pytest.raises(CalendarFileError) as err:
        parse_calendar_file("date,kind\ncomplete,2027\n")
    assert err.value.problems == ["第 2 行：标记完整年份请写作“# complete: 年份”"]
    # A two-column header is accepted, and so is a file with directives only.
    assert parse_calendar_file("date,kind\n2027-01-01,rest\n") == {2027: YearData(True, {D(2027, 1, 1): "rest"})}
    assert parse_calendar_file("# complete: 2030, 2031\n") == {2030: YearData(True, {}), 2031: YearData(True, {})}


def test_format_parse_round_trip():
    admin = parse_calendar_file(SAMPLE_FILE)
    text = format_calendar_file(admin)
    assert text.splitlines()[:3] == ["date,kind,name", "# complete: 2027", "2027-01-01,休息日,元旦"]
    assert parse_calendar_file(text) == admin
    assert format_calendar_file(parse_calendar_file(text)) == text
    # A calendar built from the parsed file behaves like one built from the original objects.
    assert WorkCalendar(parse_calendar_file(format_calendar_file({2027: TEST_2027}))).add_workdays(
        D(2026, 12, 28), 10
    ) == DayResult(D(2027, 1, 12), False)


def test_the_calendar_file_may_use_chinese_column_names_and_directives():
    from engine.workcal import parse_calendar_file
    years = parse_calendar_file("日期,类型,名称\n2027-01-01,休息日,元旦\n# 未完整: 2027\n# 已完整: 2029\n")
    assert years[2027].days and not years[2027].complete and years[2029].complete
