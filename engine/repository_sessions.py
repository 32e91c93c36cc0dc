"""Queries of logins: server-side sessions, login throttling, password hashes (a mixin of
:class:`engine.repository.Repository`)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, case, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .models import LoginThrottle, Session, User

sessions, throttle, users = Session.__table__, LoginThrottle.__table__, User.__table__

# Every request of a logged-in user runs this one statement: the session with its user (active, roles, first-login
# password change), by the primary key of sessions.
_SESSION_WITH_USER = (select(users, sessions.c.last_seen_at.label("session_last_seen_at"),
                             sessions.c.ended_at.label("session_ended_at"))
                      .join_from(sessions, users, sessions.c.user_id == users.c.id)
                      .where(sessions.c.id == bindparam("sid")))


def _failure_upsert(dialect_insert, key: str, at: datetime, window_start: datetime, max_failures: int,
                    lock_until: datetime):
    """One failed login counted atomically (any number of server processes): a counter whose first failure is older
    than the window, or whose lock has run out, starts again at 1; reaching ``max_failures`` locks until
    ``lock_until``."""
    fresh = or_(throttle.c.first_failure_at.is_(None), throttle.c.first_failure_at < window_start,
                and_(throttle.c.locked_until.is_not(None), throttle.c.locked_until <= at))
    failures = case((fresh, 1), else_=throttle.c.failures + 1)
    stmt = dialect_insert(throttle).values(key=key, failures=1, first_failure_at=at,
                                           locked_until=lock_until if max_failures <= 1 else None)
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={
        "failures": failures,
        "first_failure_at": case((fresh, at), else_=throttle.c.first_failure_at),
        "locked_until": case((failures >= max_failures, lock_until), else_=None),
    })
    return stmt.returning(throttle.c.failures, throttle.c.locked_until)


class SessionsRepository:
    conn: object
    dialect: str

    # ---- sessions -------------------------------------------------------------------------------------------
    def session_with_user(self, sid: str):
        """The session ``sid`` (its ``session_last_seen_at``, ``session_ended_at``) with every column of its user."""
        return self.conn.execute(_SESSION_WITH_USER, {"sid": sid}).first()

    def insert_session(self, **values) -> None:
        self.conn.execute(insert(sessions).values(**values))

    def touch_session(self, sid: str, at: datetime) -> None:
        self.conn.execute(update(sessions).where(sessions.c.id == sid, sessions.c.ended_at.is_(None))
                          .values(last_seen_at=at))

    def end_session(self, sid: str, at: datetime, reason: str) -> int:
        return self.conn.execute(update(sessions).where(sessions.c.id == sid, sessions.c.ended_at.is_(None))
                                 .values(ended_at=at, ended_reason=reason)).rowcount

    def end_other_sessions(self, user_id: int, keep_sid: str, at: datetime, reason: str) -> int:
        """End every open session of a user but ``keep_sid`` (the one changing the password)."""
        return self.conn.execute(update(sessions).where(sessions.c.user_id == user_id, sessions.c.ended_at.is_(None),
                                                        sessions.c.id != keep_sid)
                                 .values(ended_at=at, ended_reason=reason)).rowcount

    def open_sessions(self, user_id: int) -> list:
        return self.conn.execute(select(sessions).where(sessions.c.user_id == user_id, sessions.c.ended_at.is_(None))
                                 .order_by(sessions.c.created_at)).all()

    # ---- login throttling ---------------------------------------------------------------------------------------
    def login_throttles(self, keys: list[str]) -> list:
        return self.conn.execute(select(throttle).where(throttle.c.key.in_(keys))).all()

    def record_login_failure(self, key: str, at: datetime, window_start: datetime, max_failures: int,
                             lock_until: datetime):
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        return self.conn.execute(_failure_upsert(dialect_insert, key, at, window_start, max_failures, lock_until)).one()

    def clear_login_failures(self, key: str) -> None:
        self.conn.execute(delete(throttle).where(throttle.c.key == key))

    def forget_login_failures(self, at: datetime, window_start: datetime) -> None:
        """Drop counters that no longer matter: first failure before the window, no lock in force."""
        self.conn.execute(delete(throttle).where(throttle.c.first_failure_at < window_start,
                                                 or_(throttle.c.locked_until.is_(None), throttle.c.locked_until <= at)))

    # ---- password hashes --------------------------------------------------------------------------------------
    def replace_password_hash(self, user_id: int, old_hash: str, new_hash: str, **values) -> int:
        """Set a user's password hash (and ``values``) unless it changed since it was read (0: it did)."""
        return self.conn.execute(update(users).where(users.c.id == user_id, users.c.password_hash == old_hash)
                                 .values(password_hash=new_hash, **values)).rowcount
