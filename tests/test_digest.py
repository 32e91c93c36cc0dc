"""Anchored digests (issue 12, point 3): the Merkle tree against the RFC, and a digest taken before each tampering
an insider with database access could try, caught by ``bangban audit verify --digest`` run as its own process."""
from __future__ import annotations

import json
import logging
import os
import random
import stat
import subprocess
import sys
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text, update

from engine import audit, digests, merkle
from engine.db import normalize_url
from engine.events import event_hash
from engine.repository import cases as cases_table
from engine.repository import events as events_table
from tests import helpers as h
from tests.conftest import ROOT


# ---- the Merkle tree against the RFC's recursive definitions, computed by brute force ---------------------------
def _mth(d: list[bytes]) -> bytes:
    if not d:
        return merkle.EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = merkle._split(len(d))
    return merkle.node_hash(_mth(d[:k]), _mth(d[k:]))


def _path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = merkle._split(len(d))
    return _path(m, d[:k]) + [_mth(d[k:])] if m < k else _path(m - k, d[k:]) + [_mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [_mth(d)]
    k = merkle._split(len(d))
    return _subproof(m, d[:k], b) + [_mth(d[k:])] if m <= k else _subproof(m - k, d[k:], False) + [_mth(d[:k])]


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"leaf {i}".encode()) for i in range(n)]


