"""Queries of the inbox (我的待办) in urgency order, paged by a cursor: a mixin of :class:`engine.repository.Repository`.

The order: red (due date passed) first, then yellow (warning moment reached), then green, each by due date; then
the tasks without a running clock (none, or paused by 补正); within each, by arrival (created_at, task_id).

Red/yellow depend on the moment of asking, not on the rows: a row keeps only its clock's ``due_date`` and
``warn_at`` (copied in the step's transaction), and the moment is a parameter. Each urgency class is a range of
``due_date`` (red: ``< today``; yellow/green: ``>= today``, split by ``warn_at <= now``; none: NULL), so it is
read in index order. Who may act on a task (``access.may_act``) is a disjunction; it is split here into its
alternatives — (role, department NULL or the user's, assignee NULL or the user, and the unit for an applicant) —
each one value of ``inbox.audience`` ("role|department|assignee"), an equality prefix of ``ix_inbox_audience`` /
``ix_inbox_unit_audience`` (with the unit for an applicant), so each alternative is an index
range already in page order. One statement per class unites the alternatives (each limited to the page size) and
keeps the first rows: the database sorts at most (alternatives × page size) rows, never the user's whole inbox.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import and_, bindparam, case, func, or_, select, tuple_, union_all

from .inboxq import CLASSES, InboxFilter, InboxPosition, audience_key
from .models import Case, InboxTask

cases, inbox = Case.__table__, InboxTask.__table__

_PAGE: dict[tuple, object] = {}    # statements by shape (values are bound): built once per process
_COUNT: dict[tuple, object] = {}
_ALL: dict[tuple, object] = {}


def _p(name: str, column):
    return bindparam(name, type_=column.type)


def _aud_shape(auds: list[tuple]) -> tuple:
    return tuple(u is not None for _, _, _, u in auds)


def _aud_values(auds: list[tuple]) -> dict:
    out = {}
    for n, (role, d, a, u) in enumerate(auds):
        out.update({f"aud{n}": audience_key(role, d, a), f"unit{n}": u})
    return out


def _audience_where(n: int, unit: bool) -> list:
    """One alternative: an equality on the non-NULL ``audience`` (PostgreSQL derives the index order from
    equalities only, not from ``IS NULL``), and on the unit for an applicant's task."""
    i = inbox.c
    c = [i.audience == _p(f"aud{n}", i.audience)]
    if unit:
        c.insert(0, i.unit_id == _p(f"unit{n}", i.unit_id))
    return c


def _filter_shape(f: InboxFilter) -> tuple:
    return (bool(f.stage), bool(f.item), bool(f.department), f.unit_id is not None, f.due_before is not None)


def _filter_values(f: InboxFilter) -> dict:
    return {"f_stage": f.stage, "f_item": f.item, "f_dept": f.department, "f_unit": f.unit_id,
            "f_due": f.due_before}


def _filter_where(shape: tuple) -> list:
    stage, item, dept, unit, due = shape
    i = inbox.c
    c = []
    if stage:
        c.append(i.stage == _p("f_stage", i.stage))
    if item:
        c.append(or_(i.clock_key == _p("f_item", i.clock_key), i.title == _p("f_item", i.title),
                     i.name == _p("f_item", i.name)))
    if dept:
        c.append(i.department == _p("f_dept", i.department))
    if unit:
        c.append(i.unit_id == _p("f_unit", i.unit_id))
    if due:
        c.append(i.due_date <= _p("f_due", i.due_date))
    return c


def _class_where(rank: int) -> list:
    i = inbox.c
    today, moment = _p("today", i.due_date), _p("now", i.warn_at)
    if rank == 0:
        return [i.due_date < today]
    if rank == 1:
        return [i.due_date >= today, i.warn_at <= moment]
    if rank == 2:
        return [i.due_date >= today, i.warn_at > moment]
    return [i.due_date.is_(None)]


def _order(rank: int, cols) -> list:
    return ([cols.due_date] if rank < 3 else []) + [cols.created_at, cols.task_id]


def _page_statement(rank: int, aud_shape: tuple, filter_shape: tuple, keyset: bool):
    i = inbox.c
    where = _class_where(rank) + _filter_where(filter_shape)
    if keyset:
        key = (tuple_(i.due_date, i.created_at, i.task_id) if rank < 3 else tuple_(i.created_at, i.task_id))
        bound = ((_p("a_due", i.due_date),) if rank < 3 else ()) + (_p("a_created", i.created_at),
                                                                    _p("a_task", i.task_id))
        where.append(key > tuple_(*bound))
    want = bindparam("want")
    branches = [select(inbox).where(and_(*_audience_where(n, a), *where)).order_by(*_order(rank, i))
                .limit(want).subquery() for n, a in enumerate(aud_shape)]
    u = branches[0] if len(branches) == 1 else union_all(*[select(b) for b in branches]).subquery()
    return (select(u, cases.c.case_no, cases.c.title.label("case_title"), cases.c.unit_name)
            .join(cases, cases.c.id == u.c.case_id).order_by(*_order(rank, u.c)).limit(want))


