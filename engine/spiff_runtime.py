"""Everything that touches SpiffWorkflow: parsing specs, running workflows, (de)serializing state.

No other module imports SpiffWorkflow. The workflow state is stored *without* its spec, which is kept once
per process version and parsed once per process (cached by the caller).

A little over 400 lines because it is the one module allowed to import SpiffWorkflow: keeping every touch of its API
(and every workaround of 3.2.0) here is worth more than two half-modules that both import it.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimeDateEventDefinition, TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask, MultiInstanceTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnBaseWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.task import TaskState
from SpiffWorkflow.workflow import Workflow

from . import sandbox
from .clock import clock as _clock
from .deadlines import FAR_FUTURE


class _ClockDatetime(datetime):
    """``datetime`` whose ``now`` is the service's controllable clock: SpiffWorkflow's timer module reads the time
    through it, so timers and the rest of the engine share one clock (tests and the demo move it)."""

    @classmethod
    def now(cls, tz=None):
        moment = _clock.now()
        return moment.astimezone(tz) if tz is not None else moment.astimezone().replace(tzinfo=None)


_spiff_timer.datetime = _ClockDatetime


WorkflowError = SpiffWorkflowException


class BpmnBuildError(Exception):
    """A diagram that SpiffWorkflow cannot build; ``line`` where known."""

    def __init__(self, message: str, filename: str | None = None, line: int | None = None, element: str | None = None):
        super().__init__(message)
        self.message, self.filename, self.line, self.element = message, filename, line, element


def build_specs(trees: dict[str, Any], process_ids: Iterable[str]) -> dict[str, tuple[Any, dict]]:
    """Parse already-hardened lxml trees into ``{process_id: (spec, subprocess_specs)}``."""
    parser = SpiffBpmnParser()
    try:
        for filename, tree in trees.items():
            parser.add_bpmn_xml(tree, filename=filename)
        out = {}
        for pid in process_ids:
            spec = parser.get_spec(pid)
            _connect_event_subprocesses(spec)
            out[pid] = restored_specs(spec, parser.get_subprocess_specs(pid))
        return out
    except ValidationException as exc:
        element = getattr(exc, "id", None)
        line = getattr(exc, "line_number", None) or _line_of(trees, getattr(exc, "file_name", None), element)
        raise BpmnBuildError(str(getattr(exc, "message", exc)), getattr(exc, "file_name", None), line, element) from exc
    except (SpiffWorkflowException, KeyError, AttributeError, ValueError, TypeError, etree.LxmlError) as exc:
        raise BpmnBuildError(f"{type(exc).__name__}: {exc}") from exc


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Runs every script, condition and expression of a diagram in :mod:`engine.sandbox`."""

    def evaluate(self, expression, context, external_context=None):
        with _text_args():
            return sandbox.evaluate(expression, context, {**self.globals, **(external_context or {})})

    def execute(self, script, context, external_context=None):
        with _text_args():
            sandbox.execute(script, context, {**self.globals, **(external_context or {})})
        return True


@contextmanager
def _text_args():
    """SpiffWorkflow 3.2.0 describes a script's exception as ``name + ":" + err.args[0]``, which itself fails with a
    ``TypeError`` (a 500, the owners not told) when the first argument is not text — ``{}[0]`` raises ``KeyError(0)``,
    ``2.0 ** 10**9`` ``OverflowError(34, …)``. Such an exception leaves with its arguments as one text."""
    try:
        yield
    except Exception as exc:
        if exc.args and not isinstance(exc.args[0], str):
            exc.args = (str(exc),)
        raise


def _line_of(trees: dict, filename: str | None, element_id: str | None) -> int | None:
    """SpiffWorkflow looks for ``line_number`` where lxml says ``sourceline``: find the element's line ourselves."""
    if not element_id:
        return None
    for name, tree in trees.items():
        if filename and name != filename:
            continue
        for el in tree.iter():
            if isinstance(el.tag, str) and el.get("id") == element_id:
                return el.sourceline
    return None


