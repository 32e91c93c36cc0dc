"""The county bureau's view: yellow and red items across cases, the demo clock."""
from __future__ import annotations

from datetime import timedelta

from ..access import Actor
from ..clock import clock, now
from ..deadlines import ClockState
from .base import _term


def _escalation(row, title: str, open_rows, done) -> dict:
    """What became of the 督办 (manifest ``escalation.element``) of a red clock: open (its task, to follow), done
    (when; the latest, matched by the clock's key or by its title leading the task's title), or none yet."""
    for t in open_rows:
        if t.case_id == row.case_id and (t.clock_key == row.key or (t.title or "").startswith(title)):
            return {"state": "open", "task_id": t.task_id, "at": t.created_at}
    finished = [e for e in done if e.case_id == row.case_id and str((e.payload or {}).get("title") or "").startswith(title)]
    if finished:
        return {"state": "done", "at": finished[-1].at, "seq": finished[-1].seq}
    return {"state": "none"}


class Supervision:
    """Use cases: The county bureau's view: yellow and red items across cases, the demo clock."""

    def supervision(self, actor: Actor, department: str | None = None) -> dict:
        """Yellow and red items across all cases, worst first, with their department and lead agent."""
        self._check_permission(actor, "supervision")
        at, cal = now(), self.calendar()
        with self.db.unit_of_work(write=False) as uow:
            rows = uow.repo.warning_clocks(at, _term(department, 32))
            names = uow.repo.display_names([r.lead_user for r in rows])
            element = (self.current.manifest.get("escalation") or {}).get("element")
            warned = sorted({r.case_id for r in rows})
            open_rows, done = uow.repo.element_tasks_of_cases(warned, element) if element else ([], [])
        departments = self.department_names()
        items = []
        for r in rows:
            clock = ClockState.from_row(r)
            clock.compute(cal, at)
            if clock.level not in ("yellow", "red"):
                continue
            items.append(dict(clock.describe(cal, at), case_no=r.case_no, case_title=r.case_title, unit_name=r.unit_name,
                              department_name=departments.get(r.department or "", r.department),
                              lead_name=names.get(r.lead_user or "", r.lead_user),
                              escalation=_escalation(r, clock.title, open_rows, done) if clock.level == "red" else None))
        items.sort(key=lambda i: (i["level"] != "red", i["left"]))
        return {"items": items, "red": sum(i["level"] == "red" for i in items),
                "yellow": sum(i["level"] == "yellow" for i in items), "now": at}

    def advance_demo_clock(self, actor: Actor, days: int) -> int:
        """Demo mode: run the service's clock ``days`` ahead and fire what fell due; returns the cases ticked."""
        self._check_permission(actor, "supervision")
        clock.shift(timedelta(days=days))
        return self.fire_due()
