"""Queries of administration: staff accounts, departments, service stations (a mixin of
:class:`engine.repository.Repository`)."""
from __future__ import annotations

from sqlalchemy import delete, func, insert, or_, select, update

from .models import CaseParty, Clock, Department, InboxTask, Station, User

users, departments, stations = User.__table__, Department.__table__, Station.__table__
inbox, clocks, case_parties = InboxTask.__table__, Clock.__table__, CaseParty.__table__


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class StaffRepository:
    conn: object

    # ---- staff accounts ------------------------------------------------------------------------------------------
    def search_users(self, q: str | None, role: str | None, department: str | None, station: str | None,
                     active: bool | None, offset: int, limit: int) -> tuple[int, list]:
        """Staff accounts (never the applicants' handlers: they belong to a unit), by login, name or phone."""
        cond = [users.c.unit_id.is_(None)]
        if q:
            pattern = _like(q)
            cond.append(or_(users.c.username.like(pattern, escape="\\"), users.c.display_name.like(pattern, escape="\\"),
                            users.c.phone.like(pattern, escape="\\")))
        if role:
            cond.append(or_(users.c.roles == role, users.c.roles.like(f"{role},%"), users.c.roles.like(f"%,{role}"),
                            users.c.roles.like(f"%,{role},%")))
        if department:
            cond.append(users.c.department == department)
        if station:
            cond.append(users.c.station == station)
        if active is not None:
            cond.append(users.c.active.is_(active))
        total = self.conn.execute(select(func.count()).select_from(users).where(*cond)).scalar_one()
        rows = self.conn.execute(select(users).where(*cond).order_by(users.c.username).offset(offset).limit(limit))
        return total, list(rows)

    def usernames_in(self, logins: list[str]) -> set[str]:
        """Which of ``logins`` exist already (compared case-insensitively)."""
        found: set[str] = set()
        lowered = sorted({x.lower() for x in logins})
        for i in range(0, len(lowered), 500):
            chunk = lowered[i:i + 500]
            found |= {r[0].lower() for r in self.conn.execute(select(users.c.username)
                                                                .where(func.lower(users.c.username).in_(chunk)))}
        return found

    def active_users_with_role(self, role: str) -> list:
        rows = self.conn.execute(select(users.c.id, users.c.username, users.c.roles)
                                 .where(users.c.active.is_(True), users.c.roles.like(_like(role), escape="\\")))
        return [r for r in rows if role in r.roles.split(",")]

    def update_user(self, user_id: int, **values) -> None:
        self.conn.execute(update(users).where(users.c.id == user_id).values(**values))

    # ---- departments --------------------------------------------------------------------------------------------
    def departments(self) -> list:
        return list(self.conn.execute(select(departments).order_by(departments.c.code)))

    def department(self, code: str):
        return self.conn.execute(select(departments).where(departments.c.code == code)).first()

    def department_by_name(self, name: str):
        return self.conn.execute(select(departments).where(departments.c.name == name)).first()

    def insert_department(self, **values) -> None:
        self.conn.execute(insert(departments).values(**values))

    def update_department(self, code: str, **values) -> None:
        self.conn.execute(update(departments).where(departments.c.code == code).values(**values))

    def delete_department(self, code: str) -> None:
        self.conn.execute(delete(departments).where(departments.c.code == code))

    def count_departments(self) -> int:
        return self.conn.execute(select(func.count()).select_from(departments)).scalar_one()

    def department_open_items(self, code: str) -> dict[str, int]:
        """What keeps a department from being removed: open tasks, running clocks, active users."""
        def count(table, *cond) -> int:
            return self.conn.execute(select(func.count()).select_from(table).where(*cond)).scalar_one()
        return {"inbox": count(inbox, inbox.c.department == code),
                "clocks": count(clocks, clocks.c.department == code, clocks.c.stopped_at.is_(None)),
                "users": count(users, users.c.department == code, users.c.active.is_(True))}

    def department_has_history(self, code: str) -> bool:
        """Whether any case, clock or account (even a deactivated one) ever named the department."""
        for table, cond in ((clocks, clocks.c.department == code), (users, users.c.department == code),
                            (case_parties, case_parties.c.party == f"dept:{code}")):
            if self.conn.execute(select(func.count()).select_from(table).where(cond)).scalar_one():
                return True
        return False

    # ---- service stations ---------------------------------------------------------------------------------------
    def stations(self) -> list:
        return list(self.conn.execute(select(stations).order_by(stations.c.code)))

    def station(self, code: str):
        return self.conn.execute(select(stations).where(stations.c.code == code)).first()

    def station_by_name(self, name: str):
        return self.conn.execute(select(stations).where(stations.c.name == name)).first()

    def insert_station(self, **values) -> None:
        self.conn.execute(insert(stations).values(**values))

    def update_station(self, code: str, **values) -> None:
        self.conn.execute(update(stations).where(stations.c.code == code).values(**values))

    def count_active_station_users(self, code: str) -> int:
        return self.conn.execute(select(func.count()).select_from(users)
                                 .where(users.c.station == code, users.c.active.is_(True))).scalar_one()
