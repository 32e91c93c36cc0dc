"""SQL of the notifications outbox (issue 15): notifications, their deliveries per channel and user, channel choices.

A notification is written in the transaction of the event that causes it, and with it one ``deliveries`` row per
recipient user and channel: in-app rows delivered at once (``sent``, with ``read_at``), the others ``pending`` for
the worker. The worker claims due rows in a short transaction of their own (PostgreSQL ``FOR UPDATE SKIP LOCKED``,
SQLite one writer at a time) by moving ``next_attempt_at`` past a lease and counting the attempt, sends outside any
transaction, then records the outcome only if the row is still the one it claimed (same attempt, still pending).
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .models import Case, Delivery, Notification, NotificationPref, Unit, User

notifications, deliveries, prefs = Notification.__table__, Delivery.__table__, NotificationPref.__table__
_cases, _users, _units = Case.__table__, User.__table__, Unit.__table__
INAPP = "inapp"


def _recipient_condition(recipient: str):
    """The active users a recipient names: ``user:x``, ``dept:code``, ``role:code``, ``unit:id``; None if none."""
    kind, _, value = recipient.partition(":")
    if not value:
        return None
    if kind == "user":
        return _users.c.username == value
    if kind == "dept":
        return _users.c.department == value
    if kind == "role":
        return ("," + _users.c.roles + ",").like(f"%,{value},%")
    if kind == "unit" and value.isdigit():
        return _users.c.unit_id == int(value)
    return None


class NotificationsRepository:
    conn: object
    dialect: str

    # ---- writing: a notification and its deliveries, in the caller's transaction ------------------------------------
    def add_notifications(self, rows: list[dict]) -> None:
        """Each row: ``recipient``, ``case_id``, ``text``, ``created_at``; optional ``kind``, ``subject``, ``link`` and
        ``idem_key`` (a notification whose key was written before is not written again)."""
        users: dict[str, list] = {}         # a step's messages often share their recipients
        for row in rows:
            self._add_notification(row, users)

    def _add_notification(self, row: dict, users: dict[str, list]) -> None:
        key = row.get("idem_key") or uuid.uuid4().hex
        at = row["created_at"]
        values = {"recipient": row["recipient"][:100], "case_id": row.get("case_id"), "text": row["text"][:500],
                  "created_at": at, "kind": (row.get("kind") or "notice")[:32],
                  "subject": (row.get("subject") or None) and row["subject"][:100],
                  "link": (row.get("link") or None) and row["link"][:300], "idem_key": key[:120]}
        if row.get("idem_key"):        # a key written before is left alone (its unique index decides, in one statement)
            stmt = (pg_insert if self.dialect == "postgresql" else sqlite_insert)(notifications).values(**values)
            nid = self.conn.execute(stmt.on_conflict_do_nothing(index_elements=[notifications.c.idem_key])
                                    .returning(notifications.c.id)).scalar()
            if nid is None:
                return
        else:
            nid = self.conn.execute(insert(notifications).values(**values).returning(notifications.c.id)).scalar_one()
        if values["recipient"] not in users:
            users[values["recipient"]] = self.recipient_users(values["recipient"])
        out = []
        for user in users[values["recipient"]]:
            base = {"notification_id": nid, "case_id": values["case_id"], "username": user.username, "created_at": at}
            out.append(dict(base, channel=INAPP, address=None, status="sent", attempts=0, next_attempt_at=None,
                            sent_at=at, idem_key=f"{values['idem_key']}/{INAPP}/{user.username}"))
            for channel in _channels(user.channels):
                address = user.email if channel == "email" else (user.phone or user.unit_phone) if channel == "sms" \
                    else (user.phone or user.unit_phone)
                out.append(dict(base, channel=channel, address=address, status="pending", attempts=0, next_attempt_at=at,
                                sent_at=None, idem_key=f"{values['idem_key']}/{channel}/{user.username}"))
        if out:
            self.conn.execute(insert(deliveries), out)

    def recipient_users(self, recipient: str) -> list:
        """The active users a recipient names, with their phone, e-mail, their unit's contact phone and channels."""
        cond = _recipient_condition(recipient)
        if cond is None:
            return []
        stmt = (select(_users.c.username, _users.c.display_name, _users.c.phone, _users.c.email,
                       _units.c.contact_phone.label("unit_phone"), prefs.c.channels)
                .select_from(_users.outerjoin(_units, _units.c.id == _users.c.unit_id)
                             .outerjoin(prefs, prefs.c.username == _users.c.username))
                .where(and_(_users.c.active.is_(True), cond)).order_by(_users.c.username))
        return self.conn.execute(stmt).all()

    # ---- channel choices -------------------------------------------------------------------------------------------
    def notification_channels(self, username: str) -> list[str]:
        row = self.conn.execute(select(prefs.c.channels).where(prefs.c.username == username)).first()
        return _channels(row.channels if row else None)

    def set_notification_channels(self, username: str, channels: list[str], at: datetime) -> None:
        self.conn.execute(delete(prefs).where(prefs.c.username == username))
        self.conn.execute(insert(prefs).values(username=username, channels=",".join(channels), updated_at=at))

    # ---- the worker ------------------------------------------------------------------------------------------------
    def claim_deliveries(self, now: datetime, lease_until: datetime, limit: int) -> list:
        """Claim up to ``limit`` due pending deliveries: count the attempt and move ``next_attempt_at`` to the end of
        the lease (so no other worker takes them meanwhile). Returns them with what the message needs."""
        stmt = (select(deliveries.c.id).where(and_(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now))
                .order_by(deliveries.c.next_attempt_at, deliveries.c.id).limit(limit))
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        ids = list(self.conn.execute(stmt).scalars())
        if not ids:
            return []
        self.conn.execute(update(deliveries).where(and_(deliveries.c.id.in_(ids), deliveries.c.status == "pending"))
                          .values(attempts=deliveries.c.attempts + 1, next_attempt_at=lease_until))
        q = (select(deliveries.c.id, deliveries.c.channel, deliveries.c.username, deliveries.c.address,
                    deliveries.c.attempts, deliveries.c.idem_key, notifications.c.kind, notifications.c.subject,
                    notifications.c.text, notifications.c.link, notifications.c.created_at, _cases.c.case_no,
                    _users.c.display_name)
             .select_from(deliveries.join(notifications, notifications.c.id == deliveries.c.notification_id)
                          .outerjoin(_cases, _cases.c.id == deliveries.c.case_id)
                          .outerjoin(_users, _users.c.username == deliveries.c.username))
             .where(deliveries.c.id.in_(ids)).order_by(deliveries.c.id))
        return self.conn.execute(q).all()

    def finish_deliveries(self, outcomes: list[dict]) -> int:
        """Record what the worker's attempts came to; each outcome: ``id``, ``attempts`` (as claimed), ``status``,
        ``sent_at``, ``next_attempt_at``, ``last_error``. A row another worker took meanwhile is left alone."""
        if not outcomes:
            return 0
        stmt = (update(deliveries)
                .where(and_(deliveries.c.id == bindparam("b_id"), deliveries.c.attempts == bindparam("b_attempts"),
                            deliveries.c.status == "pending"))
                .values(status=bindparam("b_status"), sent_at=bindparam("b_sent_at"),
                        next_attempt_at=bindparam("b_next"), last_error=bindparam("b_error")))
        result = self.conn.execute(stmt, [{"b_id": o["id"], "b_attempts": o["attempts"], "b_status": o["status"],
                                           "b_sent_at": o.get("sent_at"), "b_next": o.get("next_attempt_at"),
                                           "b_error": o.get("last_error")} for o in outcomes])
        return result.rowcount

    def count_deliveries(self, status: str | None = None) -> int:
        stmt = select(func.count()).select_from(deliveries).where(deliveries.c.channel != INAPP)
        if status:
            stmt = stmt.where(deliveries.c.status == status)
        return self.conn.execute(stmt).scalar_one()

    # ---- reading -----------------------------------------------------------------------------------------------------
    def _delivery_listing(self):
        return (select(deliveries.c.id, deliveries.c.channel, deliveries.c.username, deliveries.c.address,
                       deliveries.c.status, deliveries.c.attempts, deliveries.c.next_attempt_at, deliveries.c.last_error,
                       deliveries.c.created_at, deliveries.c.sent_at, deliveries.c.read_at, notifications.c.subject,
                       notifications.c.text, notifications.c.kind, _cases.c.case_no, _users.c.display_name)
                .select_from(deliveries.join(notifications, notifications.c.id == deliveries.c.notification_id)
                             .outerjoin(_cases, _cases.c.id == deliveries.c.case_id)
                             .outerjoin(_users, _users.c.username == deliveries.c.username)))

    def failed_deliveries(self, limit: int = 200) -> list:
        return self.conn.execute(self._delivery_listing().where(deliveries.c.status == "failed")
                                 .order_by(deliveries.c.id.desc()).limit(limit)).all()

    def delivery(self, delivery_id: int):
        return self.conn.execute(self._delivery_listing().where(deliveries.c.id == delivery_id)).first()

    def retry_delivery(self, delivery_id: int, now: datetime) -> bool:
        """A failed delivery back to pending, due now, with a fresh count of attempts."""
        result = self.conn.execute(update(deliveries).where(and_(deliveries.c.id == delivery_id, deliveries.c.status == "failed"))
                                   .values(status="pending", attempts=0, next_attempt_at=now))
        return result.rowcount == 1

    def case_deliveries(self, case_id: int, username: str | None = None, limit: int = 500) -> list:
        stmt = self._delivery_listing().where(deliveries.c.case_id == case_id)
        if username is not None:
            stmt = stmt.where(deliveries.c.username == username)
        return self.conn.execute(stmt.order_by(deliveries.c.id).limit(limit)).all()

    def notices(self, username: str, limit: int = 20, unread_only: bool = False) -> list:
        """One user's in-app notices, newest first."""
        stmt = (select(deliveries.c.id, deliveries.c.read_at, notifications.c.text, notifications.c.subject,
                       notifications.c.kind, notifications.c.link, notifications.c.created_at, _cases.c.case_no)
                .select_from(deliveries.join(notifications, notifications.c.id == deliveries.c.notification_id)
                             .outerjoin(_cases, _cases.c.id == deliveries.c.case_id))
                .where(and_(deliveries.c.username == username, deliveries.c.channel == INAPP)))
        if unread_only:
            stmt = stmt.where(deliveries.c.read_at.is_(None))
        return self.conn.execute(stmt.order_by(deliveries.c.id.desc()).limit(limit)).all()

    def unread_count(self, username: str) -> int:
        return self.conn.execute(select(func.count()).select_from(deliveries).where(and_(
            deliveries.c.username == username, deliveries.c.channel == INAPP, deliveries.c.read_at.is_(None)))).scalar_one()

    def notice(self, username: str, delivery_id: int):
        return next(iter(r for r in self.conn.execute(
            select(deliveries.c.id, deliveries.c.read_at, notifications.c.link, _cases.c.case_no)
            .select_from(deliveries.join(notifications, notifications.c.id == deliveries.c.notification_id)
                         .outerjoin(_cases, _cases.c.id == deliveries.c.case_id))
            .where(and_(deliveries.c.id == delivery_id, deliveries.c.username == username,
                        deliveries.c.channel == INAPP))).all()), None)

    def mark_read(self, username: str, ids: Iterable[int] | None, at: datetime) -> int:
        """Mark some (or, ``ids`` None, all) of a user's unread in-app notices read."""
        cond = and_(deliveries.c.username == username, deliveries.c.channel == INAPP, deliveries.c.read_at.is_(None))
        if ids is not None:
            cond = and_(cond, deliveries.c.id.in_(list(ids)))
        return self.conn.execute(update(deliveries).where(cond).values(read_at=at)).rowcount

    def notifications_for(self, recipients: list[str], limit: int = 20) -> list:
        """Notifications addressed to any of ``recipients`` as written (not per user), newest first."""
        stmt = (select(notifications, _cases.c.case_no).join(_cases, _cases.c.id == notifications.c.case_id, isouter=True)
                .where(notifications.c.recipient.in_(recipients))
                .order_by(notifications.c.created_at.desc(), notifications.c.id.desc()).limit(limit))
        return self.conn.execute(stmt).all()


def _channels(raw: str | None) -> list[str]:
    return [c for c in (raw or "").split(",") if c and c != INAPP]
