"""A case's workflow in memory: start, load, what is ready for whom, complete, send messages, save.

This is where the properties a process owner writes on a user task (``spiffworkflow:properties``) get their
meaning; nothing here knows any particular task:

- ``formJsonSchemaFilename``: the task's form (``processes/forms/``).
- ``stage``: which of the manifest's stages the task belongs to (drives the case's progress bar).
- ``assignee``: an expression naming the one user who may act (e.g. ``lead_officer``); empty = the lane's pool.
- ``department``: an expression naming the department whose specialists may act (e.g. ``item['department']``).
- ``title``: an expression that tells instances apart (e.g. ``item['name']``).
- ``record_actor``: a case variable that receives the username of whoever completes the task.
- ``document``: a kind of numbered document (manifest ``numbers``) issued when the task completes.
- ``form_key``: keep the submitted form under this one key instead of merging its fields into the task data.
- ``form_defaults``: an expression giving initial values for the form.
- ``show``: comma-separated variables shown beside the form (e.g. what a department asked to be corrected).
End events may carry ``outcome`` (completed / refused / terminated): the case's status when reached.

Expressions see the task's data overlaid with the case variables (``record_actor`` results and form fields
marked ``x-case-var``), so a task outside a subprocess still sees who leads the case.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import spiff_runtime as rt
from .errors import Conflict, ProcessDefinitionError
from .processes import ProcessSet


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


def _json_default(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"不可序列化的数据类型 {type(value).__name__}")


class CaseRun:
    """One case's workflow, bound to the process set (version) it is pinned to."""

    def __init__(self, ps: ProcessSet, process_id: str, wf, case_vars: dict):
        self.ps = ps
        self.process_id = process_id
        self.wf = wf
        self.case_vars = case_vars

    # ---- lifecycle -----------------------------------------------------------------------------------
    @classmethod
    def start(cls, ps: ProcessSet, process_id: str, data: dict) -> "CaseRun":
        spec, subs = ps.specs[process_id]
        case_vars = {var: None for var in sorted(ps.actor_vars | ps.case_var_fields)}
        start_data = dict(case_vars)
        start_data.update(data)
        for name in ps.case_var_fields:
            if data.get(name) is not None:
                case_vars[name] = data[name]
        try:
            wf = rt.new_workflow(spec, subs, ps.script_engine, start_data)
        except rt.WorkflowError as exc:
            raise ProcessDefinitionError(f"流程运行出错：{exc}") from exc
        return cls(ps, process_id, wf, case_vars)

    @classmethod
    def load(cls, ps: ProcessSet, process_id: str, state: str, case_vars: dict) -> "CaseRun":
        spec, subs = ps.specs[process_id]
        wf = rt.load_state(json.loads(state), spec, subs, ps.script_engine)
        return cls(ps, process_id, wf, dict(case_vars))

    def dump(self) -> str:
        return json.dumps(rt.dump_state(self.wf), ensure_ascii=False, separators=(",", ":"), default=_json_default)

    # ---- reading ----------------------------------------------------------------------------------------
    def _eval(self, expression: str | None, data: dict, what: str) -> Any:
        if not expression:
            return None
        context = dict(data)
        context.update({k: v for k, v in self.case_vars.items() if v is not None or k not in context})
        try:
            return rt.evaluate(self.wf, expression, context)
        except Exception as exc:  # a process owner's expression: report it as theirs
            raise ProcessDefinitionError(f"流程定义中的{what}表达式「{expression}」无法计算：{exc}") from exc

    def _info(self, t: rt.ReadyTask) -> TaskInfo:
        p = t.properties
        assignee = self._eval(p.get("assignee"), t.data, "办理人")
        department = self._eval(p.get("department"), t.data, "部门")
        title = self._eval(p.get("title"), t.data, "标题")
        return TaskInfo(
            id=t.id, element_id=t.element_id, name=t.name, title=str(title) if title is not None else None,
            lane=t.lane, role=self.ps.role_of_lane(t.lane), department=department or None,
            assignee=assignee or None, stage=p.get("stage"), form=p.get("formJsonSchemaFilename", ""),
            properties=p, data=t.data,
        )

    def ready_tasks(self) -> list[TaskInfo]:
        return [self._info(t) for t in rt.ready_user_tasks(self.wf)]

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
        for outcome in ("terminated", "refused", "completed"):
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

    def completed_elements(self) -> list[str]:
        return rt.completed_elements(self.wf)

    # ---- changing ---------------------------------------------------------------------------------------
    def complete(self, task: TaskInfo, username: str, form_data: dict) -> dict:
        """Complete a READY task with validated form data; returns what went into the task data."""
        spiff_task = rt.find_ready_task(self.wf, task.id)
        if spiff_task is None:
            raise Conflict("该待办已被处理或已不存在，请刷新后查看")
        key = task.properties.get("form_key")
        submitted = {key: form_data} if key else dict(form_data)
        var = task.properties.get("record_actor")
        if var:
            submitted[var] = username
            self.case_vars[var] = username
        for name in self.ps.case_var_fields:
            if name in form_data and form_data[name] is not None:
                self.case_vars[name] = form_data[name]
        try:
            rt.complete_task(self.wf, spiff_task, submitted)
        except rt.WorkflowError as exc:
            raise ProcessDefinitionError(f"流程运行出错：{exc}") from exc
        return submitted

    def end_open_tasks(self) -> None:
        """A final outcome (terminated, refused) ends every task of the case that is still open."""
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
        try:
            rt.send_message(self.wf, name, payload)
        except rt.WorkflowError as exc:
            raise ProcessDefinitionError(f"流程运行出错：{exc}") from exc
