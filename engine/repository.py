"""All SQL of the service. Every query of every use case is a method here.

Over the ~400-line rule of thumb on purpose: the rule of the design is that SQL lives in one place, so a reviewer
sees every statement (and every index it needs) together; it is a flat list of one-statement methods, grouped by
table. A capability whose queries grow past a screenful gets a repository module of its own.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .models import (
    CalendarChange,
    CalendarDay,
    CalendarYear,
    Case,
    CaseParty,
    Clock,
    Counter,
    Digest,
    DigestLeaf,
    Document,
    Event,
    InboxTask,
    Notification,
    ProcessVersion,
    Timer,
    Unit,
    User,
)
from .repository_accounts import AccountsRepository
from .repository_files import FilesRepository
from .repository_inbox import InboxRepository
from .repository_keyregister import KeyRegisterRepository
from .repository_notifications import NotificationsRepository
from .repository_reassign import ReassignRepository
from .repository_search import SearchRepository
from .repository_sessions import SessionsRepository
from .repository_staff import StaffRepository
from .repository_units import UnitsRepository

# The tables, named after themselves (queries read ``cases.c.status``, ``inbox.c.task_id`` ...).
cases, inbox, events, documents = Case.__table__, InboxTask.__table__, Event.__table__, Document.__table__
users, units, process_versions, case_parties = User.__table__, Unit.__table__, ProcessVersion.__table__, CaseParty.__table__
clocks, timers, notifications = Clock.__table__, Timer.__table__, Notification.__table__
calendar_years, calendar_days, counters = CalendarYear.__table__, CalendarDay.__table__, Counter.__table__
digest_leaves, digests = DigestLeaf.__table__, Digest.__table__
calendar_changes = CalendarChange.__table__

CASE_LIST_COLUMNS = [cases.c.id, cases.c.case_no, cases.c.title, cases.c.unit_name, cases.c.status, cases.c.stage,
                     cases.c.lead_user,
                     cases.c.created_at, cases.c.updated_at, cases.c.process_id]


# Statements of the hot paths, built once: SQLAlchemy then skips rebuilding their cache keys per call.
_USER_BY_ID = select(users).where(users.c.id == bindparam("uid"))
_UNIT = select(units).where(units.c.id == bindparam("unit_id"))
_CASE_BY_ID = select(cases).where(cases.c.id == bindparam("case_id"))
_CASE_BY_NO = select(cases).where(cases.c.case_no == bindparam("case_no"))
_CASE_OF_TASK = select(cases).join(inbox, inbox.c.case_id == cases.c.id).where(inbox.c.task_id == bindparam("task_id"))
_INBOX_TASK = select(inbox).where(inbox.c.task_id == bindparam("task_id"))
_INBOX_FOR_CASE = select(inbox).where(inbox.c.case_id == bindparam("case_id")).order_by(inbox.c.created_at)
_DELETE_INBOX = delete(inbox).where(inbox.c.case_id == bindparam("case_id"))
_INSERT_INBOX = insert(inbox)
_INSERT_EVENTS = insert(events)
_UPDATE_CASE = update(cases).where(and_(cases.c.id == bindparam("b_case_id"), cases.c.row_version == bindparam("b_row_version")))
_LAST_TASK_EVENT = (select(events.c.type).where(and_(events.c.task_id == bindparam("task_id"),
                                                  events.c.type.in_(("task_completed", "task_ended"))))
                    .order_by(events.c.id.desc()).limit(1))
_CALENDAR_VERSION = select(counters.c.value).where(and_(counters.c.kind == "calendar", counters.c.period == "version"))
_CLOCKS_FOR_CASE = select(clocks).where(clocks.c.case_id == bindparam("case_id"))
_DELETE_TIMERS = delete(timers).where(timers.c.case_id == bindparam("case_id"))
_INSERT_CASE = insert(cases).returning(cases.c.id)
_ADD_PARTY = text("INSERT INTO case_parties (case_id, party) VALUES (:case_id, :party) ON CONFLICT DO NOTHING")
_EVENTS_FOR_CASE = select(events).where(events.c.case_id == bindparam("case_id")).order_by(events.c.seq)
_DOCUMENTS_FOR_CASE = (select(documents.c.id, documents.c.kind, documents.c.number, documents.c.issued_at,
                              documents.c.title)
                       .where(documents.c.case_id == bindparam("case_id")).order_by(documents.c.id))
_DISPLAY_NAMES = select(users.c.username, users.c.display_name).where(
    users.c.username.in_(bindparam("names", expanding=True)))


# The same text on both databases. Written out: SQLAlchemy does not cache the compiled form of an
# ``on_conflict_do_update`` statement, so the Core version was compiled again on every new case.
_NEXT_NUMBER = text("INSERT INTO counters (kind, period, value) VALUES (:kind, :period, 1) "
                    "ON CONFLICT (kind, period) DO UPDATE SET value = counters.value + 1 RETURNING value")
_LOCKED: dict[int, Any] = {}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Repository(AccountsRepository, SessionsRepository, StaffRepository, UnitsRepository, ReassignRepository,
                 KeyRegisterRepository, InboxRepository, SearchRepository, NotificationsRepository, FilesRepository):
    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name

    def _insert(self, table):
        return (postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table))

    # ---- users and units --------------------------------------------------------------------------------
    def user_by_username(self, username: str):
        return self.conn.execute(select(users).where(users.c.username == username)).first()

    def user_by_id(self, user_id: int):
        return self.conn.execute(_USER_BY_ID, {"uid": user_id}).first()

    def users_with_role(self, role: str) -> list:
        rows = self.conn.execute(select(users.c.username, users.c.display_name, users.c.roles).where(users.c.active.is_(True))
                                 .order_by(users.c.username)).all()
        return [r for r in rows if role in r.roles.split(",")]

    def display_names(self, usernames: Iterable[str]) -> dict[str, str]:
        names = [u for u in set(usernames) if u]
        if not names:
            return {}
        return {r.username: r.display_name for r in self.conn.execute(_DISPLAY_NAMES, {"names": sorted(names)})}

    def insert_user(self, **values) -> int:
        return self.conn.execute(insert(users).values(**values).returning(users.c.id)).scalar_one()

    def insert_unit(self, **values) -> int:
        return self.conn.execute(insert(units).values(**values).returning(units.c.id)).scalar_one()

    def unit(self, unit_id: int):
        return self.conn.execute(_UNIT, {"unit_id": unit_id}).first()

    def units(self) -> list:
        return self.conn.execute(select(units).order_by(units.c.name)).all()

    def unit_by_name(self, name: str):
        return self.conn.execute(select(units).where(units.c.name == name)).first()

    # ---- process versions -------------------------------------------------------------------------------
    def version_by_hash(self, version_hash: str):
        v = process_versions.c
        return self.conn.execute(select(v.id, v.hash).where(v.hash == version_hash)).first()

    def version_hash(self, version_id: int) -> str | None:
        return self.conn.execute(select(process_versions.c.hash).where(process_versions.c.id == version_id)).scalar()

    def version_files(self, version_id: int):
        v = process_versions.c
        return self.conn.execute(select(v.id, v.hash, v.files).where(v.id == version_id)).first()

    def latest_version(self):
        v = process_versions.c
        return self.conn.execute(select(v.id, v.hash).order_by(v.activated_at.desc(), v.id.desc()).limit(1)).first()

    def activate_version(self, version_id: int, when: datetime) -> None:
        self.conn.execute(update(process_versions).where(process_versions.c.id == version_id).values(activated_at=when))

    def versions(self) -> list:
        v = process_versions.c
        return self.conn.execute(select(v.id, v.hash, v.author, v.comment, v.created_at, v.activated_at)
                                 .order_by(process_versions.c.activated_at.desc(), process_versions.c.id.desc())).all()

    def version_ordinal(self, version_id: int):
        """(how many versions were published up to this one, its activation time): 第N版 as people say it."""
        v = process_versions.c
        at = self.conn.execute(select(v.activated_at).where(v.id == version_id)).scalar()
        n = self.conn.execute(select(func.count()).select_from(process_versions).where(v.id <= version_id)).scalar()
        return n, at

    def version_by_prefix(self, prefix: str) -> list:
        v = process_versions.c
        return self.conn.execute(select(v.id, v.hash).where(v.hash.like(f"{_escape_like(prefix)}%", escape="\\"))).all()

    def count_cases_by_version(self) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = {}
        stmt = select(cases.c.version_id, cases.c.status, func.count()).group_by(cases.c.version_id, cases.c.status)
        for vid, status, n in self.conn.execute(stmt):
            out.setdefault(vid, {})[status] = n
        return out

    def active_cases(self, case_nos: list[str] | None = None) -> list:
        stmt = select(cases.c.id, cases.c.case_no, cases.c.version_id).where(cases.c.status == "active").order_by(cases.c.id)
        if case_nos:
            stmt = stmt.where(cases.c.case_no.in_(case_nos))
        return self.conn.execute(stmt).all()

    def insert_version(self, **values) -> int:
        return self.conn.execute(insert(process_versions).values(**values).returning(process_versions.c.id)).scalar_one()

    # ---- numbers ------------------------------------------------------------------------------------------
    def next_number(self, kind: str, period: str) -> int:
        """The next value of a gapless sequence, inside the caller's transaction (one statement)."""
        return self.conn.execute(_NEXT_NUMBER, {"kind": kind, "period": period}).scalar_one()

    # ---- cases --------------------------------------------------------------------------------------------
    def insert_case(self, **values) -> int:
        return self.conn.execute(_INSERT_CASE, values).scalar_one()

    def case_by_id(self, case_id: int, lock: bool = False):
        stmt = self._locked(_CASE_BY_ID) if lock else _CASE_BY_ID
        return self.conn.execute(stmt, {"case_id": case_id}).first()

    def _locked(self, stmt):
        """``stmt`` with ``FOR UPDATE OF cases`` on PostgreSQL (SQLite's writers are serialised by BEGIN IMMEDIATE)."""
        if self.dialect != "postgresql":
            return stmt
        locked = _LOCKED.get(id(stmt))
        if locked is None:
            locked = _LOCKED[id(stmt)] = stmt.with_for_update(of=cases)
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
            conds.append(cases.c.unit_id == scope["unit_id"])
        if scope.get("created_by") is not None:
            conds.append(cases.c.created_by == scope["created_by"])
        if scope.get("parties"):
            conds.append(exists().where(and_(case_parties.c.case_id == cases.c.id, case_parties.c.party.in_(scope["parties"]))))
        if not conds:
            return stmt.where(cases.c.id.is_(None))
        return stmt.where(or_(*conds))

    def search_cases(self, scope: dict, groups: list, status: str | None, limit: int, offset: int) -> tuple[list, int, bool]:
        """Cases in ``scope`` matching the search terms (``groups``: (columns, terms), through the search index of
        :mod:`engine.repository_search`) and the status, newest first; the total counted up to a cap."""
        if any(terms for _, terms in groups):
            return self.search_cases_indexed(scope, groups, status, limit, offset, self._visible, CASE_LIST_COLUMNS)
        stmt = select(*CASE_LIST_COLUMNS)
        if status:
            stmt = stmt.where(cases.c.status == status)
        stmt = self._visible(stmt, scope)
        rows = self.conn.execute(stmt.order_by(cases.c.created_at.desc(), cases.c.id.desc()).limit(limit).offset(offset)).all()
        total, capped = self.count_capped(stmt)
        return rows, total, capped

    def case_visible(self, case_id: int, scope: dict) -> bool:
        if scope.get("all"):
            return True
        stmt = self._visible(select(cases.c.id).where(cases.c.id == case_id), scope)
        return self.conn.execute(stmt).first() is not None

    def add_parties(self, case_id: int, parties: Iterable[str]) -> None:
        rows = [{"case_id": case_id, "party": p} for p in sorted(set(parties))]
        if rows:
            self.conn.execute(_ADD_PARTY, rows)

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

    # ---- events and documents -----------------------------------------------------------------------------
    def append_events(self, rows: list[dict]) -> None:
        if rows:
            self.conn.execute(_INSERT_EVENTS, rows)

    def events_for_case(self, case_id: int) -> list:
        return self.conn.execute(_EVENTS_FOR_CASE, {"case_id": case_id}).all()

    def insert_document(self, **values) -> int:
        return self.conn.execute(insert(documents).values(**values).returning(documents.c.id)).scalar_one()

    def documents_for_case(self, case_id: int) -> list:
        return self.conn.execute(_DOCUMENTS_FOR_CASE, {"case_id": case_id}).all()

    def document(self, case_id: int, doc_id: int):
        return self.conn.execute(select(documents).where(and_(documents.c.case_id == case_id, documents.c.id == doc_id))).first()

    def table_counts(self) -> dict[str, Any]:
        return {t.name: self.conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (cases, inbox, events, documents)}

    def last_task_event(self, task_id: str) -> str | None:
        """The type of the last event about a task (``task_completed``, ``task_ended`` ...), if any."""
        return self.conn.execute(_LAST_TASK_EVENT, {"task_id": task_id}).scalar()

    def users_by_ids(self, ids: Iterable[int]) -> dict[int, Any]:
        wanted = sorted({int(i) for i in ids})
        if not wanted:
            return {}
        rows = self.conn.execute(select(users.c.id, users.c.username, users.c.display_name, users.c.roles,
                                        users.c.department, users.c.unit_id).where(users.c.id.in_(wanted))).all()
        return {r.id: r for r in rows}

    def counters(self) -> list:
        return self.conn.execute(select(counters).order_by(counters.c.kind, counters.c.period)).all()

    def document_numbers(self) -> list:
        return self.conn.execute(select(documents.c.kind, documents.c.number)).all()

    def all_case_numbers(self) -> list:
        return self.conn.execute(select(cases.c.case_no).order_by(cases.c.id)).all()

    def documents_by_number(self, number: str) -> list:
        """The documents bearing a number (one per kind at most; the public verification page)."""
        return self.conn.execute(select(documents).where(documents.c.number == number).order_by(documents.c.id)
                                 .limit(5)).all()

    def document_issued_digest(self, case_id: int, doc_id: int) -> str | None:
        """The content hash the ``document_issued`` event of a document recorded."""
        rows = self.conn.execute(select(events.c.payload).where(and_(events.c.case_id == case_id,
                                                                     events.c.type == "document_issued"))).all()
        return next((r.payload.get("sha256") for r in rows if r.payload.get("document_id") == doc_id), None)

    def documents_full(self, case_id: int) -> list:
        return self.conn.execute(select(documents).where(documents.c.case_id == case_id).order_by(documents.c.id)).all()

    def first_event(self, case_id: int):
        return self.conn.execute(select(events).where(and_(events.c.case_id == case_id, events.c.seq == 1))).first()

    # ---- clocks, timers, notifications ------------------------------------------------------------------------
    def clocks_for_case(self, case_id: int) -> list:
        return self.conn.execute(_CLOCKS_FOR_CASE, {"case_id": case_id}).all()

    def save_clocks(self, case_id: int, lead_user: str | None, rows: list[dict], existing_keys: set[str]) -> None:
        new = [dict(r, case_id=case_id, lead_user=lead_user) for r in rows if r["key"] not in existing_keys]
        if new:
            self.conn.execute(insert(clocks), new)
        for r in rows:
            if r["key"] in existing_keys:
                values = {k: v for k, v in r.items() if k != "key"}
                self.conn.execute(update(clocks).where(and_(clocks.c.case_id == case_id, clocks.c.key == r["key"]))
                                  .values(lead_user=lead_user, **values))

    def delete_clocks(self, case_id: int, keys: set[str]) -> None:
        if keys:
            self.conn.execute(delete(clocks).where(and_(clocks.c.case_id == case_id, clocks.c.key.in_(sorted(keys)))))

    def replace_timers(self, case_id: int, rows: list[dict]) -> None:
        self.conn.execute(_DELETE_TIMERS, {"case_id": case_id})
        if rows:
            self.conn.execute(insert(timers), [dict(r, case_id=case_id) for r in rows])

    def timers_for_case(self, case_id: int) -> list:
        return self.conn.execute(select(timers).where(timers.c.case_id == case_id)).all()

    def next_due_case(self, now: datetime, skip_cases: Iterable[int] = ()):
        """The case of the earliest due timer, or else of a running clock whose level has changed with time but
        whose row does not show it yet — locked, skipping cases another transaction holds (PostgreSQL). Only the
        case row is locked: every writer locks the case first, so no two transactions deadlock."""
        skip = list(skip_cases)
        due = (select(cases).join(timers, timers.c.case_id == cases.c.id).where(timers.c.due_at <= now)
               .order_by(timers.c.due_at).limit(1))
        stale = and_(clocks.c.stopped_at.is_(None), or_(and_(clocks.c.level == "green", clocks.c.yellow_at <= now),
                                                    and_(clocks.c.level.in_(("green", "yellow")), clocks.c.red_at <= now)))
        changed = select(cases).join(clocks, clocks.c.case_id == cases.c.id).where(stale).limit(1)
        for _ in range(50):
            row = None
            for stmt in (due, changed):
                if skip:
                    stmt = stmt.where(cases.c.id.not_in(skip))
                if self.dialect == "postgresql":
                    stmt = stmt.with_for_update(of=cases, skip_locked=True)
                row = self.conn.execute(stmt).first()
                if row is not None:
                    break
            if row is None or self.dialect != "postgresql":
                return row
            # PostgreSQL re-checks only the locked table's row after waiting for a lock: make sure another worker
            # did not tick this case meanwhile (a fresh statement sees its commit).
            still = select(func.count()).select_from(timers).where(and_(timers.c.case_id == row.id, timers.c.due_at <= now))
            stale_here = select(func.count()).select_from(clocks).where(and_(clocks.c.case_id == row.id, stale))
            if self.conn.execute(still).scalar_one() or self.conn.execute(stale_here).scalar_one():
                return row
            skip.append(row.id)
        return None

    def count_due_timers(self, now: datetime) -> int:
        return self.conn.execute(select(func.count()).select_from(timers).where(timers.c.due_at <= now)).scalar_one()

    def case_ids_with_clocks_from(self, since) -> list[int]:
        """Cases with a running clock that is provisional, paused, or due on or after ``since``."""
        cond = and_(clocks.c.stopped_at.is_(None),
                    or_(clocks.c.provisional.is_(True), clocks.c.due_date.is_(None), clocks.c.due_date >= since))
        return sorted(self.conn.execute(select(clocks.c.case_id).where(cond).distinct()).scalars())

    def warning_clocks(self, now: datetime, department: str | None = None, limit: int = 500) -> list:
        """Running clocks that are yellow or red now, worst first, with their case."""
        stmt = (select(clocks, cases.c.case_no, cases.c.title.label("case_title"), cases.c.unit_name)
                .join(cases, cases.c.id == clocks.c.case_id)
                .where(and_(clocks.c.stopped_at.is_(None), clocks.c.yellow_at <= now))
                .order_by(clocks.c.red_at, clocks.c.yellow_at).limit(limit))
        if department:
            stmt = stmt.where(clocks.c.department == department)
        return self.conn.execute(stmt).all()

    def element_tasks_of_cases(self, case_ids: list[int], element_id: str) -> tuple[list, list]:
        """The open tasks of one element in these cases, and the events of its completed ones: what became of, e.g.,
        each 督办 the supervision page lists."""
        if not case_ids:
            return [], []
        open_rows = self.conn.execute(select(inbox.c.task_id, inbox.c.case_id, inbox.c.clock_key, inbox.c.title,
                                             inbox.c.created_at)
                                      .where(and_(inbox.c.case_id.in_(case_ids), inbox.c.element_id == element_id))).all()
        done = self.conn.execute(select(events.c.case_id, events.c.seq, events.c.at, events.c.payload)
                                 .where(and_(events.c.case_id.in_(case_ids), events.c.element_id == element_id,
                                             events.c.type == "task_completed"))
                                 .order_by(events.c.case_id, events.c.seq)).all()
        return open_rows, done

    def completions_of_element(self, case_ids: list[int], element_id: str) -> list:
        """(case_id, at, payload) of each completion of one element in these cases, in order (e.g. each 受理审核)."""
        if not case_ids:
            return []
        return self.conn.execute(select(events.c.case_id, events.c.at, events.c.payload)
                                 .where(and_(events.c.case_id.in_(case_ids), events.c.element_id == element_id,
                                             events.c.type == "task_completed"))
                                 .order_by(events.c.case_id, events.c.seq)).all()

    def clocks_for_cases(self, case_ids: list[int]) -> list:
        if not case_ids:
            return []
        return self.conn.execute(select(clocks).where(clocks.c.case_id.in_(case_ids))).all()

    # ---- working-day calendar -----------------------------------------------------------------------------------
    def calendar_years(self) -> list:
        return self.conn.execute(select(calendar_years).order_by(calendar_years.c.year)).all()

    def calendar_days(self, year: int | None = None) -> list:
        stmt = select(calendar_days).order_by(calendar_days.c.day)
        if year is not None:
            stmt = stmt.where(calendar_days.c.year == year)
        return self.conn.execute(stmt).all()

    def calendar_day(self, day):
        return self.conn.execute(select(calendar_days).where(calendar_days.c.day == day)).first()

    def calendar_year(self, year: int):
        return self.conn.execute(select(calendar_years).where(calendar_years.c.year == year)).first()

    def add_calendar_changes(self, rows: list[dict]) -> None:
        """Append one administrator's action to the calendar's history (``engine.calhistory``), in its transaction."""
        if rows:
            self.conn.execute(insert(calendar_changes), rows)

    def calendar_changes(self, latest: int | None = None) -> list:
        """The calendar's history in order (``latest``: only the last so many rows, newest first)."""
        if latest is None:
            return self.conn.execute(select(calendar_changes).order_by(calendar_changes.c.seq)).all()
        return self.conn.execute(select(calendar_changes).order_by(calendar_changes.c.seq.desc()).limit(latest)).all()

    def calendar_version(self):
        """A number that grows with every change an administrator makes to the calendar (0 before any)."""
        return self.conn.execute(_CALENDAR_VERSION).scalar() or 0

    def set_calendar_day(self, day, kind: str, name: str) -> None:
        self.conn.execute(delete(calendar_days).where(calendar_days.c.day == day))
        self.conn.execute(insert(calendar_days).values(day=day, year=day.year, kind=kind, name=name))

    def delete_calendar_day(self, day) -> int:
        return self.conn.execute(delete(calendar_days).where(calendar_days.c.day == day)).rowcount

    def replace_calendar_year(self, year: int, days: list[dict]) -> None:
        self.conn.execute(delete(calendar_days).where(calendar_days.c.year == year))
        if days:
            self.conn.execute(insert(calendar_days), [dict(d, year=year) for d in days])

    def touch_calendar_year(self, year: int, complete: bool | None, at: datetime, by: str, note: str | None = None) -> None:
        self.next_number("calendar", "version")
        row = self.conn.execute(select(calendar_years).where(calendar_years.c.year == year)).first()
        if row is None:
            self.conn.execute(insert(calendar_years).values(year=year, complete=bool(complete), note=note or "", updated_at=at,
                                                updated_by=by))
        else:
            values = {"updated_at": at, "updated_by": by}
            if complete is not None:
                values["complete"] = complete
            if note is not None:
                values["note"] = note
            self.conn.execute(update(calendar_years).where(calendar_years.c.year == year).values(**values))

    # ---- digests: the append-only tree of chain heads and its signed heads ------------------------------------------
    def lock_digests(self) -> None:
        """One digest at a time (SQLite: the write transaction already is); readers are not blocked."""
        if self.dialect == "postgresql":
            self.conn.exec_driver_sql("LOCK TABLE digest_leaves IN SHARE ROW EXCLUSIVE MODE")

    def digest_leaves(self, below: int | None = None) -> list:
        """The leaves (idx, case_no, seq, head_hash) in tree order, all or those with ``idx < below``."""
        stmt = select(digest_leaves.c.idx, digest_leaves.c.case_no, digest_leaves.c.seq, digest_leaves.c.head_hash)
        if below is not None:
            stmt = stmt.where(digest_leaves.c.idx < below)
        return self.conn.execute(stmt.order_by(digest_leaves.c.idx)).all()

    def chain_heads(self) -> list:
        """Every case's recorded head (event_seq, last_hash) and the stored hash of its event at that seq."""
        e = events.alias("e")
        return self.conn.execute(
            select(cases.c.case_no, cases.c.event_seq, cases.c.last_hash, e.c.hash.label("event_hash"))
            .outerjoin(e, and_(e.c.case_id == cases.c.id, e.c.seq == cases.c.event_seq)).order_by(cases.c.case_no)).all()

    def append_digest_leaves(self, rows: list[tuple]) -> None:
        """Rows (idx, case_no, seq, head_hash), through the driver directly (SQLite: executemany; PostgreSQL: COPY in
        the same transaction): 100,000 rows in about a second."""
        if rows and self.dialect == "sqlite":
            self.conn.exec_driver_sql("INSERT INTO digest_leaves (idx, case_no, seq, head_hash) VALUES (?, ?, ?, ?)", rows)
        elif rows:
            with self.conn.connection.driver_connection.cursor() as cursor, \
                    cursor.copy("COPY digest_leaves (idx, case_no, seq, head_hash) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def insert_digest(self, **values) -> int:
        return self.conn.execute(insert(digests).values(**values).returning(digests.c.id)).scalar_one()

    def latest_digest(self):
        return self.conn.execute(select(digests).order_by(digests.c.id.desc()).limit(1)).first()

    def digest_since(self, at: datetime) -> bool:
        return self.conn.execute(select(exists().where(digests.c.at >= at))).scalar()

    def anchored_leaves(self, below: int) -> list:
        """Each leaf with ``idx < below`` beside what the database holds now: the case's id (None: no such case) and
        the stored hash of its event at the leaf's seq (None: no such event)."""
        lf, e = digest_leaves, events.alias("e")
        return self.conn.execute(
            select(lf.c.idx, lf.c.case_no, lf.c.seq, lf.c.head_hash, cases.c.id.label("case_id"), e.c.hash.label("event_hash"))
            .outerjoin(cases, cases.c.case_no == lf.c.case_no)
            .outerjoin(e, and_(e.c.case_id == cases.c.id, e.c.seq == lf.c.seq))
            .where(lf.c.idx < below).order_by(lf.c.idx)).all()

    def cases_without_leaf(self, below: int) -> list:
        """Cases (case_no, time of their first event) that have no leaf with ``idx < below``."""
        lf, e = digest_leaves, events.alias("e")
        return self.conn.execute(
            select(cases.c.case_no, e.c.at).join(e, and_(e.c.case_id == cases.c.id, e.c.seq == 1))
            .where(~exists().where(and_(lf.c.case_no == cases.c.case_no, lf.c.idx < below))).order_by(cases.c.case_no)).all()

    def events_for_cases(self, case_ids: list[int]) -> list:
        return self.conn.execute(select(events).where(events.c.case_id.in_(case_ids))
                                 .order_by(events.c.case_id, events.c.seq)).all()

    def latest_leaf_of_case(self, case_no: str, below: int):
        lf = digest_leaves
        return self.conn.execute(select(lf).where(and_(lf.c.case_no == case_no, lf.c.idx < below))
                                 .order_by(lf.c.idx.desc()).limit(1)).first()
