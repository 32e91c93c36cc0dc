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
                                   r["task_id"], r["element_id"], r["payload"])
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
