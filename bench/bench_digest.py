#!/usr/bin/env python
"""How fast anchored digests are: ``bangban audit digest`` over 100,000 cases, a consistency proof check, and
``verify --digest`` as a whole.

    python bench/bench_digest.py [--cases 100000] [--changed 10000] [--db sqlite|postgres] [--keep-tmp]

A throwaway database gets ``--cases`` cases with one event each (rows written directly, a valid chain of one event
per case), then the figures:

1. the first digest (every case gets a leaf), in-process (``Bangban.take_digest``) and as ``bangban audit digest``
   run as its own process (start-up included);
2. ``--changed`` cases move on (a second event each) and a second digest appends their leaves;
3. the consistency proof from the first head to the second: generated from the leaves, and checked with the RFC 9162
   §2.1.4.2 algorithm (the "check" figure), plus an inclusion proof of one case;
4. ``verify --digest`` of the log of both heads (signatures, roots, consistency, every leaf against the events, every
   anchored chain recomputed).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import Databases, bangban_cmd  # noqa: E402
from sqlalchemy import insert, select, update  # noqa: E402

from engine import digests, merkle, processes  # noqa: E402
from engine.db import Database, normalize_url  # noqa: E402
from engine.events import event_hash  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.repository import cases, events, process_versions, units, users  # noqa: E402
from engine.services import Bangban  # noqa: E402

AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
CHUNK = 5000


def fill(db: Database, n: int) -> None:
    """``n`` cases of one event each, written directly (the engine would take hours to drive them)."""
    with db.engine.begin() as c:    # ids from the database's own sequences: the service inserts after us
        unit = c.execute(insert(units).values(name="基准单位").returning(units.c.id)).scalar_one()
        user = c.execute(insert(users).values(username="bench", password_hash="-", display_name="基准", roles="applicant")
                         .returning(users.c.id)).scalar_one()
        version = c.execute(insert(process_versions).values(hash="0" * 64, files={}, author="bench", comment="",
                                                            created_at=AT, activated_at=AT)
                            .returning(process_versions.c.id)).scalar_one()
    for start in range(0, n, CHUNK):
        case_rows, event_rows = [], []
        for i in range(start, min(n, start + CHUNK)):
            no = f"BENCH{i:08d}"
            payload = {"application": {"title": f"项目 {i}"}}
            h = event_hash("", no, 1, "case_started", AT, "bench", "applicant", None, None, payload, actor_id=user)
            case_rows.append({"id": i + 1, "case_no": no, "version_id": version, "process_id": "bench",
                              "title": f"项目 {i}", "unit_id": unit, "unit_name": "基准单位", "status": "active",
                              "created_by": user, "created_at": AT, "updated_at": AT, "event_seq": 1, "last_hash": h,
                              "state": "{}", "case_vars": {}})
            event_rows.append({"case_id": i + 1, "seq": 1, "type": "case_started", "at": AT, "actor_id": user,
                               "actor_name": "bench", "role": "applicant", "payload": payload, "prev_hash": "", "hash": h})
        with db.engine.begin() as c:
            c.execute(insert(cases), case_rows)
            c.execute(insert(events), event_rows)


def move_on(db: Database, every: int, n: int) -> int:
    """A second event for every ``every``-th case; returns how many moved."""
    moved = 0
    with db.engine.begin() as c:
        rows = c.execute(select(cases.c.id, cases.c.case_no, cases.c.last_hash).where(cases.c.id % every == 0)).all()
        for r in rows:
            at = AT + timedelta(days=1)
            h = event_hash(r.last_hash, r.case_no, 2, "note", at, "bench", "applicant", None, None, {})
            c.execute(insert(events).values(case_id=r.id, seq=2, type="note", at=at, actor_id=None, actor_name="bench",
                                            role="applicant", payload={}, prev_hash=r.last_hash, hash=h))
            c.execute(update(cases).where(cases.c.id == r.id).values(event_seq=2, last_hash=h))
            moved += 1
    return moved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--changed", type=int, default=10_000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_digest_"))
    dbs = Databases(args.db, tmp)
    try:
        url = dbs.new("digest")
        upgrade(normalize_url(url))
        db = Database(url)
        t = time.perf_counter()
        fill(db, args.cases)
        print(f"{args.cases} cases written directly in {time.perf_counter() - t:.1f} s ({args.db})")
        key_path = tmp / "digest.pem"
        digests.generate_key(key_path)
        key = digests.load_private_key(key_path)
        svc = Bangban.open(db, processes.read_dir(ROOT / "processes"))
        log = tmp / "digests.jsonl"

        t = time.perf_counter()
        first = svc.take_digest(key, log)
        took = time.perf_counter() - t
        print(f"1. first digest in-process: {took:.2f} s for {first['head']['size']} leaves")
        # the same through the command, as an operator runs it (a fresh process: interpreter and imports included)
        env = dict(os.environ, DATABASE_URL=url, BANGBAN_DIGEST_KEY=str(key_path), PYTHONPATH=str(ROOT))
        moved = move_on(db, max(1, args.cases // max(1, args.changed)), args.cases)
        t = time.perf_counter()
        done = subprocess.run([*bangban_cmd(), "audit", "digest", "--log", str(log)], env=env, capture_output=True,
                              text=True, cwd=ROOT)
        took_cli = time.perf_counter() - t
        assert done.returncode == 0, done.stdout + done.stderr
        print(f"2. {moved} cases moved on; `bangban audit digest` (own process): {took_cli:.2f} s wall; "
              f"{done.stderr.strip().splitlines()[-1]}")

        heads = digests.read_heads(log)
        old, new = heads[0], heads[-1]
        with db.unit_of_work(write=False) as uow:
            leaves = uow.repo.digest_leaves()
        t = time.perf_counter()
        tree = merkle.MerkleTree([digests.leaf_hash(r.case_no, r.seq, r.head_hash) for r in leaves])
        built = time.perf_counter() - t
        t = time.perf_counter()
        proof = tree.consistency_proof(old["size"], new["size"])
        generated = time.perf_counter() - t
        t = time.perf_counter()
        ok = merkle.verify_consistency(old["size"], new["size"], bytes.fromhex(old["root"]), bytes.fromhex(new["root"]),
                                       proof)
        checked = time.perf_counter() - t
        assert ok
        t = time.perf_counter()
        proof_of = svc.case_proof("BENCH00000007", key.public_key())
        included = time.perf_counter() - t
        assert proof_of["ok"], proof_of["text"]
        print(f"3. consistency {old['size']} -> {new['size']}: tree of {tree.size} leaves built in {built:.2f} s, "
              f"proof of {len(proof)} hashes generated in {generated * 1000:.2f} ms, checked in {checked * 1000:.3f} ms; "
              f"`audit proof` of one case (read + tree + path + check) {included:.2f} s")
        t = time.perf_counter()
        result = svc.verify_digests(heads, key.public_key())
        print(f"4. verify --digest of the log ({len(heads)} heads, every leaf and anchored chain): "
              f"{time.perf_counter() - t:.2f} s, ok={result['ok']}, {result['cases']} cases")
        assert result["ok"], result["failures"][:3]
        db.dispose()
    finally:
        dbs.cleanup()
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
