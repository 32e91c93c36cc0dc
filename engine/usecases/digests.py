"""Anchored digests: checkpoint every case's chain head in an append-only Merkle tree, sign its root, and check the
database against a signed head kept elsewhere (``bangban audit digest`` / ``verify --digest`` / ``proof``).

Why a tree of *checkpoints* and not of the current heads: a tree over the current heads changes in place whenever a
case moves on, so no proof could show that a later tree still contains an earlier one. Here a digest appends one leaf
``(case_no, seq, head_hash)`` for every case whose head moved since its last leaf; the leaves never change, so every
later tree extends every earlier one (RFC 9162 consistency proofs), and each leaf pins its case's chain up to ``seq``:
an event at or before ``seq`` edited, deleted, or edited and resealed (hashes recomputed) changes the stored hash at
``seq`` or breaks the chain below it, a deleted case leaves a leaf without a case, and an edited leaf changes the root.
"""
from __future__ import annotations

import json
from datetime import datetime
from datetime import time as day_start

from .. import digests, merkle
from ..clock import LOCAL_TZ, now
from ..digests import DigestError, describe
from ..errors import NotFound

BATCH = 500


def _listed(case_nos: list[str], limit: int = 10) -> str:
    more = f" 等 {len(case_nos)} 件" if len(case_nos) > limit else ""
    return "、".join(case_nos[:limit]) + more


