"""Anchored digests."""
from __future__ import annotations

import random

from engine import merkle


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
