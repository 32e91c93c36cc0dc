"""Deserialized workflows kept between requests, per database of a process, keyed by (case, row version, chain head,
process version).

Loading a case's workflow from its stored JSON is the largest single cost of a step of the full process (about as
much as SpiffWorkflow's own work). A server keeps the workflow it just saved, under the row version the case row got
in that same committed transaction; the next step on that case in this process finds it if, and only if, the row it
has just read (under the case lock, for a writer) still has that row version and that head of its event chain, and
the workflow was built on the very spec objects of the version now in use. Every change of a case row goes through
``Repository.update_case``, which raises the row version, so an entry can never stand for an older or newer state than
the row: a step taken by another server, a repair or a migration changes the row version and the entry is simply not
found (and falls out of the LRU later).

An entry is *owned* by one user at a time: :func:`take` removes it, so two threads never share a workflow object. A
reader (case page, task form) gives it back unchanged under the same key when it is done; a writer gives back the
workflow it changed under the new row version only after its transaction committed (``UnitOfWork.after_commit``); a
step that fails or rolls back gives nothing back, and the next step loads from the database as a cold process would.

Each :class:`~engine.db.Database` has its own cache (two databases in one process, as in the tests, never share an
entry); :func:`engine.caches.clear_all` empties them all. Bounded: at most ``BANGBAN_WORKFLOW_CACHE`` entries
(default 64, about 250 KB each for the full process; 0 turns the cache off), least recently used first out.
"""
from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict

from . import caches


def _capacity() -> int:
    raw = os.environ.get("BANGBAN_WORKFLOW_CACHE", "").strip()
    if raw.isascii() and raw.isdigit() and int(raw) <= 100_000:
        return int(raw)
    return 64


class WorkflowCache:
    def __init__(self, capacity: int | None = None):
        self.capacity = _capacity() if capacity is None else capacity
        self._entries: OrderedDict[int, tuple[tuple, object]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def take(self, case_id: int, row_version: int, last_hash: str, version_hash: str):
        """The cached workflow of this case exactly at this row version and chain head, removed from the cache;
        else ``None``."""
        with self._lock:
            entry = self._entries.pop(case_id, None)
            if entry is not None and entry[0] == (row_version, last_hash, version_hash):
                self.hits += 1
                return entry[1]
            self.misses += 1
            return None

    def give(self, case_id: int, row_version: int, last_hash: str, version_hash: str, wf) -> None:
        """Keep ``wf`` as the case's workflow at ``row_version`` (replacing any other entry of the case)."""
        if self.capacity <= 0:
            return
        with self._lock:
            self._entries.pop(case_id, None)
            self._entries[case_id] = ((row_version, last_hash, version_hash), wf)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_ALL: weakref.WeakSet[WorkflowCache] = weakref.WeakSet()


def new_cache() -> WorkflowCache:
    """A database's own cache (``Database.workflows``), forgotten with every other by ``caches.clear_all``."""
    cache = WorkflowCache()
    _ALL.add(cache)
    return cache


@caches.register
def _clear_all() -> None:
    for cache in list(_ALL):
        cache.clear()