def _connect_event_subprocesses(spec) -> None:
    """SpiffWorkflow 3.2.0 connects a message-triggered event subprocess to the process's start the first time it
    is triggered — changing the shared spec for every case created after that. Do it once, when the spec is built,
    so every case of a version has the same shape (and replay and migration see the same spec)."""
    for name in spec.start.trigger_specs:
        task_spec = spec.task_specs.get(name)
        if task_spec is not None and spec.start not in task_spec.inputs:
            spec.start.connect(task_spec)
            task_spec.connect(spec.end)


def restored_specs(spec, subprocess_specs: dict) -> tuple[Any, dict]:
    """The specs as SpiffWorkflow's own serializer restores them, not as its parser leaves them.

    They differ: the parser leaves out hooks that SpiffWorkflow attaches either at run time or on restore — above
    all the one that merges a multi-instance child's data into its parent, which 3.2.0 connects only when a parent
    first creates children (``MultiInstanceTask.create_child``) or when ``BpmnProcessSpecConverter.from_dict``
    restores a spec. A process that builds a version's specs and then only loads case states (every server process
    but the one that dispatched the items) would otherwise drop each child's result. Passing every spec once
    through the serializer's round trip gives each process, cold or warm, exactly the spec the serializer would
    give — with every hook SpiffWorkflow's restore attaches, now and in later releases — at a cost of a few
    milliseconds per version. :func:`missing_runtime_hooks` checks the result."""
    restored = _registry.restore(_registry.convert(spec))
    subs = {name: _registry.restore(_registry.convert(sub)) for name, sub in subprocess_specs.items()}
    missing = missing_runtime_hooks(restored, subs)
    if missing:  # a SpiffWorkflow upgrade changed its restore: refuse to run cases that would lose data
        raise BpmnBuildError("流程规格缺少运行所需的挂钩：" + "、".join(missing))
    return restored, subs


def missing_runtime_hooks(spec, subprocess_specs: dict) -> list[str]:
    """Loop and multi-instance tasks whose child does not merge its data back into them (empty when all do)."""
    missing = []
    for s in [spec, *subprocess_specs.values()]:
        for ts in s.task_specs.values():
            if isinstance(ts, LoopTask):
                child = s.task_specs.get(ts.task_spec)
                if child is None or not child.completed_event.is_connected(ts.merge_child):
                    missing.append(ts.bpmn_id or ts.name)
    return missing


def make_script_engine(helpers: dict[str, Callable]) -> PythonScriptEngine:
    return PythonScriptEngine(environment=SandboxEnvironment(dict(helpers)))


# ---- serialization without the spec -------------------------------------------------------------------

_registry = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
_converter = BpmnWorkflowConverter(BpmnWorkflow, _registry)


def _reachable_subprocesses(wf: BpmnWorkflow) -> dict:
    """Subprocesses still attached to a task of the case. An interrupted subprocess leaves its nested
    subprocesses behind in ``wf.subprocesses``; they are dropped on load, so they are not saved either."""
    found: dict = {}

    def walk(workflow) -> None:
        for task_id in workflow.tasks:
            sp = wf.subprocesses.get(task_id)
            if sp is not None and task_id not in found:
                found[task_id] = sp
                walk(sp)

    walk(wf)
    return found


def _full_dump(wf: BpmnWorkflow, reachable: dict) -> dict:
    """SpiffWorkflow's own conversion of every task (what :func:`dump_state` must equal)."""
    dct = WorkflowConverter.to_dict(_converter, wf)
    dct["subprocesses"] = _converter.mapping_to_dict(reachable)
    dct["bpmn_events"] = _registry.convert(wf.bpmn_events)
    return dct


# Converting a finished task is the bulk of saving a long case (a loop's every pass stays in the tree: 1,000 tasks
# after 125 补正 rounds), and a finished task does not change any more. A workflow kept between steps
# (engine.wfcache) therefore remembers the converted dict of each finished task whose parent is finished too (its
# data is stored as a delta to the parent's), under everything the conversion reads that could still move: its
# state and state-change stamp, its children, its data and internal data (object and size), and its parent's data.
# A step then converts only the tasks that are open or changed. With BANGBAN_CHECK_STATE_MEMO=1 (the tests set
# it) every dump is also converted in full and must be equal, or the step fails.
_MEMO_ATTR = "_bangban_dump_memo"
_CHECK_MEMO = os.environ.get("BANGBAN_CHECK_STATE_MEMO") == "1"


