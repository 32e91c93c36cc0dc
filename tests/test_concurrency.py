"""Two people at the same moment: one task completed twice, many cases numbered at once, a failed transaction."""
from __future__ import annotations

import threading

import pytest

from engine.demo import SAMPLE_APPLICATION
from engine.errors import Conflict
from engine.repository import Repository
from tests.conftest import actor

APPLICATION = SAMPLE_APPLICATION


def _race(n: int, fn):
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - the outcome is what we assert on
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_agents_complete_the_same_task_at_once(svc):
    started = svc.start_case(actor(svc, "huarui"), "bangban_case", APPLICATION)
    task_id = started.tasks[0]["task_id"]
    with svc.db.unit_of_work(write=False) as uow:
        before = uow.repo.case_by_no(started.case_no).row_version
    agents = [actor(svc, "agent1"), actor(svc, "agent2")]
    results = _race(2, lambda i: svc.complete_task(agents[i], task_id,
                                                   {"review_decision": "受理", "authorization_checked": True}))
    ok = [r for r in results if isinstance(r, dict)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(ok) == 1 and len(conflicts) == 1, results
    with svc.db.unit_of_work(write=False) as uow:
        case = uow.repo.case_by_no(started.case_no)
        events = uow.repo.events_for_case(case.id)
    assert [e.type for e in events].count("task_completed") == 1
    assert case.row_version == before + 1


def test_cases_started_at_once_get_distinct_gapless_numbers(svc):
    applicant = actor(svc, "huarui")
    results = _race(6, lambda i: svc.start_case(applicant, "bangban_case", APPLICATION).case_no)
    assert all(isinstance(r, str) for r in results), results
    seqs = sorted(int(r[-4:]) for r in results)
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert len({r[:14] for r in results}) == 1


def test_a_failed_transaction_leaves_no_gap_in_numbers(svc, monkeypatch):
    applicant = actor(svc, "huarui")
    first = svc.start_case(applicant, "bangban_case", APPLICATION).case_no

    def broken(self, **values):
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(Repository, "insert_case", broken)
        with pytest.raises(RuntimeError):
            svc.start_case(applicant, "bangban_case", APPLICATION)
    second = svc.start_case(applicant, "bangban_case", APPLICATION).case_no
    assert int(second[-4:]) == int(first[-4:]) + 1
    with svc.db.unit_of_work(write=False) as uow:
        assert uow.repo.table_counts()["cases"] == 2


def test_a_step_taken_by_a_server_whose_clock_is_behind_keeps_the_events_in_time_order(svc, all_cases_verified):
    """Two servers: A's clock is a minute ahead of B's, or B waited for the case lock while A wrote a later step.
    B's step is stamped no earlier than the case's last step, so the history stays in time order and verifies
    (before, B's event came out earlier than A's and ``audit verify`` reported 事件时间早于上一条事件)."""
    from datetime import timedelta

    from engine.clock import clock
    from tests.helpers import START, accept, commission, complete, freeze_clock, start
    freeze_clock()
    case_no = start(svc)
    clock.set(START + timedelta(minutes=10))              # server A
    complete(svc, "agent1", "受理审核", case_no=case_no, **accept())
    clock.set(START + timedelta(minutes=5))               # server B, five minutes behind
    complete(svc, "agent1", "材料交接并签订委托书", case_no=case_no, **commission())
    with svc.db.unit_of_work(write=False) as uow:
        events = uow.repo.events_for_case(uow.repo.case_by_no(case_no).id)
    times = [e.at.replace(tzinfo=None) for e in events]
    assert times == sorted(times), [(e.seq, e.type, e.at) for e in events]
    assert events[-1].at.replace(tzinfo=None) >= (START + timedelta(minutes=10)).replace(tzinfo=None)
