"""Logins and sessions: login with throttling, the session behind each request, logout, ending a user's sessions,
changing one's password (pages: 登录, 退出, 修改密码).

- A login creates a session: a random token goes into the cookie, the database keeps only its SHA-256. Every request
  looks the session up with its user in one query, so logout, deactivation, a password change or an administrator
  ending a user's sessions take effect at once on every server process; a session idle longer than
  ``BANGBAN_SESSION_IDLE_MINUTES`` (default 30) ends.
- A request of a session this process answered less than a minute ago takes the answer from memory and checks it
  with the same query as the first statement of the request's own transaction (the use case's), not in a transaction
  of its own: :meth:`Sessions.request_session`. The answer is only used if the database confirms it in that
  request, so the guarantees above are unchanged.
- Failed logins are counted per account and per address in the database (shared by all server processes): after
  ``BANGBAN_LOGIN_MAX_FAILURES`` (5) failures of an account, or ``BANGBAN_LOGIN_MAX_FAILURES_PER_ADDRESS`` (20) from
  one address, logins are refused for ``BANGBAN_LOGIN_LOCK_MINUTES`` (15), even with the right password. The answer
  never says whether the account exists.
- Times are the wall clock (:data:`engine.clock.wall`), not the service time of cases (which demo mode moves).
"""
from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .. import caches
from ..access import Actor
from ..clock import wall
from ..config import ints_from_env
from ..errors import Conflict, InvalidInput, NotAuthenticated, NotFound, SessionChanged, TooManyAttempts, Unavailable
from ..passwords import check_password, check_password_policy, hash_password, min_length, needs_rehash, waste_a_check

WRONG = "用户名或密码错误"
TOUCH_EVERY = timedelta(minutes=1)     # last_seen_at is written at most this often per session
ACCOUNTS_PERMISSION = "accounts"       # manifest permission of the administrator who may end a user's sessions

# Sessions this process answered: (id of the service, session id) -> (the user's columns as read, the answer, the
# session's last use as written or read). Only a guess: every request checks it in the database (request_session).
_KNOWN: dict[tuple[int, str], tuple[tuple, "CurrentSession", datetime]] = {}
_KNOWN_MAX = 4096


@caches.register
def _forget_known_sessions() -> None:
    _KNOWN.clear()


@dataclass(frozen=True)
class LoginLimits:
    """Read from ``BANGBAN_<FIELD>`` at each use (a whole number from 1 to 1,000,000)."""

    login_max_failures: int = 5                  # per account
    login_max_failures_per_address: int = 20     # per address: a county office often shares one address
    login_lock_minutes: int = 15                 # also the window in which failures are counted
    session_idle_minutes: int = 30


def limits() -> LoginLimits:
    return ints_from_env(LoginLimits, "BANGBAN_")


@dataclass(frozen=True)
class Login:
    token: str                  # for the cookie only; the database keeps its SHA-256
    actor: Actor
    must_change_password: bool


@dataclass(frozen=True)
class CurrentSession:
    """Who is behind a request: ``actor`` None when logged out (``timed_out``: because the session was idle)."""

    actor: Actor | None
    must_change_password: bool = False
    timed_out: bool = False


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _locked(rows, at: datetime) -> TooManyAttempts | None:
    until = max((_utc(r.locked_until) for r in rows if r.locked_until is not None and _utc(r.locked_until) > at),
                default=None)
    if until is None:
        return None
    seconds = (until - at).total_seconds()
    return TooManyAttempts(f"登录失败次数过多，请 {max(1, math.ceil(seconds / 60))} 分钟后再试", math.ceil(seconds))


def _keys(username: str, address: str | None) -> list[tuple[str, str]]:
    """The throttling counters of a login: (key, kind)."""
    keys = [(f"user:{username}", "account")] if username and username.isprintable() else []
    if address and address.isprintable():
        keys.append((f"addr:{address[:64]}", "address"))
    return keys


