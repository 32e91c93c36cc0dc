"""The per-process cache of deserialized workflows (engine.wfcache): it saves the load of the stored state and can
never stand for another state than the case row's.

Each test compares what the cache holds with what is stored, runs steps through two services over one database
(two server processes), makes steps fail, and ends with ``audit verify`` of every case.
"""
from __future__ import annotations

import json

import pytest
from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.util.task import TaskState

from engine import caches
from engine import spiff_runtime as rt
from engine.errors import Conflict, InvalidInput
from engine.services import Bangban
from engine.wfcache import WorkflowCache
from tests import helpers as h
from tests.conftest import actor

pytestmark = pytest.mark.usefixtures("all_cases_verified")


@pytest.fixture(autouse=True)
def frozen_clock():
    h.freeze_clock()


def _entry(svc: Bangban, case_no: str):
    row = h.case_row(svc, case_no)
    entry = svc.db.workflows._entries.get(row.id)
    return row, entry


def _assert_cached_equals_stored(svc: Bangban, case_no: str) -> None:
    """The cache holds the case's workflow under the row's current version and head, and it is the stored state."""
    from engine.runtime import CaseRun
    row, entry = _entry(svc, case_no)
    assert entry is not None, "步骤提交后，本进程应缓存该办件的流程"
    key, wf = entry
    assert key == (row.row_version, row.last_hash, svc.version(row.version_id).hash)
    cached = CaseRun.resume(svc.version(row.version_id), row.process_id, wf, row.case_vars).dump()
    h.assert_same_state(cached, row.state)


def test_every_step_keeps_the_stored_state_and_the_next_step_uses_it(svc):
    cache = svc.db.workflows
    case_no = h.start(svc)
    _assert_cached_equals_stored(svc, case_no)
    h.accept_and_commission(svc, case_no)
    _assert_cached_equals_stored(svc, case_no)
    hits = cache.hits
    h.dispatch(svc, case_no, ["hp", "xf", "gd"])
    assert cache.hits == hits + 1
    _assert_cached_equals_stored(svc, case_no)
    h.complete(svc, "zb_sthj", "部门办理", h.ITEM_NAMES["hp"], case_no=case_no,
               **h.needs_correction("请补充环评文件"))
    _assert_cached_equals_stored(svc, case_no)
    h.complete(svc, "huarui", "补正材料", case_no=case_no, **h.supplement())
    h.approve_items(svc, case_no, ["hp", "xf", "gd"])
    h.collect_and_deliver(svc, case_no)
    _assert_cached_equals_stored(svc, case_no)
    assert h.case_row(svc, case_no).status == "active"
    assert cache.hits > hits + 5


def test_a_reader_gives_the_workflow_back_unchanged(svc):
    case_no = h.start(svc)
    before = svc.db.workflows.hits
    svc.get_case(actor(svc, "agent1"), case_no)
    task = h.find_task(svc, "agent1", "受理审核", case_no=case_no)
    svc.get_task(actor(svc, "agent1"), task["task_id"])
    assert svc.db.workflows.hits == before + 2
    _assert_cached_equals_stored(svc, case_no)
    h.accept_and_commission(svc, case_no)
    assert svc.db.workflows.hits >= before + 3


def test_a_step_taken_by_another_server_is_never_hidden_by_an_older_entry(svc, db, process_files):
    """Two servers over one database: each step goes to the other one. The entry a server kept is for a row version
    the case no longer has, so it loads the stored state (as a cold process) and the case runs on correctly."""
    other = Bangban.open_latest(db, process_files)
    other.db = type(db)(db.url)     # a second process has its own connection pool and its own cache
    try:
        case_no = h.start(svc)
        h.complete(other, "agent1", "受理审核", case_no=case_no, **h.accept())
        misses = svc.db.workflows.misses
        h.complete(svc, "agent1", "材料交接并签订委托书", case_no=case_no, **h.commission())
        assert svc.db.workflows.misses == misses + 1     # its own entry was one step old: not used
        h.dispatch(other, case_no, ["hp", "xf"])
        h.approve_items(svc, case_no, ["hp", "xf"])
        h.collect_and_deliver(other, case_no)
        assert h.inbox_names(svc, "huarui", case_no) == [("签收办结单", None)]
        _assert_cached_equals_stored(other, case_no)
    finally:
        other.db.dispose()


def test_a_step_that_fails_leaves_no_entry_and_changes_nothing(svc):
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)
    task = h.find_task(svc, "agent1", "分派服务事项", case_no=case_no)
    stored = h.case_row(svc, case_no)
    with pytest.raises(InvalidInput):
        svc.complete_task(actor(svc, "agent1"), task["task_id"], {"service_items": ["不存在的事项"]})
    assert h.case_row(svc, case_no).state == stored.state
    h.dispatch(svc, case_no, ["gd"])
    with pytest.raises(Conflict):       # the task is done: a second completion loads, finds nothing, keeps nothing
        svc.complete_task(actor(svc, "agent1"), task["task_id"], {"service_items": ["gd"]})
    h.approve_items(svc, case_no, ["gd"])
    _assert_cached_equals_stored(svc, case_no)


