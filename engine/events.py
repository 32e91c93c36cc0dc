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
               role: str | None, task_id: str | None, element_id: str | None, payload: dict) -> str:
    body = canonical({"case": case_no, "seq": seq, "type": type_, "at": stamp(at), "actor": actor,
                      "role": role, "task": task_id, "element": element_id, "payload": payload})
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


class EventBuffer:
    """Collects a use case's events and chains them onto the case's last hash."""

    def __init__(self, case_no: str, case_id: int | None, last_seq: int, last_hash: str):
        self.case_no, self.case_id, self.seq, self.last_hash = case_no, case_id, last_seq, last_hash
        self.rows: list[dict] = []

    def add(self, type_: str, at: datetime, actor, role: str | None, payload: dict, task_id: str | None = None,
            element_id: str | None = None, task_name: str | None = None) -> None:
        self.seq += 1
        actor_id = actor.id if actor else None
        actor_name = actor.username if actor else None
        h = event_hash(self.last_hash, self.case_no, self.seq, type_, at, actor_name, role, task_id, element_id, payload)
        self.rows.append({"case_id": self.case_id, "seq": self.seq, "type": type_, "at": at, "actor_id": actor_id,
                          "actor_name": actor_name, "role": role, "task_id": task_id, "element_id": element_id,
                          "task_name": task_name, "payload": payload, "prev_hash": self.last_hash, "hash": h})
        self.last_hash = h

    def bind(self, case_id: int) -> None:
        self.case_id = case_id
        for r in self.rows:
            r["case_id"] = case_id
