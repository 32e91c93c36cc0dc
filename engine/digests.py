"""Signed tree heads of the digest log: what is hashed into a leaf, how a head is signed, key files and log lines.

A *leaf* is one checkpoint of a case's event chain: ``<seq>:<head_hash>:<case_no>``, hashed as an RFC 6962 leaf.
A *digest* (signed tree head) is ``{"format", "size", "root", "time", "key"}`` signed with Ed25519 over its canonical
JSON; the private key lives in a file outside the database (``BANGBAN_DIGEST_KEY``), so whoever can
rewrite the database cannot sign a head for a rewritten history. Heads are appended, one JSON object per line, to a
digest log that can be copied, printed or sent elsewhere; ``bangban audit verify --digest`` reads such a file (one
head or a whole log) and checks it against the database with the public key alone.

A log line also carries ``subtrees``: the roots of the perfect subtrees the tree of ``size`` leaves is made of. They
are not signed, and need not be: they are only used when they fold to the signed root, and then they show in which
range of leaves a rewritten history lies.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from . import merkle

FORMAT = "bangban-digest/1"
HEAD_FIELDS = ("format", "size", "root", "time", "key")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class DigestError(Exception):
    """A key, a digest file or the digest tables cannot be used; ``message`` says why, in Chinese."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def leaf_bytes(case_no: str, seq: int, head_hash: str) -> bytes:
    """``<seq>:<head hash>:<case_no>`` in UTF-8: unambiguous, since the number ends at the first colon, the hash has
    64 characters and the case number, whatever it holds, comes last."""
    return f"{int(seq)}:{head_hash}:{case_no}".encode()


def leaf_hash(case_no: str, seq: int, head_hash: str) -> bytes:
    return merkle.leaf_hash(leaf_bytes(case_no, seq, head_hash))


def signed_bytes(head: dict) -> bytes:
    return json.dumps({k: head[k] for k in HEAD_FIELDS}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def iso_utc(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- keys ----------------------------------------------------------------------------------------------------------
def _raw_public(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key) -> str:
    """A short name of a public key: the first 16 hex digits of SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


def public_pem(public_key) -> str:
    from cryptography.hazmat.primitives import serialization
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def generate_key(path: Path) -> tuple[str, str]:
    """Write a new Ed25519 private key to ``path`` (PEM, mode 0600; an existing file is never overwritten) and its
    public key to ``path.pub``; returns (public key PEM, key id)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise DigestError(f"密钥文件已存在，不会覆盖：{path}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = public_pem(key.public_key())
    Path(f"{path}.pub").write_text(public, encoding="ascii")
    return public, key_id(key.public_key())


def load_private_key(path: str | Path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise DigestError(f"无法读取存证签名密钥文件 {path}：{exc.strerror or exc}") from None
    except (ValueError, TypeError):
        raise DigestError(f"存证签名密钥文件 {path} 不是未加密的 PEM 私钥") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DigestError(f"存证签名密钥文件 {path} 不是 Ed25519 私钥")
    return key


def load_public_key(path: str | Path):
    """A public key file (PEM), or a private key file (its public half)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DigestError(f"无法读取公钥文件 {path}：{exc.strerror or exc}") from None
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise DigestError(f"公钥文件 {path} 不是 PEM 公钥") from None
    if not isinstance(key, Ed25519PublicKey):
        raise DigestError(f"公钥文件 {path} 不是 Ed25519 公钥")
    return key


# ---- heads -----------------------------------------------------------------------------------------------------------
def make_head(private_key, tree: merkle.MerkleTree, at: datetime) -> dict:
    """The signed head of the whole ``tree`` at ``at``, with its subtrees, ready to log."""
    head = {"format": FORMAT, "size": tree.size, "root": tree.root().hex(), "time": iso_utc(at),
            "key": key_id(private_key.public_key())}
    head["signature"] = base64.b64encode(private_key.sign(signed_bytes(head))).decode("ascii")
    head["subtrees"] = [tree.subtree(start, start + (1 << level)).hex() for start, level in merkle._blocks(0, tree.size)]
    return head


def describe(head: dict) -> str:
    """How a head is named in messages: its size and time."""
    return f"存证（{head.get('size')} 条记录，{head.get('time')}）"


def check_head(head, public_key) -> str | None:
    """Why ``head`` is not a well-formed head signed by ``public_key``, or None."""
    from cryptography.exceptions import InvalidSignature
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        return "不是本系统的存证（format 不是 bangban-digest/1）"
    size, root = head.get("size"), head.get("root")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(root, str) \
            or not _HEX64.fullmatch(root) or not isinstance(head.get("time"), str) or not isinstance(head.get("key"), str):
        return f"{describe(head)}格式有误（size、root、time、key）"
    if head["key"] != key_id(public_key):
        return f"{describe(head)}的密钥编号 {head['key']} 与所给公钥（{key_id(public_key)}）不符"
    try:
        public_key.verify(base64.b64decode(str(head.get("signature", "")), validate=True), signed_bytes(head))
    except (InvalidSignature, ValueError):
        return f"{describe(head)}的签名无效：存证被伪造或改动"
    return None


def located(head: dict, tree: merkle.MerkleTree) -> list[tuple[int, int]]:
    """The leaf ranges [lo, hi) where the tree's first ``size`` leaves differ from the head's, as far as its logged
    subtrees (when they fold to the signed root) tell; the whole range when they do not."""
    size = head["size"]
    whole = [(0, size)]
    subtrees = head.get("subtrees")
    blocks = merkle._blocks(0, size)
    if not blocks or not isinstance(subtrees, list) or len(subtrees) != len(blocks) or size > tree.size:
        return whole
    try:
        hashes = [bytes.fromhex(s) for s in subtrees]
    except (TypeError, ValueError):
        return whole
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = merkle.node_hash(h, acc)
    if acc.hex() != head["root"]:
        return whole
    return [(start, start + (1 << level)) for (start, level), h in zip(blocks, hashes, strict=True)
            if tree.subtree(start, start + (1 << level)) != h] or whole


def log_line(head: dict) -> str:
    return json.dumps(head, ensure_ascii=False, separators=(",", ":"))


def append_log(path: str | Path, head: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(log_line(head) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_heads(path: str | Path) -> list:
    """The heads of a digest file: one JSON object (a head as printed), or a log of one JSON object per line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DigestError(f"无法读取存证文件 {path}：{exc}") from None
    try:
        whole = json.loads(text)
        return whole if isinstance(whole, list) else [whole]
    except json.JSONDecodeError:
        pass
    heads = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                heads.append(json.loads(line))
            except json.JSONDecodeError:
                raise DigestError(f"存证文件 {path} 第 {n} 行不是 JSON") from None
    if not heads:
        raise DigestError(f"存证文件 {path} 是空的")
    return heads
