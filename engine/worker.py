"""The worker: fires due BPMN timers and keeps clock levels current; delivers the notifications outbox.

Each due timer is claimed in its own transaction together with its case row (PostgreSQL: ``FOR UPDATE SKIP
LOCKED`` on the timer, ``FOR UPDATE`` on the case; SQLite: ``BEGIN IMMEDIATE``, one writer), so two workers — or a
worker and a web request — never fire the same timer twice. Timers are found through the indexed ``timers.due_at``
column; those that fell due while no worker ran fire as soon as one starts.

Once a local day the worker also takes a signed digest of every case's chain head (``engine.usecases.digests``),
when a signing key is configured (``BANGBAN_DIGEST_KEY``); several workers take one between them.

Each round ends by delivering the due notifications of the outbox (``engine.usecases.notifications``): e-mail, SMS,
the 武来办 webhook, with retries and exponential back-off; several workers claim distinct rows.
"""
from __future__ import annotations

import logging
import threading
import time

from .clock import LOCAL_TZ, now
from .errors import Unavailable

log = logging.getLogger("bangban.worker")


def run_once(service, max_cases: int = 1000) -> int:
    """Process everything due now (at most ``max_cases`` cases); returns how many cases were ticked."""
    return service.fire_due(max_cases)


def deliver_once(service, max_messages: int = 1000) -> int:
    """Send the notifications due now (at most ``max_messages``); returns how many were attempted."""
    counts = service.deliver_due(max_messages)
    if counts["retry"] or counts["failed"]:
        log.warning("notifications: %d sent, %d to retry, %d failed", counts["sent"], counts["retry"], counts["failed"])
    return sum(counts.values())


class DailyDigest:
    """The worker's daily digest: at most one per local day (the database says whether one was taken today, by any
    worker or by hand); skipped, with one log line, when no key is configured; a failure is retried an hour later."""

    RETRY = 3600.0

    def __init__(self, key_path=None, log_path=None):
        if key_path is None and log_path is None:
            from .config import Settings
            settings = Settings.from_env()
            key_path, log_path = settings.digest_key, settings.digest_log
        self.key_path, self.log_path = key_path, log_path
        self.done_day = None
        self.retry_at = 0.0
        self.told = False

    def run(self, service) -> dict | None:
        """Take today's digest if it is due; returns the digest taken, if any."""
        from .digests import DigestError, load_private_key
        if self.key_path is None:
            if not self.told:
                log.info("daily digest skipped: no signing key configured (BANGBAN_DIGEST_KEY)")
                self.told = True
            return None
        today = now().astimezone(LOCAL_TZ).date()
        if today == self.done_day or time.monotonic() < self.retry_at:
            return None
        try:
            result = service.take_digest(load_private_key(self.key_path), self.log_path, daily=True)
        except DigestError as exc:
            log.error("daily digest failed: %s", exc.message)
            self.retry_at = time.monotonic() + self.RETRY
            return None
        self.done_day = today
        if result is not None:
            log.info("daily digest taken: %d leaves (%d new), root %s", result["head"]["size"], result["new_leaves"],
                     result["head"]["root"][:16])
        return result


def run_forever(service, interval: float = 5.0, stop: threading.Event | None = None, max_cases: int = 1000,
                digest: DailyDigest | None = None) -> None:
    stop = stop or threading.Event()
    digest = digest or DailyDigest()
    log.info("timer worker started (interval %.1fs)", interval)
    while not stop.is_set():
        done = 0
        try:
            done = run_once(service, max_cases)
            if done:
                log.info("ticked %d case(s)", done)
            sent = deliver_once(service, max_cases)
            done = max(done, sent)
            digest.run(service)
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
