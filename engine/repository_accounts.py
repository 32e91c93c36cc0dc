"""Queries of accounts: sessions and the log of administrative changes (a mixin of :class:`engine.repository.Repository`)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from .models import AdminChange, Session

sessions, admin_log = Session.__table__, AdminChange.__table__


class AccountsRepository:
    conn: object

    def end_sessions(self, user_id: int, at: datetime, reason: str) -> int:
        """End every open session of a user (logout everywhere, deactivation, password reset); returns how many."""
        return self.conn.execute(update(sessions).where(sessions.c.user_id == user_id, sessions.c.ended_at.is_(None))
                                 .values(ended_at=at, ended_reason=reason)).rowcount

    def add_admin_change(self, *, at: datetime, actor_id: int | None, actor_name: str, action: str, target_kind: str,
                         target: str, old: dict | None = None, new: dict | None = None, reason: str | None = None) -> None:
        self.conn.execute(insert(admin_log).values(at=at, actor_id=actor_id, actor_name=actor_name, action=action,
                                                   target_kind=target_kind, target=str(target)[:100], old=old, new=new,
                                                   reason=reason))

    def admin_changes(self, target_kind: str | None = None, target: str | None = None, limit: int = 200,
                      before_id: int | None = None) -> list:
        q = select(admin_log).order_by(admin_log.c.id.desc()).limit(limit)
        if target_kind:
            q = q.where(admin_log.c.target_kind == target_kind)
        if target:
            q = q.where(admin_log.c.target == target)
        if before_id:
            q = q.where(admin_log.c.id < before_id)
        return list(self.conn.execute(q))
