"""What every use case shares: the database, the published process versions (parsed once each, the
latest followed within seconds), permissions, forms with their choices, and the helpers of a step."""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from time import monotonic

from .. import forms
from .. import processes as process_files
from ..access import Actor
from ..clock import now
from ..db import Database, UnitOfWork
from ..errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    ProcessDefinitionError,
)
from ..events import EventBuffer
from ..processes import ProcessSet
from ..runtime import TaskInfo
from ..workcal import WorkCalendar

PAGE_SIZE = 20
LATEST_TTL = 2.0
CALENDAR_TTL = 60.0
DEPARTMENTS_TTL = 5.0
MAX_ID = 2**53
_TASK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _term(value: str | None, limit: int) -> str | None:
    """A search term as the database may safely see it: printable characters only, bounded."""
    text = "".join(ch for ch in (value or "") if ch.isprintable()).strip()[:limit]
    return text or None


@dataclass
class StartedCase:
    case_no: str
    status: str
    tasks: list[dict]


def _note_ready(events: EventBuffer, ready: list[TaskInfo]) -> None:
    """Record on the step's last event which tasks were open after it: replay checks every step against it."""
    rows = events.sealed()
    if rows:
        rows[-1]["payload"] = dict(rows[-1]["payload"], ready_after=sorted([t.element_id, t.title or ""] for t in ready))


def _jsonable(value):
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


class CaseFailed(Exception):
    """Running one case failed because of its process definition (the case is left as it was)."""

    def __init__(self, case_id: int | None, case_no: str | None, error: ProcessDefinitionError):
        super().__init__(error.message)
        self.case_id, self.case_no, self.error = case_id, case_no, error


class _TaskAccess:
    """Adapts a ready task to the shape ``access.check_may_act`` reads."""

    def __init__(self, task: TaskInfo, unit_id: int):
        self.role, self.department, self.assignee, self.unit_id = task.role, task.department, task.assignee, unit_id


