#!/usr/bin/env python
"""Timer-worker throughput and deadline-computation cost (see bench/README.md, "Timers and deadlines").

    python bench/bench_timers.py [--db sqlite|postgres] [--timers 10000] [--workers 1,2] [--full-cases 100]
                                 [--unbounded] [--json OUT]

Figures:

  worker   ``--timers`` cases of the one-task process tests/processes_timer/ (``timed``: a non-interrupting timer
           boundary event whose timeDate comes from the start form) are started through ``Bangban.start_case`` with
           the same due time; the controllable clock is moved past it and the worker fires them as ``run_forever``
           does — ``engine.worker.run_once`` (default ``max_cases=1000``) round after round until nothing is due, the
           interval wait between rounds left out — with 1 worker, and again on fresh cases with 2 workers racing
           (threads, each with its own DB connections). Reported: due timers fired per second of worker time, and a
           check that each timer fired exactly once. ``--unbounded`` adds one single round of one worker with
           ``max_cases`` above ``--timers`` (slow: the round's skip list of cases grows to ``--timers``).
  full     ``--full-cases`` cases of the real 帮办代办 process (processes/), three service items each, dispatched on
           2026-03-02; the clock is moved to 2026-03-19 10:00, when two yellow timers per case are due (消防, 供电):
           one worker round fires them (one tick per case: load the ~50 KB state with its clocks, fire, save).
  idle     ``run_once`` with nothing due (the cost of one poll of an idle worker).
  compute  ``WorkCalendar.add_workdays`` / ``workdays_between`` and ``ClockState.compute`` / ``describe``, in µs per call
           (timeit: best and median of 7 repeats), on a warm calendar (per-year tables built) and on a fresh one.

SQLite: files in a temp dir. ``--db postgres``: a throwaway schema bench_<random> on
postgresql://root@127.0.0.1:5432/test, dropped at the end (also on errors and Ctrl-C).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import timeit
import unicodedata
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchlib  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from engine import processes  # noqa: E402
from engine.clock import LOCAL_TZ, clock  # noqa: E402
from engine.db import Database, normalize_url  # noqa: E402
from engine.deadlines import ClockState  # noqa: E402
from engine.demo import SAMPLE_APPLICATION, load_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import Event, Timer  # noqa: E402
from engine.services import Bangban  # noqa: E402
from engine.workcal import WorkCalendar  # noqa: E402
from engine.worker import run_once  # noqa: E402

TIMER_DIR = ROOT / "tests" / "processes_timer"
FULL_DIR = ROOT / "processes"
FAST_HASH = "pbkdf2:sha256:1000"


def L(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ)


# ---- databases ---------------------------------------------------------------------------------------------------

class Databases(benchlib.Databases):
    """Fresh migrated databases (``benchlib.Databases``: SQLite files in a temp dir or throwaway PostgreSQL schemas),
    opened as the engine opens them; all disposed, dropped and removed at cleanup."""

    def __init__(self, kind: str):
        super().__init__(kind, Path(tempfile.mkdtemp(prefix="bangban_bench_timers_")))
        self.opened: list[Database] = []

    def new(self, name: str) -> Database:
        url = super().new(name)
        upgrade(normalize_url(url))
        db = Database(url)
        self.opened.append(db)
        return db

    def cleanup(self) -> None:
        for db in self.opened:
            db.dispose()
        self.opened.clear()
        super().cleanup()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def service(db: Database, process_dir: Path) -> Bangban:
    svc = Bangban.open(db, processes.read_dir(process_dir))
    load_demo(db, svc.current.catalogue, hash_method=FAST_HASH)
    return svc


def actor(svc: Bangban, username: str):
    from engine.access import Actor
    with svc.db.unit_of_work(write=False) as uow:
        return Actor.from_row(uow.repo.user_by_username(username))


# ---- the worker ----------------------------------------------------------------------------------------------------

def start_timed(svc: Bangban, n: int, fire_at: str, label: str) -> float:
    """Start ``n`` cases of ``timed`` whose timer is due at ``fire_at``; returns the seconds it took."""
    agent, unit_id = actor(svc, "agent1"), svc.units()[0]["id"]
    t0 = time.perf_counter()
    for i in range(n):
        svc.start_case(agent, "timed", {"title": f"基准测试办件{label}{i}", "fire_at": fire_at}, unit_id=unit_id)
        if (i + 1) % 2000 == 0:
            print(f"    {label}: {i + 1} cases started ({(i + 1) / (time.perf_counter() - t0):.0f}/s)", flush=True)
    return time.perf_counter() - t0


def worker_round(svc: Bangban, workers: int, max_cases: int) -> tuple[float, list[int], list[BaseException]]:
    """One round of ``workers`` workers started together; wall seconds until the last one is done."""
    counts: list[int] = []
    errors: list[BaseException] = []
    if workers == 1:
        t0 = time.perf_counter()
        counts.append(run_once(svc, max_cases=max_cases))
        return time.perf_counter() - t0, counts, errors
    barrier = threading.Barrier(workers + 1)

    def work():
        barrier.wait()
        try:
            counts.append(run_once(svc, max_cases=max_cases))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, counts, errors


def fired_check(svc: Bangban) -> tuple[int, int, int]:
    """(cases with a timer_fired event, the most timer_fired events of one case, timer rows left)."""
    with svc.db.unit_of_work(write=False) as uow:
        per_case = uow.conn.execute(select(Event.case_id, func.count()).where(Event.type == "timer_fired")
                                    .group_by(Event.case_id)).all()
        left = uow.conn.execute(select(func.count()).select_from(Timer)).scalar_one()
    return len(per_case), max((c for _, c in per_case), default=0), left


def bench_worker(dbs: Databases, n: int, workers: list[int], out: dict, unbounded: bool) -> None:
    """For each worker count: ``n`` fresh cases due at once, fired by worker rounds as ``run_forever`` runs them
    (``run_once`` with its default ``max_cases=1000``, round after round; the interval wait between rounds left out).
    With ``unbounded``: also one single round of one worker with ``max_cases`` above ``n``."""
    configs = [(w, 1000) for w in workers] + ([(1, 10 * n)] if unbounded else [])
    for w, max_cases in configs:
        key = f"worker_{w}" + ("_unbounded" if max_cases > 1000 else "")
        db = dbs.new(key)
        svc = service(db, TIMER_DIR)
        clock.set(L(2026, 3, 2, 9))
        print(f"  starting {n} timed cases for {key} ...", flush=True)
        started = start_timed(svc, n, "2026-03-02T10:00:00+08:00", f"{key}-")
        clock.set(L(2026, 3, 2, 10, 1))
        seconds, rounds, per_worker, errors = 0.0, 0, [0] * w, []
        while True:
            took, counts, errs = worker_round(svc, w, max_cases=max_cases)
            seconds, rounds = seconds + took, rounds + 1
            errors += errs
            for i, c in enumerate(sorted(counts)):
                per_worker[i] += c
            if sum(counts) == 0 or rounds > 10 * n:
                break
        cases, most, left = fired_check(svc)
        ok = not errors and cases == n and most == 1 and left == 0 and sum(per_worker) == n
        out[key] = {"timers": n, "workers": w, "max_cases": max_cases, "rounds": rounds, "seconds": seconds,
                    "timers_per_s": n / seconds, "ms_per_timer": 1000 * seconds / n, "split": per_worker,
                    "errors": [repr(e)[:300] for e in errors], "exactly_once": ok, "start_cases_per_s": n / started}
        print(f"    {key}: {n} timers in {seconds:.2f} s ({rounds} rounds) = {n / seconds:.0f}/s; split {per_worker}; "
              f"exactly once: {ok}" + (f"; ERRORS: {errors[:1]}" if errors else ""), flush=True)
        if "idle_poll_ms" not in out:
            idle = []
            for _ in range(50):
                t0 = time.perf_counter()
                run_once(svc)
                idle.append(time.perf_counter() - t0)
            out["idle_poll_ms"] = statistics.median(idle) * 1000


FULL_STEPS = [
    ("agent1", "受理审核", {"review_decision": "受理", "authorization_checked": True}),
    ("agent1", "材料交接并签订委托书", {"commission_signed": True, "materials_received": "营业执照、项目备案证明等",
                                       "service_mode_confirmed": "现场服务"}),
    ("agent1", "分派服务事项", {"service_items": ["hp", "xf", "gd"]}),
]


def bench_full(dbs: Databases, n: int, out: dict) -> None:
    if n <= 0:
        return
    db = dbs.new("full")
    svc = service(db, FULL_DIR)
    clock.set(L(2026, 3, 2, 9))
    applicant, agent = actor(svc, "huarui"), actor(svc, "agent1")
    print(f"  starting {n} full cases (3 items each) ...", flush=True)
    for _ in range(n):
        case_no = svc.start_case(applicant, "bangban_case", dict(SAMPLE_APPLICATION)).case_no
        for _user, name, form in FULL_STEPS:
            task = next(t for t in svc.inbox(agent) if t["case_no"] == case_no and t["name"] == name)
            svc.complete_task(agent, task["task_id"], form)
    # Thu 03-19 10:00: the yellow moments of 消防 and 供电 (15 days: 12th working day = 03-18) have passed.
    clock.set(L(2026, 3, 19, 10))
    with db.unit_of_work(write=False) as uow:
        due = uow.repo.count_due_timers(clock.now())
    seconds, counts, errors = worker_round(svc, 1, max_cases=10 * n)
    cases, most, left_due = fired_check(svc)
    out["full_1"] = {"cases": n, "due_timers": due, "seconds": seconds, "timers_per_s": due / seconds,
                     "cases_per_s": counts[0] / seconds, "ms_per_case": 1000 * seconds / max(counts[0], 1),
                     "fired_cases": cases, "most_per_case": most, "errors": [repr(e)[:300] for e in errors]}
    print(f"    full process: {due} timers of {n} cases in {seconds:.2f} s = {due / seconds:.0f} timers/s "
          f"({1000 * seconds / max(counts[0], 1):.1f} ms per case tick)", flush=True)


# ---- deadline computations --------------------------------------------------------------------------------------------

def per_call_us(fn, repeat: int = 7) -> dict:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(number, 10)
    runs = [t / number * 1e6 for t in timer.repeat(repeat=repeat, number=number)]
    return {"best_us": min(runs), "median_us": statistics.median(runs), "number": number}


def bench_compute(out: dict) -> None:
    cal = WorkCalendar()
    start = date(2026, 3, 2)
    for y in (2026, 2027):                       # warm the per-year tables
        cal.is_workday(date(y, 1, 1))

    def pause_skip(d: date) -> bool:
        return date(2026, 2, 12) < d <= date(2026, 2, 25)

    def clock_state(limit: int, received: datetime, pause=False, extension=False) -> ClockState:
        c = ClockState("xf", "消防（设计审查/验收）", "zjj", limit, started_at=received)
        if pause:
            c.pause(L(2026, 3, 9, 10), "补正")
            c.resume(L(2026, 3, 12, 15))
        if extension:
            c.extend(3, "理由", "supervisor1", L(2026, 3, 20, 10))
        return c

    plain = clock_state(15, L(2026, 3, 2, 9))
    paused = clock_state(15, L(2026, 3, 2, 9), pause=True, extension=True)
    dec = clock_state(20, L(2026, 12, 14, 9))
    now = L(2026, 3, 19, 10)
    cases = {
        "add_workdays(2026-03-02, 15), warm": lambda: cal.add_workdays(start, 15),
        "add_workdays(2026-12-14, 20) into 2027 (provisional), warm": lambda: cal.add_workdays(date(2026, 12, 14), 20),
        "add_workdays(2026-02-09, 10, skip=补正 pause), warm": lambda: cal.add_workdays(date(2026, 2, 9), 10, pause_skip),
        "add_workdays(2026-03-02, 250), warm": lambda: cal.add_workdays(start, 250),
        "workdays_between(2026-03-02, 2026-03-25), warm": lambda: cal.workdays_between(start, date(2026, 3, 25)),
        "add_workdays(2026-03-02, 15) on a fresh WorkCalendar()": lambda: WorkCalendar().add_workdays(start, 15),
        "ClockState.compute, 15 days, warm": lambda: plain.compute(cal, now),
        "ClockState.compute, 15 days + 补正 pause + 3 days extension": lambda: paused.compute(cal, now),
        "ClockState.compute, 20 days into 2027 (provisional)": lambda: dec.compute(cal, L(2026, 12, 20)),
        "ClockState.compute + describe (used/left/text), 15 days": lambda: plain.compute(cal, now).describe(cal, now),
    }
    out["compute"] = {}
    for name, fn in cases.items():
        out["compute"][name] = per_call_us(fn)


# ---- output ---------------------------------------------------------------------------------------------------------------

def _width(text_: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text_)


def ljust(text_: str, width: int) -> str:
    """``str.ljust`` by display width (CJK characters take two columns)."""
    return text_ + " " * max(0, width - _width(text_))


def print_table(results: dict) -> None:
    db, fig = results["db"], results["figures"]
    line = "-" * 104
    print()
    print(ljust(f"figure ({db})", 72) + "value".rjust(16) + "  unit")
    print(line)
    for key in sorted(k for k in fig if k.startswith("worker_")):
        f = fig[key]
        how = f"rounds of max_cases={f['max_cases']}" if f["max_cases"] <= 1000 else "ONE unbounded round"
        label = f"worker: {f['timers']} due timers, {f['workers']} worker(s), {how}"
        print(ljust(label, 72) + f"{f['timers_per_s']:16.0f}  timers/s   ({f['ms_per_timer']:.2f} ms each"
              + ("" if f["exactly_once"] else ", NOT exactly once / errors") + ")")
    starts = [f["start_cases_per_s"] for k, f in fig.items() if k.startswith("worker_")]
    if starts:
        print(ljust("  (starting those cases through Bangban.start_case)", 72)
              + f"{statistics.median(starts):16.0f}  cases/s")
    if "full_1" in fig:
        f = fig["full_1"]
        print(ljust(f"worker: full 帮办代办 process, {f['cases']} cases x 2 due yellow timers, 1 worker", 72)
              + f"{f['timers_per_s']:16.0f}  timers/s   ({f['ms_per_case']:.1f} ms per case tick)"
              + (f"  ERRORS {f['errors'][:1]}" if f["errors"] else ""))
    if "idle_poll_ms" in fig:
        print(ljust("worker: one idle round (nothing due)", 72) + f"{fig['idle_poll_ms'] * 1000:16.0f}  µs")
    print(line)
    print(ljust("deadline computation (µs per call)", 72) + "best".rjust(8) + "median".rjust(10))
    for name, f in fig.get("compute", {}).items():
        print(ljust(f"  {name}", 72) + f"{f['best_us']:8.2f}{f['median_us']:10.2f}")
    print(line)
    print(f"python {results['python']}, {results['cpus']} CPUs, load {results['loadavg'][0]:.2f} at start, "
          f"code {results['git']}")


def _git_version() -> str | None:
    import subprocess
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--timers", type=int, default=10_000, help="due timers per worker round (default 10000)")
    ap.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated (default 1,2)")
    ap.add_argument("--full-cases", type=int, default=100,
                    help="cases of the full process for the realistic figure (default 100; 0 skips it)")
    ap.add_argument("--unbounded", action="store_true",
                    help="also one single worker round with max_cases above --timers (slow: shows the skip list's cost)")
    ap.add_argument("--skip-worker", action="store_true", help="only the deadline computations")
    ap.add_argument("--json", metavar="OUT", help="write all figures as JSON to this file")
    args = ap.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]

    results: dict = {"db": args.db, "timers": args.timers, "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                     "git": _git_version(), "python": platform.python_version(), "cpus": os.cpu_count(),
                     "loadavg": os.getloadavg(), "figures": {}}
    dbs = Databases(args.db)
    atexit.register(dbs.cleanup)
    try:
        print(f"bench_timers: db={args.db}, {args.timers} due timers per round, workers {workers}, "
              f"{args.full_cases} full cases", flush=True)
        bench_compute(results["figures"])
        if not args.skip_worker:
            bench_worker(dbs, args.timers, workers, results["figures"], args.unbounded)
            bench_full(dbs, args.full_cases, results["figures"])
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        clock.reset()
        dbs.cleanup()
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    bad = [k for k, f in results["figures"].items() if isinstance(f, dict) and f.get("errors")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
