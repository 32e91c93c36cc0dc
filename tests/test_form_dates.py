"""The form keyword ``x-date``: a date field that may not lie before (not_past) or after (not_future) today, today by
the service clock in China's time zone; a misuse is a problem of the form file, in Chinese."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine import forms
from engine.clock import clock
from engine.errors import InvalidInput


def schema(rule: str, fmt: str | None = "date") -> dict:
    field = {"type": "string", "title": "补正期限", "x-date": rule}
    if fmt:
        field["format"] = fmt
    return {"type": "object", "properties": {"due": field}, "additionalProperties": False}


@pytest.fixture(autouse=True)
def late_evening():
    clock.set(datetime(2026, 3, 2, 16, 30, tzinfo=UTC))       # 2026-03-03 00:30 in China: already the 3rd there
    yield
    clock.reset()


def test_not_past_takes_today_and_later_in_chinas_time_zone():
    assert forms.validate(schema("not_past"), {"due": "2026-03-03"})["due"] == "2026-03-03"
    with pytest.raises(InvalidInput) as refused:
        forms.validate(schema("not_past"), {"due": "2026-03-02"})
    assert refused.value.message == "表单填写有误：「补正期限」不能早于今天（今天是2026年3月3日）"


def test_not_future_takes_today_and_earlier():
    assert forms.validate(schema("not_future"), {"due": "2026-03-03"})["due"] == "2026-03-03"
    with pytest.raises(InvalidInput) as refused:
        forms.validate(schema("not_future"), {"due": "2026-03-04"})
    assert "不能晚于今天" in refused.value.message


def test_a_malformed_date_gets_the_format_message_not_a_crash():
    with pytest.raises(InvalidInput) as refused:
        forms.validate(schema("not_past"), {"due": "2026-02-30"})
    assert "补正期限" in refused.value.message and "today" not in refused.value.message


@pytest.mark.parametrize("rule, fmt", [("someday", "date"), ("not_past", None), ("not_past", "date-time")])
def test_a_misused_keyword_is_a_problem_of_the_form_file(rule, fmt):
    problems = forms.check_schema(schema(rule, fmt))
    assert problems == ["字段「补正期限」的 x-date 只能用于 format 为 date 的字段，取值为 not_past（不早于今天）"
                        "或 not_future（不晚于今天）"]