class Digests:
    """Use cases: Anchored digests (signed Merkle tree heads over the case chains), their verification and proofs."""

    # ---- making a digest ---------------------------------------------------------------------------------------------
    def take_digest(self, private_key, log_path=None, daily: bool = False) -> dict | None:
        """Append a leaf for every case whose chain head moved, sign the new root, store and log the head.

        ``daily``: only if no digest was taken yet this local day (else None). Refuses (``DigestError``) when the
        stored leaves no longer give the root of the previous digest: a tampered history is never signed over."""
        at = now()
        with self.db.unit_of_work() as uow:
            uow.repo.lock_digests()
            if daily and uow.repo.digest_since(datetime.combine(at.astimezone(LOCAL_TZ).date(), day_start(0), LOCAL_TZ)):
                return None
            leaves = uow.repo.digest_leaves()
            for position, leaf in enumerate(leaves):
                if leaf[0] != position:
                    raise DigestError(f"存证记录第 {position} 条缺失或错位（办件 {leaf[1]}），拒绝签发新的存证，"
                                      "请用 bangban audit verify --digest 核查")
            last = {no: (seq, head) for _, no, seq, head in leaves}
            new_rows, warnings = [], []
            for no, seq, recorded, stored in uow.repo.chain_heads():
                if not seq:
                    continue
                if stored is None:
                    warnings.append(f"办件 {no}：记录的最后事件 #{seq} 不存在，未纳入本次存证")
                    continue
                if stored != recorded:
                    warnings.append(f"办件 {no}：办件记录的最后哈希与事件 #{seq} 不符，按事件记录存证")
                if last.get(no) != (seq, stored):
                    new_rows.append((len(leaves) + len(new_rows), no, seq, stored))
            hash_of = digests.leaf_hash
            tree = merkle.MerkleTree([hash_of(no, seq, head) for _, no, seq, head in leaves]
                                     + [hash_of(no, seq, head) for _, no, seq, head in new_rows])
            self._check_previous(uow.repo.latest_digest(), tree, len(leaves), private_key.public_key())
            head = digests.make_head(private_key, tree, at)
            line = digests.log_line(head)
            uow.repo.append_digest_leaves(new_rows)
            uow.repo.insert_digest(size=head["size"], root=head["root"], at=at, key_id=head["key"], line=line)
            uow.commit()
        if log_path is not None:
            digests.append_log(log_path, head)
        return {"head": head, "line": line, "new_leaves": len(new_rows), "warnings": warnings}

    @staticmethod
    def _check_previous(previous, tree: merkle.MerkleTree, stored: int, public_key) -> None:
        if previous is None:
            return
        try:
            head = json.loads(previous.line)
        except json.JSONDecodeError:
            raise DigestError("库中上一份存证无法读取，拒绝签发新的存证，请用 bangban audit verify --digest 核查") from None
        problem = digests.check_head(head, public_key) if head.get("key") == digests.key_id(public_key) else None
        if problem is None and (head.get("size") != previous.size or head.get("root") != previous.root):
            problem = f"{describe(head)}与库中存证表的记录不符"
        if problem is None and (previous.size > stored or tree.root(previous.size).hex() != previous.root):
            problem = f"{describe(head)}的根哈希与库中存证记录算出的不符（存证记录被改动）"
        if problem:
            raise DigestError(f"{problem}，拒绝签发新的存证，请用 bangban audit verify --digest 和存证日志核查")

    # ---- verifying the database against signed heads -----------------------------------------------------------------
    def verify_digests(self, heads: list, public_key) -> dict:
        """Check signed heads (one, or a whole log) against the database. ``failures``: Chinese lines, each naming
        the head or the case; ``notes``: what held."""
        from .. import audit
        failures, notes, valid = [], [], []
        for head in heads:
            problem = digests.check_head(head, public_key)
            (failures if problem else valid).append(problem or head)
        bad: dict[str, str] = {}
        anchored: dict[int, tuple[str, int]] = {}
        with self.db.unit_of_work(write=False) as uow:
            leaves = uow.repo.digest_leaves()
            for position, leaf in enumerate(leaves):
                if leaf.idx != position:
                    before = f"前一条为办件 {leaves[position - 1].case_no}，" if position else ""
                    failures.append(f"存证记录第 {position} 条缺失或错位（{before}此处为办件 {leaf.case_no}）："
                                    "存证记录被删除或改动")
                    break
            tree = merkle.MerkleTree([digests.leaf_hash(r.case_no, r.seq, r.head_hash) for r in leaves])
            for head in valid:
                failures.extend(self._check_head_against(head, tree, leaves, notes))
            upto = min(max((h["size"] for h in valid), default=0), tree.size)
            if failures and valid:     # the stored leaves are not what was signed: whose leaf went missing?
                newest = max(valid, key=lambda x: x["size"])
                for r in uow.repo.cases_without_leaf(newest["size"]):
                    if digests.iso_utc(r.at) <= newest["time"]:
                        bad[r.case_no] = (f"办件 {r.case_no}：{describe(newest)}之前已有事件（{digests.iso_utc(r.at)}），"
                                          "库中却没有它的存证记录：存证记录被删除")
            for r in uow.repo.anchored_leaves(upto):
                if r.case_id is None:
                    bad.setdefault(r.case_no, f"办件 {r.case_no}：存证时已有该办件（事件 #{r.seq}），库中已不存在：办件被删除")
                elif r.event_hash is None:
                    bad.setdefault(r.case_no, f"办件 {r.case_no}：存证时的事件 #{r.seq} 已不存在：事件被删除")
                elif r.event_hash != r.head_hash:
                    bad.setdefault(r.case_no, f"办件 {r.case_no}：事件 #{r.seq} 的哈希与存证不符：存证之前的历史被改写"
                                              "（修改后重新计算哈希的伪造也在此列）")
                else:
                    anchored[r.case_id] = (r.case_no, max(r.seq, anchored.get(r.case_id, ("", 0))[1]))
            ids = sorted(cid for cid, (no, _) in anchored.items() if no not in bad)
            for start in range(0, len(ids), BATCH):
                by_case: dict[int, list] = {}
                for e in uow.repo.events_for_cases(ids[start:start + BATCH]):
                    by_case.setdefault(e.case_id, []).append(e)
                for cid in ids[start:start + BATCH]:
                    no, seq = anchored[cid]
                    chain = [e for e in by_case.get(cid, []) if e.seq <= seq]
                    divergence = audit.check_chain(no, chain)
                    if divergence is not None:
                        bad[no] = f"办件 {no}：存证范围内（事件 #1–#{seq}）的事件链不完整：{divergence}"
        failures.extend(bad[no] for no in sorted(bad))
        cases = len({no for no, _ in anchored.values()} | set(bad))
        return {"ok": bool(valid) and not failures, "failures": failures, "notes": notes, "leaves": tree.size,
                "anchored": upto, "cases": cases, "root": tree.root().hex()}

    @staticmethod
    def _check_head_against(head: dict, tree: merkle.MerkleTree, leaves: list, notes: list[str]) -> list[str]:
        size = head["size"]
        if size > tree.size:
            return [f"{describe(head)}有 {size} 条记录，库中只有 {tree.size} 条：存证记录被删除"
                    f"（最后一条为办件 {leaves[-1].case_no if leaves else '无'}）"]
        if tree.root(size).hex() != head["root"]:
            ranges = digests.located(head, tree)
            involved = sorted({leaves[i].case_no for lo, hi in ranges for i in range(lo, hi)})
            where = "、".join(f"第 {lo}–{hi - 1} 条" for lo, hi in ranges)
            return [f"{describe(head)}的根哈希与库中前 {size} 条存证记录算出的不符：存证记录被改动，改动在{where}记录中"
                    f"（涉及办件 {_listed(involved)}）"]
        proof = tree.consistency_proof(size)
        if not merkle.verify_consistency(size, tree.size, bytes.fromhex(head["root"]), tree.root(), proof):
            return [f"{describe(head)}与当前 {tree.size} 条存证记录的一致性证明不成立"]
        notes.append(f"{describe(head)}：签名有效，根哈希相符；一致性证明（{len(proof)} 个哈希）表明当前 {tree.size} 条"
                     f"存证记录是其延续")
        return []

    # ---- one case: its inclusion proof and the reference a document carries --------------------------------------------
    def case_proof(self, case_no: str, public_key=None) -> dict:
        """The case's latest leaf in the latest digest, its audit path, the head, and whether they verify."""
        with self.db.unit_of_work(write=False) as uow:
            latest = uow.repo.latest_digest()
            if latest is None:
                raise NotFound("还没有存证：请先运行 bangban audit digest")
            head = json.loads(latest.line)
            case = uow.repo.case_by_no(str(case_no)[:32]) if str(case_no).isprintable() else None
            if case is None:
                raise NotFound(f"办件 {case_no} 不存在")
            leaf = uow.repo.latest_leaf_of_case(case.case_no, latest.size)
            if leaf is None:
                return {"case_no": case.case_no, "ok": False, "head": head,
                        "text": f"办件 {case.case_no} 不在最近一次{describe(head)}中（存证之后才登记，或尚无事件）"}
            leaves = uow.repo.digest_leaves(below=latest.size)
            events = uow.repo.events_for_case(case.id)
        tree = merkle.MerkleTree([digests.leaf_hash(r.case_no, r.seq, r.head_hash) for r in leaves])
        size = min(latest.size, tree.size)
        path = tree.inclusion_proof(leaf.idx, size) if leaf.idx < size else []
        problems = [p for p in [digests.check_head(head, public_key) if public_key is not None else None] if p]
        try:
            root = bytes.fromhex(str(head.get("root")))
        except ValueError:
            root = b""
        if not merkle.verify_inclusion(digests.leaf_hash(leaf.case_no, leaf.seq, leaf.head_hash), leaf.idx, latest.size,
                                       path, root) or root.hex() != latest.root or head.get("size") != latest.size:
            problems.append(f"办件 {case.case_no} 的包含证明不成立：存证记录被改动")
        stored = next((e.hash for e in events if e.seq == leaf.seq), None)
        if stored != leaf.head_hash:
            problems.append(f"办件 {case.case_no}：事件 #{leaf.seq} 的哈希与存证不符：存证之前的历史被改写")
        return {"case_no": case.case_no, "ok": not problems, "head": head, "index": leaf.idx, "seq": leaf.seq,
                "head_hash": leaf.head_hash, "path": [p.hex() for p in path],
                "reference": f"{latest.size}-{leaf.idx}-{latest.root[:8]}",
                "text": "；".join(problems) or f"办件 {case.case_no} 的事件 #{leaf.seq} 在{describe(head)}中：包含证明成立"}

    def case_anchor(self, case_no: str) -> str | None:
        """The short 存证编号 of a case for 办结单/终止单: ``<digest size>-<leaf index>-<root prefix>`` of its latest
        leaf in the latest digest, or None when no digest holds it yet."""
        with self.db.unit_of_work(write=False) as uow:
            latest = uow.repo.latest_digest()
            leaf = uow.repo.latest_leaf_of_case(str(case_no)[:32], latest.size) if latest is not None else None
        return f"{latest.size}-{leaf.idx}-{latest.root[:8]}" if leaf is not None else None
