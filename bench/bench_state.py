#!/usr/bin/env python
"""The stored workflow state of the full 帮办代办 lifecycle (figure (b)'s steps): its size after each step, what it is
made of, and what loading and saving it cost per lifecycle — in memory, no database.

    python bench/bench_state.py [--runs 10]

Printed per step: bytes of the stored JSON, tasks of the case and of its subprocesses. Then, per lifecycle (median of
``--runs``): parsing the JSON (orjson, as ``CaseRun.load`` does, and the standard library for comparison), rebuilding
the workflow from it, converting the workflow to a dict, and encoding that dict (orjson / standard library).
A step served from the workflow cache (``engine.wfcache``) pays neither the parse nor the rebuild, and converts only
the tasks that are open or changed ("to dict, kept": the same steps on one workflow kept between them).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import orjson  # noqa: E402

import bench as B  # noqa: E402
from engine import processes  # noqa: E402
from engine import spiff_runtime as rt  # noqa: E402
from engine.runtime import CaseRun, _json_default  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args(argv)
    ps = processes.load(processes.read_dir(B.FULL_DIR))
    spec, subs = ps.specs[B.FULL_PROCESS]
    start, prepared = B.prepare_floor(ps, B.FULL_PROCESS, B.APPLICATION, B.FULL_STEPS)
    costs: dict[str, list[float]] = {k: [] for k in ("parse orjson", "parse json", "rebuild", "to dict",
                                                     "encode orjson", "encode json")}
    sizes = []
    for r in range(args.runs):
        run = CaseRun.start(ps, B.FULL_PROCESS, start)
        state = run.dump()
        total = dict.fromkeys(costs, 0.0)
        for user, name, data in prepared:
            t0 = time.perf_counter()
            parsed = orjson.loads(state)
            t1 = time.perf_counter()
            json.loads(state)
            t2 = time.perf_counter()
            wf = rt.load_state(parsed, spec, subs, ps.script_engine)
            t3 = time.perf_counter()
            run = CaseRun.resume(ps, B.FULL_PROCESS, wf, run.case_vars)
            run.complete(B._floor_pick(run, name, B.dept_of(user)), user, data)
            t4 = time.perf_counter()
            dct = rt.dump_state(run.wf)
            t5 = time.perf_counter()
            state = orjson.dumps(dct, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()
            t6 = time.perf_counter()
            json.dumps(dct, ensure_ascii=False, separators=(",", ":"), default=_json_default)
            t7 = time.perf_counter()
            for k, v in zip(costs, (t1 - t0, t2 - t1, t3 - t2, t5 - t4, t6 - t5, t7 - t6), strict=True):
                total[k] += v
            if r == 0:
                sizes.append((name, len(state.encode()), len(run.wf.tasks),
                              sum(len(s.tasks) for s in run.wf.subprocesses.values())))
        for k, v in total.items():
            costs[k].append(v * 1000)
    warm = []    # the same steps on one workflow kept between them (engine.wfcache): convert only what changed
    for _ in range(args.runs):
        run = CaseRun.start(ps, B.FULL_PROCESS, start)
        run.dump()
        spent = 0.0
        for user, name, data in prepared:
            run.complete(B._floor_pick(run, name, B.dept_of(user)), user, data)
            t0 = time.perf_counter()
            rt.dump_state(run.wf)
            spent += time.perf_counter() - t0
        warm.append(spent * 1000)
    costs["to dict, kept"] = warm
    print(f"git {B._git_version()}  load average {os.getloadavg()[0]:.2f}  runs {args.runs}")
    print(f"{'step':<24} {'bytes':>8} {'tasks':>6} {'in subprocesses':>16}")
    for name, size, top, sub in sizes:
        print(f"{name:<24} {size:>8} {top:>6} {sub:>16}")
    print("per lifecycle, ms (median):")
    for k, v in costs.items():
        print(f"  {k:<14} {statistics.median(v):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
