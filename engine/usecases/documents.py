"""Printed documents: a case's documents (and its 申请表, 承诺书) rendered from their templates as HTML and PDF, and
the public 扫码验真 page (no login, throttled, nothing personal)."""
from __future__ import annotations

import hashlib
from datetime import UTC, timedelta
from urllib.parse import quote

from .. import documents as templates
from ..access import Actor
from ..clock import LOCAL_TZ, now
from ..errors import NotFound, ProcessDefinitionError, TooManyAttempts
from ..events import canonical, document_digest
from .base import MAX_ID

DEFAULT_OFFICE = "武陟县政务服务中心"
VERIFY_FAILURES = 30                 # failed look-ups an address may make in the window
VERIFY_WINDOW = timedelta(minutes=15)


def _aware(at):
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _office(ps) -> str:
    office = ps.manifest.get("document_office")
    return office if isinstance(office, str) and office else DEFAULT_OFFICE


def _application_digest(case_no: str, at, form: dict) -> str:
    body = {"case_no": case_no, "submitted_at": _aware(at).isoformat(), "form": form}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


class Documents:
    """Use cases: a case's documents as HTML and PDF; 扫码验真."""

    def _verify_url(self, base_url: str | None, number: str, digest: str) -> str | None:
        if not base_url:
            return None
        return f"{base_url.rstrip('/')}/verify/{quote(number, safe='')}?h={templates.short_hash(digest)}"

    def _issued_template(self, kind: str, data: dict):
        """The template a document was issued with (checked against its recorded SHA-256), and the office named
        in that version; a document issued before templates existed prints with today's."""
        ref = data.get("template")
        if isinstance(ref, dict) and ref.get("version_id"):
            ps = self.version(int(ref["version_id"]))
            body = ps.files.get(ref.get("file", ""))
            if body is None or templates.sha256(body) != ref.get("sha256"):
                raise NotFound("出具该单据时所用的模板已无法找到，无法按原样重新生成")
            return ref["file"], body, _office(ps)
        name = templates.template_file(kind)
        body = self.current.files.get(name)
        if body is None:
            raise NotFound(f"没有单据「{kind}」的模板")
        return name, body, _office(self.current)

    def render_document(self, actor: Actor, case_no: str, doc_id: int, base_url: str | None = None) -> dict:
        """An issued document as its template renders it, from what was recorded when it was issued."""
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            row = uow.repo.document(case.id, int(doc_id)) if 0 < int(doc_id) < MAX_ID else None
            if row is None:
                raise NotFound("单据不存在")
        issued_at = _aware(row.issued_at)
        digest = document_digest(row.kind, row.number, issued_at, row.issued_by, row.task_id, row.title, row.data)
        name, body, office = self._issued_template(row.kind, row.data)
        doc = {"kind": row.kind, "number": row.number,
               "issued_date": row.data.get("issued_date") or issued_at.astimezone(LOCAL_TZ).date().isoformat()}
        html = templates.render(body, name, doc, row.data, office, self._verify_url(base_url, row.number, digest))
        return {"id": row.id, "kind": row.kind, "number": row.number, "case_no": case.case_no, "html": html,
                "title": f"{row.kind} {row.number}", "anchor": self.case_anchor(case.case_no)}

    def render_application_document(self, actor: Actor, case_no: str, kind: str, base_url: str | None = None) -> dict:
        """The 申请表 or 承诺书 of a case, from the application as submitted and the templates of the version the
        case started on; numbered with the case number."""
        if kind not in templates.APPLICATION_KINDS:
            raise NotFound("单据不存在")
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            first = uow.repo.first_event(case.id)
            started = uow.repo.version_by_hash(first.payload.get("version", "")) if first is not None else None
        ps = self.version(started.id) if started is not None else self.version(case.version_id)
        name = templates.template_file(kind)
        body = ps.files.get(name) or self.current.files.get(name)
        if body is None:
            raise NotFound(f"没有单据「{kind}」的模板")
        form = dict(first.payload.get("form") or {}) if first is not None else {}
        at = _aware(first.at if first is not None else case.created_at)
        data = {"case_no": case.case_no, "project_name": case.title, "project_code": form.get("project_code"),
                "unit_name": case.unit_name, "application": form,
                "service_items": [{"code": i["code"], "name": i["name"], "category": i["category"]}
                                  for i in ps.catalogue.items_for(form.get("service_items") or [])]}
        doc = {"kind": kind, "number": case.case_no, "issued_date": at.astimezone(LOCAL_TZ).date().isoformat()}
        url = self._verify_url(base_url, case.case_no, _application_digest(case.case_no, at, form))
        html = templates.render(body, name, doc, data, _office(ps), url)
        return {"kind": kind, "number": case.case_no, "case_no": case.case_no, "html": html,
                "title": f"{kind} {case.case_no}", "anchor": self.case_anchor(case.case_no)}

    @staticmethod
    def document_pdf(rendered: dict) -> bytes:
        return templates.to_pdf(rendered["html"], rendered["title"])

    # ---- 扫码验真 -----------------------------------------------------------------------------------------------
    def verify_document(self, number: str, short: str | None, address: str | None) -> dict:
        """What the public verification page says about ``number`` with the short hash of its QR code: ``valid``
        (the document exists and is unaltered), ``altered`` (it exists but its stored content no longer hashes to
        what was issued) or ``unknown`` (no document with this number and code: never says which of the two is
        wrong). Kind, number, issue date and office only. Failed look-ups are throttled per address."""
        number = str(number or "").strip()[:64]
        short = str(short or "").strip().lower()[:64]
        at = now()
        with self.db.unit_of_work() as uow:
            self._verify_throttled(uow, address, at)
            found = None
            if number and short and number.isprintable():
                found = self._verify_issued(uow, number, short) or self._verify_application(uow, number, short)
            if found is None or found["status"] != "valid":
                self._verify_failed(uow, address, at)
            uow.commit()
        return found or {"status": "unknown", "number": number}

    def _verify_issued(self, uow, number: str, short: str) -> dict | None:
        for row in uow.repo.documents_by_number(number):
            recorded = uow.repo.document_issued_digest(row.case_id, row.id)
            if not recorded or templates.short_hash(recorded) != short:
                continue
            issued_at = _aware(row.issued_at)
            digest = document_digest(row.kind, row.number, issued_at, row.issued_by, row.task_id, row.title, row.data)
            case = uow.repo.case_by_id(row.case_id)
            ps = self.version(case.version_id)
            return {"status": "valid" if digest == recorded else "altered", "kind": row.kind, "number": row.number,
                    "issued_date": issued_at.astimezone(LOCAL_TZ).date(), "office": _office(ps)}
        return None

    def _verify_application(self, uow, number: str, short: str) -> dict | None:
        if len(number) > 32:
            return None
        case = uow.repo.case_by_no(number)
        first = uow.repo.first_event(case.id) if case is not None else None
        if first is None:
            return None
        digest = _application_digest(case.case_no, first.at, dict(first.payload.get("form") or {}))
        if templates.short_hash(digest) != short:
            return None
        return {"status": "valid", "kind": "帮办代办服务申请表、申请帮办代办服务承诺书", "number": case.case_no,
                "issued_date": _aware(first.at).astimezone(LOCAL_TZ).date(), "office": _office(self.version(case.version_id))}

    @staticmethod
    def _verify_key(address: str | None) -> str | None:
        return "verify:" + str(address)[:120] if address else None

    def _verify_throttled(self, uow, address: str | None, at) -> None:
        key = self._verify_key(address)
        row = uow.repo.registration_throttle(key) if key else None
        if row is None:
            return
        since = _aware(row.first_failure_at)
        if since is not None and at - since <= VERIFY_WINDOW and row.failures >= VERIFY_FAILURES:
            raise TooManyAttempts("查询过于频繁，请十五分钟后再试", int(VERIFY_WINDOW.total_seconds()))

    def _verify_failed(self, uow, address: str | None, at) -> None:
        key = self._verify_key(address)
        if key is None:
            return
        row = uow.repo.registration_throttle(key)
        since = _aware(row.first_failure_at) if row is not None else None
        if since is None or at - since > VERIFY_WINDOW:
            uow.repo.set_registration_throttle(key, 1, at, exists=row is not None)
        else:
            uow.repo.set_registration_throttle(key, row.failures + 1, row.first_failure_at, exists=True)


__all__ = ["Documents", "ProcessDefinitionError"]
