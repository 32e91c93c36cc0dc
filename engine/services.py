"""Use cases of the 帮办代办 service. Each opens one unit of work, checks access, runs the case, commits.

The web layer calls these and nothing else of the engine (besides errors and the Actor type).
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from time import monotonic

from werkzeug.security import check_password_hash

from . import access, forms
from . import processes as process_files
from .access import Actor
from .clock import LOCAL_TZ, clock, now
from .db import Database, UnitOfWork
from .deadlines import ClockState, case_summary
from .errors import (
    BangbanError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    ProcessDefinitionError,
)
from .events import EventBuffer
from .processes import ProcessSet
from .runtime import CaseRun, TaskInfo
from .workcal import CalendarFileError, WorkCalendar, YearData, parse_calendar_file

PAGE_SIZE = 20
ACTOR_TTL = 30.0
LATEST_TTL = 2.0
CALENDAR_TTL = 60.0
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


class Bangban:
    """The service: a database and the process set new cases start on."""

    def __init__(self, db: Database, current: ProcessSet, current_version_id: int, follow_latest: bool = False):
        self.db = db
        self._current = (current_version_id, current)
        self._versions: dict[int, ProcessSet] = {current_version_id: current}
        self._actors: dict[int, tuple[float, Actor | None]] = {}
        self._schemas: dict[tuple[str, str], dict] = {}
        self._calendar: tuple[float, WorkCalendar, int] | None = None
        self._lock = threading.Lock()
        self._follow_latest = follow_latest
        self._checked_latest = monotonic()

    # ---- set-up ----------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, db: Database, files: dict[str, bytes], author: str = "system", comment: str = "") -> "Bangban":
        """Serve exactly these process files for new cases (published as a version once per content hash)."""
        ps = process_files.load(files)
        with db.unit_of_work() as uow:
            version_id = cls._store_version(uow, ps, files, author, comment)
            uow.commit()
        return cls(db, ps, version_id)

    @classmethod
    def open_latest(cls, db: Database, initial_files: dict[str, bytes]) -> "Bangban":
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

    # ---- the working-day calendar -------------------------------------------------------------------------------
    def calendar(self, uow: UnitOfWork | None = None) -> WorkCalendar:
        """Official data plus the administrators' table. Inside a use case that changes clocks (``uow`` given) the
        table's version is always checked, so no worker or web process recomputes a clock from a stale calendar;
        pages re-check at most every ``CALENDAR_TTL`` seconds."""
        cached = self._calendar
        moment = monotonic()
        if uow is None and cached is not None and moment - cached[0] < CALENDAR_TTL:
            return cached[1]
        if uow is None:
            with self.db.unit_of_work(write=False) as read:
                return self.calendar(read)
        version = uow.repo.calendar_version()
        if cached is not None and cached[2] == version:
            self._calendar = (moment, cached[1], version)
            return cached[1]
        cal = self._read_calendar(uow)
        self._calendar = (moment, cal, version)
        return cal

    @staticmethod
    def _read_calendar(uow: UnitOfWork) -> WorkCalendar:
        complete = {r.year: r.complete for r in uow.repo.calendar_years()}
        days: dict[int, dict] = {year: {} for year in complete}
        names: dict[int, dict] = {year: {} for year in complete}
        for d in uow.repo.calendar_days():
            days.setdefault(d.year, {})[d.day] = d.kind
            names.setdefault(d.year, {})[d.day] = d.name
        return WorkCalendar({year: YearData(complete.get(year, False), ds, names.get(year, {}))
                             for year, ds in days.items()})

    def permissions(self, actor: Actor) -> set[str]:
        roles = self.current.manifest["roles"]
        return {p for r in actor.roles for p in roles.get(r, {}).get("permissions", [])}

    def check_permission(self, actor: Actor, permission: str) -> None:
        """Refuse (403) an actor whose roles lack ``permission`` (manifest ``roles.*.permissions``)."""
        if permission not in self.permissions(actor):
            raise Forbidden("您的角色无权使用此功能")

    _check_permission = check_permission

    def calendar_year(self, actor: Actor, year: int) -> dict:
        """A year as the calendar page shows it: whether its schedule is known, and the administrators' days."""
        self._check_permission(actor, "supervision")
        if not 2000 <= int(year) <= 2100:
            raise InvalidInput("年份应在 2000 到 2100 之间")
        cal = self.calendar()
        with self.db.unit_of_work(write=False) as uow:
            years = {r.year: r for r in uow.repo.calendar_years()}
            days = uow.repo.calendar_days(int(year))
        row = years.get(int(year))
        this_year = now().astimezone(LOCAL_TZ).year
        official = int(year) in cal.official_years()
        holidays = []
        if official:
            d = date(int(year), 1, 1)
            while d.year == int(year):
                kind, name, source = cal.day_kind(d)
                if source == "official" and (kind == "rest") != (d.weekday() >= 5):
                    holidays.append({"day": d, "kind": kind, "name": name or ""})
                d += timedelta(days=1)
        return {"year": int(year), "official": official, "complete": bool(row and row.complete),
                "known": cal.year_known(int(year)), "note": row.note if row else "",
                "updated_at": row.updated_at if row else None, "updated_by": row.updated_by if row else None,
                "admin_days": [{"day": d.day, "kind": d.kind, "name": d.name} for d in days],
                "official_days": holidays,
                "years": sorted(set(years) | {int(year)} | {this_year, this_year + 1})}

    def set_calendar_day(self, actor: Actor, day: date, kind: str | None, name: str = "") -> dict:
        """Add, change (kind ``rest``/``work``) or remove (kind None) an administrator's day; recompute clocks."""
        self._check_permission(actor, "calendar")
        if kind not in (None, "rest", "work"):
            raise InvalidInput("类型应为休息日或工作日")
        with self.db.unit_of_work() as uow:
            if kind is None:
                if not uow.repo.delete_calendar_day(day):
                    raise NotFound("该日期没有人工设置")
            else:
                uow.repo.set_calendar_day(day, kind, (name or "")[:50])
            uow.repo.touch_calendar_year(day.year, None, now(), actor.username)
            uow.commit()
        return self._after_calendar_change(actor, day)

    def set_calendar_year(self, actor: Actor, year: int, complete: bool, note: str | None = None) -> dict:
        self._check_permission(actor, "calendar")
        with self.db.unit_of_work() as uow:
            uow.repo.touch_calendar_year(int(year), bool(complete), now(), actor.username, (note or "")[:200] or None)
            uow.commit()
        return self._after_calendar_change(actor, date(int(year), 1, 1))

    def import_calendar(self, actor: Actor | None, text: str) -> dict:
        """Import an administrator's file (``engine.workcal.parse_calendar_file``): each year in it is replaced."""
        if actor is not None:
            self._check_permission(actor, "calendar")
        try:
            years = parse_calendar_file(text)
        except CalendarFileError as exc:
            raise InvalidInput(exc.message, details=exc.problems) from exc
        if not years:
            raise InvalidInput("日历文件中没有任何日期或年份，未做任何更改")
        by = actor.username if actor else "命令行导入"
        with self.db.unit_of_work() as uow:
            for year, data in sorted(years.items()):
                uow.repo.replace_calendar_year(year, [{"day": d, "kind": k, "name": data.names.get(d, "")}
                                                      for d, k in sorted(data.days.items())])
                uow.repo.touch_calendar_year(year, data.complete, now(), by)
            uow.commit()
        result = self._after_calendar_change(actor, date(min(years), 1, 1))
        result["years"] = sorted(years)
        return result

    def _after_calendar_change(self, actor: Actor | None, since: date) -> dict:
        """Recompute every running clock the change may move (provisional ones, or due on or after ``since``)."""
        with self.db.unit_of_work(write=False) as uow:
            case_ids = uow.repo.case_ids_with_clocks_from(since)
        for case_id in case_ids:
            at = now()
            with clock.at(at), self.db.unit_of_work() as uow:
                case = uow.repo.case_by_id(case_id, lock=True)
                self._tick(uow, case, at)
                uow.commit()
        return {"recomputed_cases": len(case_ids)}

    # ---- users -------------------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> Actor:
        username = (username or "").strip()
        if not username.isprintable() or not (password or "").isprintable():
            raise NotAuthenticated("用户名或密码错误")
        with self.db.unit_of_work(write=False) as uow:
            row = uow.repo.user_by_username(username)
        if row is None or not row.active or not check_password_hash(row.password_hash, password or ""):
            raise NotAuthenticated("用户名或密码错误")
        return Actor.from_row(row)

    def actor(self, user_id: int) -> Actor | None:
        """The user behind a session; cached per process for ``ACTOR_TTL`` seconds (a deactivated user or a
        changed role takes effect within that time on every worker)."""
        hit = self._actors.get(user_id)
        moment = monotonic()
        if hit is not None and moment - hit[0] < ACTOR_TTL:
            return hit[1]
        with self.db.unit_of_work(write=False) as uow:
            row = uow.repo.user_by_id(user_id)
        found = Actor.from_row(row) if row is not None and row.active else None
        if len(self._actors) > 10_000:
            self._actors.clear()
        self._actors[user_id] = (moment, found)
        return found

    def role_names(self) -> dict[str, str]:
        return {code: r["name"] for code, r in self.current.manifest["roles"].items()}

    def department_names(self) -> dict[str, str]:
        return dict(self.current.catalogue.departments)

    def units(self) -> list[dict]:
        with self.db.unit_of_work(write=False) as uow:
            return [dict(r._mapping) for r in uow.repo.units()]

    # ---- forms -------------------------------------------------------------------------------------------------
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

    @staticmethod
    def _startable(ps: ProcessSet, process_id: str) -> dict:
        proc = ps.manifest["processes"].get(process_id) if isinstance(process_id, str) else None
        if proc is None:
            raise NotFound("没有这个流程")
        return proc

    def start_form(self, actor: Actor, process_id: str) -> dict:
        ps = self.current
        proc = self._startable(ps, process_id)
        self._check_may_start(actor, proc)
        with self.db.unit_of_work(write=False) as uow:
            schema = self._schema(uow, ps, proc["start_form"])
            defaults: dict = {}
            if actor.unit_id is not None:
                unit = uow.repo.unit(actor.unit_id)
                if unit is not None:
                    defaults = {"unit_name": unit.name, "unit_address": unit.address, "postcode": unit.postcode,
                                "leader_name": unit.leader_name, "leader_phone": unit.leader_phone}
            units = [] if actor.has("applicant") else [dict(r._mapping) for r in uow.repo.units()]
        return {"process_id": process_id, "name": proc["name"], "schema": schema,
                "defaults": {k: v for k, v in defaults.items() if v}, "units": units,
                "needs_unit": not actor.has("applicant")}

    def startable_processes(self, actor: Actor) -> list[dict]:
        return [{"id": pid, "name": p["name"]} for pid, p in self.current.manifest["processes"].items()
                if set(actor.roles) & set(p.get("start_roles", []))]

    @staticmethod
    def _check_may_start(actor: Actor, proc: dict) -> None:
        if not set(actor.roles) & set(proc.get("start_roles", [])):
            raise Forbidden("您的角色不能提交申请")

    # ---- starting a case ------------------------------------------------------------------------------------------
    def start_case(self, actor: Actor, process_id: str, form_data: dict, unit_id: int | None = None) -> StartedCase:
        """Submit an application: validates the start form, runs the process to its first tasks, numbers the case."""
        ps = self.current
        proc = self._startable(ps, process_id)
        access.check_read_only(actor, ps.manifest["roles"])
        self._check_may_start(actor, proc)
        if actor.has("applicant"):
            unit_id = actor.unit_id
        if unit_id is None:
            raise InvalidInput("请选择申请单位")
        if not 0 < int(unit_id) < MAX_ID:
            raise InvalidInput("申请单位不存在")
        at = now()
        with clock.at(at), self.db.unit_of_work() as uow:   # one instant for the whole step (replay repeats it)
            unit = uow.repo.unit(int(unit_id))
            if unit is None:
                raise InvalidInput("申请单位不存在")
            data = forms.validate(self._schema(uow, ps, proc["start_form"]), form_data)
            run = CaseRun.start(ps, process_id, data, self.calendar(uow) if ps.uses_clocks else None)
            local = at.astimezone(LOCAL_TZ)
            case_no = self._issue_number(uow, ps, "case", local)
            ready = run.ready_tasks()
            title = str(data.get(proc.get("title_field", "")) or proc["name"])[:200]
            events = EventBuffer(case_no, None, 0, "")
            events.add("case_started", at, actor, self._acting_role(actor, proc.get("start_roles", [])),
                       {"process": process_id, "version": ps.hash, "unit_id": unit.id, "form": data})
            _note_ready(events, ready)
            status = run.status()
            case_id = uow.repo.insert_case(
                case_no=case_no, version_id=self._version_id(uow, ps), process_id=process_id, title=title,
                unit_id=unit.id, unit_name=unit.name, status=status, stage=run.stage(None, ready),
                lead_user=run.lead(), created_by=actor.id, created_at=at, updated_at=at, row_version=1,
                event_seq=events.seq, last_hash=events.last_hash, state=run.dump(), case_vars=run.case_vars)
            events.bind(case_id)
            self._project(uow, case_id, unit.id, ready, [], at, new_case=True)
            self._persist_clocks(uow, case_id, run, events, actor, at, [])
            if events.seq > 1:
                _note_ready(events, ready)
                uow.repo.update_case(case_id, 1, event_seq=events.seq, last_hash=events.last_hash)
            uow.repo.append_events(events.rows)
            uow.commit()
        return StartedCase(case_no, status, [self._task_dict(t) for t in ready])

    def _version_id(self, uow: UnitOfWork, ps: ProcessSet) -> int:
        if ps is self.current:
            return self.current_version_id
        return uow.repo.version_by_hash(ps.hash).id

    @staticmethod
    def _acting_role(actor: Actor, allowed: list[str]) -> str | None:
        for role in actor.roles:
            if role in allowed:
                return role
        return actor.roles[0] if actor.roles else None

    def _issue_number(self, uow: UnitOfWork, ps: ProcessSet, kind: str, local: datetime) -> str:
        rule = ps.manifest["numbers"][kind]
        period = local.strftime("%Y%m%d") if rule.get("period") == "day" else local.strftime("%Y")
        seq = uow.repo.next_number(kind, period)
        return rule["format"].format(date=local, year=local.year, seq=seq)

    # ---- the inbox ------------------------------------------------------------------------------------------------
    def _project(self, uow: UnitOfWork, case_id: int, unit_id: int, ready: list[TaskInfo], existing: list,
                 at: datetime, new_case: bool = False) -> None:
        """Bring the inbox rows of a case in line with its READY tasks; note who became involved."""
        kept = {r.task_id: r for r in existing}
        known = {p for r in existing for p in access.parties_of_task(r.role, r.department, r.assignee)}
        rows, parties = [], []
        for t in ready:
            rows.append({"task_id": t.id, "case_id": case_id, "element_id": t.element_id, "name": t.name[:100],
                         "title": (t.title or None) and t.title[:200], "role": t.role or "", "department": t.department,
                         "assignee": t.assignee, "unit_id": unit_id, "stage": t.stage, "form": t.form,
                         "clock_key": t.clock_key,
                         "created_at": kept[t.id].created_at if t.id in kept else at})
            parties += access.parties_of_task(t.role, t.department, t.assignee)
        new_ids = {r["task_id"] for r in rows}
        if set(kept) != new_ids or any(self._row_changed(kept[r["task_id"]], r) for r in rows if r["task_id"] in kept):
            uow.repo.replace_inbox(case_id, rows, new_case=new_case)
        uow.repo.add_parties(case_id, set(parties) - known)

    @staticmethod
    def _row_changed(old, new: dict) -> bool:
        return (old.assignee, old.department, old.title, old.clock_key, old.name, old.role, old.form, old.stage) != \
            (new["assignee"], new["department"], new["title"], new["clock_key"], new["name"], new["role"], new["form"],
             new["stage"])

    def inbox(self, actor: Actor) -> list[dict]:
        with self.db.unit_of_work(write=False) as uow:
            rows = uow.repo.inbox_for_user(list(actor.roles), actor.department, actor.username, actor.unit_id)
            keyed = [r for r in rows if r.clock_key]
            clocks = {(c.case_id, c.key): c for c in uow.repo.clocks_for_cases(sorted({r.case_id for r in keyed}))}
        cal, at = self.calendar(), now()
        out = []
        for r in rows:
            item = self._inbox_dict(r)
            clock = clocks.get((r.case_id, r.clock_key)) if r.clock_key else None
            item["clock"] = ClockState.from_row(clock).compute(cal, at).describe(cal, at) if clock is not None else None
            out.append(item)
        return out

    def notifications(self, actor: Actor, limit: int = 20) -> list[dict]:
        recipients = [f"user:{actor.username}"] + ([f"dept:{actor.department}"] if actor.department else []) \
            + [f"role:{r}" for r in actor.roles]
        with self.db.unit_of_work(write=False) as uow:
            return [{"text": n.text, "case_no": n.case_no, "created_at": n.created_at}
                    for n in uow.repo.notifications_for(recipients, limit)]

    def _inbox_dict(self, r) -> dict:
        return {"task_id": r.task_id, "case_no": r.case_no, "case_title": r.case_title, "unit_name": r.unit_name,
                "name": r.name, "title": r.title, "role": r.role, "role_name": self.role_names().get(r.role, r.role),
                "department": r.department, "department_name": self.department_names().get(r.department or "", None),
                "assignee": r.assignee, "stage": r.stage, "created_at": r.created_at}

    @staticmethod
    def _task_dict(t: TaskInfo) -> dict:
        return {"task_id": t.id, "name": t.name, "title": t.title, "role": t.role, "department": t.department,
                "assignee": t.assignee, "stage": t.stage, "form": t.form}

    # ---- a task -------------------------------------------------------------------------------------------------
    def _ready_row(self, uow: UnitOfWork, task_id: str):
        if not _TASK_ID.fullmatch(str(task_id)):
            raise NotFound("待办不存在")
        row = uow.repo.inbox_task(task_id)
        if row is None:
            last = uow.repo.last_task_event(task_id)
            if last == "task_completed":
                raise Conflict("该待办已被办理，不能重复提交")
            if last == "task_ended":
                raise Conflict("该待办已结束（办件已终止或流程已越过此步），无需再办理")
            raise NotFound("待办不存在")
        return row

    def get_task(self, actor: Actor, task_id: str) -> dict:
        """A ready task with its resolved form and initial values, for someone who may act on it."""
        with self.db.unit_of_work(write=False) as uow:
            row = self._ready_row(uow, task_id)
            access.check_may_act(actor, row)
            case = uow.repo.case_by_id(row.case_id)
            ps = self.version(case.version_id)
            run = self._load_run(uow, case, ps)
            task = run.ready_task(task_id)
            if task is None:
                raise Conflict("该待办已被办理，请刷新")
            schema = self._schema(uow, ps, task.form)
            actions = self.case_actions(actor, case, ps, run, {t.element_id for t in run.ready_tasks()}, task)
            clock = run.clocks.get(task.clock_key) if task.clock_key else None
        return {"task": self._task_dict(task), "schema": schema, "defaults": run.form_defaults(task),
                "case": self._case_header(case, ps), "context": self._task_context(ps, task), "actions": actions,
                "clock": clock.compute(self.calendar(), now()).describe(self.calendar(), now()) if clock else None}

    @staticmethod
    def _task_context(ps: ProcessSet, task: TaskInfo) -> list[tuple[str, str]]:
        """Facts shown beside a form: the variables its ``show`` property names (an item, a request, a message)."""
        out: list[tuple[str, str]] = []
        for name in filter(None, (n.strip() for n in task.properties.get("show", "").split(","))):
            value = task.data.get(name)
            if value in (None, "", [], {}):
                continue
            item = ps.catalogue.items.get(value.get("code")) if isinstance(value, dict) else None
            if item is not None:
                out.append(("服务事项", f"{item['name']}（{ps.catalogue.departments[item['department']]}，"
                                         f"时限{item['limit_days']}个工作日）"))
                if item.get("materials"):
                    out.append(("申报材料", "、".join(item["materials"])))
            elif isinstance(value, dict):
                out += [(ps.field_title(k), str(v)) for k, v in value.items()
                        if v not in (None, "") and ps.field_title(k) != k]
            else:
                out.append((ps.field_title(name), str(value)))
        return out

    def complete_task(self, actor: Actor, task_id: str, form_data: dict) -> dict:
        """Complete a ready task; one transaction: check, validate, run, save, log, project."""
        try:
            return self._complete_task(actor, task_id, form_data)
        except CaseFailed as failed:
            self.report_process_error(failed.case_no, failed.case_id, failed.error)
            raise failed.error from None

    def _complete_task(self, actor: Actor, task_id: str, form_data: dict) -> dict:
        with clock.at(now()):   # one instant for the whole step (replay repeats it)
            return self._complete_task_now(actor, task_id, form_data)

    def _complete_task_now(self, actor: Actor, task_id: str, form_data: dict) -> dict:
        access.check_read_only(actor, self.current.manifest["roles"])
        with self.db.unit_of_work() as uow:
            case = uow.repo.case_of_task(task_id, lock=True) if _TASK_ID.fullmatch(str(task_id)) else None
            existing = uow.repo.inbox_for_case(case.id) if case is not None else []
            row = next((r for r in existing if r.task_id == task_id), None) or self._ready_row(uow, task_id)
            access.check_may_act(actor, row)
            ps = self.version(case.version_id)
            data = forms.validate(self._schema(uow, ps, row.form), form_data)
            run = self._load_run(uow, case, ps)
            task = run.ready_task(task_id)
            if task is None:
                raise Conflict("该待办已被办理，不能重复提交")
            access.check_may_act(actor, _TaskAccess(task, case.unit_id))
            at = now()
            events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
            try:
                submitted = run.complete(task, actor.username, data)
            except ProcessDefinitionError as exc:
                raise CaseFailed(case.id, case.case_no, exc) from exc
            events.add("task_completed", at, actor, task.role,
                       {"form": data, "form_file": task.form, "title": task.title, "stored": sorted(submitted),
                        "changes": _jsonable(run.last_changes)},
                       task.id, task.element_id, task.name)
            doc_kind = task.properties.get("document")
            document = None
            if doc_kind:
                document = self._issue_document(uow, ps, case, run, actor, task, doc_kind, data, at, events)
            self._save(uow, case, ps, run, events, at, completed_task=task.id, existing=existing, actor=actor)
            uow.commit()
        return {"case_no": case.case_no, "document": document}

    def _issue_document(self, uow, ps, case, run: CaseRun, actor: Actor, task: TaskInfo, kind: str, data: dict,
                        at: datetime, events: EventBuffer) -> dict:
        local = at.astimezone(LOCAL_TZ)
        number = self._issue_number(uow, ps, kind, local)
        content = {"case_no": case.case_no, "project_name": case.title, "project_code": run.value("project_code"),
                   "unit_name": case.unit_name, "issued_date": local.date().isoformat(), "issued_by": actor.display_name,
                   "lead": run.lead(),
                   "task": task.name, "title": task.title, "form": data,
                   "form_titles": {k: forms.field_title(ps.form(task.form), k) for k in data}}
        doc_id = uow.repo.insert_document(case_id=case.id, kind=kind, number=number, issued_at=at, issued_by=actor.id,
                                          task_id=task.id, title=task.title, data=content)
        events.add("document_issued", at, actor, task.role, {"kind": kind, "number": number, "document_id": doc_id},
                   task.id, task.element_id, task.name)
        return {"id": doc_id, "kind": kind, "number": number}

    def _load_run(self, uow: UnitOfWork, case, ps: ProcessSet) -> CaseRun:
        """A case's workflow with its statutory clocks (read only when the process has any)."""
        clocks, calendar = {}, None
        if ps.uses_clocks:
            clocks = {r.key: ClockState.from_row(r) for r in uow.repo.clocks_for_case(case.id)}
            calendar = self.calendar(uow)
        return CaseRun.load(ps, case.process_id, case.state, case.case_vars, clocks, calendar)

    def _persist_clocks(self, uow: UnitOfWork, case_id: int, run: CaseRun, events: EventBuffer, actor: Actor | None,
                        at: datetime, timers_before: list) -> None:
        """What a step did besides the workflow: clock rows, timers to poll, notifications, and their events."""
        for type_, payload in run.notes:
            events.add(type_, at, actor, None, payload)
        if run.changed_clocks:
            rows = [run.clocks[k].to_row() for k in sorted(run.changed_clocks)]
            uow.repo.save_clocks(case_id, run.lead(), rows, run.loaded_clock_keys)
        timers = run.waiting_timers()
        if timers_before is None or timers != timers_before:
            uow.repo.replace_timers(case_id, [{"task_id": t, "name": (n or "")[:100], "due_at": d} for t, n, d in timers])
        if run.notifications:
            uow.repo.add_notifications([{"recipient": r, "case_id": case_id, "text": text, "created_at": at}
                                        for r, text in run.notifications])

    def _save(self, uow: UnitOfWork, case, ps: ProcessSet, run: CaseRun, events: EventBuffer, at: datetime,
              completed_task: str | None = None, existing: list | None = None, actor: Actor | None = None,
              version_id: int | None = None, reissued: set[str] = frozenset()) -> None:
        status = run.status()
        ready = run.ready_tasks()
        if existing is None:
            existing = uow.repo.inbox_for_case(case.id)
        ready_ids = {t.id for t in ready}
        for r in existing:  # tasks that went away without being completed: interrupted or ended with the case
            if r.task_id not in ready_ids and r.task_id != completed_task and r.task_id not in reissued:
                events.add("task_ended", at, None, r.role, {"title": r.title, "department": r.department,
                                                            "assignee": r.assignee}, r.task_id, r.element_id, r.name)
        if status != case.status:
            events.add("status_changed", at, None, None, {"from": case.status, "to": status})
        self._project(uow, case.id, case.unit_id, ready, existing, at)
        self._persist_clocks(uow, case.id, run, events, actor, at, run.loaded_timers)
        _note_ready(events, ready)
        due_date, warning = case_summary(run.clocks.values())
        uow.repo.update_case(case.id, case.row_version, state=run.dump(), case_vars=run.case_vars, status=status,
                             stage=run.stage(case.stage, ready), lead_user=run.lead(), updated_at=at,
                             event_seq=events.seq, last_hash=events.last_hash, due_date=due_date, warning=warning,
                             **({"version_id": version_id} if version_id is not None else {}))
        uow.repo.append_events(events.rows)

    # ---- process versions (process owners) -------------------------------------------------------------------------
    def process_versions(self, actor: Actor | None) -> list[dict]:
        if actor is not None:
            self.check_permission(actor, "processes")
        with self.db.unit_of_work(write=False) as uow:
            rows = uow.repo.versions()
            counts = uow.repo.count_cases_by_version()
        latest = rows[0].id if rows else None
        outcomes = self.current.manifest.get("outcomes", {})
        return [{"id": r.id, "hash": r.hash, "short": r.hash[:12], "author": r.author, "comment": r.comment,
                 "created_at": r.created_at, "activated_at": r.activated_at, "latest": r.id == latest,
                 "cases": {outcomes.get(k, k): v for k, v in counts.get(r.id, {}).items()}} for r in rows]

    def resolve_version(self, ref: str) -> int:
        """A version by id (``12``) or hash prefix (at least 6 characters)."""
        ref = str(ref).strip()
        with self.db.unit_of_work(write=False) as uow:
            if ref.isascii() and ref.isdigit() and int(ref) < MAX_ID:
                row = uow.repo.version_files(int(ref))
                if row is not None:
                    return row.id
            if len(ref) >= 6 and ref.isalnum():
                rows = uow.repo.version_by_prefix(ref.lower())
                if len(rows) == 1:
                    return rows[0].id
        raise NotFound(f"流程版本 {ref} 不存在或不唯一")

    def version_files(self, actor: Actor | None, version_id: int) -> dict[str, str]:
        if actor is not None:
            self.check_permission(actor, "processes")
        with self.db.unit_of_work(write=False) as uow:
            row = uow.repo.version_files(int(version_id)) if 0 < int(version_id) < MAX_ID else None
        if row is None:
            raise NotFound("流程版本不存在")
        return dict(row.files)

    def diff_versions(self, actor: Actor | None, old_id: int, new_id: int) -> list[dict]:
        """Element by element: tasks, lanes, flows, forms, timers, catalogue items added, removed or changed."""
        from .versions import diff_files
        old = {k: v.encode("utf-8") for k, v in self.version_files(actor, old_id).items()}
        new = {k: v.encode("utf-8") for k, v in self.version_files(actor, new_id).items()}
        return diff_files(old, new)

    def publish(self, actor: Actor | None, changed: dict[str, bytes], comment: str, base: dict[str, bytes] | None = None,
                replace_all: bool = False) -> dict:
        """Publish a new version: the latest version's files with ``changed`` applied (or exactly ``changed`` when
        ``replace_all``). Everything is validated first; a set with any problem changes nothing."""
        author = "命令行"
        if actor is not None:
            self.check_permission(actor, "process_publish")
            author = actor.username
        comment = (comment or "").strip()
        if not comment:
            raise InvalidInput("请填写发布说明")
        if base is None and not replace_all:
            base = {k: v.encode("utf-8") for k, v in self.version_files(None, self.current_version_id).items()}
        files = dict(changed) if replace_all else {**(base or {}), **changed}
        files = {k: v for k, v in files.items() if v is not None}
        from .validation import validate_set
        problems = validate_set(files)
        if problems:
            raise InvalidInput(f"流程文件有 {len(problems)} 处问题，未发布", details=[p.to_dict() for p in problems])
        ps = process_files.load(files)
        with self.db.unit_of_work() as uow:
            before = uow.repo.latest_version()
            version_id = self._store_version(uow, ps, files, author, comment[:500])
            uow.commit()
        self._current = (version_id, self.version(version_id))
        self._checked_latest = monotonic()
        unchanged = before is not None and before.id == version_id
        return {"id": version_id, "hash": ps.hash, "short": ps.hash[:12], "unchanged": unchanged}

    def validate(self, actor: Actor | None, changed: dict[str, bytes]) -> list[dict]:
        """Problems of the latest version with ``changed`` applied (nothing is stored)."""
        if actor is not None:
            self.check_permission(actor, "processes")
        base = {k: v.encode("utf-8") for k, v in self.version_files(None, self.current_version_id).items()}
        from .validation import validate_set
        return [p.to_dict() for p in validate_set({**base, **changed})]

    def migrate_cases(self, to_version: int, case_nos: list[str] | None = None, dry_run: bool = False,
                      actor: Actor | None = None) -> list[dict]:
        """Move running cases to another version where SpiffWorkflow's diff allows it (nothing completed or started
        changed); each migration is logged in the case's events. Returns one report per case."""
        if actor is not None:
            self.check_permission(actor, "process_publish")
        target = self.version(to_version)
        with self.db.unit_of_work(write=False) as uow:
            cases = uow.repo.active_cases(case_nos)
        found = {c.case_no for c in cases}
        report = [{"case_no": no, "ok": False, "reasons": ["办件不存在或已结束"]} for no in (case_nos or []) if no not in found]
        for c in cases:
            if c.version_id == to_version:
                report.append({"case_no": c.case_no, "ok": True, "reasons": [], "note": "已在该版本"})
                continue
            with clock.at(now()), self.db.unit_of_work() as uow:
                case = uow.repo.case_by_id(c.id, lock=True)
                ps = self.version(case.version_id)
                run = self._load_run(uow, case, ps)
                if case.process_id not in target.specs:
                    report.append({"case_no": case.case_no, "ok": False, "reasons": [f"新版本中没有流程 {case.process_id}"]})
                    continue
                blockers = run.migrate_to(target, dry_run=dry_run)
                entry = {"case_no": case.case_no, "ok": not blockers, "reasons": blockers,
                         "from": ps.hash[:12], "to": target.hash[:12]}
                report.append(entry)
                if blockers or dry_run:
                    continue
                at = now()
                events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
                events.add("migrated", at, actor, None, {"from": ps.hash, "to": target.hash, "from_version": case.version_id,
                                                         "to_version": to_version})
                self._save(uow, case, target, run, events, at, actor=actor, version_id=to_version)
                uow.commit()
        return report

    # ---- audit ---------------------------------------------------------------------------------------------------
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

    def audit_case(self, case_no: str, actor: Actor | None = None) -> dict:
        """Check a case's hash chain and replay it from its events; ``ok`` with the first divergence if not."""
        from . import audit
        if actor is not None:
            self.check_permission(actor, "audit")
        with self.db.unit_of_work(write=False) as uow:
            case = uow.repo.case_by_no(str(case_no)[:32]) if str(case_no).isprintable() else None
            if case is None:
                raise NotFound("办件不存在")
            events = uow.repo.events_for_case(case.id)
            clocks = uow.repo.clocks_for_case(case.id)
            calendar = self.calendar(uow)
            version_of = self._version_by_hash(uow)
            chain = audit.check_chain(case.case_no, events)
            divergence = chain
            if chain is None:
                ps = self.version(case.version_id)
                stored = audit.stored_run(ps, case.process_id, case.state, case.case_vars, clocks, calendar)
                replayed, divergence = audit.replay(events, version_of, calendar)
                if divergence is None and replayed is not None:
                    divergence = audit.compare(audit.normalized(stored), audit.normalized(replayed))
                if divergence is None and events and case.last_hash != events[-1].hash:
                    divergence = audit.Divergence(events[-1].seq, events[-1].type, "办件记录的最后哈希与事件链不符（事件被删除）")
        return {"case_no": case.case_no, "ok": divergence is None, "events": len(events),
                "divergence": divergence.to_dict() if divergence else None, "text": str(divergence) if divergence else "完整"}

    def repair_case(self, case_no: str, dry_run: bool = False, by: str = "", reason: str = "") -> dict:
        """Rebuild a case's stored state and projections from the replay of its intact event chain.

        For cases that a faulty release left with a state that does not follow from their own history (e.g. a
        department's result never merged, so the case stalled). The chain must be intact and the replay must take
        every recorded step; then the replayed workflow, clocks, timers, inbox and case row replace the stored ones,
        and a ``state_repaired`` event records who, why, the old and new state hashes and every recorded step outcome
        the replay corrected (verify accepts exactly those afterwards). Process owners and supervisors are told.
        ``result``: ``intact`` (nothing to do), ``would_repair`` (dry run), ``repaired``, ``refused``, ``missing``."""
        import hashlib

        from . import audit
        case_no = str(case_no)[:32] if str(case_no).isprintable() else ""
        at = now()
        with clock.at(at), self.db.unit_of_work(write=not dry_run) as uow:
            case = uow.repo.case_by_no(case_no, lock=not dry_run) if case_no else None
            if case is None:
                return {"case_no": case_no, "result": "missing", "text": "办件不存在"}
            events = uow.repo.events_for_case(case.id)
            broken = audit.check_chain(case.case_no, events)
            if broken is None and (not events or case.last_hash != events[-1].hash or case.event_seq != len(events)):
                broken = audit.Divergence(len(events) or None, None, "办件记录的最后哈希或事件数与事件链不符")
            if broken is not None:
                return {"case_no": case.case_no, "result": "refused",
                        "text": f"事件链不完整，不能按事件记录修复，请人工核查：{broken}"}
            calendar = self.calendar(uow)
            corrections: list[dict] = []
            replayed, divergence = audit.replay(events, self._version_by_hash(uow), calendar, corrections=corrections)
            if divergence is not None or replayed is None:
                return {"case_no": case.case_no, "result": "refused",
                        "text": f"重放不能完成，不能按事件记录修复，请人工核查：{divergence or '没有提交申请事件'}"}
            ps = self.version(case.version_id)
            if replayed.ps.hash != ps.hash:
                return {"case_no": case.case_no, "result": "refused",
                        "text": "重放得到的流程版本与办件记录的版本不同，不能按事件记录修复，请人工核查"}
            clock_rows = uow.repo.clocks_for_case(case.id)
            try:
                stored = audit.stored_run(ps, case.process_id, case.state, case.case_vars, clock_rows, calendar)
                difference = audit.compare(audit.normalized(stored), audit.normalized(replayed))
            except (ValueError, KeyError, TypeError, BangbanError) as exc:
                difference = audit.Divergence(None, None, f"存储的状态无法读取（{type(exc).__name__}）")
            if difference is None and not corrections:
                return {"case_no": case.case_no, "result": "intact", "text": "完整，无需修复"}
            summary = f"{len(corrections)} 个步骤的记录结果与重放不同" if corrections else "存储的状态与重放不同"
            if difference is not None:
                summary += f"；{difference}"
            if dry_run:
                return {"case_no": case.case_no, "result": "would_repair", "text": f"可以修复：{summary}",
                        "corrected": corrections}
            state = replayed.dump()
            buffer = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
            existing = uow.repo.inbox_for_case(case.id)
            new_ready = {(t.element_id, t.title or ""): t.id for t in replayed.ready_tasks()}
            reissued = {r.task_id: new_ready[(r.element_id, r.title or "")] for r in existing
                        if (r.element_id, r.title or "") in new_ready}
            buffer.add("state_repaired", at, None, None, {
                "by": by[:100], "reason": reason[:500], "summary": summary[:1000],
                "old_state_hash": hashlib.sha256(case.state.encode("utf-8", "surrogatepass")).hexdigest(),
                "new_state_hash": hashlib.sha256(state.encode("utf-8")).hexdigest(),
                "status": [case.status, replayed.status()], "corrected": corrections,
                "reissued_tasks": sorted([old, new] for old, new in reissued.items())})
            # The replay's own notes and notices were given when the steps happened: only its state is taken.
            replayed.notes, replayed.notifications = [], []
            replayed.loaded_clock_keys = {r.key for r in clock_rows}
            replayed.changed_clocks = set(replayed.clocks)
            replayed.loaded_timers = None
            uow.repo.delete_clocks(case.id, {r.key for r in clock_rows} - set(replayed.clocks))
            self._save(uow, case, ps, replayed, buffer, at, existing=existing, reissued=set(reissued))
            text = f"办件 {case.case_no} 的状态已按事件记录重放修复（{summary}）"[:500]
            uow.repo.add_notifications([{"recipient": f"role:{role}", "case_id": case.id, "text": text, "created_at": at}
                                        for role in ("process_owner", "supervisor")])
            uow.commit()
        return {"case_no": case.case_no, "result": "repaired", "text": f"已修复：{summary}", "corrected": corrections}

    def audit_case_numbers(self) -> list[str]:
        with self.db.unit_of_work(write=False) as uow:
            return [r.case_no for r in uow.repo.all_case_numbers()]

    def audit_steps(self, actor: Actor, case_no: str) -> dict:
        """The case replayed event by event: for each step, where the case was (completed and open elements)."""
        from . import audit
        self.check_permission(actor, "audit")
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            events = uow.repo.events_for_case(case.id)
            calendar = self.calendar(uow)
            steps: dict[int, dict] = {}

            def record(seq: int, run) -> None:
                steps[seq] = {"completed": sorted(set(run.completed_elements())),
                              "current": sorted({t.element_id for t in run.ready_tasks()}),
                              "open": [{"element": t.element_id, "name": t.name, "title": t.title} for t in run.ready_tasks()],
                              "status": run.status()}
            _, divergence = audit.replay(events, self._version_by_hash(uow), calendar, on_step=record)
        ps = self.version(case.version_id)
        from .views import timeline
        names = {}
        with self.db.unit_of_work(write=False) as uow:
            names = uow.repo.display_names([e.actor_name for e in events])
        lines = timeline(ps, events, names, {c: r["name"] for c, r in ps.manifest["roles"].items()})
        out = []
        for line, e in zip(lines, events, strict=True):
            state = steps.get(e.seq) or (out[-1]["state"] if out else {"completed": [], "current": [], "open": []})
            out.append({"seq": e.seq, "event": line, "changes": e.payload.get("changes") or {}, "state": state,
                        "version": e.payload.get("version") or e.payload.get("to")})
        return {"case": self._case_header(case, ps), "steps": out,
                "divergence": divergence.to_dict() if divergence else None}

    def export_dossier(self, actor: Actor | None, case_no: str) -> dict:
        """One file with everything needed to check the case elsewhere: events, data, documents, process versions."""
        if actor is not None:
            self.check_permission(actor, "audit")
        with self.db.unit_of_work(write=False) as uow:
            case = uow.repo.case_by_no(str(case_no)[:32]) if str(case_no).isprintable() else None
            if case is None:
                raise NotFound("办件不存在")
            events = uow.repo.events_for_case(case.id)
            documents = [dict(r._mapping) for r in uow.repo.documents_full(case.id)]
            clocks = [dict(r._mapping) for r in uow.repo.clocks_for_case(case.id)]
            hashes = {e.payload.get("version") for e in events if e.type == "case_started"} | \
                     {e.payload.get("to") for e in events if e.type == "migrated"} | {self.version(case.version_id).hash}
            versions = {}
            for h in sorted(x for x in hashes if x):
                row = uow.repo.version_by_hash(h)
                versions[h] = dict(uow.repo.version_files(row.id).files)
            calendar = self._calendar_rows(uow)
        return _jsonable({
            "format": "bangban-dossier/1", "exported_at": now(), "case": {
                k: getattr(case, k) for k in ("case_no", "process_id", "title", "unit_name", "status", "stage",
                                              "created_at", "updated_at", "last_hash", "case_vars", "state")},
            "version": self.version(case.version_id).hash,
            "events": [dict(e._mapping) for e in events], "documents": documents, "clocks": clocks,
            "versions": versions, "calendar": calendar})

    @staticmethod
    def _calendar_rows(uow: UnitOfWork) -> dict:
        return {"years": [dict(r._mapping) for r in uow.repo.calendar_years()],
                "days": [dict(r._mapping) for r in uow.repo.calendar_days()]}

    # ---- supervision ---------------------------------------------------------------------------------------------
    def supervision(self, actor: Actor, department: str | None = None) -> dict:
        """Yellow and red items across all cases, worst first, with their department and lead agent."""
        self._check_permission(actor, "supervision")
        at, cal = now(), self.calendar()
        with self.db.unit_of_work(write=False) as uow:
            rows = uow.repo.warning_clocks(at, (department or "")[:32] or None)
            names = uow.repo.display_names([r.lead_user for r in rows])
        departments = self.department_names()
        items = []
        for r in rows:
            clock = ClockState.from_row(r)
            clock.compute(cal, at)
            if clock.level not in ("yellow", "red"):
                continue
            items.append(dict(clock.describe(cal, at), case_no=r.case_no, case_title=r.case_title, unit_name=r.unit_name,
                              department_name=departments.get(r.department or "", r.department),
                              lead_name=names.get(r.lead_user or "", r.lead_user)))
        items.sort(key=lambda i: (i["level"] != "red", i["left"]))
        return {"items": items, "red": sum(i["level"] == "red" for i in items),
                "yellow": sum(i["level"] == "yellow" for i in items), "now": at}

    def advance_demo_clock(self, actor: Actor, days: int) -> int:
        """Demo mode: run the service's clock ``days`` ahead and fire what fell due; returns the cases ticked."""
        from .clock import clock
        from .worker import run_once
        self._check_permission(actor, "supervision")
        clock.shift(timedelta(days=days))
        return run_once(self)

    # ---- time passing (the timer worker) ---------------------------------------------------------------------------
    def tick_next(self, skip_cases: set[int] = frozenset()) -> int | None:
        """Fire the due timers (and refresh the clock levels) of one case, in one transaction with the case row
        locked. Returns the case id, or None when nothing is due."""
        at = now()
        with clock.at(at), self.db.unit_of_work() as uow:
            case = uow.repo.next_due_case(at, skip_cases)
            if case is None:
                return None
            try:
                self._tick(uow, case, at)
            except ProcessDefinitionError as exc:
                raise CaseFailed(case.id, case.case_no, exc) from exc
            uow.commit()
        return case.id

    def report_process_error(self, case_no: str | None, case_id: int | None, exc: ProcessDefinitionError) -> None:
        """A diagram's code failed for one case: tell the process owners (in a transaction of its own, since the
        case's own transaction has been rolled back)."""
        text = f"办件 {case_no or ''} 的流程运行出错，办件保持原状，请检查流程定义：{exc.message}"[:500]
        with self.db.unit_of_work() as uow:
            uow.repo.add_notifications([{"recipient": "role:process_owner", "case_id": case_id, "text": text,
                                         "created_at": now()}])
            uow.commit()

    def _tick(self, uow: UnitOfWork, case, at: datetime) -> None:
        ps = self.version(case.version_id)
        run = self._load_run(uow, case, ps)
        run.tick()
        run.loaded_timers = None  # always re-project: a timer row that did not fire must not stay due
        events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
        self._save(uow, case, ps, run, events, at)

    # ---- messages (termination) ----------------------------------------------------------------------------------
    def case_actions(self, actor: Actor, case, ps: ProcessSet, run: CaseRun, ready_ids: set[str],
                     task: TaskInfo | None = None) -> list[dict]:
        """The manifest's messages this actor may send now: to the case, or (``from_task``) from one of its tasks."""
        out = []
        for key, msg in ps.manifest.get("messages", {}).items():
            if bool(msg.get("from_task")) != (task is not None):
                continue
            if task is not None and not task.properties.get(msg["from_task"]):
                continue
            if self._may_send(actor, case, run, msg) and run.accepts_message(msg["name"], msg.get("while_waiting_for")) \
                    and not (set(msg.get("blocked_by_ready", [])) & ready_ids):
                out.append({"key": key, "label": msg.get("label", msg["name"]), "form": msg["form"]})
        return out

    @staticmethod
    def _may_send(actor: Actor, case, run: CaseRun, msg: dict) -> bool:
        roles = [r for r in msg.get("roles", []) if actor.has(r)]
        if not roles:
            return False
        if roles == ["applicant"]:
            return actor.unit_id == case.unit_id
        for var in msg.get("actor_vars", []):
            who = run.case_vars.get(var)
            if who:
                return who == actor.username
        return True

    def message_form(self, actor: Actor, case_no: str, key: str, task_id: str | None = None) -> dict:
        with self.db.unit_of_work(write=False) as uow:
            case, ps, run, msg, task = self._message_context(uow, actor, case_no, key, task_id)
            schema = self._schema(uow, ps, msg["form"])
        return {"case": self._case_header(case, ps), "schema": schema, "label": msg.get("label", msg["name"]), "key": key,
                "task": self._task_dict(task) if task else None}

    def _message_context(self, uow: UnitOfWork, actor: Actor, case_no: str, key: str, task_id: str | None = None):
        if task_id is not None:
            row = self._ready_row(uow, task_id)
            case = uow.repo.case_by_id(row.case_id, lock=True)
            case_no = case.case_no
        case = self._visible_case(uow, actor, case_no, lock=True)
        ps = self.version(case.version_id)
        msg = ps.manifest.get("messages", {}).get(key)
        if msg is None:
            raise NotFound("没有这项操作")
        access.check_read_only(actor, ps.manifest["roles"])
        run = self._load_run(uow, case, ps)
        task = None
        if msg.get("from_task"):
            task = run.ready_task(task_id) if task_id else None
            if task is None or not task.properties.get(msg["from_task"]):
                raise NotFound("这项操作须从相应的待办发起")
            access.check_may_act(actor, _TaskAccess(task, case.unit_id))
        if not self._may_send(actor, case, run, msg):
            raise Forbidden("您无权对本办件办理此操作")
        ready_ids = {t.element_id for t in run.ready_tasks()}
        if set(msg.get("blocked_by_ready", [])) & ready_ids:
            raise Conflict(msg.get("blocked_message", "本办件已有待处理的同类申请，请先处理该申请"))
        if case.status != "active" or not run.accepts_message(msg["name"], msg.get("while_waiting_for")):
            raise Conflict("本办件当前不能办理此操作")
        return case, ps, run, msg, task

    def send_message(self, actor: Actor, case_no: str | None, key: str, form_data: dict, task_id: str | None = None) -> dict:
        """Send one of the manifest's messages (申请终止, 决定终止, 申请延期 ...) to a case, with its form."""
        try:
            return self._send_message(actor, case_no, key, form_data, task_id)
        except ProcessDefinitionError as exc:
            self.report_process_error(case_no, None, exc)
            raise

    def _send_message(self, actor: Actor, case_no: str | None, key: str, form_data: dict, task_id: str | None) -> dict:
        with clock.at(now()), self.db.unit_of_work() as uow:
            case, ps, run, msg, task = self._message_context(uow, actor, case_no, key, task_id)
            data = forms.validate(self._schema(uow, ps, msg["form"]), form_data)
            at = now()
            role = self._acting_role(actor, msg.get("roles", []))
            payload = dict(data, by=actor.username, by_name=actor.display_name, role=role,
                           at=at.astimezone(LOCAL_TZ).isoformat(timespec="seconds"))
            if task is not None:
                payload.update(clock=task.clock_key, title=task.title or task.name, task=task.name)
            events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
            run.send(msg["name"], payload)
            events.add(msg.get("event_type", "message"), at, actor, role,
                       {"message": msg["name"], "form": data, "title": payload.get("title"), "payload": payload},
                       task.id if task else None, task.element_id if task else None, task.name if task else None)
            self._save(uow, case, ps, run, events, at, actor=actor)
            uow.commit()
        return {"case_no": case.case_no}

    # ---- reading cases -----------------------------------------------------------------------------------------
    def _visible_case(self, uow: UnitOfWork, actor: Actor, case_no: str, lock: bool = False):
        case_no = str(case_no)
        case = uow.repo.case_by_no(case_no, lock=lock) if len(case_no) <= 32 and case_no.isprintable() else None
        scope = access.case_scope(actor, self.current.manifest["roles"])
        if case is None or not uow.repo.case_visible(case.id, scope):
            raise NotFound("办件不存在或您无权查看")
        return case

    def search_cases(self, actor: Actor, q: str | None = None, unit: str | None = None, project: str | None = None,
                     status: str | None = None, page: int = 1) -> dict:
        page = max(1, min(int(page or 1), 10_000))
        scope = access.case_scope(actor, self.current.manifest["roles"])
        with self.db.unit_of_work(write=False) as uow:
            rows, total = uow.repo.search_cases(scope, _term(q, 32), _term(unit, 100), _term(project, 100),
                                                _term(status, 16), PAGE_SIZE, (page - 1) * PAGE_SIZE)
        outcomes = self.current.manifest.get("outcomes", {})
        return {"cases": [dict(r._mapping, status_name=outcomes.get(r.status, r.status)) for r in rows],
                "total": total, "page": page, "pages": max(1, -(-total // PAGE_SIZE))}

    def _case_header(self, case, ps: ProcessSet) -> dict:
        outcomes = ps.manifest.get("outcomes", {})
        return {"case_no": case.case_no, "title": case.title, "unit_name": case.unit_name, "status": case.status,
                "status_name": outcomes.get(case.status, case.status), "stage": case.stage,
                "created_at": case.created_at, "updated_at": case.updated_at, "version": ps.hash[:12],
                "due_date": case.due_date, "warning": case.warning,
                "process_name": ps.manifest["processes"].get(case.process_id, {}).get("name", case.process_id)}

    def get_case(self, actor: Actor, case_no: str) -> dict:
        """Everything the case page shows: progress, items, open tasks, timeline, documents, actions."""
        from .views import case_view
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            ps = self.version(case.version_id)
            run = self._load_run(uow, case, ps)
            inbox = uow.repo.inbox_for_case(case.id)
            events = uow.repo.events_for_case(case.id)
            documents = uow.repo.documents_for_case(case.id)
            names = uow.repo.display_names([r.assignee for r in inbox] + [e.actor_name for e in events]
                                           + [case.lead_user])
            actions = self.case_actions(actor, case, ps, run, {r.element_id for r in inbox}) \
                if case.status == "active" else []
        return case_view(self, actor, case, ps, run, inbox, events, documents, names, actions)

    def case_diagram(self, actor: Actor, case_no: str) -> dict:
        """The BPMN of the case's own version with what is done and what is open, for the diagram viewer."""
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            ps = self.version(case.version_id)
            run = self._load_run(uow, case, ps)
            inbox = uow.repo.inbox_for_case(case.id)
        bpmn = next((name for name, data in ps.files.items()
                     if name.endswith(".bpmn") and f'id="{case.process_id}"'.encode() in data), None)
        return {"case_no": case.case_no, "process_id": case.process_id, "version": ps.hash[:12], "file": bpmn,
                "xml": ps.files[bpmn].decode("utf-8") if bpmn else None,
                "completed": sorted(set(run.completed_elements())),
                "current": sorted({r.element_id for r in inbox}),
                "tasks": [{"element": r.element_id, "name": r.name, "title": r.title} for r in inbox]}

    def get_document(self, actor: Actor, case_no: str, doc_id: int) -> dict:
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            doc = uow.repo.document(case.id, int(doc_id)) if 0 < int(doc_id) < MAX_ID else None
            if doc is None:
                raise NotFound("单据不存在")
        return dict(doc._mapping, case_no=case.case_no)

    def application(self, actor: Actor, case_no: str) -> dict:
        """The application form as submitted (for printing), with field titles."""
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            first = uow.repo.first_event(case.id)
        ps = self.version(case.version_id)
        schema = ps.form(ps.process(case.process_id)["start_form"])
        from .views import display_fields
        return {"case": self._case_header(case, ps), "schema": schema,
                "fields": display_fields(ps, schema, first.payload.get("form", {})), "submitted_at": first.at}


def _note_ready(events: EventBuffer, ready: list[TaskInfo]) -> None:
    """Record on the step's last event which tasks were open after it: replay checks every step against it."""
    rows = events.sealed()
    if rows:
        rows[-1]["payload"] = dict(rows[-1]["payload"], ready_after=sorted([t.element_id, t.title or ""] for t in ready))


def _jsonable(value):
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


class CaseFailed(Exception):
    """Running one case failed because of its process definition (the case is left as it was)."""

    def __init__(self, case_id: int, case_no: str, error: ProcessDefinitionError):
        super().__init__(error.message)
        self.case_id, self.case_no, self.error = case_id, case_no, error


class _TaskAccess:
    """Adapts a ready task to the shape ``access.check_may_act`` reads."""

    def __init__(self, task: TaskInfo, unit_id: int):
        self.role, self.department, self.assignee, self.unit_id = task.role, task.department, task.assignee, unit_id