def _tasks_to_dict(workflow, memo: dict) -> dict:
    out = {}
    convert = _registry.convert
    for tid, task in workflow.tasks.items():
        state = task._state
        if state & TaskState.FINISHED_MASK:
            parent = workflow.tasks.get(task._parent) if task._parent is not None else None
            if parent is None or parent._state & TaskState.FINISHED_MASK:
                key = (state, task.last_state_change, tuple(task._children), id(task.data), len(task.data),
                       id(task.internal_data), len(task.internal_data),
                       None if parent is None else (id(parent.data), len(parent.data), parent.last_state_change))
                hit = memo.get(tid)
                if hit is None or hit[0] != key:
                    hit = memo[tid] = (key, str(tid), convert(task))
                out[hit[1]] = hit[2]
                continue
        out[str(tid)] = convert(task)
    return out


def _workflow_to_dict(workflow, memo: dict) -> dict:
    """``WorkflowConverter.to_dict`` with the finished tasks' conversions remembered (same keys, same order)."""
    return {"data": _registry.convert(_registry.clean(workflow.data)), "correlations": workflow.correlations,
            "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
            "success": workflow.success, "completed": workflow.completed, "tasks": _tasks_to_dict(workflow, memo),
            "root": str(workflow.task_tree.id)}


def dump_state(wf: BpmnWorkflow) -> dict:
    """The workflow's state as a JSON-ready dict, without its spec."""
    reachable = _reachable_subprocesses(wf)
    if len(reachable) != len(wf.subprocesses):
        wf.subprocesses = reachable
    memo = wf.__dict__.get(_MEMO_ATTR)
    if memo is None:
        memo = wf.__dict__[_MEMO_ATTR] = {}
    dct = _workflow_to_dict(wf, memo)
    subprocesses = {}
    for sp_id, sp in reachable.items():
        sub = _workflow_to_dict(sp, memo)
        sub["parent_task_id"] = str(sp.parent_task_id)
        sub["spec"] = sp.spec.name
        sub["typename"] = _registry.typenames[type(sp)]
        subprocesses[str(sp_id)] = sub
    dct["subprocesses"] = subprocesses
    dct["bpmn_events"] = _registry.convert(wf.bpmn_events)
    if _CHECK_MEMO:
        full = _full_dump(wf, reachable)
        if full != dct:
            raise AssertionError("保存流程状态时，记住的已完成任务与完整转换不一致（engine.spiff_runtime.dump_state）")
    return dct


def load_state(dct: dict, spec, subprocess_specs: dict, script_engine) -> BpmnWorkflow:
    """Rebuild a workflow from :func:`dump_state` output (the dict is consumed)."""
    wf = BpmnWorkflow(spec, subprocess_specs, deserializing=True)
    wf.tasks = _converter.mapping_from_dict(dct["tasks"], UUID, workflow=wf)
    wf.task_tree = wf.tasks.get(UUID(dct["root"]))
    _converter.set_default_attributes(wf, dct)
    _converter.subprocesses_from_dict(dct["subprocesses"], wf)
    wf.bpmn_events = _registry.restore(dct.pop("bpmn_events", []))
    wf.script_engine = script_engine
    return wf


# ---- running ---------------------------------------------------------------------------------------------


@dataclass
class ReadyTask:
    """What the rest of the engine needs to know about a READY user task."""

    id: str
    element_id: str
    name: str
    lane: str | None
    properties: dict
    data: dict
    multi_instance: bool


@dataclass
class CompletedTask:
    """An engine task (event, gateway, script) completed during a step, as the runtime needs to see it."""

    id: str
    element_id: str | None
    name: str
    properties: dict
    data: dict
    timer: bool


def _collector(out: list[CompletedTask]):
    def did_complete(task) -> None:
        spec = task.task_spec
        timer = isinstance(getattr(spec, "event_definition", None), TimerEventDefinition)
        out.append(CompletedTask(str(task.id), spec.bpmn_id, spec.bpmn_name or spec.bpmn_id or spec.name,
                                 properties_of(spec), task.data, timer))
    return did_complete


