"""Reading cases: search, the case page, its diagram, documents and the application as submitted."""
from __future__ import annotations

from .. import access
from ..access import Actor
from ..db import UnitOfWork
from ..errors import (
    InvalidInput,
    NotFound,
)
from ..processes import ProcessSet
from .base import MAX_ID, PAGE_SIZE, _term


def _search_terms(value: str | None, limit: int, label: str, field: str) -> list[str]:
    """The words of a search field (lower-cased, split on whitespace): a control character, more than ``limit``
    characters or a one-character word is refused with a Chinese message."""
    text = value or ""
    if any(not ch.isprintable() and not ch.isspace() for ch in text) or any(ch in text for ch in "\r\n\t\v\f"):
        raise InvalidInput(f"{label}含有不可打印的控制字符，请删去后重试", details={field: "含有控制字符"})
    words = text.lower().split()
    if len(" ".join(words)) > limit:
        raise InvalidInput(f"{label}太长：至多 {limit} 个字符", details={field: f"至多 {limit} 个字符"})
    if any(len(w) < 2 for w in words):
        raise InvalidInput(f"{label}的每个词至少要两个字（例如办件编号的后四位、单位名称中的两个字）",
                           details={field: "每个词至少两个字"})
    return words


class Cases:
    """Use cases: Reading cases: search, the case page, its diagram, documents and the application as submitted."""

    def _visible_case(self, uow: UnitOfWork, actor: Actor, case_no: str, lock: bool = False):
        case_no = str(case_no)
        case = uow.repo.case_by_no(case_no, lock=lock) if len(case_no) <= 32 and case_no.isprintable() else None
        scope = access.case_scope(actor, self.current.manifest["roles"])
        if case is None or not uow.repo.case_visible(case.id, scope):
            raise NotFound("办件不存在或您无权查看")
        return case

    def search_cases(self, actor: Actor, q: str | None = None, unit: str | None = None, project: str | None = None,
                     status: str | None = None, page: int = 1) -> dict:
        """Cases this actor may see matching the query (case number, unit name, credit code or project name: any
        part of three characters or more, or two characters), the unit and the project, newest first. The total is
        counted up to 1,000 (``total_capped`` beyond)."""
        page = max(1, min(int(page or 1), 10_000))
        scope = access.case_scope(actor, self.current.manifest["roles"])
        groups = [((), _search_terms(q, 40, "查询内容", "q")),
                  (("unit_name", "credit_code"), _search_terms(unit, 100, "申请单位", "unit")),
                  (("title",), _search_terms(project, 100, "项目名称", "project"))]
        status = _term(status, 16)
        acceptance = self.current.manifest.get("acceptance") or {}
        with self.db.unit_of_work(write=False) as uow:
            rows, total, capped = uow.repo.search_cases(scope, groups, status, PAGE_SIZE, (page - 1) * PAGE_SIZE)
            accepted: dict[int, object] = {}
            if acceptance.get("element") and rows and hasattr(rows[0], "id"):
                for e in uow.repo.completions_of_element([r.id for r in rows], acceptance["element"]):
                    form = (e.payload or {}).get("form") or {}
                    if all(form.get(k) == v for k, v in (acceptance.get("when") or {}).items()):
                        accepted.setdefault(e.case_id, e.at)
        outcomes = self.current.manifest.get("outcomes", {})
        return {"cases": [dict(r._mapping, status_name=outcomes.get(r.status, r.status),
                               stage_name=self._stage_name(r), accepted_at=accepted.get(getattr(r, "id", None)))
                          for r in rows],
                "total": total, "total_capped": capped, "page": page, "pages": max(1, -(-total // PAGE_SIZE))}

    def _stage_name(self, case) -> str:
        """The stage a case list shows: the stage of an active case; a closed one's outcome (已办结, 已终止, …),
        never the stage its last tasks had (事后评价 after 办结, 联合办理 when it was terminated)."""
        if case.status == "active":
            return case.stage or ""
        return self.current.manifest.get("outcomes", {}).get(case.status, "已结束")

    def _case_header(self, case, ps: ProcessSet) -> dict:
        outcomes = ps.manifest.get("outcomes", {})
        return {"case_no": case.case_no, "title": case.title, "unit_name": case.unit_name, "status": case.status,
                "status_name": outcomes.get(case.status, case.status), "stage": case.stage,
                "created_at": case.created_at, "updated_at": case.updated_at, "version": ps.hash[:12],
                "version_label": self.version_label(case.version_id),
                "due_date": case.due_date, "warning": case.warning,
                "process_name": ps.manifest["processes"].get(case.process_id, {}).get("name", case.process_id)}

    def get_case(self, actor: Actor, case_no: str) -> dict:
        """Everything the case page shows: progress, items, open tasks, timeline, documents, actions."""
        from ..views import case_view
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            ps = self.version(case.version_id)
            run = self._load_run(uow, case, ps)
            inbox = uow.repo.inbox_for_case(case.id)
            events = uow.repo.events_for_case(case.id)
            documents = uow.repo.documents_for_case(case.id)
            names = uow.repo.display_names([r.assignee for r in inbox] + [e.actor_name for e in events]
                                           + [case.lead_user])
            actions = self.case_actions(actor, case, ps, run, {r.element_id for r in inbox}) \
                if case.status == "active" else []
            deliveries = self.case_deliveries(uow, actor, case)
        return dict(case_view(self, actor, case, ps, run, inbox, events, documents, names, actions), deliveries=deliveries)

    def case_diagram(self, actor: Actor, case_no: str) -> dict:
        """The BPMN of the case's own version with what is done and what is open, for the diagram viewer."""
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            ps = self.version(case.version_id)
            run = self._load_run(uow, case, ps)
            inbox = uow.repo.inbox_for_case(case.id)
        bpmn = next((name for name, data in ps.files.items()
                     if name.endswith(".bpmn") and f'id="{case.process_id}"'.encode() in data), None)
        return {"case_no": case.case_no, "process_id": case.process_id, "version": ps.hash[:12],
                "version_label": self.version_label(case.version_id), "file": bpmn,
                "xml": ps.files[bpmn].decode("utf-8") if bpmn else None,
                "completed": sorted(set(run.completed_elements())),
                "current": sorted({r.element_id for r in inbox}),
                "tasks": [{"element": r.element_id, "name": r.name, "title": r.title} for r in inbox]}

    def get_document(self, actor: Actor, case_no: str, doc_id: int) -> dict:
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            doc = uow.repo.document(case.id, int(doc_id)) if 0 < int(doc_id) < MAX_ID else None
            if doc is None:
                raise NotFound("单据不存在")
        # the case's 存证编号 in the latest signed digest (engine.usecases.digests), printed on the document
        return dict(doc._mapping, case_no=case.case_no, anchor=self.case_anchor(case.case_no))

    def application(self, actor: Actor, case_no: str) -> dict:
        """The application form as submitted (for printing), with field titles."""
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            first = uow.repo.first_event(case.id)
        ps = self.version(case.version_id)
        schema = ps.form(ps.process(case.process_id)["start_form"])
        from ..views import display_fields
        return {"case": self._case_header(case, ps), "schema": schema,
                "fields": display_fields(ps, schema, first.payload.get("form", {})), "submitted_at": first.at}
