"""Queries of 改派 (reassigning open tasks): a mixin of :class:`engine.repository.Repository`."""
from __future__ import annotations

from sqlalchemy import and_, func, or_, select

from .models import Case, InboxTask, User

cases, inbox, users = Case.__table__, InboxTask.__table__, User.__table__


class ReassignRepository:
    conn: object

    def active_staff(self) -> list:
        """Every active account that is not only an applicant's handler (the people a task can go to)."""
        rows = self.conn.execute(select(users.c.id, users.c.username, users.c.display_name, users.c.roles,
                                        users.c.department)
                                 .where(users.c.active.is_(True)).order_by(users.c.username)).all()
        return [r for r in rows if set(filter(None, r.roles.split(","))) - {"applicant"}]

    def inbox_assignments(self) -> list:
        """The distinct (role, department, assignee) of the open staff tasks, with how many there are of each: few,
        however many tasks are open, so who can act on each is decided once per combination."""
        i = inbox.c
        return self.conn.execute(select(i.role, i.department, i.assignee, func.count().label("n"))
                                 .where(i.role != "applicant").group_by(i.role, i.department, i.assignee)).all()

    def inbox_of_assignments(self, combos: list[tuple], limit: int = 500) -> list:
        """The open tasks of these (role, department, assignee) combinations, oldest first, with their case."""
        if not combos:
            return []
        i = inbox.c

        def same(column, value):
            return column.is_(None) if value is None else column == value
        match = or_(*[and_(i.role == r, same(i.department, d), same(i.assignee, a)) for r, d, a in combos])
        stmt = (select(inbox, cases.c.case_no, cases.c.title.label("case_title"), cases.c.unit_name)
                .join(cases, cases.c.id == inbox.c.case_id).where(match).order_by(i.created_at).limit(limit))
        return self.conn.execute(stmt).all()

    def users_by_usernames(self, usernames) -> dict[str, object]:
        names = sorted({n for n in usernames if n})
        if not names:
            return {}
        rows = self.conn.execute(select(users.c.username, users.c.display_name, users.c.roles, users.c.department,
                                        users.c.active).where(users.c.username.in_(names))).all()
        return {r.username: r for r in rows}
