"""Queries of applicant units: registrations and their review, a unit's handlers, the unit fields of an application
and possible duplicate applications (a mixin of :class:`engine.repository.Repository`)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, insert, select, update

from .models import Case, Event, LoginThrottle, Unit, User

units, users, cases, events = Unit.__table__, User.__table__, Case.__table__, Event.__table__
throttle = LoginThrottle.__table__
LIVE = units.c.status != "rejected"


class UnitsRepository:
    conn: object

    def live_unit_with(self, name: str | None = None, credit_code: str | None = None):
        """A unit not rejected with this name or this credit code (the two are unique among such units)."""
        cond = units.c.name == name if name is not None else units.c.credit_code == credit_code
        return self.conn.execute(select(units).where(cond, LIVE).limit(1)).first()

    def approved_units(self) -> list:
        return self.conn.execute(select(units).where(units.c.status == "approved").order_by(units.c.name)).all()

    def unit_registrations(self, status: str | None, limit: int = 200) -> list:
        """Units registered online, the pending first, then the latest reviewed."""
        q = select(units).where(units.c.registered_at.is_not(None))
        if status:
            q = q.where(units.c.status == status)
        order = (units.c.status != "pending", units.c.registered_at.desc(), units.c.id.desc())
        return self.conn.execute(q.order_by(*order).limit(limit)).all()

    def unit_locked(self, unit_id: int):
        q = select(units).where(units.c.id == unit_id)
        if self.conn.dialect.name == "postgresql":
            q = q.with_for_update()
        return self.conn.execute(q).first()

    def update_unit(self, unit_id: int, **values) -> None:
        self.conn.execute(update(units).where(units.c.id == unit_id).values(**values))
        if "name" in values or "credit_code" in values:      # the search rows of its cases hold both
            self.index_cases_of_unit(unit_id)

    def count_registrations_since(self, since: datetime) -> int:
        return self.conn.execute(select(func.count()).select_from(units)
                                 .where(units.c.registered_at >= since)).scalar_one()

    def unit_users(self, unit_id: int) -> list:
        return self.conn.execute(select(users.c.id, users.c.username, users.c.display_name, users.c.phone,
                                        users.c.active, users.c.unit_admin, users.c.created_at, users.c.roles)
                                 .where(users.c.unit_id == unit_id).order_by(users.c.id)).all()

    def update_user(self, user_id: int, **values) -> None:
        self.conn.execute(update(users).where(users.c.id == user_id).values(**values))

    def insert_unit_user(self, **values) -> int:
        return self.conn.execute(insert(users).values(**values).returning(users.c.id)).scalar_one()

    def open_cases_with_project_code(self, process_id: str, code: str, limit: int = 50) -> list:
        """Open cases (status ``active``) of a process with this 项目编号, with the form of their application."""
        q = (select(cases.c.id, cases.c.case_no, cases.c.title, cases.c.unit_name, events.c.payload)
             .join(events, and_(events.c.case_id == cases.c.id, events.c.seq == 1, events.c.type == "case_started"))
             .where(cases.c.project_code == code, cases.c.status == "active", cases.c.process_id == process_id)
             .order_by(cases.c.id).limit(limit))
        return self.conn.execute(q).all()

    def registration_throttle(self, key: str):
        """Registrations from one address in the current window (kept in the login throttle table, its own keys)."""
        return self.conn.execute(select(throttle).where(throttle.c.key == key)).first()

    def set_registration_throttle(self, key: str, count: int, since: datetime, exists: bool) -> None:
        if exists:
            self.conn.execute(update(throttle).where(throttle.c.key == key).values(failures=count, first_failure_at=since))
        else:
            self.conn.execute(insert(throttle).values(key=key, failures=count, first_failure_at=since))
