"""Template filters: times in Asia/Shanghai, dates in 年月日."""
from __future__ import annotations

import re
from datetime import UTC, datetime

from engine.clock import LOCAL_TZ

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def as_utc(value: datetime) -> datetime:
    """Databases without time zones (SQLite) give naive UTC back."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def local_time(value, fmt: str = "%H:%M") -> str:
    """A moment as people in the hall read it: 2026年3月2日 09:00 (the time of day by ``fmt``), in China's time."""
    if not isinstance(value, datetime):
        return value or ""
    local = as_utc(value).astimezone(LOCAL_TZ)
    return f"{local.year}年{local.month}月{local.day}日 {local.strftime(fmt)}"


def chinese_date(value) -> str:
    """A date (or an ISO date text such as a clock's 办结期限) as 2026年3月23日; anything else as it is."""
    from engine.notices import chinese_date as as_chinese
    if value is None or value == "":
        return ""
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        return value
    return as_chinese(value)


_FILE_KINDS = (("forms/", "表单"), ("documents/", "单据模板"), ("catalogue.json", "事项目录"),
               ("notifications.json", "通知模板"), (".bpmn", "流程图"), (".json", "流程清单"))


def file_kind(name) -> str:
    """A process file as its readers name it (流程图, 表单, 事项目录 …), not by its file name."""
    name = str(name or "")
    return next((label for part, label in _FILE_KINDS if part in name), "流程文件")


def init_app(app) -> None:
    from engine.forms import shown_when
    app.add_template_filter(local_time, "localtime")
    app.add_template_filter(chinese_date, "zhdate")
    app.add_template_filter(file_kind, "file_kind")
    app.add_template_global(shown_when, "shown_when")
