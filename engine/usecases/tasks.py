"""The inbox, a task with its form and context, and completing it."""
from __future__ import annotations

from .. import access, forms, inboxq, taskcontext
from ..access import Actor
from ..clock import clock, now
from ..db import UnitOfWork
from ..deadlines import ClockState, local_date
from ..errors import (
    ConfirmationRequired,
    Conflict,
    InvalidInput,
    NotFound,
    ProcessDefinitionError,
)
from ..events import EventBuffer
from ..processes import ProcessSet
from ..runtime import TaskInfo
from .base import _TASK_ID, CaseFailed, _jsonable, _TaskAccess

MAX_PAGE = inboxq.MAX_LIMIT


class Tasks:
    """Use cases: The inbox, a task with its form and context, and completing it."""

    def inbox(self, actor: Actor) -> list[dict]:
        """Every open task this user may act on, in urgency order (all pages; for scripts and tests)."""
        out, after = [], None
        while True:
            page = self.inbox_page(actor, limit=MAX_PAGE, after=after)
            out += page["tasks"]
            after = page["next"]
            if after is None:
                return out

    def inbox_page(self, actor: Actor, limit=None, after=None, stage=None, item=None, department=None, unit=None,
                   due_before=None) -> dict:
        """A page of the user's inbox in urgency order (red, yellow, by due date, then arrival), with the total under
        the filter and the cursor of the next page (None on the last). Parameters may come as text from a request;
        each bad one is refused with a Chinese message."""
        n = inboxq.parse_limit(limit)
        f = inboxq.InboxFilter(stage=self._inbox_stage(stage), item=inboxq.parse_item(item),
                               department=self._inbox_department(department), unit_id=inboxq.parse_unit(unit),
                               due_before=inboxq.parse_date(due_before))
        at = now()
        position = None
        if after not in (None, ""):
            position, at = inboxq.decode_cursor(after, f)
        today = local_date(at)
        auds = inboxq.audiences(actor.roles, actor.department, actor.username, actor.unit_id)
        with self.db.unit_of_work(write=False) as uow:
            if f.unit_id is not None and uow.repo.unit(f.unit_id) is None:
                raise InvalidInput("筛选的申请单位不存在")
            total = uow.repo.inbox_count(auds, f)
            if position is None and total <= n:     # it all fits on the first page: one read, not one per class
                rows = uow.repo.inbox_all(auds, f, today, at)
            else:
                rows = uow.repo.inbox_page(auds, f, today, at, n + 1, position)
            more = len(rows) > n
            rows = rows[:n]
            keyed = [r for _, r in rows if r.clock_key]
            clocks = {(c.case_id, c.key): c for c in uow.repo.clocks_for_cases(sorted({r.case_id for r in keyed}))}
        cal, moment = self.calendar(), now()
        out = []
        for _, r in rows:
            item_ = self._inbox_dict(r)
            c = clocks.get((r.case_id, r.clock_key)) if r.clock_key else None
            item_["clock"] = ClockState.from_row(c).compute(cal, moment).describe(cal, moment) if c is not None else None
            out.append(item_)
        nxt = inboxq.encode_cursor(rows[-1][0], rows[-1][1], at, f) if more and rows else None
        return {"tasks": out, "total": total, "next": nxt}

    def _inbox_stage(self, stage) -> str | None:
        if stage in (None, ""):
            return None
        if not isinstance(stage, str) or stage not in self.current.manifest.get("stages", []):
            raise InvalidInput("筛选的阶段不存在")
        return stage

    def _inbox_department(self, department) -> str | None:
        if department in (None, ""):
            return None
        if not isinstance(department, str) or department not in self.department_names():
            raise InvalidInput("筛选的部门不存在")
        return department

    def _inbox_dict(self, r) -> dict:
        return {"task_id": r.task_id, "case_no": r.case_no, "case_title": r.case_title, "unit_name": r.unit_name,
                "name": r.name, "title": r.title, "role": r.role, "role_name": self.role_names().get(r.role, r.role),
                "department": r.department, "department_name": self.department_names().get(r.department or "", None),
                "assignee": r.assignee, "stage": r.stage, "created_at": r.created_at}

    def _ready_row(self, uow: UnitOfWork, task_id: str):
        if not _TASK_ID.fullmatch(str(task_id)):
            raise NotFound("待办不存在")
        row = uow.repo.inbox_task(task_id)
        if row is None:
            last = uow.repo.last_task_event(task_id)
            if last == "task_completed":
                raise Conflict("该待办已被办理，不能重复提交")
            if last == "task_ended":
                raise Conflict("该待办已结束（办件已终止或流程已越过此步），无需再办理")
            raise NotFound("待办不存在")
        return row

    def get_task(self, actor: Actor, task_id: str) -> dict:
        """A ready task with its resolved form and initial values, for someone who may act on it."""
        with self.db.unit_of_work(write=False) as uow:
            row = self._ready_row(uow, task_id)
            access.check_may_act(actor, row)
            case = uow.repo.case_by_id(row.case_id)
            ps = self.version(case.version_id)
            run = self._load_run(uow, case, ps)
            task = run.ready_task(task_id)
            if task is None:
                raise Conflict("该待办已被办理，请刷新")
            schema = self._schema(uow, ps, task.form)
            actions = self.case_actions(actor, case, ps, run, {t.element_id for t in run.ready_tasks()}, task)
            clock = run.clocks.get(task.clock_key) if task.clock_key else None
            facts, sections = self._task_context(uow, ps, run, task, case)
        return {"task": self._task_dict(task), "schema": schema, "defaults": run.form_defaults(task),
                "case": self._case_header(case, ps), "context": facts, "sections": sections, "actions": actions,
                "confirm": self._confirm_of(task),
                "clock": clock.compute(self.calendar(), now()).describe(self.calendar(), now()) if clock else None}

    def _task_context(self, uow: UnitOfWork, ps: ProcessSet, run, task: TaskInfo, case) -> tuple[list, list]:
        """What the page shows beside the form, as the task's ``show`` property declares it (``engine.showspec``):
        the facts of the variables it names, and the sections of its views (application, items' results, a clock,
        what another task submitted)."""
        def done_by(task_id: str):
            done = [e for e in uow.repo.events_for_case(case.id) if e.task_id == task_id and e.type == "task_completed"]
            if not done:
                return None, None
            who = done[-1].actor_name
            return uow.repo.display_names([who]).get(who, who), done[-1].at

        sources = taskcontext.Sources(application=lambda: uow.repo.first_event(case.id).payload.get("form", {}),
                                      inbox=lambda: uow.repo.inbox_for_case(case.id),
                                      calendar=self.calendar(), moment=now(), done_by=done_by)
        try:
            return taskcontext.build(ps, run, task, case, sources)
        except ProcessDefinitionError:   # a view's expression fails for this case: the page still opens
            return [], [{"kind": "fields", "id": "error", "title": "办理依据",
                         "rows": [("说明", "流程定义中显示办理依据的设置有误，暂时无法显示；不影响办理，请告知流程管理员。")]}]

    @staticmethod
    def _confirm_of(task: TaskInfo) -> dict | None:
        """The task's ``confirm`` text and whether it depends on the form (``confirm_when``), for the page."""
        text = (task.properties.get("confirm") or "").strip()
        return {"text": text, "conditional": bool(task.properties.get("confirm_when"))} if text else None

    def confirmation_needed(self, run, task: TaskInfo, data: dict) -> str | None:
        """The consequence the person must confirm before this step is taken (``confirm``, when ``confirm_when``
        holds for the submitted form), or None."""
        confirm = self._confirm_of(task)
        if confirm is None:
            return None
        when = task.properties.get("confirm_when")
        if when and not run.holds(when, task, data, "需要确认的条件"):
            return None
        return confirm["text"]

    def complete_task(self, actor: Actor, task_id: str, form_data: dict, confirmed: bool | None = None) -> dict:
        """Complete a ready task; one transaction: check, validate, run, save, log, project.

        ``confirmed``: whether the person confirmed the consequence the task's ``confirm`` property names (web pages
        pass it); False while it applies raises :class:`ConfirmationRequired` and changes nothing. None: the caller
        (the JSON API, scripts) asks no confirmation."""
        try:
            return self._complete_task(actor, task_id, form_data, confirmed)
        except CaseFailed as failed:
            self.report_process_error(failed.case_no, failed.case_id, failed.error)
            raise failed.error from None

    def _complete_task(self, actor: Actor, task_id: str, form_data: dict, confirmed: bool | None) -> dict:
        with clock.step() as step:   # one instant for the whole step (replay repeats it)
            return self._complete_task_now(actor, task_id, form_data, step, confirmed)

    def _complete_task_now(self, actor: Actor, task_id: str, form_data: dict, step, confirmed: bool | None) -> dict:
        access.check_read_only(actor, self.current.manifest["roles"])
        with self.db.unit_of_work() as uow:
            case = uow.repo.case_of_task(task_id, lock=True) if _TASK_ID.fullmatch(str(task_id)) else None
            if case is not None:
                step.after(case.updated_at)
            existing = uow.repo.inbox_for_case(case.id) if case is not None else []
            row = next((r for r in existing if r.task_id == task_id), None) or self._ready_row(uow, task_id)
            access.check_may_act(actor, row)
            ps = self.version(case.version_id)
            data = forms.validate(self._schema(uow, ps, row.form), form_data)
            run = self._load_run(uow, case, ps)
            task = run.ready_task(task_id)
            if task is None:
                raise Conflict("该待办已被办理，不能重复提交")
            access.check_may_act(actor, _TaskAccess(task, case.unit_id))
            unsettled = self.unsettled_materials(uow, case, ps, run, task)   # x-materials-complete (usecases.files)
            if unsettled:
                raise InvalidInput("以下申报材料既未上传，也未登记“纸质材料已收”或“不适用”：" + "、".join(unsettled[:20]),
                                   {"materials": "申报材料未交接完"})
            if confirmed is False:
                try:
                    consequence = self.confirmation_needed(run, task, data)
                except ProcessDefinitionError as exc:
                    raise CaseFailed(case.id, case.case_no, exc) from exc
                if consequence:
                    raise ConfirmationRequired(consequence)
            at = now()
            events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
            try:
                submitted = run.complete(task, actor.username, data)
            except ProcessDefinitionError as exc:
                raise CaseFailed(case.id, case.case_no, exc) from exc
            events.add("task_completed", at, actor, task.role,
                       {"form": data, "form_file": task.form, "title": task.title, "stored": sorted(submitted),
                        "changes": _jsonable(run.last_changes),
                        **({"actor_department": actor.department} if actor.department else {})},
                       task.id, task.element_id, task.name)
            doc_kind = task.properties.get("document")
            document = None
            when = task.properties.get("document_when")
            if doc_kind and (not when or run.holds(when, task, data, "出具单据的条件")):
                document = self._issue_document(uow, ps, case, run, actor, task, doc_kind, data, at, events)
            self._save(uow, case, ps, run, events, at, completed_task=task.id, existing=existing, actor=actor)
            uow.commit()
        return {"case_no": case.case_no, "document": document}
