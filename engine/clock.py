"""One controllable clock for everything that needs the time.

Engine code calls :func:`now` and never ``datetime.now`` directly, so tests and a demo mode can move time.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
_REPLAYING: ContextVar[datetime | None] = ContextVar("bangban_replay_time", default=None)


class Clock:
    """Wall clock by default; ``set``/``advance`` freeze it at a chosen instant; ``shift`` runs it ahead."""

    def __init__(self) -> None:
        self._fixed: datetime | None = None
        self._offset = timedelta(0)

    def now(self) -> datetime:
        replaying = _REPLAYING.get()
        if replaying is not None:
            return replaying
        return self._fixed if self._fixed is not None else datetime.now(UTC) + self._offset

    @contextmanager
    def at(self, when: datetime) -> Iterator[None]:
        """Within this block (this thread/context only) it is ``when``: replaying a recorded history."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        token = _REPLAYING.set(when.astimezone(UTC))
        try:
            yield
        finally:
            _REPLAYING.reset(token)

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("clock time must be timezone-aware")
        self._fixed = when.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._fixed = self.now() + delta

    def shift(self, delta: timedelta) -> None:
        """Move time forward (demo mode): a frozen clock jumps, a running clock keeps running ahead."""
        if self._fixed is not None:
            self._fixed += delta
        else:
            self._offset += delta

    def reset(self) -> None:
        self._fixed = None
        self._offset = timedelta(0)


clock = Clock()


def now() -> datetime:
    """The current time in UTC, from the shared clock."""
    return clock.now()

