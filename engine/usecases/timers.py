"""Time passing: fire due BPMN timers case by case (the worker), report a diagram's failure."""
from __future__ import annotations

import logging
from datetime import datetime

from ..clock import clock, now
from ..db import UnitOfWork
from ..errors import (
    ProcessDefinitionError,
)
from ..events import EventBuffer
from .base import CaseFailed

log = logging.getLogger("bangban.worker")


class Timers:
    """Use cases: Time passing: fire due BPMN timers case by case (the worker), report a diagram's failure."""

    def tick_next(self, skip_cases: set[int] = frozenset()) -> int | None:
        """Fire the due timers (and refresh the clock levels) of one case, in one transaction with the case row
        locked. Returns the case id, or None when nothing is due."""
        with clock.step() as step, self.db.unit_of_work() as uow:
            case = uow.repo.next_due_case(now(), skip_cases)
            if case is None:
                return None
            at = step.after(case.updated_at)
            try:
                self._tick(uow, case, at)
            except ProcessDefinitionError as exc:
                raise CaseFailed(case.id, case.case_no, exc) from exc
            uow.commit()
        return case.id

    def report_process_error(self, case_no: str | None, case_id: int | None, exc: ProcessDefinitionError) -> None:
        """A diagram's code failed for one case: tell the process owners (in a transaction of its own, since the
        case's own transaction has been rolled back)."""
        which = f"办件 {case_no} 的流程运行出错，办件保持原状" if case_no else "提交申请时流程运行出错，申请未保存"
        original = getattr(exc, "original", None)
        text = f"{which}，请检查流程定义：{exc.message}" + (f"（原文：{original}）" if original else "")
        text = text[:500]
        with self.db.unit_of_work() as uow:
            uow.repo.add_notifications([{"recipient": "role:process_owner", "case_id": case_id, "text": text,
                                         "created_at": now()}])
            uow.commit()

    def _tick(self, uow: UnitOfWork, case, at: datetime) -> None:
        ps = self.version(case.version_id)
        run = self._load_run(uow, case, ps)
        run.tick()
        run.loaded_timers = None  # always re-project: a timer row that did not fire must not stay due
        events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
        self._save(uow, case, ps, run, events, at)

    def fire_due(self, max_cases: int = 1000) -> int:
        """Process everything due now (at most ``max_cases`` cases); returns how many cases were ticked.

        A case normally leaves the due set once ticked; one that comes back in the same round (its timer could not
        fire) is skipped for the rest of the round, so a round always ends. A case whose diagram code fails is
        reported to the process owners, left as it was, and skipped."""
        seen: set[int] = set()
        stuck: set[int] = set()
        ticked = 0
        while ticked < max_cases:
            try:
                case_id = self.tick_next(stuck)
            except CaseFailed as failed:
                log.error("case %s failed: %s", failed.case_no, failed.error.message)
                self.report_process_error(failed.case_no, failed.case_id, failed.error)
                stuck.add(failed.case_id)
                continue
            if case_id is None:
                break
            if case_id in seen:
                stuck.add(case_id)
                log.warning("case %s is still due after a tick; skipped for this round", case_id)
            seen.add(case_id)
            ticked += 1
        return ticked
