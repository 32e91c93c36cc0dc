"""One controllable clock for everything that needs the time.

Engine code calls :func:`now` and never ``datetime.now`` directly, so tests and a demo mode can move time.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
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
        return self._base()

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

    @contextmanager
    def step(self) -> Iterator[Step]:
        """One instant for a whole use-case step (the replay repeats it). It starts as now; once the step has locked
        its case it calls ``step.after(case.updated_at)``, which takes now again, never earlier than the case's last
        step: while this server waited for the lock another one may have written a later step, and a case's events
        stay in time order even when the servers' clocks differ a little."""
        outer = _REPLAYING.get()
        token = _REPLAYING.set(outer if outer is not None else self._base())
        try:
            yield Step(self, outer)
        finally:
            _REPLAYING.reset(token)

    def _base(self) -> datetime:
        return self._fixed if self._fixed is not None else datetime.now(UTC) + self._offset

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


class Step:
    """The instant of one use-case step (see :meth:`Clock.step`)."""

    def __init__(self, owner: Clock, outer: datetime | None):
        self._owner, self._outer = owner, outer

    def after(self, previous: datetime | None) -> datetime:
        """Take the step's instant now (the case is locked): the clock's time, but not before ``previous``."""
        at = self._outer if self._outer is not None else self._owner._base()
        if previous is not None:
            previous = (previous if previous.tzinfo else previous.replace(tzinfo=UTC)).astimezone(UTC)
            at = max(at, previous)
        _REPLAYING.set(at)   # undone with the step's own token when the step ends
        return at


clock = Clock()


def now() -> datetime:
    """The current time in UTC, from the shared clock."""
    return clock.now()


def service_today(days: int = 0) -> date:
    """Today in China's time zone by the shared clock, ``days`` calendar days on."""
    return clock.now().astimezone(LOCAL_TZ).date() + timedelta(days=days)



class WallClock(Clock):
    """Real time for the security of logins (sessions' idle timeout, login lockouts), apart from the service time of
    cases: moving the service clock (demo mode, tests of deadlines) neither times sessions out nor lifts a lockout.
    Tests move this one on its own (``wall.set`` / ``wall.advance``)."""

    def now(self) -> datetime:
        return self._base()


wall = WallClock()