def new_workflow(spec, subprocess_specs, script_engine, start_data: dict, completed: list) -> BpmnWorkflow:
    wf = BpmnWorkflow(spec, subprocess_specs, script_engine=script_engine)
    start = wf.get_tasks(state=TaskState.READY)[0]
    start.data.update(start_data)
    wf.do_engine_steps(did_complete_task=_collector(completed))
    return wf


def is_timer(task_spec) -> bool:
    return isinstance(getattr(task_spec, "event_definition", None), TimerEventDefinition)


def properties_of(task_spec) -> dict:
    ext = getattr(task_spec, "extensions", None) or {}
    return ext.get("properties", {}) or {}


def _in_multi_instance(task) -> bool:
    parent = task.parent
    while parent is not None:
        if isinstance(parent.task_spec, MultiInstanceTask):
            return True
        parent = parent.parent
    wf = task.workflow
    top = wf.top_workflow
    if wf is not top:
        owner = top.get_task_from_id(wf.parent_task_id) if wf.parent_task_id else None
        return owner is not None and _in_multi_instance(owner)
    return False


def iter_tasks(wf: BpmnWorkflow, state: int = TaskState.ANY_MASK, manual: bool | None = None):
    """The tasks of the case and its subprocesses matching ``state`` (and ``manual``), in exactly the order and
    with exactly the pruning of SpiffWorkflow's ``wf.get_tasks(state=..., manual=...)`` (``BpmnTaskIterator``,
    depth first, a subprocess's tasks before the children of the task that runs it), without its list shuffling
    (``pop(0)`` and concatenation per task), which made it the largest cost of reading a case of the full process.
    ``tests/test_workflow_cache.py`` checks the two give the same tasks in the same order at every step."""
    if state == TaskState.READY:
        yield from _ready_in_order(wf, manual)
        return
    if state & TaskState.PREDICTED_MASK:
        min_state = TaskState.MAYBE
    elif state & TaskState.DEFINITE_MASK:
        min_state = TaskState.FUTURE
    else:
        min_state = TaskState.COMPLETED
    subprocesses = wf.top_workflow.subprocesses
    stack = [wf.task_tree]
    while stack:
        task = stack.pop()
        sub = subprocesses.get(task.id)
        if (task._children or sub is not None) and (task.state >= min_state or sub is not None):
            following = task.children
            if sub is not None and not (task.state >= TaskState.FINISHED_MASK and state <= TaskState.FINISHED_MASK):
                following = [sub.task_tree, *following]
            stack.extend(reversed(following))
        if task.state & state and (manual is None or task.task_spec.manual == manual):
            yield task


def _ready_in_order(wf: BpmnWorkflow, manual: bool | None) -> list:
    """The READY tasks under ``wf`` in the walk's order, without walking: a scan of the task tables of ``wf`` and of
    the subprocesses run from inside it, then each found task placed by its path from ``wf``'s root (the index of
    each ancestor among its parent's children; a subprocess's tree before the children of the task that runs it).
    A READY task never lies below a predicted one, so the walk's pruning leaves none of them out."""
    top = wf.top_workflow
    scope, owners = [wf], {}
    pending = [sp for sp in top.subprocesses.values() if sp is not wf]
    while pending:             # subprocesses whose running task is in a workflow already in scope (nested ones too)
        still = []
        for sp in pending:
            home = next((w for w in scope if sp.parent_task_id in w.tasks), None)
            if home is None:
                still.append(sp)
            else:
                scope.append(sp)
                owners[sp] = home.tasks[sp.parent_task_id]
        if len(still) == len(pending):
            break
        pending = still
    found = [t for w in scope for t in w.tasks.values()
             if t._state == TaskState.READY and (manual is None or t.task_spec.manual == manual)]
    if len(found) < 2:
        return found

    def path(task) -> list:
        key: list = []
        while True:
            w, local, t = task.workflow, [], task
            while t._parent is not None:
                parent = w.tasks[t._parent]
                local.append(parent._children.index(t.id))
                t = parent
            key = local[::-1] + key
            if w is wf:
                return key
            key = [-1, *key]
            task = owners[w]
    return sorted(found, key=path)