def test_roots_and_proofs_equal_the_rfc_definitions_for_every_size_up_to_70():
    d = _leaves(70)
    tree = merkle.MerkleTree(d)
    for n in range(0, 71):
        assert tree.root(n) == _mth(d[:n]) == merkle.MerkleTree(d[:n]).root()
        for i in range(n):
            path = tree.inclusion_proof(i, n)
            assert path == _path(i, d[:n])
            assert merkle.verify_inclusion(d[i], i, n, path, tree.root(n))
            assert not merkle.verify_inclusion(d[(i + 1) % n], i, n, path, tree.root(n)) or n == 1
            assert not merkle.verify_inclusion(d[i], i, i, path, tree.root(n))
            assert not merkle.verify_inclusion(d[i], i, n, path, tree.root(n - 1) if n > 1 else b"x" * 32)
        for m in range(0, n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == ([] if m in (0, n) else _subproof(m, d[:n], True))
            assert merkle.verify_consistency(m, n, tree.root(m), tree.root(n), proof), (m, n)
            if 0 < m < n:
                assert not merkle.verify_consistency(m, n, tree.root(m - 1) if m > 1 else b"x" * 32, tree.root(n), proof)
                assert not merkle.verify_consistency(m, n, tree.root(m), tree.root(n - 1), proof)
                for j in range(len(proof)):   # any hash of the proof changed: refused
                    bad = list(proof)
                    bad[j] = merkle.node_hash(bad[j], bad[j])
                    assert not merkle.verify_consistency(m, n, tree.root(m), tree.root(n), bad)
                assert not merkle.verify_consistency(m, n, tree.root(m), tree.root(n), proof[:-1])


def test_a_tree_with_one_changed_leaf_is_not_consistent_with_the_old_one():
    d = _leaves(70)
    for m, n in ((1, 2), (5, 9), (32, 70), (33, 64), (69, 70)):
        for changed in range(m):
            forged = list(d)
            forged[changed] = merkle.leaf_hash(b"forged")
            tree = merkle.MerkleTree(forged[:n])
            assert not merkle.verify_consistency(m, n, _mth(d[:m]), tree.root(), tree.consistency_proof(m))


def test_random_larger_sizes():
    rnd = random.Random(12)
    d = _leaves(5000)
    tree = merkle.MerkleTree(d)
    for _ in range(40):
        n = rnd.randint(1, 5000)
        m = rnd.randint(0, n)
        i = rnd.randrange(n)
        assert tree.root(n) == _mth(d[:n])
        assert tree.consistency_proof(m, n) == ([] if m in (0, n) else _subproof(m, d[:n], True))
        assert merkle.verify_consistency(m, n, tree.root(m), tree.root(n), tree.consistency_proof(m, n))
        assert tree.inclusion_proof(i, n) == _path(i, d[:n])
        assert merkle.verify_inclusion(d[i], i, n, tree.inclusion_proof(i, n), tree.root(n))


# ---- digests of a real database, checked by ``bangban audit verify --digest`` run as its own process ----------------
BANGBAN = str(Path(sys.executable).parent / "bangban")


@pytest.fixture
def cases(svc):
    """Four cases with some history each: one dispatched, one accepted, two just submitted."""
    h.freeze_clock()
    dispatched, accepted, fresh, other = h.start(svc), h.start(svc), h.start(svc), h.start(svc)
    h.accept_and_commission(svc, dispatched)
    h.dispatch(svc, dispatched, ["hp", "xf"])
    h.accept_and_commission(svc, accepted)
    return {"dispatched": dispatched, "accepted": accepted, "fresh": fresh, "other": other}


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "keys" / "digest.pem"
    digests.generate_key(path)
    return path


def run(db_url: str, key_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DATABASE_URL=db_url, BANGBAN_DIGEST_KEY=str(key_path), PYTHONPATH=str(ROOT))
    return subprocess.run([BANGBAN, *args], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)


def take(db_url: str, key_path: Path, tmp_path: Path, name: str = "head.json") -> Path:
    """``bangban audit digest``: the head it prints is kept in a file of its own, as one kept off the machine."""
    done = run(db_url, key_path, "audit", "digest", "--log", str(tmp_path / "digests.jsonl"))
    assert done.returncode == 0, done.stdout + done.stderr
    head = tmp_path / name
    head.write_text(done.stdout, encoding="utf-8")
    return head


def verify(db_url: str, key_path: Path, digest_file: Path) -> subprocess.CompletedProcess:
    """``verify --digest`` with the public key only."""
    return run(db_url, key_path, "audit", "verify", "--digest", str(digest_file), "--public-key", f"{key_path}.pub")


class Attacker:
    """Direct database access with the append-only triggers out of the way, as the file's owner or a superuser has."""

    def __init__(self, db_url: str):
        self.engine = create_engine(normalize_url(db_url))
        self.pg = self.engine.dialect.name == "postgresql"
        h.drop_append_only_guards(self.engine)

    def sql(self, statement: str, **params) -> list:
        with self.engine.begin() as c:
            result = c.execute(text(statement), params)
            return result.all() if result.returns_rows else []

    def case_id(self, case_no: str) -> int:
        return self.sql("SELECT id FROM cases WHERE case_no = :no", no=case_no)[0][0]

    def reseal(self, case_no: str, from_seq: int, change) -> None:
        """Change the payload of event ``from_seq`` and recompute the chain from there on, and the case's last hash:
        the plain chain check then finds nothing."""
        cid = self.case_id(case_no)
        with self.engine.begin() as c:
            rows = c.execute(select(events_table).where(events_table.c.case_id == cid).order_by(events_table.c.seq)).all()
            prev = rows[from_seq - 2].hash if from_seq > 1 else ""
            for r in rows[from_seq - 1:]:
                payload = change(dict(r.payload)) if r.seq == from_seq else r.payload
                new = event_hash(prev, case_no, r.seq, r.type, r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC),
                                 r.actor_name, r.role, r.task_id, r.element_id, payload, r.actor_id, r.task_name)
                c.execute(update(events_table).where(events_table.c.id == r.id)
                          .values(payload=payload, prev_hash=prev, hash=new))
                prev = new
            c.execute(update(cases_table).where(cases_table.c.id == cid).values(last_hash=prev))
            resealed = c.execute(select(events_table).where(events_table.c.case_id == cid).order_by(events_table.c.seq)).all()
        assert audit.check_chain(case_no, resealed) is None          # the forgery passes the chain check

    def delete_case(self, case_no: str) -> None:
        cid = self.case_id(case_no)
        for statement in h.delete_whole_case_statements(self.engine.dialect.name):
            self.sql(statement, cid=cid)

    def dispose(self) -> None:
        self.engine.dispose()


def _forge_approval(payload: dict) -> dict:
    return dict(payload, forged="安评批复 伪-001")


def _lines(done: subprocess.CompletedProcess) -> str:
    return done.stdout + done.stderr


def test_a_resealed_forgery_passes_the_chain_check_but_not_the_digest(svc, db_url, cases, key, tmp_path):
    head = take(db_url, key, tmp_path)
    assert verify(db_url, key, head).returncode == 0
    attacker = Attacker(db_url)
    attacker.reseal(cases["dispatched"], 3, _forge_approval)
    attacker.dispose()
    done = verify(db_url, key, head)
    assert done.returncode == 1, _lines(done)
    assert f"办件 {cases['dispatched']}：事件 #" in done.stdout and "重新计算哈希" in done.stdout
    assert [line for line in done.stdout.splitlines() if line.startswith("不通过")] == \
        [line for line in done.stdout.splitlines() if cases["dispatched"] in line]


