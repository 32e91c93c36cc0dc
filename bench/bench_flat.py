#!/usr/bin/env python
"""Flat cost (issue 14 item 5): figures (a) and (b) of bench/bench.py at 0, 1,000, 10,000 and 100,000 cases in the
database, and a case with a ~500-event history completing a task against a new case completing the same task.

    python bench/bench_flat.py                                   # SQLite, sizes 0,1000,10000,100000, 20 runs
    python bench/bench_flat.py --sizes 0,1000 --runs 20 --json out.json
    python bench/bench_flat.py --db postgres --sizes 0,10000

One database grows from size to size: ``bench/preload.py`` adds cases of the full process (templates driven
through the engine, then cloned). At each size, as bench.py does: ``bangban demo`` + ``bangban serve`` on
``bench/minimal`` for (a) — the minimal process's cost depends on how much the database holds, not on which
process the preloaded cases follow — then on ``processes/`` for (b), on the same database. The preloaded cases
belong to their own units (none to the demo units), so the benchmark client lists its inbox with the unit filter of
the demo unit its cases are for (``GET /api/tasks?unit=<id>``): with thousands of open preloaded tasks its own would
not be on the first page of the urgency order (the list puts tasks without a clock last).

History: before the (b) server of each size, a case of the demo unit is driven in-process through the use cases
(受理, 委托书, one item 环评 dispatched) and then through 补正 rounds (部门办理 需要补正 → 补正材料), with a 延期 request
approved every fifth round, until it has ``--history`` events (default 500). Over HTTP, alternately: that case's
部门办理 (需要补正) completed (timed), then its 补正材料 (untimed, restoring the loop); and a new case brought untimed to
the same task, whose 部门办理 (需要补正) is then timed. The case page (GET /api/cases/<no>) of each is timed too.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("BANGBAN_ARGON2_TESTING", "1")

import preload  # noqa: E402
from benchlib import Databases  # noqa: E402

import bench  # noqa: E402
from bench import (  # noqa: E402
    FULL_DIR,
    FULL_USERS,
    MINIMAL_DIR,
    MINIMAL_PROCESS,
    BenchError,
    HttpApi,
    Server,
    _git_version,
    measure,
    run_full,
    run_minimal,
    stop_servers,
    summarize,
)

DEMO_UNIT = "武陟县华瑞食品有限公司"     # huarui's unit: the benchmark's cases, and no preloaded case


class UnitApi(HttpApi):
    """bench.py's HTTP client, listing the inbox with the unit filter of the benchmark's own cases."""

    unit_id: int | None = None

    def inbox(self, user: str) -> list[dict]:
        return self.sessions[user].call("GET", f"/api/tasks?unit={self.unit_id}&limit=200", "GET /api/tasks")["tasks"]


def add_minimal_department(url: str) -> None:
    """The minimal process set's department (bench/minimal/catalogue.json), so that ``bangban demo`` may publish
    that set on a database made for the full one."""
    svc = preload.open_service(url)
    try:
        with svc.db.unit_of_work() as uow:
            if "bench" not in {r.code for r in uow.repo.departments()}:
                uow.repo.insert_department(code="bench", name="基准测试部门", phone=None, active=True)
            uow.commit()
    finally:
        svc.db.dispose()


def count_cases(url: str) -> int:
    from sqlalchemy import create_engine, text

    from engine.db import normalize_url
    eng = create_engine(normalize_url(url))
    try:
        with eng.connect() as c:
            try:
                return c.execute(text("SELECT count(*) FROM cases")).scalar()
            except Exception:
                return 0
    finally:
        eng.dispose()


# ---- the long history -----------------------------------------------------------------------------------------------

def build_history(url: str, events: int, tag: str) -> str:
    """A case of the demo unit with at least ``events`` events, its item 环评 waiting at 部门办理; its case number."""
    from engine.clock import clock, service_today
    svc = preload.open_service(url)
    try:
        import random
        d = preload.Driver(svc, random.Random(7), "huarui")
        from datetime import UTC, datetime, timedelta

        from engine.demo import SAMPLE_APPLICATION
        clock.set(datetime.now(UTC) - timedelta(days=5))
        d.case_no = svc.start_case(d.actor("huarui"), preload.PROCESS, dict(
            SAMPLE_APPLICATION, project_name=f"长历史项目{tag}", project_code=f"2026-LONG-{tag}",
            service_items=["hp"])).case_no
        d.do("Task_Review", {"review_decision": "受理", "authorization_checked": True})
        d.do("Task_Commission", {"commission_signed": True, "materials_received": "营业执照等",
                                 "service_mode_confirmed": "现场服务"})
        d.do("Task_Dispatch", {"service_items": ["hp"]})
        rounds = 0
        while True:
            with svc.db.unit_of_work(write=False) as uow:
                seq = uow.repo.case_by_no(d.case_no).event_seq
            if seq >= events:
                break
            rounds += 1
            if rounds % 5 == 0:
                t = next(t for t in d.open_tasks() if t.element_id == "Task_Handle")
                d.message("zb_sthj", "extension_request", {"extension_days": 1, "extension_reason": "补正材料需要复核"},
                          t.task_id)
                d.do("Task_ApproveExtension", {"extension_decision": "批准延期", "extension_days_approved": 1,
                                               "extension_opinion": "同意延期"})
            d.do("Task_Handle", {"item_decision": "需要补正", "correction_request": f"第{rounds}次补充材料",
                                 "correction_due": service_today(10).isoformat()})
            d.do("Task_Supplement", {"supplement_description": "已按要求补交", "supplement_complete": True})
            clock.set(min(clock.now(), datetime.now(UTC) - timedelta(hours=1)))
        return d.case_no
    finally:
        clock.reset()
        svc.db.dispose()


def measure_history(api: UnitApi, long_no: str, runs: int, warmup: int) -> dict:
    """Alternately: the long case's 部门办理 (需要补正), and a new case's, each timed, with their case pages."""
    from bench import _pick
    from engine.clock import service_today
    from engine.demo import SAMPLE_APPLICATION
    rec = {"long_complete": [], "new_complete": [], "long_view": [], "new_view": []}
    correction = {"item_decision": "需要补正", "correction_request": "请补充材料",
                  "correction_due": service_today(30).isoformat()}

    def timed(kind, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        rec[kind].append(time.perf_counter() - t0)
        return out

    for i in range(-warmup, runs):
        # the long case
        task = _pick(api.inbox("zb_sthj"), long_no, "部门办理", "sthj")
        timed("long_complete", api.complete, "zb_sthj", task["task_id"], correction)
        timed("long_view", api.case, "agent1", long_no)
        task = _pick(api.inbox("huarui"), long_no, "补正材料")
        api.complete("huarui", task["task_id"], {"supplement_description": "已按要求补交", "supplement_complete": True})
        # a new case, brought to the same task untimed
        no = api.start("huarui", bench.FULL_PROCESS, dict(SAMPLE_APPLICATION, project_name=f"新办件{i}",
                                                            service_items=["hp"]), None)
        for user, name, data in (("agent1", "受理审核", {"review_decision": "受理", "authorization_checked": True}),
                                 ("agent1", "材料交接并签订委托书", {"commission_signed": True,
                                                             "materials_received": "营业执照等",
                                                             "service_mode_confirmed": "现场服务"}),
                                 ("agent1", "分派服务事项", {"service_items": ["hp"]})):
            api.complete(user, _pick(api.inbox(user), no, name)["task_id"], data)
        task = _pick(api.inbox("zb_sthj"), no, "部门办理", "sthj")
        timed("new_complete", api.complete, "zb_sthj", task["task_id"], correction)
        timed("new_view", api.case, "agent1", no)
        if i < 0:
            for v in rec.values():
                v.clear()
    view = api.case("agent1", long_no)
    out = {k: summarize(v) for k, v in rec.items()}
    out["long_events"] = len(view.get("timeline") or view.get("events") or [])
    for k in ("long_complete", "new_complete", "long_view", "new_view"):
        s = out[k]
        print(f"  {k:<16} median {s['median_ms']:8.2f} ms   p90 {s['p90_ms']:8.2f}   min {s['min_ms']:8.2f}", flush=True)
    return out


def case_events(url: str, case_no: str) -> int:
    from sqlalchemy import create_engine, text

    from engine.db import normalize_url
    eng = create_engine(normalize_url(url))
    try:
        with eng.connect() as c:
            return c.execute(text("SELECT event_seq FROM cases WHERE case_no = :n"), {"n": case_no}).scalar()
    finally:
        eng.dispose()


# ---- main ---------------------------------------------------------------------------------------------------------

def interleaved(args, tmp: Path, dbs) -> dict:
    """(a) and (b) on an empty database and on one holding ``args.interleaved`` preloaded cases, served side by side
    by the same code, cases alternating between the two (order swapped every run), so that the machine's load weighs
    on both alike: the ratio big/small is the flat-cost verdict even on a busy machine."""
    urls = {"empty": dbs.new("flat_empty"), "big": dbs.new("flat_big")}
    for url in urls.values():
        preload.open_service(url).db.dispose()
    print(f"preloading {args.interleaved} cases ...", flush=True)
    preload.preload(urls["big"], args.interleaved, templates=args.templates, seed=args.interleaved)
    out: dict = {"cases": {k: count_cases(u) for k, u in urls.items()}, "loadavg_start": os.getloadavg()}
    for figure, directory in (("a", MINIMAL_DIR), ("b", FULL_DIR)):
        apis, servers = {}, []
        for label, url in urls.items():
            if figure == "a":
                add_minimal_department(url)
            srv = Server(f"{figure}_{label}", url, directory, tmp, args.threads).start()
            servers.append(srv)
            api = UnitApi(srv.port)
            for u in (["agent1"] if figure == "a" else FULL_USERS):
                api.login(u)
            if figure == "a":
                units = {u["name"]: u["id"] for u in api.start_form("agent1", MINIMAL_PROCESS)["units"]}
                api.unit_id = units[DEMO_UNIT]
            else:
                api.unit_id = apis_unit_id(api)
            apis[label] = api

        def one(api, i, figure=figure):
            return run_minimal(api, api.unit_id, i) if figure == "a" else run_full(api, i)
        for i in range(args.warmup):
            for api in apis.values():
                one(api, -1 - i)
        samples: dict[str, list[float]] = {k: [] for k in apis}
        for i in range(args.runs):
            for label in (("empty", "big") if i % 2 == 0 else ("big", "empty")):
                samples[label].append(one(apis[label], i))
        for api in apis.values():
            api.close()
        for srv in servers:
            srv.stop()
        fig = {k: summarize(v) for k, v in samples.items()}
        fig["ratio_median"] = fig["big"]["median_ms"] / fig["empty"]["median_ms"]
        fig["ratio_min"] = fig["big"]["min_ms"] / fig["empty"]["min_ms"]
        out[figure] = fig
        print(f"({figure}) empty: median {fig['empty']['median_ms']:.2f} ms, min {fig['empty']['min_ms']:.2f}; "
              f"{out['cases']['big']} cases: median {fig['big']['median_ms']:.2f}, min {fig['big']['min_ms']:.2f}; "
              f"big/empty median {fig['ratio_median']:.3f}, min {fig['ratio_min']:.3f}", flush=True)
    out["loadavg_end"] = os.getloadavg()
    return out


def apis_unit_id(api: UnitApi) -> int:
    """The demo unit's id as the full process's start form lists it for an agent (the benchmark's cases are its)."""
    return {u["name"]: u["id"] for u in api.start_form("agent1", bench.FULL_PROCESS)["units"]}[DEMO_UNIT]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interleaved", type=int, metavar="N",
                    help="instead of the curve: an empty database and one of N cases served side by side, interleaved")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--sizes", default="0,1000,10000,100000")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--history", type=int, default=500, help="events of the long case (default 500)")
    ap.add_argument("--history-runs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--templates", type=int, default=200)
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))

    signal.signal(signal.SIGTERM, bench._on_signal)
    atexit.register(stop_servers)
    tmp = Path(tempfile.mkdtemp(prefix="bangban_flat_"))
    dbs = Databases(args.db, tmp)
    url = dbs.new("flat")
    results = {"git": _git_version(), "when": time.strftime("%Y-%m-%d %H:%M:%S %z"), "db": args.db,
               "runs": args.runs, "python": platform.python_version(), "cpus": os.cpu_count(),
               "loadavg_start": os.getloadavg(), "sizes": {}}
    try:
        if args.interleaved:
            results["interleaved"] = interleaved(args, tmp, dbs)
            if args.json:
                Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str))
            return 0
        preload.open_service(url).db.dispose()
        for size in sizes:
            have = count_cases(url)
            if size > have:
                print(f"preloading {size - have} cases ...", flush=True)
                out = preload.preload(url, size - have, templates=args.templates, seed=size)
                results.setdefault("preloads", []).append({k: v for k, v in out.items()
                                                           if k != "template_case_numbers"})
            fig = results["sizes"][size] = {"cases_before": count_cases(url), "loadavg": os.getloadavg()}
            print(f"== {fig['cases_before']} cases in the database (load {fig['loadavg'][0]:.2f})", flush=True)

            add_minimal_department(url)
            srv = Server(f"minimal_{size}", url, MINIMAL_DIR, tmp, args.threads).start()
            api = UnitApi(srv.port)
            api.login("agent1")
            units = {u["name"]: u["id"] for u in api.start_form("agent1", MINIMAL_PROCESS)["units"]}
            api.unit_id = units[DEMO_UNIT]
            fig["a"] = measure("(a)  minimal over HTTP", lambda i, api=api: run_minimal(api, api.unit_id, i), args.runs,
                               args.warmup, api.recorder)
            api.close()
            srv.stop()

            long_no = build_history(url, args.history, str(size)) if args.history else None
            srv = Server(f"full_{size}", url, FULL_DIR, tmp, args.threads).start()
            api = UnitApi(srv.port)
            for u in FULL_USERS:
                api.login(u)
            api.unit_id = units[DEMO_UNIT]
            fig["b"] = measure("(b)  full lifecycle over HTTP", lambda i, api=api: run_full(api, i), args.runs, args.warmup,
                               api.recorder)
            if long_no:
                fig["history_case"] = long_no
                fig["history_events_before"] = case_events(url, long_no)
                print(f"  history: case {long_no} with {fig['history_events_before']} events vs a new case", flush=True)
                fig["history"] = measure_history(api, long_no, args.history_runs, 1)
            api.close()
            srv.stop()
            fig["cases_after"] = count_cases(url)
        results["loadavg_end"] = os.getloadavg()
        report(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str))
        return 0
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_servers()
        dbs.cleanup()
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(results: dict) -> None:
    sizes = results["sizes"]
    base = sizes[min(sizes)]
    print("\n" + "=" * 100)
    print(f"flat cost, {results['db']}, code {results['git']}, {results['when']}, load {results['loadavg_start'][0]:.2f}"
          f" → {results['loadavg_end'][0]:.2f}")
    print(f"{'cases':>8} | {'(a) median':>10} {'p90':>7} {'min':>7} {'ratio':>6} | {'(b) median':>10} {'p90':>7}"
          f" {'min':>7} {'ratio':>6}")
    for f in sizes.values():
        a, b = f["a"], f["b"]
        print(f"{f['cases_before']:>8} | {a['median_ms']:>10.2f} {a['p90_ms']:>7.2f} {a['min_ms']:>7.2f}"
              f" {a['median_ms'] / base['a']['median_ms']:>6.2f} | {b['median_ms']:>10.2f} {b['p90_ms']:>7.2f}"
              f" {b['min_ms']:>7.2f} {b['median_ms'] / base['b']['median_ms']:>6.2f}")
    print("\nper request (median ms):")
    for f in sizes.values():
        for key in ("a", "b"):
            per = f[key].get("per_request", {})
            print(f"  {f['cases_before']:>7} ({key}) " + ", ".join(f"{k} {v['median_ms']:.2f}" for k, v in per.items()))
    print("\nhistory (ms: median / p90 / min):")
    for f in sizes.values():
        h = f.get("history")
        if not h:
            continue
        print(f"  {f['cases_before']:>7} cases, long case {f['history_events_before']} events: "
              + "; ".join(f"{k} {h[k]['median_ms']:.2f} / {h[k]['p90_ms']:.2f} / {h[k]['min_ms']:.2f}"
                          for k in ("long_complete", "new_complete", "long_view", "new_view")))


if __name__ == "__main__":
    sys.exit(main())