def _get_tasks(self, first_task=None, **kwargs) -> list:
    """``get_tasks`` of every BPMN workflow and subprocess (SpiffWorkflow's own engine steps call it for READY tasks
    at every step, over the whole tree): through :func:`iter_tasks` when asked only by state and manual, else as
    SpiffWorkflow does."""
    if first_task is None and kwargs.keys() <= {"state", "manual"}:
        return list(iter_tasks(self, kwargs.get("state", TaskState.ANY_MASK), kwargs.get("manual")))
    return Workflow.get_tasks(self, first_task, **kwargs)


BpmnBaseWorkflow.get_tasks = _get_tasks

_ITERATOR_MAX_DEPTH = 1000          # SpiffWorkflow's TaskIterator default: tasks deeper than this are not descended into


def _waiting_walk(wf):
    """The tasks of ``wf``'s own tree as SpiffWorkflow's ``TaskIterator(task_tree, state=WAITING)`` visits them (depth
    first, children of a task at least FUTURE, depth below 1,000), each task's children taken when the task is reached,
    the task yielded when it is WAITING at that moment: a stack instead of the iterator's list popped from the front
    and its depth bookkeeping walking up the parents at every leaf."""
    tasks = wf.tasks
    stack = [(wf.task_tree, 0)]
    future, waiting = TaskState.FUTURE, TaskState.WAITING
    while stack:
        task, depth = stack.pop()
        if task._children and task.state >= future and depth < _ITERATOR_MAX_DEPTH:
            stack.extend((tasks.get(c), depth + 1) for c in reversed(task._children))
        if task.state & waiting:
            yield task


def _update_waiting_tasks(self) -> None:
    """``Workflow.update_waiting_tasks`` (run after every completed task, over the whole tree of the workflow: it grew
    with a case's history) through :func:`_waiting_walk`, which visits the same tasks in the same order."""
    if _CHECK_MEMO:     # the tests: the same tasks as SpiffWorkflow's iterator, in the same order
        from SpiffWorkflow.util.task import TaskIterator
        assert [t.id for t in _waiting_walk(self)] == \
            [t.id for t in TaskIterator(self.task_tree, state=TaskState.WAITING)]
    for task in _waiting_walk(self):
        task.task_spec._update(task)


BpmnBaseWorkflow.update_waiting_tasks = _update_waiting_tasks


def ready_user_tasks(wf: BpmnWorkflow) -> list[ReadyTask]:
    out = []
    for t in iter_tasks(wf, TaskState.READY, manual=True):
        spec = t.task_spec
        out.append(ReadyTask(str(t.id), spec.bpmn_id, spec.bpmn_name or spec.bpmn_id, spec.lane,
                             properties_of(spec), t.data, _in_multi_instance(t)))
    return out


def find_ready_task(wf: BpmnWorkflow, task_id: str):
    try:
        task = wf.get_task_from_id(UUID(task_id))
    except (ValueError, KeyError, TypeError):
        return None
    if task is None or task.state != TaskState.READY or not task.task_spec.manual:
        return None
    return task


def set_task_value(task, key: str, value) -> None:
    """Set one value in an open task's own data (kept with the workflow's state)."""
    task.data[key] = value


def fill_open_data(wf: BpmnWorkflow, names) -> None:
    """Give every task not yet finished a value (None) for each of ``names`` it lacks: the facts a newer version's
    conditions read, for a case that was submitted before that version recorded them."""
    for task in iter_tasks(wf, TaskState.NOT_FINISHED_MASK):
        for name in names:
            task.data.setdefault(name, None)


def pop_task_value(task, key: str) -> None:
    task.data.pop(key, None)


def complete_task(wf: BpmnWorkflow, task, data: dict, completed: list) -> None:
    task.data.update(data)
    task.run()
    wf.do_engine_steps(did_complete_task=_collector(completed))


def send_message(wf: BpmnWorkflow, name: str, payload: dict, completed: list) -> None:
    wf.send_event(BpmnEvent(MessageEventDefinition(name), payload=payload))
    wf.do_engine_steps(did_complete_task=_collector(completed))