def test_the_cache_is_bounded_and_forgotten_with_every_other_cache(svc):
    svc.db.workflows.capacity = 2
    numbers = [h.start(svc) for _ in range(4)]
    assert len(svc.db.workflows) == 2
    assert _entry(svc, numbers[0])[1] is None and _entry(svc, numbers[-1])[1] is not None
    caches.clear_all()
    assert len(svc.db.workflows) == 0
    for case_no in numbers:
        h.accept_and_commission(svc, case_no)
    assert json.loads(h.case_row(svc, numbers[0]).state)["tasks"]


def test_capacity_from_the_environment(monkeypatch):
    monkeypatch.setenv("BANGBAN_WORKFLOW_CACHE", "0")
    off = WorkflowCache()
    off.give(1, 1, "h", "v", object())
    assert len(off) == 0 and off.take(1, 1, "h", "v") is None
    monkeypatch.setenv("BANGBAN_WORKFLOW_CACHE", "很多")
    assert WorkflowCache().capacity == 64


FILTERS = [dict(), dict(state=TaskState.READY, manual=True), dict(state=TaskState.READY),
           dict(state=TaskState.NOT_FINISHED_MASK), dict(state=TaskState.COMPLETED),
           dict(state=TaskState.FINISHED_MASK), dict(state=TaskState.WAITING), dict(manual=False)]


def _assert_same_walk(wf) -> None:
    """Our walk, and get_tasks (which SpiffWorkflow's engine steps call, routed through it), against SpiffWorkflow's
    own iterator, from the case and from each of its subprocesses."""
    for w in [wf, *wf.subprocesses.values()]:
        for f in FILTERS:
            theirs = [t.id for t in BpmnTaskIterator(w.task_tree, **f)]
            ours = [t.id for t in rt.iter_tasks(w, f.get("state", TaskState.ANY_MASK), f.get("manual"))]
            assert ours == theirs, f"任务遍历与 SpiffWorkflow 不一致：{f}"
            assert [t.id for t in w.get_tasks(**f)] == theirs


def test_the_task_walk_is_spiffworkflows_own_order_at_every_step(svc):
    """engine.spiff_runtime.iter_tasks replaces wf.get_tasks for speed: same tasks, same order, every filter the
    engine uses and more, at every step of paths through subprocesses, loops (补正), event subprocesses
    (延期, 督办 timers) and a termination, on the workflow as cached and as loaded from the row."""
    checked = []

    def check(case_no):
        _assert_same_walk(h.rebuild(svc, case_no).wf)
        row, entry = _entry(svc, case_no)
        if entry is not None:
            _assert_same_walk(entry[1])
        checked.append(case_no)

    case_no = h.start(svc)
    check(case_no)
    h.accept_and_commission(svc, case_no)
    check(case_no)
    h.dispatch(svc, case_no, ["hp", "xf", "gd"])
    check(case_no)
    h.complete(svc, "zb_sthj", "部门办理", h.ITEM_NAMES["hp"], case_no=case_no, **h.needs_correction("补环评文件"))
    check(case_no)
    h.complete(svc, "huarui", "补正材料", case_no=case_no, **h.supplement())
    check(case_no)
    h.complete(svc, "zb_zjj", "部门办理", h.ITEM_NAMES["xf"], case_no=case_no, **h.refuse("不符合规划"))
    check(case_no)
    h.tick(60 * 24 * 40)                      # far past every limit: yellow and red timers fire, 督办 opens
    svc.fire_due()
    check(case_no)
    h.send(svc, "agent1", case_no, "termination", reason="国家法律法规规章和政策发生调整", remark="政策调整")
    check(case_no)
    assert "timer_fired" in h.event_types(svc, case_no)
    assert h.open_tasks(svc, case_no) == [("办理终止手续", None)]
    assert len(checked) == 8


def test_a_long_case_converts_only_what_changed_when_saved(svc, monkeypatch):
    """Forty 补正 rounds leave hundreds of finished tasks in the item's subprocess (a loop keeps every pass). The
    workflow kept between steps converts only open and changed tasks when it is saved; the saved state is the full
    conversion (BANGBAN_CHECK_STATE_MEMO, set for every test, compares them at every save) and verifies."""
    from SpiffWorkflow.task import Task
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, ["hp"])
    for n in range(40):
        h.complete(svc, "zb_sthj", "部门办理", h.ITEM_NAMES["hp"], case_no=case_no,
                   **h.needs_correction(f"第 {n + 1} 次补正"))
        h.complete(svc, "huarui", "补正材料", case_no=case_no, **h.supplement())
    row = h.case_row(svc, case_no)
    state = json.loads(row.state)
    total = len(state["tasks"]) + sum(len(s["tasks"]) for s in state["subprocesses"].values())
    assert total > 400 and row.event_seq > 160

    converted = []
    original = rt._registry.convert

    def counting(obj, *args, **kwargs):
        if isinstance(obj, Task):
            converted.append(obj)
        return original(obj, *args, **kwargs)
    monkeypatch.setattr(rt._registry, "convert", counting)
    monkeypatch.setattr(rt, "_CHECK_MEMO", False)       # count the saving itself, not the test's full comparison
    h.complete(svc, "zb_sthj", "部门办理", h.ITEM_NAMES["hp"], case_no=case_no, **h.approve("环审〔2026〕9号"))
    assert 0 < len(converted) < total / 5, (len(converted), total)
    monkeypatch.undo()
    _assert_cached_equals_stored(svc, case_no)
    h.collect_and_deliver(svc, case_no)
    assert h.inbox_names(svc, "huarui", case_no) == [("签收办结单", None)]
