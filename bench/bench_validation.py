#!/usr/bin/env python
"""What validation in a bounded worker process costs, and what a hostile diagram costs the server (bench/README.md,
"Validation").

    python bench/bench_validation.py [--repeat 15] [--json OUT]

Figures, each the median (and max) of ``--repeat`` runs, in one process so they compare:

  set       the whole real process set (processes/), in this process (``engine.validation.validate_set``) and in the
            bounded worker (``engine.validation.bounded.validate_set``: one job to the spare worker, answer read);
  file      one BPMN file of it against the set, likewise;
  cold      a worker started for the job (no spare waiting): Python start, imports, XSD load, then the job;
  chain     a chain of 2,000 tasks refused by the structural limits (flow nodes counted before SpiffWorkflow parses);
  parse     SpiffWorkflow building chains of 100, 200, 400 tasks (what the limit of 400 flow nodes protects against:
            the time grows with the square of the length);
  rss       this process's resident memory before and after the worker runs (the server's memory does not grow).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import processes  # noqa: E402
from engine.validation import bounded, validate_bpmn_file, validate_set  # noqa: E402
from tests.test_validation_bounded import chain  # noqa: E402


def timed(fn, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
        time.sleep(0.3)          # let the spare worker get ready, as between two owners' clicks
    return {"median_ms": round(statistics.median(runs), 1), "max_ms": round(max(runs), 1)}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def spiff_parse_ms(n: int) -> float:
    from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

    from engine.validation.xmlsafety import _parse_xml
    tree = _parse_xml(chain(n))
    started = time.perf_counter()
    parser = SpiffBpmnParser()
    parser.add_bpmn_xml(tree, filename="chain.bpmn")
    parser.get_spec("Process_chain")
    return round((time.perf_counter() - started) * 1000, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--json")
    args = ap.parse_args()
    files = processes.read_dir(ROOT / "processes")
    name = next(n for n in files if n.endswith(".bpmn"))
    sys.setrecursionlimit(5000)
    bounded.validate_set(files)          # the first job starts the spare
    time.sleep(1)
    before = rss_mb()
    figures = {
        "python": platform.python_version(),
        "set_in_process": timed(lambda: validate_set(files), args.repeat),
        "set_worker": timed(lambda: bounded.validate_set(files), args.repeat),
        "file_in_process": timed(lambda: validate_bpmn_file(name, files[name], files), args.repeat),
        "file_worker": timed(lambda: bounded.validate_bpmn_file(name, files[name], files), args.repeat),
    }

    def cold() -> None:
        bounded.shutdown()
        bounded.pool()._refill = lambda: None      # no spare: every job starts its worker
        bounded.validate_set(files)
    figures["set_worker_cold"] = timed(cold, max(3, args.repeat // 3))
    bounded.shutdown()
    figures["chain_2000_refused"] = timed(lambda: validate_bpmn_file("chain.bpmn", chain(2000), files), 3)
    figures["spiff_parse_chain_ms"] = {n: spiff_parse_ms(n) for n in (100, 200, 400)}
    figures["rss_mb"] = {"before": before, "after": rss_mb()}
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