class ServiceBase:
    """The service's shared state; ``engine.services.Bangban`` composes it with every capability's use cases."""

    def __init__(self, db: Database, current: ProcessSet, current_version_id: int, follow_latest: bool = False):
        self.db = db
        self._current = (current_version_id, current)
        self._versions: dict[int, ProcessSet] = {current_version_id: current}
        self._version_labels: dict[int, str] = {}
        self._schemas: dict[tuple[str, str], dict] = {}
        self._calendar: tuple[float, WorkCalendar, int] | None = None
        self._calendar_history: tuple[int, object] | None = None   # (calendar version, engine.calhistory history)
        self._lock = threading.Lock()
        self._follow_latest = follow_latest
        self._checked_latest = monotonic()

    @classmethod
    def open(cls, db: Database, files: dict[str, bytes], author: str = "system", comment: str = "") -> "ServiceBase":
        """Serve exactly these process files for new cases (published as a version once per content hash)."""
        ps = process_files.load(files)
        with db.unit_of_work() as uow:
            version_id = cls._store_version(uow, ps, files, author, comment)
            uow.commit()
        return cls(db, ps, version_id)

    @classmethod
    def open_latest(cls, db: Database, initial_files: dict[str, bytes]) -> "ServiceBase":
        """Serve the latest published version, following new publications (by any process) within seconds.
        An empty database gets ``initial_files`` (``processes/``) as its first version."""
        with db.unit_of_work(write=False) as uow:   # a starting process only reads (no write lock)
            row = uow.repo.latest_version()
            files = uow.repo.version_files(row.id).files if row is not None else None
        if row is None:
            with db.unit_of_work() as uow:
                if uow.repo.latest_version() is None:
                    ps = process_files.load(initial_files)
                    version_id = cls._store_version(uow, ps, initial_files, "system", "初始版本（processes/ 目录）")
                    uow.commit()
                    return cls(db, ps, version_id, follow_latest=True)
            return cls.open_latest(db, initial_files)     # another process published the first version meanwhile
        ps = process_files.load({n: t.encode("utf-8") for n, t in files.items()}, published=True)
        return cls(db, ps, row.id, follow_latest=True)

    @classmethod
    def open_for_audit(cls, db: Database, initial_files: dict[str, bytes]) -> tuple["ServiceBase", list[str]]:
        """The service for an auditor, even when the latest published version's files no longer load (edited in the
        database): then the newest version that does load serves, and each version that does not is named in the
        returned problems (the cases pinned to it fail their own check). Never publishes anything."""
        try:
            return cls.open_latest(db, initial_files), []
        except (ProcessDefinitionError, AttributeError, TypeError, ValueError):
            pass
        problems, chosen = [], None
        with db.unit_of_work(write=False) as uow:
            rows = uow.repo.versions()
            for row in rows:
                files = uow.repo.version_files(row.id).files
                try:
                    ps = process_files.load({n: t.encode("utf-8") for n, t in files.items()}, published=True)
                except (ProcessDefinitionError, AttributeError, TypeError, ValueError):
                    problems.append(f"流程版本（{_local(row.created_at)} 发布）的文件无法载入（流程文件被改动）")
                    continue
                if chosen is None:
                    chosen = (ps, row.id)
        if chosen is None:             # none loads: the process files of this installation name the rules
            chosen = (process_files.load(initial_files), None)
        return cls(db, chosen[0], chosen[1] if chosen[1] is not None else -1, follow_latest=False), problems

    @staticmethod
    def _store_version(uow: UnitOfWork, ps: ProcessSet, files: dict[str, bytes], author: str, comment: str) -> int:
        """Insert a version (or, for content already stored, make it the latest again); returns its id."""
        at = now()
        row = uow.repo.version_by_hash(ps.hash)
        if row is None:
            stored = {name: data.decode("utf-8") for name, data in files.items()}
            return uow.repo.insert_version(hash=ps.hash, files=stored, author=author, comment=comment,
                                           created_at=at, activated_at=at)
        uow.repo.activate_version(row.id, at)
        return row.id

    @property
    def current(self) -> ProcessSet:
        """The process set new cases start on (the latest published version)."""
        return self._latest()[1]

    @property
    def current_version_id(self) -> int:
        return self._latest()[0]

    def _latest(self) -> tuple[int, ProcessSet]:
        if self._follow_latest and monotonic() - self._checked_latest > LATEST_TTL:
            self._checked_latest = monotonic()
            with self.db.unit_of_work(write=False) as uow:
                row = uow.repo.latest_version()
            if row is not None and row.id != self._current[0]:
                self._current = (row.id, self.version(row.id))
        return self._current

    def version_label(self, version_id: int) -> str:
        """A process version as people read it: 第N版，YYYY年M月D日发布 — never its hash."""
        label = self._version_labels.get(version_id)
        if label is None:
            from ..clock import LOCAL_TZ
            with self.db.unit_of_work(write=False) as uow:
                n, at = uow.repo.version_ordinal(version_id)
            from datetime import UTC
            day = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(LOCAL_TZ) if at else None
            label = f"第{n}版" + (f"，{day.year}年{day.month}月{day.day}日发布" if day else "")
            self._version_labels[version_id] = label
        return label

    def version_labels_of(self, events) -> dict[str, str]:
        """第N版 for each version hash the events name (a case migrated from one version to another)."""
        hashes = {h for e in events if e.type == "migrated" for h in (e.payload.get("from"), e.payload.get("to")) if h}
        if not hashes:
            return {}
        with self.db.unit_of_work(write=False) as uow:
            ids = {h: row.id for h in hashes if (row := uow.repo.version_by_hash(h)) is not None}
        return {h: self.version_label(i) for h, i in ids.items()}

    def version(self, version_id: int) -> ProcessSet:
        ps = self._versions.get(version_id)
        if ps is not None:
            return ps
        with self.db.unit_of_work(write=False) as uow:
            row = uow.repo.version_files(version_id)
        if row is None:
            raise NotFound("流程版本不存在")
        ps = process_files.load({name: text.encode("utf-8") for name, text in row.files.items()}, published=True)
        with self._lock:
            self._versions[version_id] = ps
        return ps

    def permissions(self, actor: Actor) -> set[str]:
        roles = self.current.manifest["roles"]
        return {p for r in actor.roles for p in roles.get(r, {}).get("permissions", [])}

    def check_permission(self, actor: Actor, permission: str) -> None:
        """Refuse (403) an actor whose roles lack ``permission`` (manifest ``roles.*.permissions``)."""
        if permission not in self.permissions(actor):
            raise Forbidden("您的角色无权使用此功能")

    @staticmethod
    def log_admin_change(uow: UnitOfWork, actor: Actor | None, action: str, target_kind: str, target: str,
                         old: dict | None = None, new: dict | None = None, reason: str | None = None) -> None:
        """Record an administrative change (accounts, units, departments, stations, the key register) in the same
        transaction as the change: who (``None``: the command line), when, what, old → new, why."""
        uow.repo.add_admin_change(at=now(), actor_id=actor.id if actor else None,
                                  actor_name=actor.username if actor else "命令行", action=action,
                                  target_kind=target_kind, target=target, old=old, new=new, reason=reason)

    def role_names(self) -> dict[str, str]:
        return {code: r["name"] for code, r in self.current.manifest["roles"].items()}

    def department_names(self) -> dict[str, str]:
        """Department names from the departments table (read at most every few seconds), the current catalogue's
        names for codes the table does not have."""
        hit = getattr(self, "_department_names", None)
        if hit is None or monotonic() - hit[0] > DEPARTMENTS_TTL:
            with self.db.unit_of_work(write=False) as uow:
                hit = (monotonic(), {r.code: r.name for r in uow.repo.departments()})
            self._department_names = hit
        return {**self.current.catalogue.departments, **hit[1]}

    def _options(self, uow: UnitOfWork, ps: ProcessSet):
        def provide(source: str) -> list[dict]:
            if source == "catalogue_items":
                return ps.catalogue.options()
            if source.startswith("users:"):
                return [{"value": r.username, "label": r.display_name}
                        for r in uow.repo.users_with_role(source.split(":", 1)[1])]
            raise InvalidInput(f"未知的选项来源 {source}")
        return provide

    def _schema(self, uow: UnitOfWork, ps: ProcessSet, form_name: str) -> dict:
        """The form with its choices filled in; forms whose choices come only from the process set are cached."""
        key = (ps.hash, form_name)
        cached = self._schemas.get(key)
        if cached is not None:
            return cached
        schema = ps.form(form_name)
        resolved = forms.resolve(schema, self._options(uow, ps))
        if not forms.has_directory_options(schema):
            self._schemas[key] = resolved
        return resolved

    def _version_by_hash(self, uow: UnitOfWork):
        cache: dict[str, ProcessSet] = {}

        def get(version_hash: str) -> ProcessSet:
            if version_hash not in cache:
                row = uow.repo.version_by_hash(version_hash)
                if row is None:
                    raise NotFound(f"流程版本 {version_hash[:12]} 不存在")
                cache[version_hash] = self.version(row.id)
            return cache[version_hash]
        return get

    _check_permission = check_permission


def _local(at) -> str:
    """A stored time as the auditor reads it (local, to the minute)."""
    from datetime import UTC

    from ..clock import LOCAL_TZ
    if isinstance(at, str):
        return at[:16]
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
