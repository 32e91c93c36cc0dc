"""Event records and their hash chain."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime


def canonical(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def stamp(at: datetime) -> str:
    """A time as it enters a hash: UTC, microseconds, whatever the database gives back (naive = UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(prev_hash: str, case_no: str, seq: int, type_: str, at: datetime, actor: str | None,
               role: str | None, task_id: str | None, element_id: str | None, payload: dict,
               actor_id: int | None = None, task_name: str | None = None, version: int = 2) -> str:
    """The hash of one event: the previous hash and every column the service shows or relies on.

    Version 2 (every event written since 2026-11-30) also covers the actor's id and the task's name; version 1
    (earlier events) does not. A stored hash is one or the other: the body of each version differs, so an edit of a
    version-2 event cannot pass as version 1 (see :func:`event_hash_matches`)."""
    body = {"case": case_no, "seq": seq, "type": type_, "at": stamp(at), "actor": actor,
            "role": role, "task": task_id, "element": element_id, "payload": payload}
    if version >= 2:
        body.update({"v": 2, "actor_id": actor_id, "task_name": task_name})
    return hashlib.sha256((prev_hash + "\n" + canonical(body)).encode("utf-8")).hexdigest()


def event_hash_matches(prev_hash: str, case_no: str, e, at: datetime) -> int | None:
    """Which hash version an event row's stored hash is (2 or 1), or None if neither (the event was changed)."""
    def get(name):
        return e[name] if isinstance(e, dict) else getattr(e, name)
    args = (prev_hash, case_no, get("seq"), get("type"), at, get("actor_name"), get("role"), get("task_id"),
            get("element_id"), get("payload"))
    extra = {"actor_id": get("actor_id"), "task_name": get("task_name")}
    if event_hash(*args, **extra) == get("hash"):
        return 2
    if event_hash(*args, version=1) == get("hash"):
        return 1
    return None


def document_digest(kind: str, number: str, issued_at: datetime, issued_by: int | None, task_id: str | None,
                    title: str | None, data: dict) -> str:
    """The hash of an issued document's content, recorded in its ``document_issued`` event: what the service prints
    later must be what was issued."""
    body = {"kind": kind, "number": number, "issued_at": stamp(issued_at), "issued_by": issued_by, "task": task_id,
            "title": title, "data": data}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


class EventBuffer:
    """Collects a use case's events and chains them onto the case's last hash.

    Hashes are computed when the buffer is read (``last_hash``, ``sealed``), so a use case may still add to the
    payload of its main event (e.g. the tasks ready after it) before the events are stored."""

    def __init__(self, case_no: str, case_id: int | None, last_seq: int, last_hash: str):
        self.case_no, self.case_id = case_no, case_id
        self.base_seq, self.base_hash = last_seq, last_hash
        self._rows: list[dict] = []

    @property
    def seq(self) -> int:
        return self.base_seq + len(self._rows)

    def add(self, type_: str, at: datetime, actor, role: str | None, payload: dict, task_id: str | None = None,
            element_id: str | None = None, task_name: str | None = None) -> dict:
        row = {"case_id": self.case_id, "seq": self.seq + 1, "type": type_, "at": at,
               "actor_id": actor.id if actor else None, "actor_name": actor.username if actor else None, "role": role,
               "task_id": task_id, "element_id": element_id, "task_name": task_name, "payload": payload}
        self._rows.append(row)
        return row

    @property
    def main(self) -> dict | None:
        """The use case's own event (the first it added)."""
        return self._rows[0] if self._rows else None

    def sealed(self) -> list[dict]:
        prev = self.base_hash
        for r in self._rows:
            r["prev_hash"] = prev
            r["hash"] = event_hash(prev, self.case_no, r["seq"], r["type"], r["at"], r["actor_name"], r["role"],
                                   r["task_id"], r["element_id"], r["payload"], r["actor_id"], r["task_name"])
            prev = r["hash"]
        return self._rows

    @property
    def rows(self) -> list[dict]:
        return self.sealed()

    @property
    def last_hash(self) -> str:
        rows = self.sealed()
        return rows[-1]["hash"] if rows else self.base_hash

    def bind(self, case_id: int) -> None:
        self.case_id = case_id
        for r in self._rows:
            r["case_id"] = case_id
