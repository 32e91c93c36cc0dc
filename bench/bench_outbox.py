#!/usr/bin/env python
"""How fast the worker empties the notifications outbox: SMS deliveries to a recording HTTP gateway on loopback.

    python bench/bench_outbox.py [--messages 3000] [--batch 100] [--runs 3] [--db sqlite|postgres] [--keep-tmp]

A throwaway database (``--db sqlite``: a file in a temp dir; ``postgres``: a fresh schema on
postgresql://root@127.0.0.1:5432/test) with the demo users; ``owner1`` gets a phone and chooses SMS. Per run,
``--messages`` notifications to ``role:process_owner`` are written through ``repo.add_notifications`` (as a step
writes them: the notification row, its in-app row and one pending SMS row each), then the worker's own function
(``engine.worker.deliver_once``) is called until nothing is due, with retries off (``max_attempts=1``) and the SMS
adapter pointed at a local ``http.server`` that records every request (urllib, one connection per message, as in
production). Reported: messages per second from the first claim to the last recorded outcome, and a check that the
gateway saw each idempotency key exactly once and every row is ``sent``. All traffic goes to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import Databases  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from engine import processes  # noqa: E402
from engine.channels import NotifySettings  # noqa: E402
from engine.clock import now  # noqa: E402
from engine.db import Database, normalize_url  # noqa: E402
from engine.demo import load_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import Delivery, User  # noqa: E402
from engine.services import Bangban  # noqa: E402
from engine.worker import deliver_once  # noqa: E402


class Gateway:
    """A recording SMS gateway: answers {"code": "OK"} and keeps each request's ``request_id``."""

    def __init__(self):
        self.keys: list[str] = []
        lock = threading.Lock()
        keys = self.keys

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    keys.append(json.loads(body)["request_id"])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "13")
                self.end_headers()
                self.wfile.write(b'{"code":"OK"}')

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/sms"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def write(svc: Bangban, n: int, run: int) -> None:
    at = now()
    with svc.db.unit_of_work() as uow:
        uow.repo.add_notifications([{"recipient": "role:process_owner", "case_id": None, "text": f"基准通知 {run}-{i}",
                                     "created_at": at, "idem_key": f"bench-{run}-{i}"} for i in range(n)])
        uow.commit()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_outbox_"))
    dbs = Databases(args.db, tmp)
    gateway = Gateway()
    try:
        url = dbs.new("outbox")
        upgrade(normalize_url(url))
        db = Database(url)
        svc = Bangban.open(db, processes.read_dir(ROOT / "processes"))
        load_demo(db, svc.current.catalogue)
        with db.unit_of_work() as uow:
            uow.repo.conn.execute(update(User.__table__).where(User.__table__.c.username == "owner1")
                                  .values(phone="13700000009"))
            uow.commit()
        config = NotifySettings(sms_url=gateway.url, sms_sign_name="武陟政务", sms_template_id="SMS_0001",
                                max_attempts=1, batch=args.batch, timeout=5.0)
        svc.notify_settings = config
        svc.set_notification_channels(_actor(svc, "owner1"), ["sms"])
        rates = []
        for run in range(args.runs):
            write(svc, args.messages, run)
            before = len(gateway.keys)
            t0 = time.perf_counter()
            total = 0
            while True:
                done = deliver_once(svc, 1000)
                total += done
                if done == 0:
                    break
            elapsed = time.perf_counter() - t0
            assert total == args.messages, (total, args.messages)
            keys = gateway.keys[before:]
            assert sorted(keys) == sorted(f"bench-{run}-{i}/sms/owner1" for i in range(args.messages)), "重复或遗漏"
            rates.append(args.messages / elapsed)
            print(f"run {run + 1}: {args.messages} SMS in {elapsed:.2f} s = {args.messages / elapsed:.0f}/s")
        with db.unit_of_work(write=False) as uow:
            d = Delivery.__table__
            statuses = dict(uow.repo.conn.execute(select(d.c.status, func.count()).where(d.c.channel == "sms")
                                                  .group_by(d.c.status)).all())
        assert statuses == {"sent": args.messages * args.runs}, statuses
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        print(f"commit {commit}, {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.2f} "
              f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, db {args.db}, batch {args.batch}")
        print(f"median {statistics.median(rates):.0f}/s, min {min(rates):.0f}/s, max {max(rates):.0f}/s "
              f"(each key exactly once at the gateway, all rows sent)")
        db.dispose()
    finally:
        gateway.close()
        dbs.cleanup()
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _actor(svc: Bangban, username: str):
    from engine.access import Actor
    with svc.db.unit_of_work(write=False) as uow:
        return Actor.from_row(uow.repo.user_by_username(username))


if __name__ == "__main__":
    sys.exit(main())