def _waiting_timer_tasks(wf: BpmnWorkflow) -> list:
    return [t for t in wf.event_manager.tasks.values()
            if t.state == TaskState.WAITING and isinstance(t.task_spec.event_definition, TimeDateEventDefinition)]


def reevaluate_timers(wf: BpmnWorkflow, completed: list) -> None:
    """Make every waiting date timer evaluate its expression again (its clock moved), fire those now due."""
    for t in _waiting_timer_tasks(wf):
        if not t.internal_data.get("event_fired"):
            t.internal_data.pop("event_value", None)
    wf.refresh_timers()
    wf.do_engine_steps(did_complete_task=_collector(completed))


def waiting_timers(wf: BpmnWorkflow) -> list[tuple[str, str, datetime]]:
    """``(task id, name, due time in UTC)`` of the timers the case waits for."""
    out = []
    for t in _waiting_timer_tasks(wf):
        value = t.internal_data.get("event_value")
        if value and not t.internal_data.get("event_fired"):
            due = TimerEventDefinition.get_datetime(value) if isinstance(value, str) else None
            if due is not None and value != FAR_FUTURE:
                out.append((str(t.id), t.task_spec.bpmn_name or t.task_spec.bpmn_id, due))
    return out


def waiting_message_names(wf: BpmnWorkflow) -> set[str]:
    """Messages a catching event of the running case waits for."""
    return {getattr(t, "name", None) for t in wf.waiting_events()}


def triggering_message_names(wf: BpmnWorkflow) -> set[str]:
    """Messages that start an event subprocess of the top-level process (SpiffWorkflow 3.2.0 only
    triggers those at the top level); they may arrive any number of times while the case runs."""
    if wf.completed:
        return set()
    names = set()
    for spec_name in wf.spec.start.trigger_specs:
        for ts in wf.subprocess_specs[spec_name].bpmn_start_events:
            name = getattr(ts.event_definition, "name", None)
            if name:
                names.add(name)
    return names


def evaluate(wf: BpmnWorkflow, expression: str, context: dict) -> Any:
    return wf.script_engine.environment.evaluate(expression, dict(context))


def reached_outcomes(wf: BpmnWorkflow) -> list[str]:
    """``outcome`` properties of the end events this case has reached, in the case's task order.

    Asked twice per step: instead of walking the whole task tree (which grows with a case's history: a case after 80
    补正 rounds spent 17 ms a call on the walk), the workflows' task tables are scanned for completed tasks of the few
    elements that carry an outcome; only when they give more than one outcome is the tree order taken."""
    top = wf.top_workflow
    found = []
    for w in (top, *top.subprocesses.values()):
        for t in w.tasks.values():
            if t.state == TaskState.COMPLETED and "outcome" in properties_of(t.task_spec):
                outcome = properties_of(t.task_spec)["outcome"]
                if outcome:
                    found.append(outcome)
    if len(set(found)) > 1:
        found = _outcomes_in_tree_order(wf)
    if _CHECK_MEMO:   # the tests: the scan must give what the walk gives
        assert sorted(found) == sorted(_outcomes_in_tree_order(wf)), (found, _outcomes_in_tree_order(wf))
    return found


def _outcomes_in_tree_order(wf: BpmnWorkflow) -> list[str]:
    return [o for o in (properties_of(t.task_spec).get("outcome") for t in _completed(wf)) if o]


def completed_elements(wf: BpmnWorkflow) -> list[str]:
    return [t.task_spec.bpmn_id for t in _completed(wf) if t.task_spec.bpmn_id]


def cancel(wf: BpmnWorkflow) -> None:
    wf.cancel()


def end_ready_tasks(wf: BpmnWorkflow, element_ids: list[str]) -> list[str]:
    """Cancel the READY user tasks of these elements (anywhere in the case); returns the ids of those ended."""
    wanted = set(element_ids)
    ended = []
    for t in list(iter_tasks(wf, TaskState.READY, manual=True)):
        if t.task_spec.bpmn_id in wanted:
            t.cancel()
            ended.append(str(t.id))
    return ended


