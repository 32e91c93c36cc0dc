"""The key-project register (重点项目 by 县发展和改革委员会, 重点企业 by 县科技和工业信息化局): list, add, revoke; and the
facts a new case takes from the registers when it is submitted (is its claim designated? which station sent it?).

Who may do what is the manifest's: reading needs the permission ``key_register``; each kind is managed only by the
roles with that kind's permission (``key_projects`` / ``key_enterprises``). Which form fields carry the claim and the
project number, and which answer means which kind, is the manifest's ``case_facts``; what follows from the facts is
the diagram's (``Gw_Key``).
"""
from __future__ import annotations

import re
from datetime import date, datetime

from .. import access, forms
from ..access import Actor
from ..clock import LOCAL_TZ, now
from ..db import UnitOfWork
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..processes import ProcessSet
from .base import MAX_ID, PAGE_SIZE, _term

try:   # GB 32100-2015 with its check character (the units capability's module); length and charset without it
    from .. import creditcode as _creditcode
except ImportError:  # pragma: no cover - depends on what is merged
    _creditcode = None

KINDS = {
    "project": {"name": "重点项目", "permission": "key_projects", "code": "项目编号", "designator": "县发展和改革委员会"},
    "enterprise": {"name": "重点企业", "permission": "key_enterprises", "code": "统一社会信用代码",
                   "designator": "县科技和工业信息化局"},
}
CREDIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")


def _credit_code(value: str) -> str:
    if _creditcode is not None:
        try:
            return _creditcode.validate(value)
        except _creditcode.CreditCodeError as exc:
            raise InvalidInput(f"统一社会信用代码有误：{exc.message}") from None
    if len(value) != 18:
        raise InvalidInput(f"统一社会信用代码应为 18 位，现为 {len(value)} 位")
    if not CREDIT_CODE.fullmatch(value):
        raise InvalidInput("统一社会信用代码只能由数字和大写字母组成（不含 I、O、Z、S、V），请使用半角字符")
    return value


def _day(value, what: str, required: bool) -> date | None:
    if value in (None, ""):
        if required:
            raise InvalidInput(f"请填写{what}")
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        raise InvalidInput(f"{what}应为日期，格式如 2026-03-01")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{what}不是有效的日期") from None


def designation_state(row, today: date) -> str:
    if row.revoked_at is not None:
        return "已撤销"
    if row.valid_from > today:
        return "未生效"
    if row.valid_to is not None and row.valid_to < today:
        return "已过期"
    return "有效"


