"""Applying: the start form with its choices and defaults, and starting a case."""
from __future__ import annotations

from .. import access, forms
from ..access import Actor
from ..clock import LOCAL_TZ, clock, now
from ..errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    ProcessDefinitionError,
)
from ..events import EventBuffer
from ..processes import ProcessSet
from ..runtime import CaseRun
from .base import MAX_ID, CaseFailed, StartedCase, _note_ready


class Intake:
    """Use cases: Applying: the start form with its choices and defaults, and starting a case."""

    @staticmethod
    def _startable(ps: ProcessSet, process_id: str) -> dict:
        proc = ps.manifest["processes"].get(process_id) if isinstance(process_id, str) else None
        if proc is None:
            raise NotFound("没有这个流程")
        return proc

    def start_form(self, actor: Actor, process_id: str) -> dict:
        ps = self.current
        proc = self._startable(ps, process_id)
        self._check_may_start(actor, proc)
        with self.db.unit_of_work(write=False) as uow:
            schema = self._schema(uow, ps, proc["start_form"])
            defaults: dict = {}
            if actor.unit_id is not None:
                unit = uow.repo.unit(actor.unit_id)
                if unit is not None:
                    defaults = {"unit_name": unit.name, "unit_address": unit.address, "postcode": unit.postcode,
                                "leader_name": unit.leader_name, "leader_phone": unit.leader_phone}
            units = [] if actor.has("applicant") else [dict(r._mapping) for r in uow.repo.units()]
            defaults.update(self._station_facts(uow, ps, actor, {})[0])   # a station clerk's channel is the station's
        return {"process_id": process_id, "name": proc["name"], "schema": schema,
                "defaults": {k: v for k, v in defaults.items() if v}, "units": units,
                "needs_unit": not actor.has("applicant")}

    def startable_processes(self, actor: Actor) -> list[dict]:
        return [{"id": pid, "name": p["name"]} for pid, p in self.current.manifest["processes"].items()
                if set(actor.roles) & set(p.get("start_roles", []))]

    @staticmethod
    def _check_may_start(actor: Actor, proc: dict) -> None:
        if not set(actor.roles) & set(proc.get("start_roles", [])):
            raise Forbidden("您的角色不能提交申请")

    def start_case(self, actor: Actor, process_id: str, form_data: dict, unit_id: int | None = None) -> StartedCase:
        """Submit an application: validates the start form, runs the process to its first tasks, numbers the case.
        If the diagram's code fails, nothing is stored, the process owners are told and the applicant gets the error."""
        try:
            return self._start_case(actor, process_id, form_data, unit_id)
        except CaseFailed as failed:
            self.report_process_error(None, None, failed.error)
            raise failed.error from None

    def _start_case(self, actor: Actor, process_id: str, form_data: dict, unit_id: int | None = None) -> StartedCase:
        ps = self.current
        proc = self._startable(ps, process_id)
        access.check_read_only(actor, ps.manifest["roles"])
        self._check_may_start(actor, proc)
        if actor.has("applicant"):
            unit_id = actor.unit_id
        if unit_id is None:
            raise InvalidInput("请选择申请单位")
        if not 0 < int(unit_id) < MAX_ID:
            raise InvalidInput("申请单位不存在")
        at = now()
        with clock.at(at), self.db.unit_of_work() as uow:   # one instant for the whole step (replay repeats it)
            unit = uow.repo.unit(int(unit_id))
            if unit is None:
                raise InvalidInput("申请单位不存在")
            form_data, facts = self._station_facts(uow, ps, actor, form_data)
            data = forms.validate(self._schema(uow, ps, proc["start_form"]), form_data)
            local = at.astimezone(LOCAL_TZ)
            facts.update(self._key_facts(uow, ps, data, unit, local.date()))   # from the registers (keyregister)
            try:
                run = CaseRun.start(ps, process_id, data, self.calendar(uow) if ps.uses_clocks else None, facts)
            except ProcessDefinitionError as exc:     # the diagram's code failed: nothing is stored, owners are told
                raise CaseFailed(None, None, exc) from exc
            case_no = self._issue_number(uow, ps, "case", local)
            ready = run.ready_tasks()
            title = str(data.get(proc.get("title_field", "")) or proc["name"])[:200]
            events = EventBuffer(case_no, None, 0, "")
            events.add("case_started", at, actor, self._acting_role(actor, proc.get("start_roles", [])),
                       {"process": process_id, "version": ps.hash, "unit_id": unit.id, "unit_name": unit.name,
                        "form": data, **({"facts": facts} if facts else {})})
            _note_ready(events, ready)
            status = run.status()
            case_id = uow.repo.insert_case(
                case_no=case_no, version_id=self._version_id(uow, ps), process_id=process_id, title=title,
                unit_id=unit.id, unit_name=unit.name, status=status, stage=run.stage(None, ready),
                lead_user=run.lead(), created_by=actor.id, created_at=at, updated_at=at, row_version=1,
                event_seq=events.seq, last_hash=events.last_hash, state=run.dump(), case_vars=run.case_vars)
            events.bind(case_id)
            self._project(uow, case_id, unit.id, ready, [], at, new_case=True)
            self._persist_clocks(uow, case_id, run, events, actor, at, [])
            if events.seq > 1:
                _note_ready(events, ready)
                uow.repo.update_case(case_id, 1, event_seq=events.seq, last_hash=events.last_hash)
            uow.repo.append_events(events.rows)
            uow.commit()
        return StartedCase(case_no, status, [self._task_dict(t) for t in ready])
