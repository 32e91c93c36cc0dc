#!/usr/bin/env python
"""Figure (a) — or (b) with ``--full`` — of two code trees side by side: each served by its own ``bangban serve``
(its own SQLite database, ``bench/minimal`` or ``processes/``), whole cases interleaved one from each (order
alternating), so that whatever else the machine does weighs on both alike.

    python bench/ab.py OLD_TREE [NEW_TREE] [--cases 100] [--full]

A tree is a checkout of this repository (e.g. ``git worktree add ../old <commit>``); NEW_TREE defaults to this one.
Both run with this interpreter and its packages (the tree's code comes first on PYTHONPATH).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new", nargs="?", default=str(B.ROOT))
    ap.add_argument("--cases", type=int, default=100, help="measured cases per tree (default 100)")
    ap.add_argument("--full", action="store_true", help="figure (b): the full lifecycle on processes/ (28 requests)")
    args = ap.parse_args(argv)
    process_dir = B.FULL_DIR if args.full else B.MINIMAL_DIR
    tmp = Path(tempfile.mkdtemp(prefix="bangban-ab-"))
    servers = {}
    try:
        for label, tree in (("old", args.old), ("new", args.new)):
            srv = B.Server(label, f"sqlite:///{tmp}/{label}.sqlite3", process_dir, tmp, threads=4)
            srv.env["PYTHONPATH"] = str(Path(tree).resolve())
            servers[label] = srv.start()
        apis = {}
        for label, srv in servers.items():
            api = B.HttpApi(srv.port)
            if args.full:
                for user in B.FULL_USERS:
                    api.login(user)
                apis[label] = (api, None)
            else:
                api.login("agent1")
                apis[label] = (api, api.start_form("agent1", B.MINIMAL_PROCESS)["units"][0]["id"])

        def one(api, unit, i: int) -> float:
            return B.run_full(api, i) if args.full else B.run_minimal(api, unit, i)
        for i in range(5):
            for api, unit in apis.values():
                one(api, unit, -1 - i)
        samples: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(args.cases):
            for label in (("old", "new") if i % 2 == 0 else ("new", "old")):
                api, unit = apis[label]
                samples[label].append(one(api, unit, i) * 1000)
    finally:
        for srv in servers.values():
            srv.stop()
    for label, xs in samples.items():
        xs.sort()
        print(f"{label} ({args.old if label == 'old' else args.new}): n={len(xs)}  median {statistics.median(xs):.2f} ms  "
              f"p90 {xs[max(0, int(0.9 * len(xs)) - 1)]:.2f}  min {xs[0]:.2f}")
    old, new = samples["old"], samples["new"]
    print(f"new / old: median {statistics.median(new) / statistics.median(old):.3f}, min {new[0] / old[0]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
