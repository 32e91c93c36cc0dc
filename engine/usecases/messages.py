"""Messages to a case (申请终止, 决定终止) or from a task (申请延期): which may be sent now, their forms, sending."""
from __future__ import annotations

from .. import access, forms
from ..access import Actor
from ..clock import LOCAL_TZ, clock, now
from ..db import UnitOfWork
from ..errors import (
    ConfirmationRequired,
    Conflict,
    Forbidden,
    NotFound,
    ProcessDefinitionError,
)
from ..events import EventBuffer
from ..processes import ProcessSet
from ..runtime import CaseRun, TaskInfo
from .base import _TaskAccess


class Messages:
    """Use cases: messages to a case (申请终止, 决定终止) or from a task (申请延期), their forms, sending."""

    def case_actions(self, actor: Actor, case, ps: ProcessSet, run: CaseRun, ready_ids: set[str],
                     task: TaskInfo | None = None) -> list[dict]:
        """The manifest's messages this actor may send now: to the case, or (``from_task``) from one of its tasks.
        None once the case is no longer 办理中 (e.g. a 已办结 case's evaluation and 差评 tasks offer no 延期)."""
        out = []
        if case.status != "active":
            return out
        for key, msg in ps.manifest.get("messages", {}).items():
            if bool(msg.get("from_task")) != (task is not None):
                continue
            if task is not None and not task.properties.get(msg["from_task"]):
                continue
            if self._may_send(actor, case, run, msg) and run.accepts_message(msg["name"], msg.get("while_waiting_for")) \
                    and not (set(msg.get("blocked_by_ready", [])) & ready_ids):
                out.append({"key": key, "label": msg.get("label", msg["name"]), "form": msg["form"]})
        return out

    @staticmethod
    def _may_send(actor: Actor, case, run: CaseRun, msg: dict) -> bool:
        roles = [r for r in msg.get("roles", []) if actor.has(r)]
        if not roles:
            return False
        if roles == ["applicant"]:
            return actor.unit_id == case.unit_id
        for var in msg.get("actor_vars", []):
            who = run.case_vars.get(var)
            if who:
                return who == actor.username
        return True

    def message_form(self, actor: Actor, case_no: str, key: str, task_id: str | None = None) -> dict:
        with self.db.unit_of_work(write=False) as uow:
            case, ps, run, msg, task = self._message_context(uow, actor, case_no, key, task_id)
            schema = self._schema(uow, ps, msg["form"])
        return {"case": self._case_header(case, ps), "schema": schema, "label": msg.get("label", msg["name"]), "key": key,
                "task": self._task_dict(task) if task else None, "confirm": msg.get("confirm") or None}

    def _message_context(self, uow: UnitOfWork, actor: Actor, case_no: str, key: str, task_id: str | None = None,
                         step=None):
        if task_id is not None:
            row = self._ready_row(uow, task_id)
            case = uow.repo.case_by_id(row.case_id, lock=True)
            case_no = case.case_no
        case = self._visible_case(uow, actor, case_no, lock=True)
        if step is not None:
            step.after(case.updated_at)
        ps = self.version(case.version_id)
        msg = ps.manifest.get("messages", {}).get(key)
        if msg is None:
            raise NotFound("没有这项操作")
        access.check_read_only(actor, ps.manifest["roles"])
        run = self._load_run(uow, case, ps)
        task = None
        if msg.get("from_task"):
            task = run.ready_task(task_id) if task_id else None
            if task is None or not task.properties.get(msg["from_task"]):
                raise NotFound("这项操作须从相应的待办发起")
            access.check_may_act(actor, _TaskAccess(task, case.unit_id))
        if not self._may_send(actor, case, run, msg):
            raise Forbidden("您无权对本办件办理此操作")
        ready_ids = {t.element_id for t in run.ready_tasks()}
        if set(msg.get("blocked_by_ready", [])) & ready_ids:
            raise Conflict(msg.get("blocked_message", "本办件已有待处理的同类申请，请先处理该申请"))
        if case.status != "active":
            raise Conflict("本办件当前不能办理此操作")
        if not run.accepts_message(msg["name"], msg.get("while_waiting_for")):
            raise Conflict(msg.get("unavailable_message") or "本办件当前不能办理此操作")
        return case, ps, run, msg, task

    def send_message(self, actor: Actor, case_no: str | None, key: str, form_data: dict, task_id: str | None = None,
                     confirmed: bool | None = None) -> dict:
        """Send one of the manifest's messages (申请终止, 决定终止, 申请延期 ...) to a case, with its form.
        ``confirmed`` as for :meth:`complete_task`: False while the message has a ``confirm`` text raises
        :class:`ConfirmationRequired` and changes nothing."""
        try:
            return self._send_message(actor, case_no, key, form_data, task_id, confirmed)
        except ProcessDefinitionError as exc:
            self.report_process_error(case_no, None, exc)
            raise

    def _send_message(self, actor: Actor, case_no: str | None, key: str, form_data: dict, task_id: str | None,
                      confirmed: bool | None) -> dict:
        with clock.step() as step, self.db.unit_of_work() as uow:
            case, ps, run, msg, task = self._message_context(uow, actor, case_no, key, task_id, step)
            data = forms.validate(self._schema(uow, ps, msg["form"]), form_data)
            if confirmed is False and msg.get("confirm"):
                raise ConfirmationRequired(msg["confirm"])
            at = now()
            role = self._acting_role(actor, msg.get("roles", []))
            payload = dict(data, by=actor.username, by_name=actor.display_name, role=role,
                           at=at.astimezone(LOCAL_TZ).isoformat(timespec="seconds"))
            if task is not None:
                payload.update(clock=task.clock_key, title=task.title or task.name, task=task.name)
            events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
            run.send(msg["name"], payload)
            events.add(msg.get("event_type", "message"), at, actor, role,
                       {"message": msg["name"], "form": data, "title": payload.get("title"), "payload": payload},
                       task.id if task else None, task.element_id if task else None, task.name if task else None)
            self._save(uow, case, ps, run, events, at, actor=actor)
            uow.commit()
        return {"case_no": case.case_no}
