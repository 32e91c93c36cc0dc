#!/usr/bin/env python
"""How fast ``bangban audit verify`` checks cases (hash chain + replay from the events + comparison).

    python bench/bench_audit.py [--db sqlite|postgres] [--cases 60] [--calendar-changes 0]

Cases are driven through the engine use cases on a fresh database: a third finished (3 items, one 补正 round,
all ratings: ~30 events), a third in joint processing, a third terminated. Then every case is verified as
``bangban audit verify --all`` does (``Bangban.audit_case``), and cases per second and events per second are printed.
``--calendar-changes K``: the supervisor changes the working-day calendar K times while the cases are driven (a rest
day from 03-23 on, set or removed: the running clocks it moves are recomputed), so verification replays steps under
several calendars and the recomputations after each change (``engine.calhistory``).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from engine import processes  # noqa: E402
from engine.access import Actor  # noqa: E402
from engine.db import Database, normalize_url  # noqa: E402
from engine.demo import load_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.services import Bangban  # noqa: E402
from tests import helpers as h  # noqa: E402

PG = "postgresql://root@127.0.0.1:5432/test"


def drive(svc: Bangban, i: int) -> str:
    no = h.start(svc, service_items=["hp", "xf", "gd"])
    h.accept_and_commission(svc, no)
    if i % 3 == 2:
        h.send(svc, "agent1", no, "termination", reason="国家法律法规规章和政策发生调整", remark="政策调整")
        h.complete(svc, "agent1", "办理终止手续", case_no=no, **h.slip("国家法律法规规章和政策发生调整"))
        return no
    h.dispatch(svc, no, ["hp", "xf", "gd"])
    h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=no, **h.needs_correction("补充材料"))
    h.complete(svc, "huarui", "补正材料", "环评", case_no=no, **h.supplement())
    if i % 3 == 1:
        return no
    h.approve_items(svc, no, ["hp", "xf", "gd"])
    h.collect_and_deliver(svc, no)
    h.complete(svc, "huarui", "签收办结单", case_no=no, **h.receipt())
    h.complete(svc, "huarui", "评价代办服务", case_no=no, **h.rating("张华瑞"))
    h.rate_departments(svc, no)
    return no


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--cases", type=int, default=60)
    ap.add_argument("--calendar-changes", type=int, default=0)
    args = ap.parse_args()
    schema = None
    if args.db == "postgres":
        schema = "bench_" + uuid.uuid4().hex[:10]
        admin = create_engine(normalize_url(PG), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='bangban_audit_')}/audit.sqlite3"
    try:
        upgrade(normalize_url(url))
        db = Database(url)
        svc = Bangban.open(db, processes.read_dir(ROOT / "processes"))
        load_demo(db, svc.current.catalogue, hash_method="pbkdf2:sha256:1000")
        h.freeze_clock()
        t0 = time.perf_counter()
        every = args.cases // args.calendar_changes if args.calendar_changes else 0
        numbers = []
        for i in range(args.cases):
            if every and i % every == every // 2:
                with db.unit_of_work(write=False) as uow:
                    supervisor = Actor.from_row(uow.repo.user_by_username("supervisor1"))
                k = i // every
                day = date(2026, 3, 23) + timedelta(days=k // 2)     # moves the running clocks of earlier cases
                svc.set_calendar_day(supervisor, day, "rest" if k % 2 == 0 else None, "压测")
            numbers.append(drive(svc, i))
        built = time.perf_counter() - t0
        times, events = [], 0
        t0 = time.perf_counter()
        for no in numbers:
            t = time.perf_counter()
            result = svc.audit_case(no)
            times.append(time.perf_counter() - t)
            assert result["ok"], result["text"]
            events += result["events"]
        total = time.perf_counter() - t0
        print(f"db={args.db} cases={len(numbers)} events={events} calendar changes={args.calendar_changes} "
              f"(driving them took {built:.1f} s; database {url})")
        print(f"audit verify: {len(numbers) / total:.1f} cases/s, {events / total:.0f} events/s; "
              f"per case median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms")
        db.dispose()
    finally:
        if schema:
            with admin.connect() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
