"""PDF rendering time per printed document (issue 18): each kind rendered from its template and turned into an A4 PDF
by WeasyPrint, as ``GET /cases/<no>/documents/<id>/pdf`` does (the use case, without Flask), on SQLite. Median and
90th percentile per kind; the target is a median under 300 ms for the 办结单.

    PYTHONPATH=. python bench/bench_pdf.py [RUNS]      # default 20 per kind, after 3 warm-up renders
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.helpers as h  # noqa: E402
from engine import processes  # noqa: E402
from engine.db import Database, normalize_url  # noqa: E402
from engine.demo import load_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.services import Bangban  # noqa: E402
from tests.conftest import actor  # noqa: E402

KINDS = ("申请表", "承诺书", "委托书", "补正告知书", "办结单", "评价表")


def service() -> Bangban:
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(normalize_url(url))
    db = Database(url)
    svc = Bangban.open(db, processes.read_dir(ROOT / "processes"))
    load_demo(db, svc.current.catalogue)
    return svc


def completed_case(svc: Bangban) -> str:
    no = h.start(svc, service_items=["hp", "xf"])
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp", "xf"])
    h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=no, **h.needs_correction("补充环境影响报告表"))
    h.complete(svc, "huarui", "补正材料", "环评", case_no=no, **h.supplement())
    h.approve_items(svc, no, ["hp", "xf"])
    h.collect_and_deliver(svc, no)
    h.complete(svc, "huarui", "签收办结单", case_no=no, **h.receipt())
    h.complete(svc, "huarui", "评价代办服务", case_no=no, **h.rating())
    return no


def _pages(pdf: bytes) -> str:
    """The page count pdfinfo (poppler-utils) reads, or ? without it."""
    try:
        info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, text=False, timeout=30).stdout.decode()
    except OSError:
        return "?"
    return next((line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")), "?")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    h.freeze_clock()
    svc = service()
    no = completed_case(svc)
    who = actor(svc, "supervisor1")
    with svc.db.unit_of_work(write=False) as uow:
        ids = {r.kind: r.id for r in uow.repo.documents_for_case(uow.repo.case_by_no(no).id)}

    def render(kind: str) -> dict:
        if kind in ("申请表", "承诺书"):
            return svc.render_application_document(who, no, kind, "http://127.0.0.1/")
        return svc.render_document(who, no, ids[kind], "http://127.0.0.1/")

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  commit {commit}  "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}  runs {runs}")
    print(f"{'kind':<8} {'median ms':>10} {'p90 ms':>8} {'html ms':>8} {'pages':>6} {'bytes':>8}")
    for kind in KINDS:
        for _ in range(3):
            svc.document_pdf(render(kind))
        total, html_only = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            doc = render(kind)
            t1 = time.perf_counter()
            pdf = svc.document_pdf(doc)
            t2 = time.perf_counter()
            total.append((t2 - t0) * 1000)
            html_only.append((t1 - t0) * 1000)
        total.sort()
        pages = _pages(pdf)
        print(f"{kind:<8} {statistics.median(total):>10.1f} {total[int(0.9 * (len(total) - 1))]:>8.1f} "
              f"{statistics.median(html_only):>8.1f} {pages:>6} {len(pdf):>8}")


if __name__ == "__main__":
    main()