@pytest.mark.parametrize("tamper", ["events_deleted", "case_deleted", "leaf_edited", "leaf_resealed", "leaf_deleted",
                                    "event_edited"])
def test_each_tampering_before_the_digest_is_caught_naming_the_case(svc, db_url, cases, key, tmp_path, tamper):
    head = take(db_url, key, tmp_path)
    victim = cases["accepted"]
    attacker = Attacker(db_url)
    if tamper == "events_deleted":
        attacker.sql("DELETE FROM events WHERE case_id = :cid", cid=attacker.case_id(victim))
        expected = f"办件 {victim}：存证时的事件 #"
    elif tamper == "case_deleted":
        attacker.delete_case(victim)
        expected = f"办件 {victim}：存证时已有该办件"
    elif tamper == "leaf_edited":
        attacker.sql("UPDATE digest_leaves SET head_hash = :h WHERE case_no = :no", h="0" * 64, no=victim)
        expected = f"办件 {victim}：事件 #"
    elif tamper == "leaf_resealed":   # history and leaf rewritten together: only the signed root notices
        attacker.reseal(victim, 2, _forge_approval)
        new_head = attacker.sql("SELECT last_hash FROM cases WHERE case_no = :no", no=victim)[0][0]
        attacker.sql("UPDATE digest_leaves SET head_hash = :h WHERE case_no = :no", h=new_head, no=victim)
        expected = "的根哈希与库中前 4 条存证记录算出的不符"
    elif tamper == "leaf_deleted":
        attacker.sql("DELETE FROM digest_leaves WHERE case_no = :no", no=victim)
        expected = f"办件 {victim}：存证（4 条记录，"
    else:                             # an event edited without resealing
        cid = attacker.case_id(victim)
        attacker.sql("UPDATE events SET actor_name = 'agent2' WHERE case_id = :cid AND seq = 2", cid=cid)
        expected = f"办件 {victim}：存证范围内（事件 #1–#"
    attacker.dispose()
    done = verify(db_url, key, head)
    assert done.returncode == 1, _lines(done)
    assert expected in done.stdout, done.stdout
    failures = [line for line in done.stdout.splitlines() if line.startswith("不通过")]
    about_the_store = [line for line in failures if "存证记录第" in line or "库中只有" in line]   # a leaf gone
    assert failures and all(victim in line for line in failures if line not in about_the_store), failures
    assert len(about_the_store) == (2 if tamper == "leaf_deleted" else 0), failures
    assert "Traceback" not in done.stderr


def test_a_forged_or_foreign_digest_file_is_refused(svc, db_url, cases, key, tmp_path):
    head_file = take(db_url, key, tmp_path)
    head = json.loads(head_file.read_text())
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(dict(head, size=head["size"] - 1)), encoding="utf-8")
    done = verify(db_url, key, forged)
    assert done.returncode == 1 and "签名无效" in done.stdout, _lines(done)
    other = tmp_path / "other" / "key.pem"
    digests.generate_key(other)
    done = run(db_url, key, "audit", "verify", "--digest", str(head_file), "--public-key", f"{other}.pub")
    assert done.returncode == 1 and "与所给公钥" in done.stdout, _lines(done)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json\n", encoding="utf-8")
    done = verify(db_url, key, garbage)
    assert done.returncode == 2 and "不是 JSON" in done.stderr and "Traceback" not in done.stderr


def test_history_after_the_digest_passes_and_a_log_of_heads_is_checked_head_by_head(svc, db_url, cases, key, tmp_path):
    first = take(db_url, key, tmp_path)
    h.accept_and_commission(svc, cases["fresh"])
    h.start(svc)
    assert verify(db_url, key, first).returncode == 0
    take(db_url, key, tmp_path, "second.json")
    log = tmp_path / "digests.jsonl"
    heads = [json.loads(line) for line in log.read_text().splitlines()]
    assert [x["size"] for x in heads] == [4, 6]          # the fresh case moved on, a new case came
    done = verify(db_url, key, log)
    assert done.returncode == 0, _lines(done)
    assert done.stdout.count("签名有效") == 2 and "一致性证明" in done.stdout
    attacker = Attacker(db_url)
    attacker.reseal(cases["fresh"], 2, _forge_approval)    # after the first digest, before the second
    attacker.dispose()
    assert verify(db_url, key, first).returncode == 0       # the first digest does not cover it ...
    done = verify(db_url, key, log)                          # ... the second does
    assert done.returncode == 1 and f"办件 {cases['fresh']}：事件 #" in done.stdout, _lines(done)


