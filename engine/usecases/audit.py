"""Auditors: verify a case (chain and replay), repair a case from its replay, step through it, export it."""
from __future__ import annotations

from ..access import Actor
from ..clock import clock, now
from ..db import UnitOfWork
from ..errors import (
    BangbanError,
    NotFound,
)
from ..events import EventBuffer
from .base import _jsonable


def _corruption(exc: BaseException) -> str:
    """What an exception met while reading a case's records says about them, in Chinese."""
    import json
    if isinstance(exc, json.JSONDecodeError):
        return "存储的数据无法解析（不是合法的数据格式）"
    if isinstance(exc, (KeyError, IndexError, AttributeError, TypeError)):
        return "存储的数据缺项或结构不对"
    if isinstance(exc, ValueError):
        return "存储的值不合要求（如时间或日期格式不对）"
    return "存储的数据无法读取"


class Audit:
    """Use cases: Auditors: verify a case (chain and replay), repair a case from its replay, step through it, export it."""

    @staticmethod
    def _audited_case(uow, case_no: str):
        """The case an auditor names by its number (any case: auditors see all), or 404."""
        case = uow.repo.case_by_no(str(case_no)[:32]) if str(case_no).isprintable() else None
        if case is None:
            raise NotFound("办件不存在")
        return case

    def audit_case(self, case_no: str, actor: Actor | None = None) -> dict:
        """Check a case: its hash chain, its replay from the events (who acted, when, what followed), the case row,
        its documents and its pinned process files. ``ok`` with the first divergence if not. Never raises for a
        broken case: whatever is wrong with it is its result (an unknown case number is 404)."""
        if actor is not None:
            self.check_permission(actor, "audit")
        try:
            return self._audit_case(case_no)
        except NotFound:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt record is a finding, not a crash of the audit
            return {"case_no": str(case_no)[:32], "ok": False, "events": None, "divergence": None,
                    "text": f"无法核验，记录已损坏：{_corruption(exc)}"}

    def _audit_case(self, case_no: str) -> dict:
        with self.db.unit_of_work(write=False) as uow:
            case = self._audited_case(uow, case_no)
            events = uow.repo.events_for_case(case.id)
            divergence = self._audit_records(uow, case, events)
        return {"case_no": case.case_no, "ok": divergence is None, "events": len(events),
                "divergence": divergence.to_dict() if divergence else None, "text": str(divergence) if divergence else "完整"}

    def _audit_records(self, uow, case, events: list):
        """The first thing wrong with a case, or None."""
        from .. import audit, audit_records
        if not events:
            return audit.Divergence(None, None, "办件没有任何事件记录（事件被删除）")
        divergence = audit.check_chain(case.case_no, events) or audit_records.time_problem(events)
        if divergence is None and (case.last_hash != events[-1].hash or case.event_seq != len(events)):
            return audit.Divergence(events[-1].seq, events[-1].type, "办件记录的最后哈希或事件数与事件链不符（事件被删除）")
        if divergence is not None:
            return divergence
        try:
            ps = self.version(case.version_id)
        except NotFound:
            return audit.Divergence(None, None, "办件所用的流程版本不存在（流程版本被删除或办件记录被改动）")
        except (BangbanError, AttributeError, TypeError, ValueError):
            return audit.Divergence(None, None, "办件所用流程版本的文件无法载入（流程文件被改动）")
        if ps.hash != uow.repo.version_hash(case.version_id):
            return audit.Divergence(None, None, "办件所用流程版本的文件与其哈希不符（流程文件被改动）")
        clocks = uow.repo.clocks_for_case(case.id)
        history = self.calendar_history(uow)      # replay evaluates each step with the calendar in force then
        stored = audit.stored_run(ps, case.process_id, case.state, case.case_vars, clocks, history.current)
        users = uow.repo.users_by_ids({e.actor_id for e in events if e.actor_id is not None}
                                      | {e.payload["to_id"] for e in events if e.type == "task_reassigned"
                                         and isinstance((e.payload or {}).get("to_id"), int)})
        stages: list = [None]
        step_ends = {e.seq for e in events if "ready_after" in (e.payload or {})}   # the last event of each step

        def track(seq: int, run) -> None:          # the stage as each step saved it (CaseStep._save)
            if seq in step_ends:
                stages[0] = run.stage(stages[0], run.ready_tasks())

        roles = {code: r.get("name", code) for code, r in ps.manifest.get("roles", {}).items()}
        authority = audit_records.AuthorityCheck(users, case.unit_id, roles, ps.catalogue.departments)
        replayed, divergence = audit.replay(events, self._checked_version_of(uow), history, on_step=track,
                                            authority=authority)
        if divergence is None and replayed is not None:
            divergence = audit.compare(audit.normalized(stored), audit.normalized(replayed)) \
                or audit.due_date_check(stored, replayed)
        if divergence is None and replayed is not None:
            divergence = audit_records.note_problem(events, replayed.notes)
        if divergence is None and replayed is not None:
            expected = audit_records.replayed_row(replayed, events, stages[0], lambda p: self._start_title(ps, p),
                                                  clocks)
            divergence = audit_records.case_row_problem(case, expected, ps.manifest.get("outcomes", {}))
        if divergence is None:
            divergence = audit_records.document_problems(uow.repo.documents_full(case.id), events)
        if divergence is None:
            divergence = self.file_problems(uow, case, events)      # uploaded files: rows and bytes (issue 17)
        return audit.name_things(divergence, ps, stored.clocks)

    @staticmethod
    def _start_title(ps, payload: dict) -> str:
        """The title a case gets from its application form (as :meth:`Intake.start_case` sets it)."""
        proc = ps.manifest["processes"].get(payload.get("process"), {})
        return str((payload.get("form") or {}).get(proc.get("title_field", "")) or proc.get("name", ""))[:200]

    def _checked_version_of(self, uow):
        """Process versions by hash for a replay, each re-hashed: edited files fail the replay."""
        get = self._version_by_hash(uow)

        def checked(version_hash: str):
            ps = get(version_hash)
            if ps.hash != version_hash:
                raise NotFound(f"流程版本 {version_hash[:12]} 的文件与其哈希不符（流程文件被改动）")
            return ps
        return checked

    def audit_registers(self) -> list[str]:
        """What ``verify --all`` checks beyond single cases: gaps in numbering, and the calendar tables against the
        calendar's change history (a day edited in the tables directly, outside the service, is reported)."""
        problems = self.audit_numbering()
        with self.db.unit_of_work(write=False) as uow:
            history = self.calendar_history(uow)
            if history.differs_from(uow.repo.calendar_years(), uow.repo.calendar_days()):
                problems.append("工作日历与其变更记录不符（日历表被绕过服务直接改动）")
        return problems

    def audit_numbering(self) -> list[str]:
        """Gaps in the numbers issued to cases and to each kind of document (and numbers beyond their counter)."""
        from .. import audit_records
        with self.db.unit_of_work(write=False) as uow:
            counters = uow.repo.counters()
            numbers = {"case": {r.case_no for r in uow.repo.all_case_numbers()}}
            for kind, number in uow.repo.document_numbers():
                numbers.setdefault(kind, set()).add(number)
        return audit_records.numbering_gaps(counters, numbers, self.current.manifest.get("numbers", {}))

    def repair_case(self, case_no: str, dry_run: bool = False, by: str = "", reason: str = "") -> dict:
        """Rebuild a case's stored state and projections from the replay of its intact event chain.

        For cases that a faulty release left with a state that does not follow from their own history (e.g. a
        department's result never merged, so the case stalled). The chain must be intact and the replay must take
        every recorded step; then the replayed workflow, clocks, timers, inbox and case row replace the stored ones,
        and a ``state_repaired`` event records who, why, the old and new state hashes and every recorded step outcome
        the replay corrected (verify accepts exactly those afterwards). Process owners and supervisors are told.
        ``result``: ``intact`` (nothing to do), ``would_repair`` (dry run), ``repaired``, ``refused``, ``missing``."""
        import hashlib

        from .. import audit, audit_records
        case_no = str(case_no)[:32] if str(case_no).isprintable() else ""
        with clock.step() as step, self.db.unit_of_work(write=not dry_run) as uow:
            case = uow.repo.case_by_no(case_no, lock=not dry_run) if case_no else None
            if case is None:
                return {"case_no": case_no, "result": "missing", "text": "办件不存在"}
            events = uow.repo.events_for_case(case.id)
            at = step.after(events[-1].at if events else None)   # the repair comes after the last recorded step
            broken = audit.check_chain(case.case_no, events)
            if broken is None and (not events or case.last_hash != events[-1].hash or case.event_seq != len(events)):
                broken = audit.Divergence(len(events) or None, None, "办件记录的最后哈希或事件数与事件链不符")
            if broken is not None:
                return {"case_no": case.case_no, "result": "refused",
                        "text": f"事件链不完整，不能按事件记录修复，请人工核查：{broken}"}
            history = self.calendar_history(uow)
            calendar = history.current
            corrections: list[dict] = []
            replayed, divergence = audit.replay(events, self._version_by_hash(uow), history, corrections=corrections)
            if divergence is not None or replayed is None:
                return {"case_no": case.case_no, "result": "refused",
                        "text": f"重放不能完成，不能按事件记录修复，请人工核查：{divergence or '没有提交申请事件'}"}
            ps = self.version(case.version_id)
            if replayed.ps.hash != ps.hash:
                return {"case_no": case.case_no, "result": "refused",
                        "text": "重放得到的流程版本与办件记录的版本不同，不能按事件记录修复，请人工核查"}
            clock_rows = uow.repo.clocks_for_case(case.id)
            try:
                stored = audit.stored_run(ps, case.process_id, case.state, case.case_vars, clock_rows, calendar)
                difference = audit.compare(audit.normalized(stored), audit.normalized(replayed)) \
                    or audit.due_date_check(stored, replayed)
            except (ValueError, KeyError, TypeError, BangbanError):
                difference = audit.Divergence(None, None, "存储的状态无法读取（记录已损坏）")
            if difference is None and not corrections:
                return {"case_no": case.case_no, "result": "intact", "text": "完整，无需修复"}
            summary = f"{len(corrections)} 个步骤的记录结果与重放不同" if corrections else "存储的状态与重放不同"
            if difference is not None:
                summary += f"；{difference}"
            if dry_run:
                return {"case_no": case.case_no, "result": "would_repair", "text": f"可以修复：{summary}",
                        "corrected": corrections}
            state = replayed.dump()
            buffer = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
            existing = uow.repo.inbox_for_case(case.id)
            new_ready = {(t.element_id, t.title or ""): t.id for t in replayed.ready_tasks()}
            reissued = {r.task_id: new_ready[(r.element_id, r.title or "")] for r in existing
                        if (r.element_id, r.title or "") in new_ready}
            buffer.add("state_repaired", at, None, None, {
                "by": by[:100], "reason": reason[:500], "summary": summary[:1000],
                "old_state_hash": hashlib.sha256(case.state.encode("utf-8", "surrogatepass")).hexdigest(),
                "new_state_hash": hashlib.sha256(state.encode("utf-8")).hexdigest(),
                "status": [case.status, replayed.status()], "corrected": corrections,
                "reissued_tasks": sorted([old, new] for old, new in reissued.items())})
            # The replay's own notes and notices were given when the steps happened: only its state is taken, and the
            # clock and timer notes that corrected steps produced but the log lacks (a 评价期限 started for a rating task
            # the faulty run never opened) are recorded now, after the repair, so that verify finds every one.
            replayed.notes, replayed.notifications = audit_records.missing_notes(events, replayed.notes), []
            replayed.loaded_clock_keys = {r.key for r in clock_rows}
            replayed.changed_clocks = set(replayed.clocks)
            replayed.loaded_timers = None
            uow.repo.delete_clocks(case.id, {r.key for r in clock_rows} - set(replayed.clocks))
            self._save(uow, case, ps, replayed, buffer, at, existing=existing, reissued=set(reissued), notify=False)
            text = f"办件 {case.case_no} 的状态已按事件记录重放修复（{summary}）"[:500]
            uow.repo.add_notifications([{"recipient": f"role:{role}", "case_id": case.id, "text": text, "created_at": at}
                                        for role in ("process_owner", "supervisor")])
            uow.commit()
        return {"case_no": case.case_no, "result": "repaired", "text": f"已修复：{summary}", "corrected": corrections}

    def audit_case_numbers(self) -> list[str]:
        with self.db.unit_of_work(write=False) as uow:
            return [r.case_no for r in uow.repo.all_case_numbers()]

    def audit_steps(self, actor: Actor, case_no: str) -> dict:
        """The case replayed event by event: for each step, where the case was (completed and open elements)."""
        from .. import audit
        self.check_permission(actor, "audit")
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            events = uow.repo.events_for_case(case.id)
            calendar = self.calendar_history(uow)
            steps: dict[int, dict] = {}

            def record(seq: int, run) -> None:
                steps[seq] = {"completed": sorted(set(run.completed_elements())),
                              "current": sorted({t.element_id for t in run.ready_tasks()}),
                              "open": [{"element": t.element_id, "name": t.name, "title": t.title} for t in run.ready_tasks()],
                              "status": run.status()}
            _, divergence = audit.replay(events, self._version_by_hash(uow), calendar, on_step=record)
        ps = self.version(case.version_id)
        from ..views import timeline
        names = {}
        with self.db.unit_of_work(write=False) as uow:
            names = uow.repo.display_names([e.actor_name for e in events])
        lines = timeline(ps, events, names, {c: r["name"] for c, r in ps.manifest["roles"].items()})
        out = []
        for line, e in zip(lines, events, strict=True):
            state = steps.get(e.seq) or (out[-1]["state"] if out else {"completed": [], "current": [], "open": []})
            out.append({"seq": e.seq, "event": line, "changes": e.payload.get("changes") or {}, "state": state,
                        "version": e.payload.get("version") or e.payload.get("to")})
        return {"case": self._case_header(case, ps), "steps": out,
                "divergence": divergence.to_dict() if divergence else None}

    def export_dossier(self, actor: Actor | None, case_no: str) -> dict:
        """One file with everything needed to check the case elsewhere: events, data, documents, process versions."""
        if actor is not None:
            self.check_permission(actor, "audit")
        with self.db.unit_of_work(write=False) as uow:
            case = self._audited_case(uow, case_no)
            events = uow.repo.events_for_case(case.id)
            documents = [dict(r._mapping) for r in uow.repo.documents_full(case.id)]
            clocks = [dict(r._mapping) for r in uow.repo.clocks_for_case(case.id)]
            hashes = {e.payload.get("version") for e in events if e.type == "case_started"} | \
                     {e.payload.get("to") for e in events if e.type == "migrated"} | {self.version(case.version_id).hash}
            versions = {}
            for h in sorted(x for x in hashes if x):
                row = uow.repo.version_by_hash(h)
                versions[h] = dict(uow.repo.version_files(row.id).files)
            calendar = self._calendar_rows(uow)
            calendar_history = [dict(r._mapping) for r in uow.repo.calendar_changes()]
        return _jsonable({
            "format": "bangban-dossier/1", "exported_at": now(), "case": {
                k: getattr(case, k) for k in ("case_no", "process_id", "title", "unit_name", "status", "stage",
                                              "created_at", "updated_at", "last_hash", "case_vars", "state")},
            "version": self.version(case.version_id).hash,
            "events": [dict(e._mapping) for e in events], "documents": documents, "clocks": clocks,
            "versions": versions, "calendar": calendar, "calendar_history": calendar_history})

    @staticmethod
    def _calendar_rows(uow: UnitOfWork) -> dict:
        return {"years": [dict(r._mapping) for r in uow.repo.calendar_years()],
                "days": [dict(r._mapping) for r in uow.repo.calendar_days()]}
