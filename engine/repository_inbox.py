"""Queries of the inbox (我的待办) in urgency order, paged by a cursor: a mixin of :class:`engine.repository.Repository`.

The order: red (due date passed) first, then yellow (warning moment reached), then green, each by due date; then
the tasks without a running clock (none, or paused by 补正); within each, by arrival (created_at, task_id).

Red/yellow depend on the moment of asking, not on the rows: a row keeps only its clock's ``due_date`` and
``warn_at`` (copied in the step's transaction), and the moment is a parameter. Each urgency class is a range of
``due_date`` (red: ``< today``; yellow/green: ``>= today``, split by ``warn_at <= now``; none: NULL), so it is
read in index order. Who may act on a task (``access.may_act``) is a disjunction; it is split here into its
alternatives — (role, department NULL or the user's, assignee NULL or the user, and the unit for an applicant) —
each an equality prefix of ``ix_inbox_audience`` / ``ix_inbox_unit_audience``, so each alternative is an index
range already in page order. One statement per class unites the alternatives (each limited to the page size) and
keeps the first rows: the database sorts at most (alternatives × page size) rows, never the user's whole inbox.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import and_, func, literal, or_, select, tuple_, union_all

from .inboxq import CLASSES, InboxFilter, InboxPosition
from .models import Case, InboxTask

cases, inbox = Case.__table__, InboxTask.__table__

def _same(column, value):
    return column.is_(None) if value is None else column == value


def _audience_where(aud: tuple):
    role, d, a, unit = aud
    c = [inbox.c.role == role, _same(inbox.c.department, d), _same(inbox.c.assignee, a)]
    if unit is not None:
        c.insert(0, inbox.c.unit_id == unit)
    return c


def _filter_where(f: InboxFilter) -> list:
    c = []
    if f.stage:
        c.append(inbox.c.stage == f.stage)
    if f.item:
        c.append(or_(inbox.c.clock_key == f.item, inbox.c.title == f.item, inbox.c.name == f.item))
    if f.department:
        c.append(inbox.c.department == f.department)
    if f.unit_id is not None:
        c.append(inbox.c.unit_id == f.unit_id)
    if f.due_before is not None:
        c.append(inbox.c.due_date <= f.due_before)
    return c


def _class_where(rank: int, today: date, now: datetime) -> list:
    i = inbox.c
    if rank == 0:
        return [i.due_date < today]
    if rank == 1:
        return [i.due_date >= today, i.warn_at <= now]
    if rank == 2:
        return [i.due_date >= today, i.warn_at > now]
    return [i.due_date.is_(None)]


def _lit(value, column):
    return literal(value, type_=column.type)


def _order(rank: int, cols) -> list:
    return ([cols.due_date] if rank < 3 else []) + [cols.created_at, cols.task_id]


class InboxRepository:
    conn: object

    def inbox_page(self, auds: list[tuple], f: InboxFilter, today: date, now: datetime, limit: int,
                   after: InboxPosition | None = None) -> list[tuple[int, object]]:
        """Up to ``limit`` rows after ``after``, in urgency order, as (rank, row) — the row with its case's number,
        title and applicant unit."""
        out: list[tuple[int, object]] = []
        if not auds:
            return out
        for rank in range(after.rank if after else 0, len(CLASSES)):
            if f.due_before is not None and rank == 3:
                break
            want = limit - len(out)
            if want <= 0:
                break
            where = _class_where(rank, today, now) + _filter_where(f)
            if after is not None and rank == after.rank:
                i = inbox.c
                if rank < 3:
                    where.append(tuple_(i.due_date, i.created_at, i.task_id)
                                 > tuple_(_lit(after.due_date, i.due_date), _lit(after.created_at, i.created_at),
                                          _lit(after.task_id, i.task_id)))
                else:
                    where.append(tuple_(i.created_at, i.task_id) > tuple_(_lit(after.created_at, i.created_at),
                                                                           _lit(after.task_id, i.task_id)))
            branches = [select(inbox).where(and_(*_audience_where(a), *where)).order_by(*_order(rank, inbox.c))
                        .limit(want).subquery() for a in auds]
            if len(branches) == 1:
                u = branches[0]
            else:
                u = union_all(*[select(b) for b in branches]).subquery()
            stmt = (select(u, cases.c.case_no, cases.c.title.label("case_title"), cases.c.unit_name)
                    .join(cases, cases.c.id == u.c.case_id).order_by(*_order(rank, u.c)).limit(want))
            out += [(rank, r) for r in self.conn.execute(stmt).all()]
        return out

    def inbox_count(self, auds: list[tuple], f: InboxFilter) -> int:
        """How many open tasks these alternatives (disjoint by construction) hold under the filter."""
        if not auds:
            return 0
        extra = _filter_where(f)
        counts = [select(func.count().label("n")).select_from(inbox).where(and_(*_audience_where(a), *extra))
                  for a in auds]
        if len(counts) == 1:
            return self.conn.execute(counts[0]).scalar_one()
        u = union_all(*counts).subquery()
        return int(self.conn.execute(select(func.coalesce(func.sum(u.c.n), 0))).scalar_one())
