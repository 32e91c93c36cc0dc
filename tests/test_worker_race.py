"""Timer workers racing each other: every due timer fires exactly once, and the workers do not fail.

The dedicated process set tests/processes_timer/ has one process ``timed``: its user task 办理 (lane 全科代办员) carries a
non-interrupting timer boundary event 到时提醒 whose timeDate is ``fire_at`` from the start form; the timer path ends.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

import tests.helpers as h
from engine import processes
from engine.clock import LOCAL_TZ, clock, now
from engine.demo import load_demo
from engine.models import Event, Timer
from engine.services import Bangban
from engine.worker import run_once
from tests.conftest import FAST_HASH, ROOT, actor

TIMER_DIR = ROOT / "tests" / "processes_timer"
N_CASES = 1000
FIRE_AT = "2026-03-02T10:00:00+08:00"


@pytest.fixture
def timed(db):
    service = Bangban.open(db, processes.read_dir(TIMER_DIR))
    load_demo(db, service.current.catalogue, hash_method=FAST_HASH)
    return service


def L(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ)


def start_timed(svc: Bangban, n: int, fire_at: str = FIRE_AT) -> list[str]:
    agent = actor(svc, "agent1")
    unit_id = svc.units()[0]["id"]
    return [svc.start_case(agent, "timed", {"title": f"定时器测试办件{i}", "fire_at": fire_at}, unit_id=unit_id).case_no
            for i in range(n)]


def fired_per_case(svc: Bangban) -> Counter:
    with svc.db.unit_of_work(write=False) as uow:
        rows = uow.conn.execute(select(Event.case_id, func.count()).where(Event.type == "timer_fired")
                                .group_by(Event.case_id)).all()
    return Counter({case_id: count for case_id, count in rows})


def timer_rows(svc: Bangban) -> int:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.conn.execute(select(func.count()).select_from(Timer)).scalar_one()


def race(svc: Bangban, workers: int = 2) -> tuple[list[int], list[BaseException]]:
    """``workers`` threads each running one worker round at the same moment; their counts and errors."""
    counts: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def work():
        barrier.wait()
        try:
            counts.append(run_once(svc, max_cases=10 * N_CASES))
        except Exception as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, name=f"worker-{i}") for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return counts, errors


def test_process_set_is_valid():
    ps = processes.build(processes.read_dir(TIMER_DIR))
    assert list(ps.specs) == ["timed"]
    assert ps.process("timed")["start_roles"] == ["agent"] and ps.role_of_lane("全科代办员") == "agent"


def test_two_workers_fire_each_of_1000_due_timers_exactly_once(timed):
    clock.set(L(2026, 3, 2, 9))
    t0 = time.perf_counter()
    case_nos = start_timed(timed, N_CASES)
    started = time.perf_counter() - t0
    assert len(set(case_nos)) == N_CASES
    assert timer_rows(timed) == N_CASES
    with timed.db.unit_of_work(write=False) as uow:
        assert uow.repo.count_due_timers(now()) == 0       # not yet due at 09:00
        assert uow.repo.count_due_timers(L(2026, 3, 2, 10)) == N_CASES

    clock.set(L(2026, 3, 2, 10, 1))
    t0 = time.perf_counter()
    counts, errors = race(timed)
    fired_in = time.perf_counter() - t0
    print(f"\n{N_CASES} cases started in {started:.1f} s; two workers fired their timers in {fired_in:.1f} s "
          f"({N_CASES / fired_in:.0f}/s; split {sorted(counts)})")
    assert errors == []
    assert sum(counts) == N_CASES                    # each case ticked once, by one of the two workers
    per_case = fired_per_case(timed)
    assert len(per_case) == N_CASES and set(per_case.values()) == {1}
    assert timer_rows(timed) == 0
    assert run_once(timed) == 0                       # nothing left for a third round
    assert sum(fired_per_case(timed).values()) == N_CASES
    # The non-interrupting timer left every case's task open.
    with timed.db.unit_of_work(write=False) as uow:
        assert uow.repo.table_counts()["inbox"] == N_CASES


def test_completing_the_task_removes_its_waiting_timer(timed):
    """A case whose task is done waits for no timer: its timer row must go with the task (else the worker would later
    tick a finished case)."""
    clock.set(L(2026, 3, 2, 9))
    (no,) = start_timed(timed, 1)
    task = h.inbox(timed, "agent1", no)[0]
    timed.complete_task(actor(timed, "agent1"), task["task_id"], {"handled": True})
    assert h.case_row(timed, no).status == "completed"
    assert timer_rows(timed) == 0
    clock.set(L(2026, 3, 2, 11))
    assert run_once(timed) == 0


# ---- cases with several due timers (the 帮办代办 process: two timers per item) --------------------------------------------
def _dispatched(svc: Bangban, items: list[str]) -> str:
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, items)
    return no


def test_two_workers_on_one_case_with_two_due_timers(svc):
    """Worker A has claimed one due timer of a case and locked the case; worker B then starts its round while the
    case's second due timer is free. Neither may fail, and each timer fires once."""
    clock.set(L(2026, 3, 2, 9))
    no = _dispatched(svc, ["xf", "gd"])          # 15 days each: both yellow from 03-18 00:00 local
    clock.set(L(2026, 3, 19, 10))
    errors: list[BaseException] = []
    counts: list[int] = []

    def worker_b():
        try:
            counts.append(run_once(svc))
        except Exception as exc:
            errors.append(exc)

    with svc.db.unit_of_work() as uow:               # worker A, step by step as Bangban.tick_next does
        at = now()
        case = uow.repo.next_due_case(at)            # the case row, locked
        b = threading.Thread(target=worker_b)
        b.start()
        time.sleep(1.0)                              # B skips the locked case (PostgreSQL) or waits for the writer (SQLite)
        try:
            svc._tick(uow, case, at)
            uow.commit()
        except Exception as exc:
            errors.append(exc)
    b.join(60)
    assert errors == []
    fired = sorted(e.payload["title"] for e in h.events(svc, no) if e.type == "timer_fired")
    assert fired == ["供电", "消防（设计审查/验收）"]
    assert run_once(svc) == 0


def test_two_workers_on_many_cases_with_several_due_timers(svc):
    clock.set(L(2026, 3, 2, 9))
    nos = [_dispatched(svc, ["hp", "xf", "gd"]) for _ in range(12)]
    # Fri 2026-04-10: every yellow and red moment of 环评 (20 days: due 03-30), 消防 and 供电 (15: due 03-23) has passed.
    clock.set(L(2026, 4, 10, 10))
    with svc.db.unit_of_work(write=False) as uow:
        assert uow.repo.count_due_timers(now()) == 6 * len(nos)
    counts, errors = race(svc)
    run_once(svc)
    assert errors == []
    with svc.db.unit_of_work(write=False) as uow:
        assert uow.repo.count_due_timers(now()) == 0
    for no in nos:
        assert [e.type for e in h.events(svc, no)].count("timer_fired") == 6, no


def test_stored_due_times_are_utc_instants():
    # fire_at 10:00 +08:00 is 02:00 UTC: what the timers table holds (checked in the race above through count_due_timers).
    assert datetime.fromisoformat(FIRE_AT).astimezone(UTC) == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
