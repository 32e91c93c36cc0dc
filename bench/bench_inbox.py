"""The inbox's first page at 0, 1,000 and 10,000 open tasks of one user, on SQLite or PostgreSQL.

For each size a fresh database (SQLite file / PostgreSQL schema, dropped afterwards) gets the demo users and
``bench.inbox_preload.preload_inbox``'s open tasks for the role ``agent`` (a realistic urgency mix, with running
clock rows), plus as many tasks of other audiences (specialists of two departments, applicants) so the indexes
must separate them. Then ``svc.inbox_page(agent1, limit=50)`` — the use case the API and the page call: the
urgency-ordered page, the total count, the clocks of the page's rows — is timed ``--repeat`` times (median, min,
p90), and the repository's two queries alone. ``--explain`` prints the query plans of the statements the first
page runs (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN ANALYZE).

    PYTHONPATH=$PWD .venv/bin/python bench/bench_inbox.py --db sqlite --explain
    PYTHONPATH=$PWD .venv/bin/python bench/bench_inbox.py --db postgres
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, text

# this directory holds bench.py: put the repository first, so that "bench" is this package, not that module
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.benchlib import ROOT, Databases, percentile  # noqa: E402
from bench.inbox_preload import preload_inbox  # noqa: E402
from engine import inboxq, processes  # noqa: E402
from engine.access import Actor  # noqa: E402
from engine.clock import now  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.deadlines import local_date  # noqa: E402
from engine.demo import load_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.services import Bangban  # noqa: E402


def actor(svc, username: str) -> Actor:
    with svc.db.unit_of_work(write=False) as uow:
        return Actor.from_row(uow.repo.user_by_username(username))


def timed(fn, repeat: int) -> dict:
    fn()   # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median": statistics.median(times), "min": times[0], "p90": percentile(times, 90)}


def explain(svc, who: Actor) -> None:
    captured: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "inbox" in statement and not statement.lstrip().upper().startswith("EXPLAIN"):
            captured.append((statement, parameters))
    event.listen(svc.db.engine, "before_cursor_execute", grab)
    try:
        svc.inbox_page(who, limit=50)
    finally:
        event.remove(svc.db.engine, "before_cursor_execute", grab)
    with svc.db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        for statement, params in captured:
            print("--", " ".join(statement.split())[:300], "...")
            cur = raw.cursor()
            if svc.db.is_sqlite:
                cur.execute("EXPLAIN QUERY PLAN " + statement, params)
                for row in cur.fetchall():
                    print("   ", row[-1])
            else:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) " + statement, params)
                for row in cur.fetchall():
                    print("   ", row[0])
            cur.close()


def measure(svc, who: Actor, n: int, repeat: int) -> tuple:
    first = svc.inbox_page(who, limit=50)
    assert first["total"] == n, first["total"]
    use_case = timed(lambda: svc.inbox_page(who, limit=50), repeat)
    auds = inboxq.audiences(who.roles, who.department, who.username, who.unit_id)
    f = inboxq.InboxFilter()

    def queries():
        with svc.db.unit_of_work(write=False) as uow:
            at = now()
            uow.repo.inbox_page(auds, f, local_date(at), at, 51)
            uow.repo.inbox_count(auds, f)
    repo = timed(queries, repeat)
    second = timed(lambda: svc.inbox_page(who, limit=50, after=first["next"]), repeat) if first["next"] else None
    return use_case, repo, second


def run(kind: str, sizes: list[int], repeat: int, show_plan: bool) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        dbs = Databases(kind, Path(tmp))
        try:
            for n in sizes:
                url = dbs.new(f"inbox{n}")
                upgrade(url if kind == "sqlite" else url)
                db = Database(url)
                svc = Bangban.open(db, processes.read_dir(ROOT / "processes"))
                load_demo(db, svc.current.catalogue)
                today = local_date(now())
                t0 = time.perf_counter()
                preload_inbox(svc, n, today, prefix="A")
                preload_inbox(svc, n // 2, today, role="specialist", department="sthj", prefix="S")
                preload_inbox(svc, n // 2, today, role="specialist", department="zjj", prefix="Z")
                preload_inbox(svc, n // 2, today, role="applicant", prefix="U")
                load_s = time.perf_counter() - t0
                if not svc.db.is_sqlite:
                    # as autovacuum leaves a table after a bulk load: statistics and the visibility map (which
                    # lets the count read the index only)
                    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                        c.execute(text("VACUUM ANALYZE inbox"))
                        c.execute(text("ANALYZE"))
                who = actor(svc, "agent1")
                use_case, repo, second = measure(svc, who, n, repeat)
                row = {"db": kind, "open_tasks": n, "other_tasks": 3 * (n // 2), "preload_s": round(load_s, 1),
                       "first_page_ms": use_case, "queries_ms": repo, "second_page_ms": second}
                out.append(row)
                print(f"{kind:8s} {n:6d} open tasks (+{3 * (n // 2)} of others, preloaded in {load_s:.1f} s): "
                      f"first page {use_case['median']:.2f} ms median, {use_case['min']:.2f} min, "
                      f"{use_case['p90']:.2f} p90; queries alone {repo['median']:.2f} ms"
                      + (f"; second page {second['median']:.2f} ms" if second else ""), flush=True)
                if show_plan and n == max(sizes):
                    explain(svc, who)
                db.dispose()
        finally:
            dbs.cleanup()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--sizes", default="0,1000,10000")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--explain", action="store_true")
    a = ap.parse_args()
    print(f"load average {os.getloadavg()}", flush=True)
    run(a.db, [int(s) for s in a.sizes.split(",")], a.repeat, a.explain)
    print(f"load average {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
