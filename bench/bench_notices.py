"""What the message templates (``processes/notifications.json``, issue 15 item 3) cost a case: the full lifecycle
(three items approved, delivery, receipt, ratings) through the engine's use cases on SQLite, with the templates and
with the same process set without them, cases interleaved (order alternating) so the machine's load weighs on both.

    PYTHONPATH=. python bench/bench_notices.py [CASES]      # default 40; the first 3 of each are warm-up
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

import tests.helpers as h  # noqa: E402
from engine import notices, processes  # noqa: E402
from engine.db import Database, normalize_url  # noqa: E402
from engine.demo import load_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import Notification  # noqa: E402
from engine.services import Bangban  # noqa: E402


def service(templates: bool) -> Bangban:
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(normalize_url(url))
    db = Database(url)
    files = processes.read_dir(ROOT / "processes")
    if not templates:
        files.pop(notices.FILE)
    svc = Bangban.open(db, files)
    load_demo(db, svc.current.catalogue)
    return svc


def one_case(svc: Bangban) -> None:
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp", "xf", "gd"])
    h.approve_items(svc, no, ["hp", "xf", "gd"])
    h.collect_and_deliver(svc, no)
    h.complete(svc, "huarui", "签收办结单", case_no=no, **h.receipt())
    h.complete(svc, "huarui", "评价代办服务", case_no=no, **h.rating())
    h.rate_departments(svc, no)


def main() -> None:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    h.freeze_clock()
    svcs = {"with templates": service(True), "without": service(False)}
    times: dict[str, list[float]] = {k: [] for k in svcs}
    for i in range(cases):
        for k in (list(svcs) if i % 2 else list(svcs)[::-1]):
            t = time.perf_counter()
            one_case(svcs[k])
            times[k].append((time.perf_counter() - t) * 1000)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"bench_notices: commit {commit}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cases} cases each, "
          f"load average {open('/proc/loadavg').read().split()[:3]}")
    for k, svc in svcs.items():
        with svc.db.unit_of_work(write=False) as uow:
            n = uow.repo.conn.execute(select(func.count()).select_from(Notification.__table__)).scalar_one()
        v = times[k][3:]
        print(f"  {k:15} full case median {statistics.median(v):6.1f} ms  min {min(v):6.1f} ms  "
              f"messages per case {n / cases:.1f}")


if __name__ == "__main__":
    main()
