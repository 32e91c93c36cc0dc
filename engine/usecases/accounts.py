"""Who is using the service: login, the user behind a session, units."""
from __future__ import annotations

from time import monotonic

from ..access import Actor
from ..errors import (
    NotAuthenticated,
)
from ..passwords import check_password
from .base import ACTOR_TTL


class Accounts:
    """Use cases: Who is using the service: login, the user behind a session, units."""

    def authenticate(self, username: str, password: str) -> Actor:
        username = (username or "").strip()
        if not username.isprintable() or not (password or "").isprintable():
            raise NotAuthenticated("用户名或密码错误")
        with self.db.unit_of_work(write=False) as uow:
            row = uow.repo.user_by_username(username)
        if row is None or not row.active or not check_password(row.password_hash, password or ""):
            raise NotAuthenticated("用户名或密码错误")
        return Actor.from_row(row)

    def actor(self, user_id: int) -> Actor | None:
        """The user behind a session; cached per process for ``ACTOR_TTL`` seconds (a deactivated user or a
        changed role takes effect within that time on every worker)."""
        hit = self._actors.get(user_id)
        moment = monotonic()
        if hit is not None and moment - hit[0] < ACTOR_TTL:
            return hit[1]
        with self.db.unit_of_work(write=False) as uow:
            row = uow.repo.user_by_id(user_id)
        found = Actor.from_row(row) if row is not None and row.active else None
        if len(self._actors) > 10_000:
            self._actors.clear()
        self._actors[user_id] = (moment, found)
        return found

    def units(self) -> list[dict]:
        with self.db.unit_of_work(write=False) as uow:
            return [dict(r._mapping) for r in uow.repo.units()]