def latest_value(wf: BpmnWorkflow, name: str):
    """The value of a variable in the most recently completed task that has it (any subprocess)."""
    best = None
    for t in _completed(wf):
        if t.data.get(name) is not None and (best is None or t.last_state_change >= best.last_state_change):
            best = t
    return best.data[name] if best is not None else None


def latest_values_by(wf: BpmnWorkflow, name: str, key: str) -> dict:
    """Per value of ``key``: the latest value of a dict variable (each multi-instance child keeps its own, and may
    change it as it goes on), from the most recently completed task that has it."""
    best: dict = {}
    for t in _completed(wf):
        value = t.data.get(name)
        if isinstance(value, dict) and key in value:
            k = str(value[key])
            if k not in best or t.last_state_change >= best[k][0]:
                best[k] = (t.last_state_change, value)
    return {k: v for k, (_, v) in best.items()}


def all_values(wf: BpmnWorkflow, name: str) -> list:
    """Every value a variable has in completed tasks (e.g. each multi-instance child's result)."""
    return [t.data[name] for t in _completed(wf) if t.data.get(name) is not None]


def completed_of(wf: BpmnWorkflow, element_id: str) -> list[tuple[float, dict, dict, str]]:
    """Every completion of one diagram element (any subprocess, every loop round): (when, its data, its properties,
    its task id), oldest first."""
    done = [(t.last_state_change, t.data, properties_of(t.task_spec), str(t.id)) for t in _completed(wf)
            if t.task_spec.bpmn_id == element_id]
    return sorted(done, key=lambda d: d[0])


def _completed(wf: BpmnWorkflow):
    """Completed tasks of the case and all its subprocesses (a state filter would not descend into them)."""
    return (t for t in iter_tasks(wf) if t.state == TaskState.COMPLETED)


# ---- migration of running cases to another version ----------------------------------------------------------------
def migration_plan(wf: BpmnWorkflow, new_spec, new_subprocess_specs: dict):
    """Compare a running workflow with a new spec (SpiffWorkflow's workflow diff).

    Returns ``(blockers, plan)``: ``blockers`` lists, in Chinese, every completed or started task whose spec was
    removed or changed (such a case cannot move); ``plan`` is what :func:`migrate` needs."""
    from SpiffWorkflow.bpmn.util.diff import diff_workflow

    top_diff, sp_diffs = diff_workflow(_registry, wf, new_spec, new_subprocess_specs)
    blockers = []
    moving = (TaskState.COMPLETED, TaskState.STARTED)
    for diff in [top_diff, *sp_diffs.values()]:
        if diff is None:
            continue
        for task in diff.removed:
            if task.state in moving:
                blockers.append(f"已办理的「{task.task_spec.bpmn_name or task.task_spec.name}」在新版本中已删除")
        for task in diff.changed:
            if task.state in moving and task.task_spec.bpmn_id:
                blockers.append(f"已办理的「{task.task_spec.bpmn_name or task.task_spec.bpmn_id}」在新版本中有修改")
    for sp_id, diff in sp_diffs.items():
        sp = wf.subprocesses.get(sp_id)
        if diff is None and sp is not None and not sp.completed:
            blockers.append(f"进行中的子流程「{sp.spec.name}」在新版本中已删除")
    return sorted(set(blockers)), (top_diff, sp_diffs)


def migrate(wf: BpmnWorkflow, plan, new_spec, new_subprocess_specs: dict) -> None:
    """Move the workflow onto the new spec; its READY and WAITING tasks are predicted again."""
    from SpiffWorkflow.bpmn.util.diff import migrate_workflow

    top_diff, sp_diffs = plan
    for sp_id, diff in sp_diffs.items():
        sp = wf.subprocesses.get(sp_id)
        if sp is not None and diff is not None:
            migrate_workflow(diff, sp, new_subprocess_specs[sp.spec.name])
    migrate_workflow(top_diff, wf, new_spec)
    wf.subprocess_specs = new_subprocess_specs
    wf.do_engine_steps()


def state_name(state: int) -> str:
    return TaskState.get_name(state)