def _all_statement(aud_shape: tuple, filter_shape: tuple):
    """Every row of the alternatives under the filter, each with its urgency class computed by the database with
    exactly the conditions of :func:`_class_where` (a row in none of them is left out, as the paged reads leave it),
    in page order. For an inbox known to fit on one page: one statement instead of one per class."""
    i = inbox.c
    today, moment = _p("today", i.due_date), _p("now", i.warn_at)
    rank = case((i.due_date < today, 0), (and_(i.due_date >= today, i.warn_at <= moment), 1),
                (and_(i.due_date >= today, i.warn_at > moment), 2), (i.due_date.is_(None), 3), else_=None)
    where = _filter_where(filter_shape)
    branches = [select(inbox, rank.label("urgency")).where(and_(*_audience_where(n, a), *where))
                for n, a in enumerate(aud_shape)]
    u = branches[0].subquery() if len(branches) == 1 else union_all(*branches).subquery()
    stmt = select(u, cases.c.case_no, cases.c.title.label("case_title"), cases.c.unit_name) \
        .join(cases, cases.c.id == u.c.case_id).where(u.c.urgency.is_not(None))
    if filter_shape[4]:       # due before a date: tasks without a running clock are not listed
        stmt = stmt.where(u.c.urgency < 3)
    return stmt.order_by(u.c.urgency, u.c.due_date, u.c.created_at, u.c.task_id)


def _count_statement(aud_shape: tuple, filter_shape: tuple):
    extra = _filter_where(filter_shape)
    counts = [select(func.count().label("n")).select_from(inbox).where(and_(*_audience_where(n, a), *extra))
              for n, a in enumerate(aud_shape)]
    if len(counts) == 1:
        return counts[0]
    u = union_all(*counts).subquery()
    return select(func.coalesce(func.sum(u.c.n), 0))


class InboxRepository:
    conn: object

    def inbox_page(self, auds: list[tuple], f: InboxFilter, today: date, now: datetime, limit: int,
                   after: InboxPosition | None = None) -> list[tuple[int, object]]:
        """Up to ``limit`` rows after ``after``, in urgency order, as (rank, row) — the row with its case's number,
        title and applicant unit. ``auds``: the alternatives of ``inboxq.audiences``."""
        out: list[tuple[int, object]] = []
        if not auds:
            return out
        a_shape, f_shape = _aud_shape(auds), _filter_shape(f)
        values = {**_aud_values(auds), **_filter_values(f), "today": today, "now": now}
        for rank in range(after.rank if after else 0, len(CLASSES)):
            if f.due_before is not None and rank == 3:
                break
            want = limit - len(out)
            if want <= 0:
                break
            keyset = after is not None and rank == after.rank
            key = (rank, a_shape, f_shape, keyset)
            stmt = _PAGE.get(key)
            if stmt is None:
                stmt = _PAGE[key] = _page_statement(rank, a_shape, f_shape, keyset)
            params = dict(values, want=want)
            if keyset:
                params.update(a_due=after.due_date, a_created=after.created_at, a_task=after.task_id)
            out += [(rank, r) for r in self.conn.execute(stmt, params).all()]
        return out

    def inbox_all(self, auds: list[tuple], f: InboxFilter, today: date, now: datetime) -> list[tuple[int, object]]:
        """The whole inbox under the filter as (rank, row), in the order of :meth:`inbox_page` — for an inbox whose
        count is known to fit on the first page (one statement)."""
        if not auds:
            return []
        key = (_aud_shape(auds), _filter_shape(f))
        stmt = _ALL.get(key)
        if stmt is None:
            stmt = _ALL[key] = _all_statement(*key)
        rows = self.conn.execute(stmt, {**_aud_values(auds), **_filter_values(f), "today": today, "now": now}).all()
        return [(r.urgency, r) for r in rows]

    def inbox_count(self, auds: list[tuple], f: InboxFilter) -> int:
        """How many open tasks these alternatives (disjoint by construction) hold under the filter."""
        if not auds:
            return 0
        key = (_aud_shape(auds), _filter_shape(f))
        stmt = _COUNT.get(key)
        if stmt is None:
            stmt = _COUNT[key] = _count_statement(*key)
        return int(self.conn.execute(stmt, {**_aud_values(auds), **_filter_values(f)}).scalar_one())