class Sessions:
    """Use cases: login, the session behind a request, logout, ending sessions, changing one's password."""

    def login(self, username: str, password: str, address: str | None = None) -> Login:
        """Check the password (throttled), upgrade an old hash, and open a session."""
        username, password = (username or "").strip()[:64], (password or "")[:128]
        lim, at = limits(), wall.now()
        keys = _keys(username, address)
        usable = bool(username) and username.isprintable() and password.isprintable()
        with self.db.unit_of_work(write=False) as uow:
            refused = _locked(uow.repo.login_throttles([k for k, _ in keys]), at) if keys else None
            row = uow.repo.user_by_username(username) if usable else None
        if refused:
            raise refused
        if row is not None and row.active:
            good = check_password(row.password_hash, password)
        else:
            waste_a_check(password)          # as slow as a wrong password: the time says nothing either
            good = False
        new_hash = hash_password(password) if good and needs_rehash(row.password_hash) else None
        with self.db.unit_of_work() as uow:
            if not good:
                locked = self._count_failure(uow, keys, at, lim)
                uow.commit()
                raise locked or NotAuthenticated(WRONG)
            refused = _locked(uow.repo.login_throttles([k for k, _ in keys]), at)   # locked meanwhile elsewhere
            if refused:
                raise refused
            uow.repo.clear_login_failures(f"user:{username}")
            if new_hash:
                uow.repo.replace_password_hash(row.id, row.password_hash, new_hash)
            token = secrets.token_urlsafe(32)
            uow.repo.insert_session(id=session_id(token), user_id=row.id, created_at=at, last_seen_at=at,
                                    address=(address or None) and address[:64])
            uow.commit()
        return Login(token, Actor.from_row(row), bool(row.must_change_password))

    @staticmethod
    def _count_failure(uow, keys: list[tuple[str, str]], at: datetime, lim: LoginLimits) -> TooManyAttempts | None:
        """Count a failed login on each of its counters; the lock it brought about, if any."""
        window = timedelta(minutes=lim.login_lock_minutes)
        rows = []
        for key, kind in keys:
            most = lim.login_max_failures if kind == "account" else lim.login_max_failures_per_address
            rows.append(uow.repo.record_login_failure(key, at, at - window, most, at + window))
        uow.repo.forget_login_failures(at, at - window)
        return _locked(rows, at)

    def current_session(self, token: str | None) -> CurrentSession:
        """The session of a request's cookie, checked in the database (one query): ended, its user deactivated, or
        idle too long -> logged out (the last two are ended here). Its last use is written at most once a minute."""
        if not token or not isinstance(token, str) or len(token) > 100:
            return CurrentSession(None)
        sid, at = session_id(token), wall.now()
        with self.db.unit_of_work(write=False) as uow:
            row = uow.repo.session_with_user(sid)
        if row is None or row.session_ended_at is not None:
            _KNOWN.pop((id(self), sid), None)
            return CurrentSession(None)
        idle = at - _utc(row.session_last_seen_at)
        reason = ("deactivated" if not row.active
                  else "idle" if idle > timedelta(minutes=limits().session_idle_minutes) else None)
        if reason or idle >= TOUCH_EVERY:
            try:
                with self.db.unit_of_work() as uow:
                    if reason:
                        uow.repo.end_session(sid, at, reason)
                    else:
                        uow.repo.touch_session(sid, at)
                    uow.commit()
            except Unavailable:
                pass        # bookkeeping only: the answer below stands, the next request writes it
        if reason:
            _KNOWN.pop((id(self), sid), None)
            return CurrentSession(None, timed_out=reason == "idle")
        answer = CurrentSession(Actor.from_row(row), bool(row.must_change_password))
        if len(_KNOWN) >= _KNOWN_MAX:
            _KNOWN.clear()
        last_use = at if idle >= TOUCH_EVERY else _utc(row.session_last_seen_at)
        _KNOWN[(id(self), sid)] = (tuple(row)[:-2], answer, last_use)
        return answer

    def request_session(self, token: str | None) -> CurrentSession:
        """:meth:`current_session` for a web request, without a transaction of its own where possible.

        A session this process answered, last used less than a minute ago (so neither idle nor due for its write),
        is answered from memory, and its check is deferred to the first statement of the next transaction the
        request opens (normally the use case's own): the same query, which must find the session open, its user
        active with every column as remembered, and its last use less than a minute ago; otherwise that transaction
        raises :class:`SessionChanged` before doing anything, and the caller must look the session up again with
        :meth:`current_session` and start the request over. The caller runs :meth:`confirm_request_session` before
        answering (the check, if no transaction ran it) and :meth:`forget_request_session` at the end."""
        if not token or not isinstance(token, str) or len(token) > 100:
            return CurrentSession(None)
        sid, at = session_id(token), wall.now()
        key = (id(self), sid)
        known = _KNOWN.get(key)
        if known is None or at - known[2] >= TOUCH_EVERY or known[1].must_change_password:
            return self.current_session(token)
        columns, answer, _ = known

        def check(uow) -> None:
            row = uow.repo.session_with_user(sid)
            if (row is None or row.session_ended_at is not None or not row.active
                    or at - _utc(row.session_last_seen_at) >= TOUCH_EVERY or tuple(row)[:-2] != columns):
                _KNOWN.pop(key, None)
                raise SessionChanged()

        self.db.check_in_next_transaction(check)
        return answer

    def confirm_request_session(self) -> None:
        """The deferred check of :meth:`request_session`, in a transaction of its own, if none of the request ran
        it yet (raises :class:`SessionChanged`)."""
        if self.db.has_pending_check():
            with self.db.unit_of_work(write=False):
                pass

    def session_check_pending(self) -> bool:
        """Whether :meth:`request_session` answered from memory and its check is still to run."""
        return self.db.has_pending_check()

    def forget_request_session(self) -> None:
        self.db.check_in_next_transaction(None)

    def logout(self, token: str | None) -> None:
        """End the session of this cookie in the database (replaying the cookie afterwards is refused)."""
        if token and isinstance(token, str) and len(token) <= 100:
            with self.db.unit_of_work() as uow:
                uow.repo.end_session(session_id(token), wall.now(), "logout")
                uow.commit()

    def end_user_sessions(self, actor: Actor, user_id: int, reason: str = "ended_by_admin") -> int:
        """An administrator logs a user out everywhere at once; returns how many sessions were open."""
        self.check_permission(actor, ACCOUNTS_PERMISSION)
        with self.db.unit_of_work() as uow:
            row = uow.repo.user_by_id(user_id)
            if row is None:
                raise NotFound("用户不存在")
            ended = uow.repo.end_sessions(user_id, wall.now(), reason)
            self.log_admin_change(uow, actor, "end_sessions", "user", row.username, None, {"ended_sessions": ended})
            uow.commit()
        return ended

    @staticmethod
    def password_min_length() -> int:
        return min_length()

    def change_password(self, actor: Actor, token: str, old_password: str, new_password: str,
                        new_password_again: str) -> None:
        """Change one's own password: the old one, the new one twice, the policy. Ends every other session of the user
        and lifts the first-login obligation to change it."""
        old_password, new_password, again = (old_password or "")[:128], new_password or "", new_password_again or ""
        if not old_password:
            raise InvalidInput("请输入原密码")
        if new_password != again:
            raise InvalidInput("两次输入的新密码不一致")
        lim, at = limits(), wall.now()
        keys = _keys(actor.username, None)
        with self.db.unit_of_work(write=False) as uow:
            refused = _locked(uow.repo.login_throttles([k for k, _ in keys]), at)
            row = uow.repo.user_by_id(actor.id)
        if refused:
            raise refused
        if row is None or not row.active:
            raise NotAuthenticated("请先登录")
        if not check_password(row.password_hash, old_password):
            with self.db.unit_of_work() as uow:
                locked = self._count_failure(uow, keys, at, lim)
                uow.commit()
            raise locked or InvalidInput("原密码不正确")
        check_password_policy(new_password, row.username)
        if new_password == old_password:
            raise InvalidInput("新密码不能与原密码相同")
        new_hash = hash_password(new_password)
        with self.db.unit_of_work() as uow:
            if not uow.repo.replace_password_hash(row.id, row.password_hash, new_hash, must_change_password=False,
                                                  password_changed_at=at):
                raise Conflict("密码刚刚已被修改，请重新输入")
            uow.repo.end_other_sessions(row.id, session_id(token or ""), at, "password_changed")
            uow.repo.clear_login_failures(f"user:{row.username}")
            uow.commit()
