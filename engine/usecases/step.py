"""The step every writer repeats: load the case (its row locked) and its workflow, and after running it save
the state, events, clocks, timers and inbox projection in the same transaction; number documents."""
from __future__ import annotations

import json
from datetime import UTC, datetime

from .. import access, forms, inboxq, notices
from .. import documents as document_templates
from ..access import Actor
from ..clock import LOCAL_TZ
from ..db import UnitOfWork
from ..deadlines import ClockState, case_summary
from ..events import EventBuffer, canonical, document_digest
from ..processes import ProcessSet
from ..runtime import CaseRun, TaskInfo
from .base import _note_ready


def _urgency(c: ClockState | None) -> dict:
    """What an inbox row keeps of its task's clock: only a running, unpaused clock makes a task urgent."""
    if c is None or c.stopped_at is not None or c.paused_at is not None or c.due_date is None:
        return {"due_date": None, "warn_at": None}
    return {"due_date": c.due_date, "warn_at": c.yellow_at}


def _aware(v: datetime | None) -> datetime | None:
    return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v


class CaseStep:
    """Use cases: The step every writer repeats: load the case (its row locked) and its workflow, and after running it save."""

    def _version_id(self, uow: UnitOfWork, ps: ProcessSet) -> int:
        if ps is self.current:
            return self.current_version_id
        return uow.repo.version_by_hash(ps.hash).id

    @staticmethod
    def _acting_role(actor: Actor, allowed: list[str]) -> str | None:
        for role in actor.roles:
            if role in allowed:
                return role
        return actor.roles[0] if actor.roles else None

    def _issue_number(self, uow: UnitOfWork, ps: ProcessSet, kind: str, local: datetime) -> str:
        rule = ps.manifest["numbers"][kind]
        period = local.strftime("%Y%m%d") if rule.get("period") == "day" else local.strftime("%Y")
        seq = uow.repo.next_number(kind, period)
        return rule["format"].format(date=local, year=local.year, seq=seq)

    def _project(self, uow: UnitOfWork, case_id: int, unit_id: int, ready: list[TaskInfo], existing: list,
                 at: datetime, new_case: bool = False, clocks: dict[str, ClockState] | None = None) -> None:
        """Bring the inbox rows of a case in line with its READY tasks and their running clocks (due date and
        warning moment, which order the inbox by urgency); note who became involved."""
        clocks = clocks or {}
        kept = {r.task_id: r for r in existing}
        known = {p for r in existing for p in access.parties_of_task(r.role, r.department, r.assignee)}
        rows, parties = [], []
        for t in ready:
            rows.append({"task_id": t.id, "case_id": case_id, "element_id": t.element_id, "name": t.name[:100],
                         "title": (t.title or None) and t.title[:200], "role": t.role or "",
                         "department": t.department or None, "assignee": t.assignee or None,
                         "unit_id": unit_id, "stage": t.stage, "form": t.form,
                         "audience": inboxq.audience_key(t.role, t.department, t.assignee),
                         "clock_key": t.clock_key, **_urgency(clocks.get(t.clock_key) if t.clock_key else None),
                         "created_at": kept[t.id].created_at if t.id in kept else at})
            parties += access.parties_of_task(t.role, t.department, t.assignee)
        new_ids = {r["task_id"] for r in rows}
        if set(kept) != new_ids or any(self._row_changed(kept[r["task_id"]], r) for r in rows if r["task_id"] in kept):
            uow.repo.replace_inbox(case_id, rows, new_case=new_case)
        uow.repo.add_parties(case_id, set(parties) - known)

    @staticmethod
    def _row_changed(old, new: dict) -> bool:
        return (old.assignee, old.department, old.title, old.clock_key, old.name, old.role, old.form, old.stage,
                old.due_date, _aware(old.warn_at)) != \
            (new["assignee"], new["department"], new["title"], new["clock_key"], new["name"], new["role"], new["form"],
             new["stage"], new["due_date"], new["warn_at"])

    @staticmethod
    def _task_dict(t: TaskInfo) -> dict:
        return {"task_id": t.id, "name": t.name, "title": t.title, "role": t.role, "department": t.department,
                "assignee": t.assignee, "stage": t.stage, "form": t.form}

    def _issue_document(self, uow, ps, case, run: CaseRun, actor: Actor, task: TaskInfo, kind: str, data: dict,
                        at: datetime, events: EventBuffer) -> dict:
        local = at.astimezone(LOCAL_TZ)
        number = self._issue_number(uow, ps, kind, local)
        content = {"case_no": case.case_no, "project_name": case.title, "project_code": run.value("project_code"),
                   "unit_name": case.unit_name, "issued_date": local.date().isoformat(), "issued_by": actor.display_name,
                   "lead": run.lead(),
                   "task": task.name, "title": task.title, "form": data,
                   "form_titles": {k: forms.field_title(ps.form(task.form), k) for k in data},
                   **self._document_parties(uow, ps, run, actor, task, case),
                   **self._document_context(uow, ps, case, task, kind)}
        content = json.loads(canonical(content))        # exactly what the database gives back, hashed as such
        doc_id = uow.repo.insert_document(case_id=case.id, kind=kind, number=number, issued_at=at, issued_by=actor.id,
                                          task_id=task.id, title=task.title, data=content)
        digest = document_digest(kind, number, at, actor.id, task.id, task.title, content)
        events.add("document_issued", at, actor, task.role, {"kind": kind, "number": number, "document_id": doc_id,
                                                            "sha256": digest}, task.id, task.element_id, task.name)
        return {"id": doc_id, "kind": kind, "number": number}

    @staticmethod
    def _document_context(uow, ps: ProcessSet, case, task: TaskInfo, kind: str) -> dict:
        """What a document's template prints beyond the task's form, fixed when it is issued: the application as
        submitted, its service items (name and group), the department acting, and the template it is printed with
        (the process version, file and SHA-256: printing it again later gives the same content)."""
        first = uow.repo.first_event(case.id)
        application = dict(first.payload.get("form") or {}) if first is not None else {}
        items = [{"code": i["code"], "name": i["name"], "category": i["category"]}
                 for i in ps.catalogue.items_for(application.get("service_items") or [])]
        name = document_templates.template_file(kind)
        template = ps.files.get(name)
        return {"application": application, "service_items": items,
                "department": ps.catalogue.departments.get(task.department or "", task.department),
                "template": {"version_id": case.version_id, "file": name,
                             "sha256": document_templates.sha256(template)} if template is not None else None}

    @staticmethod
    def _document_parties(uow, ps: ProcessSet, run: CaseRun, actor: Actor, task: TaskInfo, case) -> dict:
        """What the form's ``x-document`` asks the printed document to name: who signs it (the logged-in actor, never
        typed text), who is rated (``lead``: the case's lead officer; ``title``: the task's title; else the text as
        given) and the date the service was completed (the latest value of ``date_field`` in the case)."""
        spec = ps.form(task.form).get("x-document")
        if not isinstance(spec, dict):
            return {}
        out = {"signer": actor.display_name, "signer_unit": case.unit_name if actor.unit_id else None}
        rated = spec.get("rated")
        if rated == "lead":
            user = uow.repo.user_by_username(run.lead()) if run.lead() else None
            out["rated"] = user.display_name if user is not None else None
        elif rated == "title":
            out["rated"] = task.title
        elif isinstance(rated, str):
            out["rated"] = rated
        if isinstance(spec.get("date_field"), str):
            value = run.value(spec["date_field"])
            out["completed_date"] = value if isinstance(value, str) else None
        return out

    def _load_run(self, uow: UnitOfWork, case, ps: ProcessSet) -> CaseRun:
        """A case's workflow with its statutory clocks (read only when the process has any)."""
        clocks, calendar = {}, None
        if ps.uses_clocks:
            clocks = {r.key: ClockState.from_row(r) for r in uow.repo.clocks_for_case(case.id)}
            calendar = self.calendar(uow)
        cache = uow.workflows
        wf = cache.take(case.id, case.row_version, case.last_hash, ps.hash) if cache is not None else None
        if wf is not None and wf.spec is not ps.specs[case.process_id][0]:
            wf = None       # built on other spec objects of the same version (e.g. after the versions were rebuilt)
        if wf is None:
            run = CaseRun.load(ps, case.process_id, case.state, case.case_vars, clocks, calendar)
        else:
            run = CaseRun.resume(ps, case.process_id, wf, case.case_vars, clocks, calendar)
        if not uow.write and cache is not None:   # a reader gives the unchanged workflow back when it is done
            uow.on_release(lambda: cache.give(case.id, case.row_version, case.last_hash, ps.hash, run.wf))
        return run

    @staticmethod
    def _keep_after_commit(uow: UnitOfWork, case_id: int, row_version: int, last_hash: str, ps: ProcessSet,
                           run: CaseRun) -> None:
        """Once the step has committed, keep its workflow for the next step on the case (``engine.wfcache``)."""
        cache, wf = uow.workflows, run.wf
        if cache is not None:
            uow.after_commit(lambda: cache.give(case_id, row_version, last_hash, ps.hash, wf))

    def _persist_clocks(self, uow: UnitOfWork, case_id: int, run: CaseRun, events: EventBuffer, actor: Actor | None,
                        at: datetime, timers_before: list) -> None:
        """What a step did besides the workflow: clock rows, timers to poll, notifications, and their events."""
        for type_, payload in run.notes:
            events.add(type_, at, actor, None, payload)
        if run.changed_clocks:
            rows = [run.clocks[k].to_row() for k in sorted(run.changed_clocks)]
            uow.repo.save_clocks(case_id, run.lead(), rows, run.loaded_clock_keys)
        timers = run.waiting_timers()
        if timers_before is None or timers != timers_before:
            uow.repo.replace_timers(case_id, [{"task_id": t, "name": (n or "")[:100], "due_at": d} for t, n, d in timers])
        if run.notifications:
            uow.repo.add_notifications([{"recipient": r, "case_id": case_id, "text": text, "created_at": at}
                                        for r, text in run.notifications])

    @staticmethod
    def _notices(uow: UnitOfWork, case, ps: ProcessSet, run: CaseRun, events: EventBuffer, ready: list[TaskInfo],
                 existing: list, at: datetime) -> None:
        """The messages ``processes/notifications.json`` defines for what this step did (``engine.notices``), written
        with the step. Each keyed by case, event, template and recipient: a step written again sends nothing twice."""
        templates = ps.notice_templates
        if not templates:
            return
        base = {"case_no": case.case_no, "title": case.title or "", "unit_name": case.unit_name or "",
                "date": notices.chinese_date(at.astimezone(LOCAL_TZ).date())}
        done = {c.id: c for c in run.reached}
        docs = {r["task_id"]: r["payload"] for r in events.rows if r["type"] == "document_issued"}
        labels = ps.manifest.get("outcomes", {})
        bound = ps.notice_bindings
        found: list[notices.StepEvent] = []

        def task_values(name, title, data) -> dict:
            return {**base, **notices.flatten(data), "task_name": name or "", "task_title": title or "",
                    "task_label": f"{name}（{title}）" if title else (name or "")}
        for r in events.rows:
            p = r["payload"]
            if (r["type"], r["element_id"] if r["type"] != "timer_fired" else p.get("element")) not in bound \
                    and (r["type"], None) not in bound:
                continue
            if r["type"] == "task_completed":
                c = done.get(r["task_id"])
                values = task_values(r["task_name"], p.get("title"), c.data if c else {})
                values.update(notices.flatten(p.get("form")))
                doc = docs.get(r["task_id"])
                if doc:
                    values.update(document_kind=doc["kind"], document_number=doc["number"])
                found.append(notices.StepEvent("task_completed", r["seq"], r["element_id"], values, r["task_id"],
                                               form=p.get("form") or {}))
            elif r["type"] == "document_issued":
                found.append(notices.StepEvent("document_issued", r["seq"], r["element_id"], dict(
                    task_values(r["task_name"], None, {}), document_kind=p["kind"], document_number=p["number"]),
                    r["task_id"]))
            elif r["type"] == "status_changed":
                found.append(notices.StepEvent("status_changed", r["seq"], None, dict(
                    base, status_label=labels.get(p.get("to"), "")), to_status=p.get("to")))
            elif r["type"] == "timer_fired":
                found.append(notices.StepEvent("timer_fired", r["seq"], p.get("element"), dict(
                    base, timer_title=p.get("title") or p.get("timer") or "")))
        last = events.seq
        for c in run.reached:
            if ("reached", c.element_id) in bound and not c.properties.get("formJsonSchemaFilename"):
                found.append(notices.StepEvent("reached", last, c.element_id, task_values(c.name, None, c.data), c.id))
        before = {r.task_id for r in existing}
        for t in ready:
            if t.id in before or ("task_ready", t.element_id) not in bound:
                continue
            clock = run.clocks.get(t.clock_key) if t.clock_key else None
            due = _urgency(clock)["due_date"]
            values = task_values(t.name, t.title, t.data)
            overdue = due is not None and clock.level == "red"     # e.g. a 督办 about an item already overdue
            values.update(due_date=notices.chinese_date(due) if due else "",
                          due_clause=(f"，已超过{notices.chinese_date(due)}的办理期限" if overdue else
                                      f"，请于{notices.chinese_date(due)}前办理" if due else ""))
            audience = f"user:{t.assignee}" if t.assignee else f"dept:{t.department}" if t.department else \
                f"unit:{case.unit_id}" if t.role == "applicant" else f"role:{t.role}" if t.role else None
            found.append(notices.StepEvent("task_ready", last, t.element_id, values, t.id, audience=audience))
        rows = notices.for_step(templates, found, case.case_no, case.id, case.unit_id, run.lead(), at)
        if rows:
            uow.repo.add_notifications(rows)

    def _save(self, uow: UnitOfWork, case, ps: ProcessSet, run: CaseRun, events: EventBuffer, at: datetime,
              completed_task: str | None = None, existing: list | None = None, actor: Actor | None = None,
              version_id: int | None = None, reissued: set[str] = frozenset(), notify: bool = True) -> None:
        status = run.status()
        ready = run.ready_tasks()
        if existing is None:
            existing = uow.repo.inbox_for_case(case.id)
        ready_ids = {t.id for t in ready}
        for r in existing:  # tasks that went away without being completed: interrupted or ended with the case
            if r.task_id not in ready_ids and r.task_id != completed_task and r.task_id not in reissued:
                events.add("task_ended", at, None, r.role, {"title": r.title, "department": r.department,
                                                            "assignee": r.assignee}, r.task_id, r.element_id, r.name)
        if status != case.status:
            events.add("status_changed", at, None, None, {"from": case.status, "to": status})
        self._project(uow, case.id, case.unit_id, ready, existing, at, clocks=run.clocks)
        run.notifications = [(f"unit:{case.unit_id}" if r == "unit:" else r, text) for r, text in run.notifications]
        self._persist_clocks(uow, case.id, run, events, actor, at, run.loaded_timers)
        if notify:
            self._notices(uow, case, ps, run, events, ready, existing, at)
        _note_ready(events, ready)
        due_date, warning = case_summary(run.clocks.values())
        uow.repo.update_case(case.id, case.row_version, state=run.dump(), case_vars=run.case_vars, status=status,
                             stage=run.stage(case.stage, ready), lead_user=run.lead(), updated_at=at,
                             event_seq=events.seq, last_hash=events.last_hash, due_date=due_date, warning=warning,
                             **({"version_id": version_id} if version_id is not None else {}))
        uow.repo.append_events(events.rows)
        self._keep_after_commit(uow, case.id, case.row_version + 1, events.last_hash, ps, run)
