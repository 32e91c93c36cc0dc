"""Merkle trees exactly as RFC 6962 / RFC 9162 (Certificate Transparency) define them, without recursion.

A tree of ``n`` leaves: a leaf hash is ``SHA-256(0x00 || data)``, an inner node ``SHA-256(0x01 || left || right)``,
and the tree of ``D[0:n]`` splits at ``k``, the largest power of two below ``n`` (RFC 9162 §2.1.1, the "Merkle Tree
Hash"). Such a tree is append-only: the tree of the first ``m`` leaves stays a part of every larger tree, which a
*consistency proof* shows with ``O(log n)`` hashes, and an *inclusion proof* (audit path) shows that one leaf is in a
tree of a given root.

:class:`MerkleTree` keeps every level of perfect subtrees, so the root of any prefix, and any node a proof needs, is
read rather than recomputed: building it costs ``n`` node hashes once, each proof ``O(log n)`` lookups. The two
verification functions follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and need nothing but hashes.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _blocks(lo: int, hi: int) -> list[tuple[int, int]]:
    """The perfect subtrees, largest first, that make up the node ``D[lo:hi]`` of an RFC 6962 tree: (start, level)."""
    out, at, size = [], lo, hi - lo
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            out.append((at, level))
            at += 1 << level
    return out


class MerkleTree:
    """The tree over a list of leaf hashes; answers for the whole tree and for every prefix of it."""

    def __init__(self, leaf_hashes: Sequence[bytes]):
        level = list(leaf_hashes)
        self.levels: list[list[bytes]] = [level]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self.levels.append(level)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def _check(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} outside 0..{self.size}")

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for a node of an RFC 6962 tree (``lo`` a multiple of the largest power of two <= hi - lo)."""
        if hi <= lo:
            return EMPTY_ROOT
        blocks = _blocks(lo, hi)
        start, level = blocks[-1]
        acc = self.levels[level][start >> level]
        for start, level in reversed(blocks[:-1]):
            acc = node_hash(self.levels[level][start >> level], acc)
        return acc

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (all of them by default)."""
        size = self.size if size is None else size
        self._check(size)
        return self.subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) of RFC 9162 §2.1.3.1: the audit path of one leaf, from the leaf up."""
        size = self.size if size is None else size
        self._check(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} outside a tree of {size}")
        lo, hi, path = 0, size, []
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                path.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                path.append(self.subtree(lo, lo + k))
                lo += k
        return path[::-1]

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """PROOF(old, D[new]) of RFC 9162 §2.1.4.1 (SUBPROOF unrolled): the tree of ``old`` leaves is a prefix of the
        tree of ``new`` leaves. Empty when ``old`` is 0 or equals ``new``."""
        new = self.size if new is None else new
        self._check(new)
        if not 0 <= old <= new:
            raise ValueError(f"old size {old} outside 0..{new}")
        if old in (0, new):
            return []
        lo, hi, m, complete, collected = 0, new, old, True, []
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                collected.append(self.subtree(lo + k, hi))
                hi = lo + k
            else:
                collected.append(self.subtree(lo, lo + k))
                lo, m, complete = lo + k, m - k, False
        base = [] if complete else [self.subtree(lo, hi)]
        return base + collected[::-1]


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove that the leaf hash ``leaf`` is leaf ``index`` of the tree ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show that the tree ``old_root`` of ``old`` leaves is a prefix of the tree
    ``new_root`` of ``new`` leaves? (Equal sizes need equal roots and no proof; every tree extends the empty one.)"""
    if not 0 <= old <= new:
        return False
    if old == new:
        return old_root == new_root and not proof
    if old == 0:
        return old_root == EMPTY_ROOT and not proof
    path = list(proof)
    if not path:
        return False
    if old & (old - 1) == 0:      # an exact power of two: the old root is itself a node of the new tree
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == old_root and sr == new_root and sn == 0
