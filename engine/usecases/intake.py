"""Applying: the start form with its choices and defaults, and starting a case."""
from __future__ import annotations

from types import SimpleNamespace

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

    def start_form(self, actor: Actor, process_id: str, unit_id: object = None) -> dict:
        """The start form with its choices; the unit fields (manifest ``unit_fields``) prefilled from the applying
        unit's record and read-only. An applicant applies for its own unit; others pick an approved unit first."""
        ps = self.current
        proc = self._startable(ps, process_id)
        self._check_may_start(actor, proc)
        with self.db.unit_of_work(write=False) as uow:
            schema = self._schema(uow, ps, proc["start_form"])
            unit = None
            if actor.has("applicant"):
                unit = self._applying_unit(uow, actor.unit_id)
            elif unit_id not in (None, ""):
                unit = self._applying_unit(uow, unit_id)
            units = [] if actor.has("applicant") else [{"id": r.id, "name": r.name, "credit_code": r.credit_code}
                                                       for r in uow.repo.approved_units()]
            station_defaults = self._station_facts(uow, ps, actor, {})[0]   # a station clerk's channel is the station's
        defaults = {**station_defaults, **(self._unit_values(proc, unit) if unit is not None else {})}
        if defaults:
            props = dict(schema.get("properties", {}))
            for field in defaults:
                if field in props:
                    props[field] = dict(props[field], readOnly=True)
            schema = dict(schema, properties=props)
        return {"process_id": process_id, "name": proc["name"], "schema": schema, "defaults": defaults,
                "units": units, "needs_unit": not actor.has("applicant"),
                "unit": {"id": unit.id, "name": unit.name, "credit_code": unit.credit_code} if unit is not None else None}

    @staticmethod
    def _applying_unit(uow, unit_id: object):
        """The unit an application is for: it must exist and be approved (a registration under review cannot apply)."""
        try:
            number = int(str(unit_id))
        except (TypeError, ValueError):
            number = 0
        if not 0 < number < MAX_ID:
            raise InvalidInput("申请单位不存在", details={"unit_id": "请选择申请单位"})
        unit = uow.repo.unit(number)
        if unit is None:
            raise InvalidInput("申请单位不存在", details={"unit_id": "请选择申请单位"})
        if unit.status != "approved":
            what = "正在审核" if unit.status == "pending" else "未通过审核"
            raise InvalidInput(f"申请单位「{unit.name}」的注册{what}，审核通过后才能提交申请",
                               details={"unit_id": f"单位注册{what}"})
        return unit

    def startable_processes(self, actor: Actor) -> list[dict]:
        found = [{"id": pid, "name": p["name"]} for pid, p in self.current.manifest["processes"].items()
                 if set(actor.roles) & set(p.get("start_roles", []))]
        if found and actor.roles == ("applicant",):      # a handler whose unit is not approved yet cannot apply
            with self.db.unit_of_work(write=False) as uow:
                unit = uow.repo.unit(actor.unit_id) if actor.unit_id is not None else None
            if unit is None or unit.status != "approved":
                return []
        return found

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
            raise InvalidInput("请选择申请单位", details={"unit_id": "请选择申请单位"})
        at = now()
        with clock.at(at), self.db.unit_of_work() as uow:   # one instant for the whole step (replay repeats it)
            unit = self._applying_unit(uow, unit_id)
            form_data, facts = self._station_facts(uow, ps, actor, form_data)
            data = forms.validate(self._schema(uow, ps, proc["start_form"]),
                                  self._with_unit_fields(ps, proc, unit, form_data))
            local = at.astimezone(LOCAL_TZ)
            facts.update(self._key_facts(uow, ps, data, unit, local.date()))   # from the registers (keyregister)
            project_code, duplicate = self._duplicate_finding(uow, ps, process_id, proc, data)
            facts.update(duplicate)                                            # an open case like this one (units)
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
                project_code=project_code,
                event_seq=events.seq, last_hash=events.last_hash, state=run.dump(), case_vars=run.case_vars)
            uow.repo.index_case(case_id, case_no, unit.name, unit.credit_code, title)   # search, same transaction
            events.bind(case_id)
            self._project(uow, case_id, unit.id, ready, [], at, new_case=True, clocks=run.clocks)
            self._persist_clocks(uow, case_id, run, events, actor, at, [])
            self._notices(uow, SimpleNamespace(id=case_id, case_no=case_no, title=title, unit_id=unit.id,
                                               unit_name=unit.name), ps, run, events, ready, [], at)
            row_version = 1
            if events.seq > 1:
                _note_ready(events, ready)
                uow.repo.update_case(case_id, 1, event_seq=events.seq, last_hash=events.last_hash)
                row_version = 2
            uow.repo.append_events(events.rows)
            self._keep_after_commit(uow, case_id, row_version, events.last_hash, ps, run)
            uow.commit()
        return StartedCase(case_no, status, [self._task_dict(t) for t in ready])
