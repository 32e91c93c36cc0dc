"""A case's workflow in memory: start, load, what is ready for whom, complete, send messages, save.

Slightly over 400 lines: the meaning of every task property lives here, in one place a process owner's reference
(the list below) can point to.

This is where the properties a process owner writes on a user task (``spiffworkflow:properties``) get their
meaning; nothing here knows any particular task:

- ``formJsonSchemaFilename``: the task's form (``processes/forms/``).
- ``stage``: which of the manifest's stages the task belongs to (drives the case's progress bar).
- ``assignee``: an expression naming the one user who may act (e.g. ``lead_officer``); empty = the lane's pool.
  A supervisor's 改派 (``engine.usecases.reassign``) overrides it for one open task (kept in that task's data under
  ``reassigned_to`` until it is done), or replaces a person in the case's variables (the case's lead from then on).
- ``department``: an expression naming the department whose specialists may act (e.g. ``item['department']``).
- ``title``: an expression that tells instances apart (e.g. ``item['name']``).
- ``record_actor``: a case variable that receives the username of whoever completes the task.
- ``document``: a kind of numbered document (manifest ``numbers``) issued when the task completes.
- ``form_key``: keep the submitted form under this one key instead of merging its fields into the task data.
- ``form_defaults``: an expression giving initial values for the form.
- ``show``: comma-separated variables shown beside the form (e.g. what a department asked to be corrected).
- ``clock`` (with ``clock_limit``, ``clock_title``, ``clock_department``): the task runs under a statutory clock of
  that many working days (a department's handling of an item, a signature, an evaluation, a 差评 回访 or 整改); the
  clock named by the expression starts the first time such a task is ready.
- ``clock_pause`` (with ``clock_pause_reason``): while this task is open, that clock is paused (补正).
- ``clock_stop``: when this element completes, that clock stops (the item is decided).
- ``clock_stop_all`` (a reason expression): when this element completes, every running or paused clock of the case
  stops with that reason (e.g. on the termination boundary: the items' handling ends without a decision).
- ``ends_tasks``: comma-separated element ids; when this element completes, the open tasks of those elements end
  without being done (e.g. a pending 督办 or 延期 approval when the case is terminated).
- ``clock_extend`` (with ``clock_extend_days``, ``clock_extend_reason``): when this task completes and the
  expression names a clock, the clock is extended (延期) by that many working days.
- ``notify`` (with ``notify_text``): when this element completes, notify these users (``name`` or ``user:name``),
  departments (``dept:code``), roles (``role:code``), or the case's applying unit (``unit:``: all its handlers).
- ``warns_clock`` with ``warning_level`` (on a timer event): when it fires, that level of that clock counts as
  announced; ``clock_due`` then keeps later timers of the same level quiet until the clock moves.
End events (or any element) may carry ``outcome`` (completed, or one of the manifest's ``final_outcomes``: refused /
terminated / withdrawn): the case's status from when that element completes. A final outcome ends every open task;
``completed`` does not: what the diagram still runs after it (e.g. the evaluations after 办结 at delivery) goes on, as
tasks with their clocks and timers, while the case shows 已办结. Whatever the diagram says, a case with a final outcome
or whose workflow has ended has no running clock: any left stops, with the outcome as its reason.
Timer expressions may call ``clock_due(key, 'yellow'|'red')``: the moment that clock turns yellow or red.

Expressions see the task's data overlaid with the case variables (``record_actor`` results and form fields
marked ``x-case-var``), so a task outside a subprocess still sees who leads the case.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from . import deadlines
from . import spiff_runtime as rt
from .clock import now as clock_now
from .deadlines import ClockState
from .errors import Conflict
from .processes import ProcessSet
from .sandbox import SandboxViolation
from .script_errors import step_error
from .workcal import WorkCalendar

REASSIGNED = "reassigned_to"   # the task-data key of a 改派 (see ``CaseRun.reassign``)
RECIPIENT_KINDS = ("user:", "dept:", "role:", "unit:")   # ``notify``: a bare name is a user; ``unit:`` = the case's unit


@dataclass
class TaskInfo:
    id: str
    element_id: str
    name: str
    title: str | None
    lane: str | None
    role: str | None
    department: str | None
    assignee: str | None
    stage: str | None
    form: str
    properties: dict
    data: dict = field(repr=False)
    clock_key: str | None = None


def _json_default(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"不可序列化的数据类型 {type(value).__name__}")


class CaseRun:
    """One case's workflow, bound to the process set (version) it is pinned to."""

    def __init__(self, ps: ProcessSet, process_id: str, wf, case_vars: dict, clocks: dict[str, ClockState] | None = None,
                 calendar: WorkCalendar | None = None):
        self.ps = ps
        self.process_id = process_id
        self.wf = wf
        self.case_vars = case_vars
        self.clocks: dict[str, ClockState] = clocks if clocks is not None else {}
        self.calendar = calendar or WorkCalendar()
        self.changed_clocks: set[str] = set()
        self.notes: list[tuple[str, dict]] = []            # (event type, payload) for the case's event log
        self.notifications: list[tuple[str, str]] = []     # (recipient, text)
        self.reached: list[rt.CompletedTask] = []          # every element completed in this run (engine.notices)
        self._ready: list[TaskInfo] | None = None
        self.acting_user: str | None = None
        self.last_changes: dict[str, list] = {}   # field: [old, new] of the task just completed
        self.loaded_clock_keys: set[str] = set(self.clocks)
        self.loaded_timers: list = []
        self.calendar_choices: list[WorkCalendar] = []  # after an audit replay: calendars its clocks may last have used

    # ---- lifecycle -----------------------------------------------------------------------------------
    @classmethod
    def start(cls, ps: ProcessSet, process_id: str, data: dict, calendar: WorkCalendar | None = None,
              facts: dict | None = None) -> "CaseRun":
        """``facts``: what the service found in its registers when the case was submitted (manifest ``case_facts``:
        whether a claimed key project is designated, the station that submitted it ...); they join the start data
        the diagram's conditions see and the case variables, and are recorded beside the form on ``case_started``."""
        spec, subs = ps.specs[process_id]
        case_vars = {var: None for var in sorted(ps.actor_vars | ps.case_var_fields)}
        start_data = dict(case_vars)
        start_data.update(data)
        for name in ps.case_var_fields:
            if data.get(name) is not None:
                case_vars[name] = data[name]
        if facts:
            start_data.update(facts)
            case_vars.update(facts)
        run = cls(ps, process_id, None, case_vars, calendar=calendar)

        def begin(completed: list) -> None:
            run.wf = rt.new_workflow(spec, subs, ps.script_engine, start_data, completed)
        run._step(begin)
        return run

    @classmethod
    def load(cls, ps: ProcessSet, process_id: str, state: str, case_vars: dict,
             clocks: dict[str, ClockState] | None = None, calendar: WorkCalendar | None = None) -> "CaseRun":
        spec, subs = ps.specs[process_id]
        try:
            parsed = orjson.loads(state)
        except orjson.JSONDecodeError:      # what only the standard library reads (NaN written by an older release)
            parsed = json.loads(state)
        wf = rt.load_state(parsed, spec, subs, ps.script_engine)
        return cls.resume(ps, process_id, wf, case_vars, clocks, calendar)

    @classmethod
    def resume(cls, ps: ProcessSet, process_id: str, wf, case_vars: dict,
               clocks: dict[str, ClockState] | None = None, calendar: WorkCalendar | None = None) -> "CaseRun":
        """A case's workflow from an already deserialized workflow object (``engine.wfcache``) that is exactly
        the stored state of the case's row: the same as :meth:`load` of that state, without parsing it."""
        run = cls(ps, process_id, wf, dict(case_vars), clocks, calendar)
        run.loaded_timers = rt.waiting_timers(wf) if ps.uses_clocks else []
        return run

    def dump(self) -> str:
        """The stored form of the workflow: compact JSON, UTF-8 text as is. orjson writes it about ten times faster
        than the standard library; what orjson refuses (an integer beyond 64 bits) falls back to ``json``."""
        state = rt.dump_state(self.wf)
        try:
            return orjson.dumps(state, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")
        except (orjson.JSONEncodeError, TypeError):
            return json.dumps(state, ensure_ascii=False, separators=(",", ":"), default=_json_default)

    # ---- reading ----------------------------------------------------------------------------------------
    def _eval(self, expression: str | None, data: dict, what: str) -> Any:
        if not expression:
            return None
        context = dict(data)
        context.update({k: v for k, v in self.case_vars.items() if v is not None or k not in context})
        try:
            return rt.evaluate(self.wf, expression, context)
        except Exception as exc:  # a process owner's expression: report it as theirs
            raise step_error(f"流程定义中的{what}表达式「{expression}」无法计算：", exc) from exc

    def holds(self, expression: str, task: TaskInfo, form_data: dict, what: str) -> bool:
        """Whether a process owner's condition holds for a task just submitted: its data with the form's values."""
        return bool(self._eval(expression, {**task.data, **form_data}, what))

    def _info(self, t: rt.ReadyTask) -> TaskInfo:
        p = t.properties
        assignee = t.data.get(REASSIGNED) or self._eval(p.get("assignee"), t.data, "办理人")
        department = self._eval(p.get("department"), t.data, "部门")
        title = self._eval(p.get("title"), t.data, "标题")
        clock = p.get("clock") or p.get("clock_pause")
        clock_key = self._eval(clock, t.data, "时限") if clock else None
        return TaskInfo(
            id=t.id, element_id=t.element_id, name=t.name, title=str(title) if title is not None else None,
            lane=t.lane, role=self.ps.role_of_lane(t.lane), department=department or None,
            assignee=assignee or None, stage=p.get("stage"), form=p.get("formJsonSchemaFilename", ""),
            properties=p, data=t.data, clock_key=str(clock_key) if clock_key is not None else None,
        )

    def ready_tasks(self) -> list[TaskInfo]:
        if self._ready is None:
            with self._clock_context():
                self._ready = [self._info(t) for t in rt.ready_user_tasks(self.wf)]
        return self._ready

    def ready_task(self, task_id: str) -> TaskInfo | None:
        for t in self.ready_tasks():
            if t.id == task_id:
                return t
        return None

    def form_defaults(self, task: TaskInfo) -> dict:
        """Initial form values: only what the task's ``form_defaults`` expression gives (a form starts blank,
        so a task met again in a loop never shows its previous answer as a suggestion)."""
        schema_fields = self.ps.form(task.form).get("properties", {})
        extra = self._eval(task.properties.get("form_defaults"), task.data, "表单默认值")
        if not isinstance(extra, dict):
            return {}
        return {k: v for k, v in extra.items() if k in schema_fields and v is not None}

    def status(self) -> str:
        outcomes = rt.reached_outcomes(self.wf)
        for outcome in [*self.ps.manifest.get("final_outcomes", ["terminated", "refused"]), "completed", *outcomes]:
            if outcome in outcomes:
                return outcome
        if self.wf.completed:
            return "completed"
        return "active"

    def stage(self, previous: str | None, ready: list[TaskInfo]) -> str | None:
        order = self.ps.stages
        stages = [t.stage for t in ready if t.stage in order]
        if stages:
            return max(stages, key=order.index)
        return previous

    def lead(self) -> str | None:
        for var in self.ps.manifest.get("lead_vars", []):
            if self.case_vars.get(var):
                return self.case_vars[var]
        return None

    def value(self, name: str):
        """What the case knows now of a variable: its value in the most recently completed task that has it."""
        return rt.latest_value(self.wf, name)

    def values(self, name: str) -> list:
        """Every value a variable took in completed tasks (one per multi-instance child, and repeats)."""
        return rt.all_values(self.wf, name)

    def latest_by(self, name: str, key: str) -> dict:
        """The latest value of a dict variable per its ``key`` field (e.g. each evaluation's result as it stands)."""
        return rt.latest_values_by(self.wf, name, key)

    def completed_of(self, element_id: str) -> list[tuple[dict, dict, str]]:
        """Every completion of a diagram element, oldest first: (its data, its properties, its task id)."""
        return [(data, props, task_id) for _, data, props, task_id in rt.completed_of(self.wf, element_id)]

    def evaluate(self, expression: str, data: dict, what: str) -> Any:
        """A process owner's expression over some task data (and the case variables), in the sandbox."""
        with self._clock_context():
            return self._eval(expression, data, what)

    def completed_elements(self) -> list[str]:
        return rt.completed_elements(self.wf)

    # ---- changing ---------------------------------------------------------------------------------------
    def complete(self, task: TaskInfo, username: str, form_data: dict) -> dict:
        """Complete a READY task with validated form data; returns what went into the task data."""
        self.acting_user = username
        spiff_task = rt.find_ready_task(self.wf, task.id)
        if spiff_task is None:
            raise Conflict("该待办已被处理或已不存在，请刷新后查看")
        rt.pop_task_value(spiff_task, REASSIGNED)     # a 改派 holds for this open task only, never for what follows
        key = task.properties.get("form_key")
        submitted = {key: form_data} if key else dict(form_data)
        var = task.properties.get("record_actor")
        if var:
            submitted[var] = username
            self.case_vars[var] = username
        for name in self.ps.case_var_fields:
            if name in form_data and form_data[name] is not None:
                self.case_vars[name] = form_data[name]
        self.last_changes = {k: [task.data.get(k), v] for k, v in submitted.items() if task.data.get(k) != v}
        self._step(lambda completed: rt.complete_task(self.wf, spiff_task, submitted, completed),
                   user_task=rt.CompletedTask(task.id, task.element_id, task.name, task.properties,
                                              dict(task.data, **submitted), False))
        return submitted

    def reassign(self, task: TaskInfo, username: str, lead: bool = False) -> list[str]:
        """改派: from now on ``username`` alone may act on this open task. With ``lead``, the person who held the task
        is also replaced in every case variable naming them (e.g. ``lead_officer``, ``chief_officer``), so the tasks
        still to come that name them go to the new person too. Returns those variables (sorted)."""
        spiff_task = rt.find_ready_task(self.wf, task.id)
        if spiff_task is None:
            raise Conflict("该待办已被处理或已不存在，请刷新后查看")
        replaced = []
        if lead and task.assignee:
            replaced = sorted(k for k, v in self.case_vars.items() if v == task.assignee)
            for var in replaced:
                self.case_vars[var] = username
        rt.set_task_value(spiff_task, REASSIGNED, username)
        self._ready = None
        return replaced

    def end_open_tasks(self) -> None:
        """A final outcome (terminated, refused, withdrawn) ends every task of the case that is still open."""
        if not self.wf.completed:
            rt.cancel(self.wf)

    def accepts_message(self, name: str, while_waiting_for: str | None = None) -> bool:
        """Whether ``name`` would be caught now; ``while_waiting_for`` also requires that message to be awaited."""
        waiting = rt.waiting_message_names(self.wf)
        if while_waiting_for and while_waiting_for not in waiting:
            return False
        return name in waiting or name in rt.triggering_message_names(self.wf)

    def send(self, name: str, payload: dict) -> None:
        if not self.accepts_message(name):
            raise Conflict("本办件当前不能办理此操作")
        self._step(lambda completed: rt.send_message(self.wf, name, payload, completed))

    def tick(self) -> None:
        """Let time pass: fire the timers now due, bring every clock's level up to date."""
        self._step(lambda completed: None, force_timers=True)

    # ---- clocks ---------------------------------------------------------------------------------------------
    @contextmanager
    def _clock_context(self):
        token = deadlines.CURRENT.set(self.clocks)
        try:
            yield
        finally:
            deadlines.CURRENT.reset(token)

    def _step(self, operation, user_task: rt.CompletedTask | None = None, force_timers: bool = False) -> None:
        """Run one change of the workflow, then settle what follows from it: notifications, clocks, timers."""
        completed: list[rt.CompletedTask] = []
        with self._clock_context():
            try:
                operation(completed)
                if user_task is not None:
                    completed.insert(0, user_task)
                for _ in range(5):
                    self._ready = None
                    moved = self._handle_completed(completed)
                    moved = self._sync_clocks() or moved
                    completed = []
                    if not moved and not force_timers:
                        break
                    force_timers = False
                    rt.reevaluate_timers(self.wf, completed)
                    if not completed:
                        break
            except (rt.WorkflowError, SandboxViolation, MemoryError) as exc:
                raise step_error("流程运行出错（已通知流程管理员，办件保持原状）：", exc) from exc
        status = self.status()
        final = status in self.ps.manifest.get("final_outcomes", [])
        if final:
            self.end_open_tasks()
        if (final or self.wf.completed) and any(c.stopped_at is None for c in self.clocks.values()):
            self.stop_all_clocks(f"办件{self.ps.manifest.get('outcomes', {}).get(status, status)}", clock_now())
            with self._clock_context():
                self._sync_clocks()
        self._ready = None

    def _handle_completed(self, completed: list[rt.CompletedTask]) -> bool:
        """Notifications, stopped and extended clocks of the elements just completed; whether a clock moved."""
        at = clock_now()
        moved = False
        for c in completed:
            self.reached.append(c)
            p = c.properties
            if c.timer:
                title = self._eval(p.get("title"), c.data, "标题") if p.get("title") else None
                self.notes.append(("timer_fired", {"timer": c.name, "element": c.element_id, "title": title}))
                if p.get("warns_clock") and p.get("warning_level"):
                    clock = self.clocks.get(str(self._eval(p["warns_clock"], c.data, "时限")))
                    if clock is not None and p["warning_level"] not in clock.warned:
                        clock.warned = [*clock.warned, p["warning_level"]]
                        self.changed_clocks.add(clock.key)
            if p.get("notify"):
                recipients = self._eval(p["notify"], c.data, "通知对象")
                text = str(self._eval(p.get("notify_text"), c.data, "通知内容") or c.name)
                for r in [recipients] if isinstance(recipients, str) else list(recipients or []):
                    if r:
                        r = str(r)
                        self.notifications.append((r if r.startswith(RECIPIENT_KINDS) else f"user:{r}", text[:500]))
            if p.get("clock_stop"):
                key = str(self._eval(p["clock_stop"], c.data, "时限"))
                clock = self.clocks.get(key)
                if clock is not None and clock.stopped_at is None:
                    self.notes.append(("clock_stopped", clock.stop(at)))
                    self.changed_clocks.add(key)
                    moved = True
            if p.get("clock_stop_all"):
                reason = str(self._eval(p["clock_stop_all"], c.data, "停止计时原因") or c.name)
                moved = self.stop_all_clocks(reason, at) or moved
            if p.get("ends_tasks"):
                ended = rt.end_ready_tasks(self.wf, [e.strip() for e in p["ends_tasks"].split(",") if e.strip()])
                moved = moved or bool(ended)
            if p.get("clock_extend"):
                key = self._eval(p["clock_extend"], c.data, "延期")
                clock = self.clocks.get(str(key)) if key else None
                if clock is not None:
                    days = int(self._eval(p.get("clock_extend_days"), c.data, "延期天数") or 0)
                    reason = str(self._eval(p.get("clock_extend_reason"), c.data, "延期理由") or "")
                    if days > 0:
                        self.notes.append(("clock_extended", clock.extend(days, reason, self.acting_user or "", at)))
                        self.changed_clocks.add(str(key))
                        moved = True
        return moved

    def stop_all_clocks(self, reason: str, at: datetime) -> bool:
        """Stop every clock still running or paused (the handling of its item ended without a decision)."""
        stopped = False
        for key, clock in sorted(self.clocks.items()):
            if clock.stopped_at is None:
                self.notes.append(("clock_stopped", clock.stop(at, reason)))
                self.changed_clocks.add(key)
                stopped = True
        return stopped

    def _sync_clocks(self) -> bool:
        """Start, pause and resume clocks from the tasks now open; recompute every running clock.
        Returns whether any clock's timing moved (its timers must then be evaluated again)."""
        at = clock_now()
        moved = False
        pausing = set()
        for t in self.ready_tasks():
            p = t.properties
            if p.get("clock"):
                key = str(self._eval(p["clock"], t.data, "时限"))
                if key not in self.clocks:
                    limit = int(self._eval(p.get("clock_limit"), t.data, "时限天数") or 0)
                    title = str(self._eval(p.get("clock_title"), t.data, "时限名称") or t.title or t.name)
                    dept = self._eval(p.get("clock_department"), t.data, "时限部门") or t.department
                    self.clocks[key] = ClockState(key, title, dept, limit, at)
                    self.notes.append(("clock_started", {"clock": key, "title": title, "limit_days": limit}))
                    self.changed_clocks.add(key)
                    moved = True
            if p.get("clock_pause"):
                key = str(self._eval(p["clock_pause"], t.data, "时限"))
                pausing.add(key)
                clock = self.clocks.get(key)
                if clock is not None and clock.paused_at is None and clock.stopped_at is None:
                    reason = str(self._eval(p.get("clock_pause_reason"), t.data, "暂停原因") or t.name)
                    self.notes.append(("clock_paused", clock.pause(at, reason)))
                    self.changed_clocks.add(key)
                    moved = True
        for key, clock in self.clocks.items():
            if clock.paused_at is not None and key not in pausing and clock.stopped_at is None:
                self.notes.append(("clock_resumed", clock.resume(at)))
                self.changed_clocks.add(key)
                moved = True
        for key, clock in self.clocks.items():
            before = (clock.due_date, clock.yellow_at, clock.red_at, clock.level, clock.provisional)
            clock.compute(self.calendar, at)
            if before != (clock.due_date, clock.yellow_at, clock.red_at, clock.level, clock.provisional):
                self.changed_clocks.add(key)
                if before[:3] != (clock.due_date, clock.yellow_at, clock.red_at):
                    moved = True
        return moved

    def recompute_clocks(self, calendar: WorkCalendar) -> None:
        """The calendar changed (a year's schedule entered): recompute the clocks and move their timers."""
        self.calendar = calendar
        self.tick()

    def migrate_to(self, target: ProcessSet, dry_run: bool = False) -> list[str]:
        """Move this case onto another version of its process, if nothing completed or started changed.
        Returns the reasons it cannot move (empty when it moved, or could move on a dry run)."""
        spec, subs = target.specs[self.process_id]
        blockers, plan = rt.migration_plan(self.wf, spec, subs)
        if blockers or dry_run:
            return blockers
        self.ps = target
        with self._clock_context():
            try:
                rt.migrate(self.wf, plan, spec, subs)
                rt.fill_open_data(self.wf, target.fact_names)   # facts the old version never recorded: unknown
            except (rt.WorkflowError, SandboxViolation, MemoryError) as exc:
                raise step_error("迁移时流程运行出错：", exc) from exc
        self.wf.script_engine = target.script_engine
        self._ready = None
        self._step(lambda completed: None, force_timers=True)
        return []

    def waiting_timers(self) -> list[tuple[str, str, datetime]]:
        return rt.waiting_timers(self.wf)