def test_a_digest_is_not_signed_over_tampered_leaves(svc, cases, key, tmp_path):
    private = digests.load_private_key(key)
    svc.take_digest(private, tmp_path / "log.jsonl")
    with svc.db.engine.begin() as c:
        c.execute(text("UPDATE digest_leaves SET seq = seq + 1 WHERE idx = 0"))
    with pytest.raises(digests.DigestError, match="拒绝签发"):
        svc.take_digest(private, tmp_path / "log.jsonl")


def test_proof_and_anchor_of_a_case(svc, db_url, cases, key, tmp_path):
    no = cases["dispatched"]
    assert svc.case_anchor(no) is None
    take(db_url, key, tmp_path)
    result = svc.case_proof(no, digests.load_public_key(f"{key}.pub"))
    assert result["ok"] and result["reference"] == svc.case_anchor(no)
    size, index, prefix = result["reference"].split("-")
    assert (int(size), int(index), prefix) == (4, result["index"], result["head"]["root"][:8])
    assert result["seq"] == len(h.events(svc, no)) and result["head_hash"] == h.case_row(svc, no).last_hash
    done = run(db_url, key, "audit", "proof", no)
    assert done.returncode == 0 and "包含证明成立" in done.stdout and f"存证编号 {result['reference']}" in done.stdout
    for p in result["path"]:
        assert p in done.stdout
    done = run(db_url, key, "audit", "proof", "410823209912319999")
    assert done.returncode == 1 and "不存在" in done.stderr and "Traceback" not in done.stderr


def test_the_worker_takes_one_digest_a_day_and_none_without_a_key(svc, cases, key, tmp_path, caplog):
    from engine.worker import DailyDigest
    daily = DailyDigest(key, tmp_path / "log.jsonl")
    assert daily.run(svc)["head"]["size"] == 4
    assert daily.run(svc) is None                        # the same day: nothing
    again = DailyDigest(key, tmp_path / "log.jsonl")     # another worker, the same day: the database says done
    assert again.run(svc) is None
    h.clock.advance(timedelta(days=1))
    h.accept_and_commission(svc, cases["fresh"])
    assert daily.run(svc)["new_leaves"] == 1
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 2
    caplog.set_level(logging.INFO, logger="bangban.worker")
    keyless = DailyDigest(None, tmp_path / "log.jsonl")
    assert keyless.run(svc) is None and keyless.run(svc) is None
    assert [r.getMessage() for r in caplog.records].count(
        "daily digest skipped: no signing key configured (BANGBAN_DIGEST_KEY)") == 1


def test_keygen_writes_a_private_key_only_its_owner_reads(db_url, tmp_path):
    path = tmp_path / "k" / "digest.pem"
    done = run(db_url, path, "audit", "keygen", str(path))
    assert done.returncode == 0 and "BEGIN PUBLIC KEY" in done.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert digests.load_public_key(f"{path}.pub") is not None
    done = run(db_url, path, "audit", "keygen", str(path))
    assert done.returncode == 2 and "不会覆盖" in done.stderr


def test_dropped_digest_tables_fail_in_one_line(svc, db_url, cases, key, tmp_path):
    head = take(db_url, key, tmp_path)
    attacker = Attacker(db_url)
    attacker.sql("DROP TABLE digest_leaves")
    attacker.dispose()
    done = verify(db_url, key, head)
    assert done.returncode == 1 and "存证记录无法读取" in done.stdout and "Traceback" not in done.stderr, _lines(done)


def test_the_printed_document_carries_the_case_s_anchor(svc, tmp_path):
    """办结单 and every other printed document show the case's 存证编号 once a digest holds the case."""
    from tests.conftest import actor
    from tests.webclient import api_login
    from web import create_app
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)           # the 委托书 is issued
    with svc.db.unit_of_work(write=False) as uow:
        case = uow.repo.case_by_no(case_no)
        doc_id = uow.repo.documents_for_case(case.id)[0].id
    client = api_login(create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "t", "TESTING": True}), "agent1")

    def printed() -> str:
        r = client.get(f"/cases/{case_no}/documents/{doc_id}")
        assert r.status_code == 200
        return r.get_data(as_text=True)

    assert "存证编号：尚未存证" in printed()
    digests.generate_key(tmp_path / "key")
    svc.take_digest(digests.load_private_key(tmp_path / "key"), tmp_path / "log.jsonl")
    anchor = svc.case_anchor(case_no)
    assert anchor and f"存证编号：{anchor}" in printed()
    assert svc.get_document(actor(svc, "agent1"), case_no, doc_id)["anchor"] == anchor