class KeyRegister:
    """Use cases: the register of key projects and key enterprises, and the facts a case takes from the registers."""

    def _manageable_kinds(self, actor: Actor) -> list[str]:
        perms = self.permissions(actor)
        return [k for k, v in KINDS.items() if v["permission"] in perms]

    def key_register(self, actor: Actor, kind: str | None = None, q: str | None = None, page: int = 1) -> dict:
        """The register (both kinds, or one), searchable by code, name or document number, newest first."""
        self.check_permission(actor, "key_register")
        kind = kind if kind in KINDS else None
        page = max(1, min(int(page or 1), 10_000))
        with self.db.unit_of_work(write=False) as uow:
            rows, total = uow.repo.key_designations(kind, _term(q, 50), PAGE_SIZE, (page - 1) * PAGE_SIZE)
        today = now().astimezone(LOCAL_TZ).date()
        manageable = set(self._manageable_kinds(actor)) if not self._read_only(actor) else set()
        return {"rows": [dict(r._mapping, kind_name=KINDS[r.kind]["name"], code_name=KINDS[r.kind]["code"],
                              state=designation_state(r, today),
                              may_revoke=r.kind in manageable and r.revoked_at is None) for r in rows],
                "total": total, "page": page, "pages": max(1, -(-total // PAGE_SIZE)),
                "kinds": {k: v["name"] for k, v in KINDS.items()}, "manage_kinds": sorted(manageable)}

    def _read_only(self, actor: Actor) -> bool:
        try:
            access.check_read_only(actor, self.current.manifest["roles"])
        except Forbidden:
            return True
        return False

    def _check_manages(self, actor: Actor, kind: str) -> None:
        access.check_read_only(actor, self.current.manifest["roles"])
        if KINDS[kind]["permission"] not in self.permissions(actor):
            raise Forbidden(f"只有{KINDS[kind]['designator']}可以管理{KINDS[kind]['name']}认定")

    def add_key_designation(self, actor: Actor, kind: str, code, name, document_no, valid_from,
                            valid_to=None) -> dict:
        """Register a designation (logged as an administrative change). A code with a designation in force over an
        overlapping period is refused (revoke that one first)."""
        if kind not in KINDS:
            raise InvalidInput("认定类别应为重点项目或重点企业")
        self._check_manages(actor, kind)
        what = KINDS[kind]
        code = forms.plain_text(code, what["code"], 50)
        if not code:
            raise InvalidInput(f"请填写{what['code']}")
        if kind == "enterprise":
            code = _credit_code(code)
        name = forms.plain_text(name, "项目名称" if kind == "project" else "企业名称", 100)
        if len(name) < 2:
            raise InvalidInput("请填写名称（至少 2 个字）")
        document_no = forms.plain_text(document_no, "认定文件文号", 100)
        if not document_no:
            raise InvalidInput("请填写认定文件文号")
        start, end = _day(valid_from, "有效期起", True), _day(valid_to, "有效期止", False)
        if end is not None and end < start:
            raise InvalidInput("有效期止不能早于有效期起")
        at = now()
        with self.db.unit_of_work() as uow:
            found = uow.repo.overlapping_key_designation(kind, code, start, end)
            if found is not None:
                raise Conflict(f"该{what['code']}在这段有效期内已有{what['name']}认定（{found.document_no}），"
                               "请先撤销后再登记")
            values = {"kind": kind, "code": code, "name": name, "document_no": document_no, "valid_from": start,
                      "valid_to": end}
            new_id = uow.repo.insert_key_designation(**values, created_by=actor.username, created_at=at)
            self.log_admin_change(uow, actor, "key_designation_added", "key", f"{kind}:{code}", None,
                                  dict(values, id=new_id, valid_from=start.isoformat(),
                                       valid_to=end.isoformat() if end else None))
            uow.commit()
        return {"id": new_id, **values}

    def revoke_key_designation(self, actor: Actor, designation_id, reason) -> dict:
        """Revoke a designation (kept in the register as 已撤销, logged with the reason)."""
        try:
            designation_id = int(designation_id)
        except (TypeError, ValueError):
            raise NotFound("没有这条认定记录") from None
        reason = forms.plain_text(reason, "撤销原因", 500, multiline=True)
        if len(reason) < 2:
            raise InvalidInput("请填写撤销原因")
        with self.db.unit_of_work() as uow:
            row = uow.repo.key_designation(designation_id) if 0 < designation_id < MAX_ID else None
            if row is None:
                raise NotFound("没有这条认定记录")
            self._check_manages(actor, row.kind)
            at = now()
            if not uow.repo.revoke_key_designation(row.id, at, actor.username):
                raise Conflict("这条认定已经撤销")
            self.log_admin_change(uow, actor, "key_designation_revoked", "key", f"{row.kind}:{row.code}",
                                  {"id": row.id, "document_no": row.document_no, "revoked": False},
                                  {"id": row.id, "document_no": row.document_no, "revoked": True}, reason)
            uow.commit()
        return {"id": row.id, "revoked_at": at}

    # ---- facts a new case takes from the registers (manifest ``case_facts``) ---------------------------------
    def _station_facts(self, uow: UnitOfWork, ps: ProcessSet, actor: Actor, form_data) -> tuple[dict, dict]:
        """A station clerk's application: the channel field is the clerk's station's kind, whatever the form said,
        and the station is recorded. Returns the form data to validate and the facts."""
        rule = ps.manifest.get("case_facts", {}).get("station_channel")
        if not rule or not actor.has("station"):
            return form_data, {}
        user = uow.repo.user_by_id(actor.id)
        station = uow.repo.station(user.station) if user is not None and user.station else None
        if station is None or not station.active:
            raise Forbidden("您的账号没有所属的服务站（或服务站已停用），不能代为提交申请，请联系系统管理员")
        if isinstance(form_data, dict):
            form_data = dict(form_data, **{rule.get("field", "channel"): station.kind})
        return form_data, {"station": station.code, "station_name": station.name,
                           "station_note": f"由{station.name}（{station.kind}）代为提交"}

    def _key_facts(self, uow: UnitOfWork, ps: ProcessSet, data: dict, unit, day: date) -> dict:
        """Whether the claimed key project / key enterprise is designated in the register on ``day``."""
        rule = ps.manifest.get("case_facts", {}).get("key_register")
        if not rule:
            return {}
        claim = data.get(rule.get("claim_field", "key_project"))
        kind = rule.get("claims", {}).get(claim)
        facts = {"key_registered": False, "key_document": None, "key_note": None}
        if kind not in KINDS:
            return facts
        if kind == "project":
            code = str(data.get(rule.get("project_code_field", "project_code")) or "").strip()
            missing = "申请表未填写项目编号" if not code else None
        else:
            code = (unit.credit_code or "").strip()
            missing = "申请单位没有登记统一社会信用代码" if not code else None
        found = uow.repo.valid_key_designation(kind, code, day) if code else None
        what = KINDS[kind]
        if found is not None:
            facts.update(key_registered=True, key_document=found.document_no,
                         key_note=f"{what['name']}认定已核验：{what['code']} {code}，{what['designator']}认定文件 "
                                  f"{found.document_no}")
        else:
            facts["key_note"] = f"声明为{what['name']}，但" + (
                missing or f"{what['code']} {code} 在{what['designator']}的{what['name']}认定登记簿中没有有效认定") \
                + "，须由帮办代办综合窗口核实"
        return facts
