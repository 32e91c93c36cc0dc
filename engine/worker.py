"""The timer worker: fires due BPMN timers and keeps clock levels current.

Each due timer is claimed in its own transaction together with its case row (PostgreSQL: ``FOR UPDATE SKIP
LOCKED`` on the timer, ``FOR UPDATE`` on the case; SQLite: ``BEGIN IMMEDIATE``, one writer), so two workers — or a
worker and a web request — never fire the same timer twice. Timers are found through the indexed ``timers.due_at``
column; those that fell due while no worker ran fire as soon as one starts.
"""
from __future__ import annotations

import logging
import threading

from .errors import Unavailable

log = logging.getLogger("bangban.worker")


def run_once(service, max_cases: int = 1000) -> int:
    """Process everything due now (at most ``max_cases`` cases); returns how many cases were ticked."""
    return service.fire_due(max_cases)


def run_forever(service, interval: float = 5.0, stop: threading.Event | None = None, max_cases: int = 1000) -> None:
    stop = stop or threading.Event()
    log.info("timer worker started (interval %.1fs)", interval)
    while not stop.is_set():
        done = 0
        try:
            done = run_once(service, max_cases)
            if done:
                log.info("ticked %d case(s)", done)
        except Unavailable as exc:  # the database is away: one line per round, the next round retries
            log.error("timer worker round failed: database unavailable (%s)",
                      str(exc.__cause__ or exc).splitlines()[0][:200])
        except Exception:  # keep the worker alive; the next round retries
            log.exception("timer worker round failed")
        if done < max_cases:  # a full round means a backlog: go on at once
            stop.wait(interval)


def start_thread(service, interval: float = 5.0) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(service, interval, stop), name="bangban-worker", daemon=True)
    thread.start()
    return thread, stop
