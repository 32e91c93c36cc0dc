"""Queries of 改派 (reassigning open tasks): a mixin of :class:`engine.repository.Repository`."""
from __future__ import annotations

from sqlalchemy import and_, exists, literal, or_, select

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

    def unattended_tasks(self, limit: int = 500) -> list:
        """Open staff tasks that no active account may act on now (the same rule as ``engine.access.may_act``): the
        named assignee is deactivated or no longer has the role or department, or no active account has the task's
        role (and department). Oldest first, with their case."""
        u = users.c
        has_role = (literal(",") + u.roles + literal(",")).like(literal("%,") + inbox.c.role + literal(",%"))
        someone = exists().where(and_(
            u.active.is_(True), has_role,
            or_(inbox.c.department.is_(None), u.department == inbox.c.department),
            or_(inbox.c.assignee.is_(None), u.username == inbox.c.assignee)))
        stmt = (select(inbox, cases.c.case_no, cases.c.title.label("case_title"), cases.c.unit_name)
                .join(cases, cases.c.id == inbox.c.case_id)
                .where(and_(inbox.c.role != "applicant", ~someone))
                .order_by(inbox.c.created_at).limit(limit))
        return self.conn.execute(stmt).all()

    def users_by_usernames(self, usernames) -> dict[str, object]:
        names = sorted({n for n in usernames if n})
        if not names:
            return {}
        rows = self.conn.execute(select(users.c.username, users.c.display_name, users.c.roles, users.c.department,
                                        users.c.active).where(users.c.username.in_(names))).all()
        return {r.username: r for r in rows}
