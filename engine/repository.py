"""All SQL of the service. Every query of every use case is a method here."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .models import (
    CalendarDay,
    CalendarYear,
    Case,
    CaseParty,
    Clock,
    Counter,
    Document,
    Event,
    InboxTask,
    Notification,
    ProcessVersion,
    Timer,
    Unit,
    User,
)

C, IB, E, D, U, UN, V, P = (Case.__table__, InboxTask.__table__, Event.__table__, Document.__table__,
                           User.__table__, Unit.__table__, ProcessVersion.__table__, CaseParty.__table__)
CL, TM, NT, CY, CD = (Clock.__table__, Timer.__table__, Notification.__table__, CalendarYear.__table__,
                      CalendarDay.__table__)

CASE_LIST_COLUMNS = [C.c.id, C.c.case_no, C.c.title, C.c.unit_name, C.c.status, C.c.stage, C.c.lead_user,
                     C.c.created_at, C.c.updated_at, C.c.process_id]


# Statements of the hot paths, built once: SQLAlchemy then skips rebuilding their cache keys per call.
_USER_BY_ID = select(U).where(U.c.id == bindparam("uid"))
_UNIT = select(UN).where(UN.c.id == bindparam("unit_id"))
_CASE_BY_ID = select(C).where(C.c.id == bindparam("case_id"))
_CASE_BY_NO = select(C).where(C.c.case_no == bindparam("case_no"))
_CASE_OF_TASK = select(C).join(IB, IB.c.case_id == C.c.id).where(IB.c.task_id == bindparam("task_id"))
_INBOX_TASK = select(IB).where(IB.c.task_id == bindparam("task_id"))
_INBOX_FOR_CASE = select(IB).where(IB.c.case_id == bindparam("case_id")).order_by(IB.c.created_at)
_DELETE_INBOX = delete(IB).where(IB.c.case_id == bindparam("case_id"))
_INSERT_INBOX = insert(IB)
_INSERT_EVENTS = insert(E)
_UPDATE_CASE = update(C).where(and_(C.c.id == bindparam("b_case_id"), C.c.row_version == bindparam("b_row_version")))
_LAST_TASK_EVENT = (select(E.c.type).where(and_(E.c.task_id == bindparam("task_id"),
                                                  E.c.type.in_(("task_completed", "task_ended"))))
                    .order_by(E.c.id.desc()).limit(1))
_COUNTER = Counter.__table__
_CALENDAR_VERSION = select(_COUNTER.c.value).where(and_(_COUNTER.c.kind == "calendar", _COUNTER.c.period == "version"))
_CLOCKS_FOR_CASE = select(CL).where(CL.c.case_id == bindparam("case_id"))
_DELETE_TIMERS = delete(TM).where(TM.c.case_id == bindparam("case_id"))


def _next_number_stmt(dialect_insert):
    stmt = dialect_insert(_COUNTER).values(kind=bindparam("kind"), period=bindparam("period"), value=1)
    stmt = stmt.on_conflict_do_update(index_elements=["kind", "period"], set_={"value": _COUNTER.c.value + 1})
    return stmt.returning(_COUNTER.c.value)


_NEXT_NUMBER = {"postgresql": _next_number_stmt(postgresql.insert), "sqlite": _next_number_stmt(sqlite.insert)}
_INBOX_FOR_USER: dict[tuple, Any] = {}
_LOCKED: dict[int, Any] = {}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Repository:
    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name

    def _insert(self, table):
        return (postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table))

    # ---- users and units --------------------------------------------------------------------------------
    def user_by_username(self, username: str):
        return self.conn.execute(select(U).where(U.c.username == username)).first()

    def user_by_id(self, user_id: int):
        return self.conn.execute(_USER_BY_ID, {"uid": user_id}).first()

    def users_with_role(self, role: str) -> list:
        rows = self.conn.execute(select(U.c.username, U.c.display_name, U.c.roles).where(U.c.active.is_(True))
                                 .order_by(U.c.username)).all()
        return [r for r in rows if role in r.roles.split(",")]

    def display_names(self, usernames: Iterable[str]) -> dict[str, str]:
        names = [u for u in set(usernames) if u]
        if not names:
            return {}
        rows = self.conn.execute(select(U.c.username, U.c.display_name).where(U.c.username.in_(names)))
        return {r.username: r.display_name for r in rows}

    def insert_user(self, **values) -> int:
        return self.conn.execute(insert(U).values(**values).returning(U.c.id)).scalar_one()

    def insert_unit(self, **values) -> int:
        return self.conn.execute(insert(UN).values(**values).returning(UN.c.id)).scalar_one()

    def unit(self, unit_id: int):
        return self.conn.execute(_UNIT, {"unit_id": unit_id}).first()

    def units(self) -> list:
        return self.conn.execute(select(UN).order_by(UN.c.name)).all()

    def unit_by_name(self, name: str):
        return self.conn.execute(select(UN).where(UN.c.name == name)).first()

    # ---- process versions -------------------------------------------------------------------------------
    def version_by_hash(self, version_hash: str):
        return self.conn.execute(select(V.c.id, V.c.hash).where(V.c.hash == version_hash)).first()

    def version_files(self, version_id: int):
        return self.conn.execute(select(V.c.id, V.c.hash, V.c.files).where(V.c.id == version_id)).first()

    def latest_version(self):
        return self.conn.execute(select(V.c.id, V.c.hash).order_by(V.c.activated_at.desc(), V.c.id.desc()).limit(1)).first()

    def activate_version(self, version_id: int, when: datetime) -> None:
        self.conn.execute(update(V).where(V.c.id == version_id).values(activated_at=when))

    def versions(self) -> list:
        return self.conn.execute(select(V.c.id, V.c.hash, V.c.author, V.c.comment, V.c.created_at, V.c.activated_at)
                                 .order_by(V.c.activated_at.desc(), V.c.id.desc())).all()

    def version_by_prefix(self, prefix: str) -> list:
        return self.conn.execute(select(V.c.id, V.c.hash).where(V.c.hash.like(f"{_escape_like(prefix)}%", escape="\\"))).all()

    def count_cases_by_version(self) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = {}
        stmt = select(C.c.version_id, C.c.status, func.count()).group_by(C.c.version_id, C.c.status)
        for vid, status, n in self.conn.execute(stmt):
            out.setdefault(vid, {})[status] = n
        return out

    def active_cases(self, case_nos: list[str] | None = None) -> list:
        stmt = select(C.c.id, C.c.case_no, C.c.version_id).where(C.c.status == "active").order_by(C.c.id)
        if case_nos:
            stmt = stmt.where(C.c.case_no.in_(case_nos))
        return self.conn.execute(stmt).all()

    def insert_version(self, **values) -> int:
        return self.conn.execute(insert(V).values(**values).returning(V.c.id)).scalar_one()

    # ---- numbers ------------------------------------------------------------------------------------------
    def next_number(self, kind: str, period: str) -> int:
        """The next value of a gapless sequence, inside the caller's transaction (one statement)."""
        return self.conn.execute(_NEXT_NUMBER[self.dialect], {"kind": kind, "period": period}).scalar_one()

    # ---- cases --------------------------------------------------------------------------------------------
    def insert_case(self, **values) -> int:
        return self.conn.execute(insert(C).values(**values).returning(C.c.id)).scalar_one()

    def case_by_id(self, case_id: int, lock: bool = False):
        stmt = self._locked(_CASE_BY_ID) if lock else _CASE_BY_ID
        return self.conn.execute(stmt, {"case_id": case_id}).first()

    def _locked(self, stmt):
        """``stmt`` with ``FOR UPDATE OF cases`` on PostgreSQL (SQLite's writers are serialised by BEGIN IMMEDIATE)."""
        if self.dialect != "postgresql":
            return stmt
        locked = _LOCKED.get(id(stmt))
        if locked is None:
            locked = _LOCKED[id(stmt)] = stmt.with_for_update(of=C)
        return locked

    def case_of_task(self, task_id: str, lock: bool = False):
        """The case an open task belongs to (locked against concurrent changes when ``lock``)."""
        stmt = self._locked(_CASE_OF_TASK) if lock else _CASE_OF_TASK
        return self.conn.execute(stmt, {"task_id": task_id}).first()

    def case_by_no(self, case_no: str, lock: bool = False):
        stmt = self._locked(_CASE_BY_NO) if lock else _CASE_BY_NO
        return self.conn.execute(stmt, {"case_no": case_no}).first()

    def update_case(self, case_id: int, row_version: int, **values) -> None:
        params = dict(values, row_version=row_version + 1, b_case_id=case_id, b_row_version=row_version)
        result = self.conn.execute(_UPDATE_CASE, params)
        if result.rowcount != 1:
            from .errors import Conflict
            raise Conflict("办件已被他人同时修改，请刷新后重试")

    def _visible(self, stmt, scope: dict):
        """Restrict a case query to what a user may see (scope from ``access.case_scope``)."""
        if scope.get("all"):
            return stmt
        conds = []
        if scope.get("unit_id") is not None:
            conds.append(C.c.unit_id == scope["unit_id"])
        if scope.get("parties"):
            conds.append(exists().where(and_(P.c.case_id == C.c.id, P.c.party.in_(scope["parties"]))))
        if not conds:
            return stmt.where(C.c.id.is_(None))
        return stmt.where(or_(*conds))

    def search_cases(self, scope: dict, q: str | None, unit: str | None, project: str | None,
                     status: str | None, limit: int, offset: int) -> tuple[list, int]:
        stmt = select(*CASE_LIST_COLUMNS)
        count = select(func.count()).select_from(C)
        filters = []
        if q:
            filters.append(C.c.case_no.like(f"%{_escape_like(q)}%", escape="\\"))
        if unit:
            filters.append(C.c.unit_name.like(f"%{_escape_like(unit)}%", escape="\\"))
        if project:
            filters.append(C.c.title.like(f"%{_escape_like(project)}%", escape="\\"))
        if status:
            filters.append(C.c.status == status)
        if filters:
            stmt, count = stmt.where(*filters), count.where(*filters)
        stmt, count = self._visible(stmt, scope), self._visible(count, scope)
        rows = self.conn.execute(stmt.order_by(C.c.created_at.desc(), C.c.id.desc()).limit(limit).offset(offset)).all()
        total = self.conn.execute(count).scalar_one()
        return rows, total

    def case_visible(self, case_id: int, scope: dict) -> bool:
        if scope.get("all"):
            return True
        stmt = self._visible(select(C.c.id).where(C.c.id == case_id), scope)
        return self.conn.execute(stmt).first() is not None

    def add_parties(self, case_id: int, parties: Iterable[str]) -> None:
        rows = [{"case_id": case_id, "party": p} for p in sorted(set(parties))]
        if rows:
            self.conn.execute(self._insert(P).values(rows).on_conflict_do_nothing())

    # ---- inbox ----------------------------------------------------------------------------------------------
    def replace_inbox(self, case_id: int, rows: list[dict], new_case: bool = False) -> None:
        if not new_case:
            self.conn.execute(_DELETE_INBOX, {"case_id": case_id})
        if rows:
            self.conn.execute(_INSERT_INBOX, rows)

    def inbox_task(self, task_id: str):
        return self.conn.execute(_INBOX_TASK, {"task_id": task_id}).first()

    def inbox_for_case(self, case_id: int) -> list:
        return self.conn.execute(_INBOX_FOR_CASE, {"case_id": case_id}).all()

    def inbox_for_user(self, roles: list[str], department: str | None, username: str, unit_id: int | None,
                       limit: int = 200) -> list:
        """READY tasks this user may act on: right role, and the department/assignee/unit rules."""
        if not roles:
            return []
        key = tuple(roles)
        stmt = _INBOX_FOR_USER.get(key)
        if stmt is None:
            conds = []
            for role in roles:
                c = [IB.c.role == role, or_(IB.c.department.is_(None), IB.c.department == bindparam("department")),
                     or_(IB.c.assignee.is_(None), IB.c.assignee == bindparam("username"))]
                if role == "applicant":
                    c.append(IB.c.unit_id == bindparam("unit_id"))
                conds.append(and_(*c))
            stmt = (select(IB, C.c.case_no, C.c.title.label("case_title"), C.c.unit_name)
                    .join(C, C.c.id == IB.c.case_id).where(or_(*conds)).order_by(IB.c.created_at)
                    .limit(bindparam("limit")))
            _INBOX_FOR_USER[key] = stmt
        return self.conn.execute(stmt, {"department": department, "username": username, "unit_id": unit_id,
                                        "limit": limit}).all()

    # ---- events and documents -----------------------------------------------------------------------------
    def append_events(self, rows: list[dict]) -> None:
        if rows:
            self.conn.execute(_INSERT_EVENTS, rows)

    def events_for_case(self, case_id: int) -> list:
        return self.conn.execute(select(E).where(E.c.case_id == case_id).order_by(E.c.seq)).all()

    def insert_document(self, **values) -> int:
        return self.conn.execute(insert(D).values(**values).returning(D.c.id)).scalar_one()

    def documents_for_case(self, case_id: int) -> list:
        return self.conn.execute(select(D.c.id, D.c.kind, D.c.number, D.c.issued_at, D.c.title)
                                 .where(D.c.case_id == case_id).order_by(D.c.id)).all()

    def document(self, case_id: int, doc_id: int):
        return self.conn.execute(select(D).where(and_(D.c.case_id == case_id, D.c.id == doc_id))).first()

    def table_counts(self) -> dict[str, Any]:
        return {t.name: self.conn.execute(select(func.count()).select_from(t)).scalar_one() for t in (C, IB, E, D)}

    def last_task_event(self, task_id: str) -> str | None:
        """The type of the last event about a task (``task_completed``, ``task_ended`` ...), if any."""
        return self.conn.execute(_LAST_TASK_EVENT, {"task_id": task_id}).scalar()

    def all_case_numbers(self) -> list:
        return self.conn.execute(select(C.c.case_no).order_by(C.c.id)).all()

    def documents_full(self, case_id: int) -> list:
        return self.conn.execute(select(D).where(D.c.case_id == case_id).order_by(D.c.id)).all()

    def first_event(self, case_id: int):
        return self.conn.execute(select(E).where(and_(E.c.case_id == case_id, E.c.seq == 1))).first()

    # ---- clocks, timers, notifications ------------------------------------------------------------------------
    def clocks_for_case(self, case_id: int) -> list:
        return self.conn.execute(_CLOCKS_FOR_CASE, {"case_id": case_id}).all()

    def save_clocks(self, case_id: int, lead_user: str | None, rows: list[dict], existing_keys: set[str]) -> None:
        new = [dict(r, case_id=case_id, lead_user=lead_user) for r in rows if r["key"] not in existing_keys]
        if new:
            self.conn.execute(insert(CL), new)
        for r in rows:
            if r["key"] in existing_keys:
                values = {k: v for k, v in r.items() if k != "key"}
                self.conn.execute(update(CL).where(and_(CL.c.case_id == case_id, CL.c.key == r["key"]))
                                  .values(lead_user=lead_user, **values))

    def delete_clocks(self, case_id: int, keys: set[str]) -> None:
        if keys:
            self.conn.execute(delete(CL).where(and_(CL.c.case_id == case_id, CL.c.key.in_(sorted(keys)))))

    def replace_timers(self, case_id: int, rows: list[dict]) -> None:
        self.conn.execute(_DELETE_TIMERS, {"case_id": case_id})
        if rows:
            self.conn.execute(insert(TM), [dict(r, case_id=case_id) for r in rows])

    def timers_for_case(self, case_id: int) -> list:
        return self.conn.execute(select(TM).where(TM.c.case_id == case_id)).all()

    def next_due_case(self, now: datetime, skip_cases: Iterable[int] = ()):
        """The case of the earliest due timer, or else of a running clock whose level has changed with time but
        whose row does not show it yet — locked, skipping cases another transaction holds (PostgreSQL). Only the
        case row is locked: every writer locks the case first, so no two transactions deadlock."""
        skip = list(skip_cases)
        due = select(C).join(TM, TM.c.case_id == C.c.id).where(TM.c.due_at <= now).order_by(TM.c.due_at).limit(1)
        stale = and_(CL.c.stopped_at.is_(None), or_(and_(CL.c.level == "green", CL.c.yellow_at <= now),
                                                    and_(CL.c.level.in_(("green", "yellow")), CL.c.red_at <= now)))
        changed = select(C).join(CL, CL.c.case_id == C.c.id).where(stale).limit(1)
        for _ in range(50):
            row = None
            for stmt in (due, changed):
                if skip:
                    stmt = stmt.where(C.c.id.not_in(skip))
                if self.dialect == "postgresql":
                    stmt = stmt.with_for_update(of=C, skip_locked=True)
                row = self.conn.execute(stmt).first()
                if row is not None:
                    break
            if row is None or self.dialect != "postgresql":
                return row
            # PostgreSQL re-checks only the locked table's row after waiting for a lock: make sure another worker
            # did not tick this case meanwhile (a fresh statement sees its commit).
            still = select(func.count()).select_from(TM).where(and_(TM.c.case_id == row.id, TM.c.due_at <= now))
            stale_here = select(func.count()).select_from(CL).where(and_(CL.c.case_id == row.id, stale))
            if self.conn.execute(still).scalar_one() or self.conn.execute(stale_here).scalar_one():
                return row
            skip.append(row.id)
        return None

    def count_due_timers(self, now: datetime) -> int:
        return self.conn.execute(select(func.count()).select_from(TM).where(TM.c.due_at <= now)).scalar_one()

    def case_ids_with_clocks_from(self, since) -> list[int]:
        """Cases with a running clock that is provisional, paused, or due on or after ``since``."""
        cond = and_(CL.c.stopped_at.is_(None),
                    or_(CL.c.provisional.is_(True), CL.c.due_date.is_(None), CL.c.due_date >= since))
        return sorted(self.conn.execute(select(CL.c.case_id).where(cond).distinct()).scalars())

    def warning_clocks(self, now: datetime, department: str | None = None, limit: int = 500) -> list:
        """Running clocks that are yellow or red now, worst first, with their case."""
        stmt = (select(CL, C.c.case_no, C.c.title.label("case_title"), C.c.unit_name)
                .join(C, C.c.id == CL.c.case_id)
                .where(and_(CL.c.stopped_at.is_(None), CL.c.yellow_at <= now))
                .order_by(CL.c.red_at, CL.c.yellow_at).limit(limit))
        if department:
            stmt = stmt.where(CL.c.department == department)
        return self.conn.execute(stmt).all()

    def clocks_for_cases(self, case_ids: list[int]) -> list:
        if not case_ids:
            return []
        return self.conn.execute(select(CL).where(CL.c.case_id.in_(case_ids))).all()

    def add_notifications(self, rows: list[dict]) -> None:
        if rows:
            self.conn.execute(insert(NT), rows)

    def notifications_for(self, recipients: list[str], limit: int = 20) -> list:
        stmt = (select(NT, C.c.case_no).join(C, C.c.id == NT.c.case_id, isouter=True)
                .where(NT.c.recipient.in_(recipients)).order_by(NT.c.created_at.desc(), NT.c.id.desc()).limit(limit))
        return self.conn.execute(stmt).all()

    # ---- working-day calendar -----------------------------------------------------------------------------------
    def calendar_years(self) -> list:
        return self.conn.execute(select(CY).order_by(CY.c.year)).all()

    def calendar_days(self, year: int | None = None) -> list:
        stmt = select(CD).order_by(CD.c.day)
        if year is not None:
            stmt = stmt.where(CD.c.year == year)
        return self.conn.execute(stmt).all()

    def calendar_version(self):
        """A number that grows with every change an administrator makes to the calendar (0 before any)."""
        return self.conn.execute(_CALENDAR_VERSION).scalar() or 0

    def set_calendar_day(self, day, kind: str, name: str) -> None:
        self.conn.execute(delete(CD).where(CD.c.day == day))
        self.conn.execute(insert(CD).values(day=day, year=day.year, kind=kind, name=name))

    def delete_calendar_day(self, day) -> int:
        return self.conn.execute(delete(CD).where(CD.c.day == day)).rowcount

    def replace_calendar_year(self, year: int, days: list[dict]) -> None:
        self.conn.execute(delete(CD).where(CD.c.year == year))
        if days:
            self.conn.execute(insert(CD), [dict(d, year=year) for d in days])

    def touch_calendar_year(self, year: int, complete: bool | None, at: datetime, by: str, note: str | None = None) -> None:
        self.next_number("calendar", "version")
        row = self.conn.execute(select(CY).where(CY.c.year == year)).first()
        if row is None:
            self.conn.execute(insert(CY).values(year=year, complete=bool(complete), note=note or "", updated_at=at,
                                                updated_by=by))
        else:
            values = {"updated_at": at, "updated_by": by}
            if complete is not None:
                values["complete"] = complete
            if note is not None:
                values["note"] = note
            self.conn.execute(update(CY).where(CY.c.year == year).values(**values))
