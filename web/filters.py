"""Template filters: times in Asia/Shanghai."""
from __future__ import annotations

from datetime import UTC, datetime

from engine.clock import LOCAL_TZ


def as_utc(value: datetime) -> datetime:
    """Databases without time zones (SQLite) give naive UTC back."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def local_time(value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not isinstance(value, datetime):
        return value or ""
    return as_utc(value).astimezone(LOCAL_TZ).strftime(fmt)


def init_app(app) -> None:
    from engine.forms import shown_when
    app.add_template_filter(local_time, "localtime")
    app.add_template_global(shown_when, "shown_when")
