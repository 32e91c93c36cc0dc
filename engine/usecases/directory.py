"""Departments and service stations as records (系统管理员), and the log of administrative changes (系统管理员, 审计/纪检,
县行政审批和政务信息管理局), shown in Chinese: who, when, what, old → new.

The departments table is filled from the current process version's catalogue while it is empty (service start,
``init-db``, ``demo``); from then on the administrator keeps it, and a process version whose catalogue names a
department that is not in the table cannot be published."""
from __future__ import annotations

import json
import re

from ..access import Actor, check_read_only
from ..db import UnitOfWork
from ..errors import Conflict, InvalidInput, NotFound
from ..staff_rules import FIELD_NAMES, LANDLINE, MOBILE, clean, has_control
from .base import _term

CODE = re.compile(r"[a-z][a-z0-9_]{1,31}")
STATION_KINDS = ("乡镇（街道）便民服务中心", "邮政网点")
LOG_PAGE = 50
ACTIONS = {"create_user": "新建账号", "update_user": "修改账号", "deactivate_user": "停用账号", "activate_user": "启用账号",
           "reset_password": "重置密码", "import_user": "导入账号",
           "create_department": "新增部门", "update_department": "修改部门", "deactivate_department": "停用部门",
           "activate_department": "启用部门", "remove_department": "删除部门", "seed_departments": "从事项目录建立部门",
           "create_station": "新增服务站", "update_station": "修改服务站", "deactivate_station": "停用服务站",
           "activate_station": "启用服务站", "retry_delivery": "重新发送通知"}
TARGET_KINDS = {"user": "账号", "department": "部门", "station": "服务站", "unit": "申请单位", "key": "重点项目/企业登记",
                "delivery": "通知发送"}
MORE_FIELDS = {"phone_window": "窗口电话", "active": "状态", "credit_code": "统一社会信用代码", "status": "状态",
               "legal_representative": "法定代表人", "contact_name": "联系人", "contact_phone": "联系电话",
               "address": "地址", "unit_admin": "单位管理员", "document_no": "认定文件文号", "valid_from": "有效期起",
               "valid_to": "有效期止", "unit": "单位", "count": "数量", "departments": "部门"}
VALUES = {"approved": "已通过", "pending": "待审核", "rejected": "未通过", "project": "重点项目", "enterprise": "重点企业"}


def _text(value: str | None, label: str, limit: int, required: bool = False) -> str | None:
    text = clean(value)
    if has_control(text):
        raise InvalidInput(f"{label}含有控制字符或不可见字符")
    if len(text) > limit:
        raise InvalidInput(f"{label}超过 {limit} 个字")
    if required and not text:
        raise InvalidInput(f"请填写{label}")
    return text or None


def _phone(value: str | None) -> str | None:
    phone = (_text(value, "电话", 30) or "").replace(" ", "")
    if phone and not (MOBILE.fullmatch(phone) or LANDLINE.fullmatch(phone)):
        raise InvalidInput("电话格式不对：应为带区号的固定电话（如 0391-7221001）或 11 位手机号")
    return phone or None


def _code(value: str | None, label: str) -> str:
    code = clean(value)
    if not CODE.fullmatch(code):
        raise InvalidInput(f"{label}代码须以小写英文字母开头，2–32 位小写英文字母、数字或下划线")
    return code


class AdminRecords:
    """Use cases: departments and service stations (部门管理, 服务站管理, ``bangban department|station``), 管理日志."""

    def _check_records(self, actor: Actor | None, permission: str) -> None:
        if actor is not None:
            self.check_permission(actor, permission)
            check_read_only(actor, self.current.manifest["roles"])

    # ---- departments ---------------------------------------------------------------------------------------------
    def ensure_departments(self) -> int:
        """Fill an empty departments table from the current version's catalogue; returns how many were added."""
        with self.db.unit_of_work(write=False) as uow:
            if uow.repo.count_departments():
                return 0
        with self.db.unit_of_work() as uow:
            added = self._seed_departments(uow)
            uow.commit()
        return added

    def _seed_departments(self, uow: UnitOfWork) -> int:
        if uow.repo.count_departments():
            return 0
        catalogue = self.current.catalogue.departments
        for code, name in catalogue.items():
            uow.repo.insert_department(code=code, name=name, phone=None, active=True)
        if catalogue:
            self.log_admin_change(uow, None, "seed_departments", "department", "全部", None,
                                  {"count": len(catalogue)}, "部门表为空，按当前流程版本的事项目录建立")
        self._department_names = None
        return len(catalogue)

    def departments(self, actor: Actor | None) -> list[dict]:
        self._check_records(actor, "departments")
        with self.db.unit_of_work(write=False) as uow:
            rows = uow.repo.departments()
            used = {c for it in self.current.catalogue.items.values() for c in [it.get("department")]}
            return [{"code": r.code, "name": r.name, "phone": r.phone, "active": bool(r.active),
                     "in_catalogue": r.code in used, **uow.repo.department_open_items(r.code)} for r in rows]

    def add_department(self, actor: Actor | None, code: str, name: str, phone: str | None = None) -> dict:
        self._check_records(actor, "departments")
        code, name, phone = _code(code, "部门"), _text(name, "部门名称", 100, True), _phone(phone)
        with self.db.unit_of_work() as uow:
            self._seed_departments(uow)
            if uow.repo.department(code) is not None:
                raise Conflict(f"部门代码 {code} 已存在")
            if uow.repo.department_by_name(name) is not None:
                raise Conflict(f"部门「{name}」已存在")
            uow.repo.insert_department(code=code, name=name, phone=phone, active=True)
            self.log_admin_change(uow, actor, "create_department", "department", code, None,
                                  {"code": code, "name": name, "phone_window": phone})
            uow.commit()
        self._department_names = None
        return {"code": code, "name": name}

    def edit_department(self, actor: Actor | None, code: str, name: str, phone: str | None = None,
                        active: bool | None = None) -> dict:
        """Rename a department, change its window phone, or take a deactivated one back into use."""
        self._check_records(actor, "departments")
        name, phone = _text(name, "部门名称", 100, True), _phone(phone)
        with self.db.unit_of_work() as uow:
            self._seed_departments(uow)
            row = self._department(uow, code)
            other = uow.repo.department_by_name(name)
            if other is not None and other.code != row.code:
                raise Conflict(f"部门「{name}」已存在")
            old = {"name": row.name, "phone_window": row.phone, "active": bool(row.active)}
            new = {"name": name, "phone_window": phone, "active": bool(row.active) if active is None else bool(active)}
            changed = sorted(k for k in old if old[k] != new[k])
            if changed:
                uow.repo.update_department(row.code, name=name, phone=phone, active=new["active"])
                self.log_admin_change(uow, actor, "update_department", "department", row.code,
                                      {k: old[k] for k in changed}, {k: new[k] for k in changed})
                uow.commit()
        self._department_names = None
        return {"code": row.code, "changed": changed}

    def _department(self, uow: UnitOfWork, code: str):
        code = _term(code, 32) or ""
        row = uow.repo.department(code)
        if row is None:
            raise NotFound(f"部门 {code[:32]} 不存在")
        return row

    def remove_department(self, actor: Actor | None, code: str, reason: str | None = None) -> dict:
        """Remove a department no one works in: refused while it has open tasks, running clocks, active users or
        catalogue items; a department with history is deactivated (kept for the records), others deleted."""
        self._check_records(actor, "departments")
        reason = _text(reason, "原因", 200)
        with self.db.unit_of_work() as uow:
            self._seed_departments(uow)
            row = self._department(uow, code)
            counts = uow.repo.department_open_items(row.code)
            items = [i["name"] for i in self.current.catalogue.items.values() if i.get("department") == row.code]
            blockers = [text for n, text in ((counts["inbox"], f"{counts['inbox']} 项未办结的待办"),
                                             (counts["clocks"], f"{counts['clocks']} 个正在计时的事项"),
                                             (counts["users"], f"{counts['users']} 个在用账号"),
                                             (len(items), f"事项目录中 {len(items)} 个事项（{'、'.join(items[:5])}）"
                                                          "由其负责")) if n]
            if blockers:
                raise Conflict(f"部门「{row.name}」还有 {'、'.join(blockers)}，不能删除：请先办结或转交待办、"
                               "调整账号所属部门，并由流程管理员修改事项目录", details=counts)
            if not row.active:
                return {"code": row.code, "name": row.name, "result": "deactivated"}
            if uow.repo.department_has_history(row.code):
                uow.repo.update_department(row.code, active=False)
                action, result = "deactivate_department", "deactivated"
                old, new = {"active": True}, {"active": False}
            else:
                uow.repo.delete_department(row.code)
                action, result = "remove_department", "removed"
                old, new = {"code": row.code, "name": row.name, "phone_window": row.phone}, None
            self.log_admin_change(uow, actor, action, "department", row.code, old, new, reason)
            uow.commit()
        self._department_names = None
        return {"code": row.code, "name": row.name, "result": result}

    def catalogue_department_problems(self, files: dict[str, bytes]) -> list[dict]:
        """Items of a process set's catalogue naming a department that is not an active one of the departments table
        (checked by the use case: the validation worker has no database)."""
        raw = files.get("catalogue.json")
        try:
            catalogue = json.loads(raw.decode("utf-8")) if raw is not None else {}
        except (UnicodeDecodeError, ValueError):
            return []          # the validation reports the file itself
        self.ensure_departments()
        with self.db.unit_of_work(write=False) as uow:
            known = {r.code for r in uow.repo.departments() if r.active}
        problems = []
        for item in catalogue.get("items", []) if isinstance(catalogue, dict) else []:
            if isinstance(item, dict) and str(item.get("department")) not in known:
                problems.append({"message": f"目录：事项「{str(item.get('name'))[:40]}」的责任部门 "
                                            f"{str(item.get('department'))[:32]} 不在部门表中（或已停用），请先由系统管理员"
                                            "在“部门管理”中添加", "file": "catalogue.json", "line": None,
                                 "element": str(item.get("code"))[:40], "detail": None})
        return problems

    # ---- service stations ----------------------------------------------------------------------------------------
    def stations(self, actor: Actor | None) -> list[dict]:
        self._check_records(actor, "stations")
        with self.db.unit_of_work(write=False) as uow:
            return [{"code": r.code, "name": r.name, "kind": r.kind, "phone": r.phone, "active": bool(r.active),
                     "users": uow.repo.count_active_station_users(r.code)} for r in uow.repo.stations()]

    def station_names(self) -> dict[str, str]:
        with self.db.unit_of_work(write=False) as uow:
            return {r.code: r.name for r in uow.repo.stations()}

    @staticmethod
    def _station_fields(name: str, kind: str, phone: str | None) -> dict:
        kind = clean(kind)
        if kind not in STATION_KINDS:
            raise InvalidInput(f"服务站类型须为：{'、'.join(STATION_KINDS)}")
        return {"name": _text(name, "服务站名称", 100, True), "kind": kind, "phone": _phone(phone)}

    def add_station(self, actor: Actor | None, code: str, name: str, kind: str, phone: str | None = None) -> dict:
        self._check_records(actor, "stations")
        code, fields = _code(code, "服务站"), self._station_fields(name, kind, phone)
        with self.db.unit_of_work() as uow:
            if uow.repo.station(code) is not None:
                raise Conflict(f"服务站代码 {code} 已存在")
            if uow.repo.station_by_name(fields["name"]) is not None:
                raise Conflict(f"服务站「{fields['name']}」已存在")
            uow.repo.insert_station(code=code, active=True, **fields)
            self.log_admin_change(uow, actor, "create_station", "station", code, None,
                                  {"code": code, "name": fields["name"], "kind": kind, "phone": fields["phone"]})
            uow.commit()
        return {"code": code, "name": fields["name"]}

    def _station(self, uow: UnitOfWork, code: str):
        code = _term(code, 32) or ""
        row = uow.repo.station(code)
        if row is None:
            raise NotFound(f"服务站 {code[:32]} 不存在")
        return row

    def edit_station(self, actor: Actor | None, code: str, name: str, kind: str, phone: str | None = None) -> dict:
        self._check_records(actor, "stations")
        fields = self._station_fields(name, kind, phone)
        with self.db.unit_of_work() as uow:
            row = self._station(uow, code)
            other = uow.repo.station_by_name(fields["name"])
            if other is not None and other.code != row.code:
                raise Conflict(f"服务站「{fields['name']}」已存在")
            old = {"name": row.name, "kind": row.kind, "phone": row.phone}
            changed = sorted(k for k in old if old[k] != fields[k])
            if changed:
                uow.repo.update_station(row.code, **fields)
                self.log_admin_change(uow, actor, "update_station", "station", row.code, {k: old[k] for k in changed},
                                      {k: fields[k] for k in changed})
                uow.commit()
        return {"code": row.code, "changed": changed}

    def set_station_active(self, actor: Actor | None, code: str, active: bool, reason: str | None = None) -> dict:
        """Deactivate a station (refused while clerks still work there) or take it back into use."""
        self._check_records(actor, "stations")
        reason = _text(reason, "原因", 200)
        with self.db.unit_of_work() as uow:
            row = self._station(uow, code)
            if bool(row.active) == bool(active):
                return {"code": row.code, "active": bool(active)}
            clerks = uow.repo.count_active_station_users(row.code)
            if not active and clerks:
                raise Conflict(f"服务站「{row.name}」还有 {clerks} 个在用账号，不能停用：请先调整或停用这些账号")
            uow.repo.update_station(row.code, active=bool(active))
            self.log_admin_change(uow, actor, "activate_station" if active else "deactivate_station", "station",
                                  row.code, {"active": bool(row.active)}, {"active": bool(active)}, reason)
            uow.commit()
        return {"code": row.code, "active": bool(active)}

    # ---- the log of administrative changes ----------------------------------------------------------------------
    def admin_log(self, actor: Actor | None, kind: str | None = None, target: str | None = None,
                  before: int | None = None) -> dict:
        """Administrative changes, newest first, 50 a page (``before``: the id the next page starts below), each as
        who, when, what and old → new in Chinese (field names in Chinese, roles by name)."""
        if actor is not None and not {"admin_log", "audit"} & self.permissions(actor):
            self.check_permission(actor, "admin_log")
        kind = kind if kind in TARGET_KINDS else None
        with self.db.unit_of_work(write=False) as uow:
            rows = uow.repo.admin_changes(kind, _term(target, 100), LOG_PAGE + 1,
                                          before if before and 0 < before < 2**53 else None)
            names = {"departments": {**self.current.catalogue.departments,
                                     **{r.code: r.name for r in uow.repo.departments()}},
                     "stations": {r.code: r.name for r in uow.repo.stations()}, "roles": self.role_names()}
        entries = [self._log_entry(r, names) for r in rows[:LOG_PAGE]]
        return {"entries": entries, "kinds": TARGET_KINDS, "kind": kind,
                "next_before": rows[LOG_PAGE - 1].id if len(rows) > LOG_PAGE else None}

    def _log_entry(self, row, names: dict) -> dict:
        old, new = row.old or {}, row.new or {}
        changes = []
        for key in list(dict.fromkeys([*old, *new])):
            if key not in old and new.get(key) in (None, "", []):
                continue          # a new record's empty fields say nothing
            changes.append({"field": FIELD_NAMES.get(key) or MORE_FIELDS.get(key) or "其他",
                            "old": _show(key, old.get(key), names) if key in old else "—",
                            "new": _show(key, new.get(key), names) if key in new else "—"})
        return {"id": row.id, "at": row.at, "who": row.actor_name, "action": ACTIONS.get(row.action, "管理变更"),
                "kind": TARGET_KINDS.get(row.target_kind, "其他"), "target": _target(row, names),
                "changes": changes, "reason": row.reason}


def _target(row, names: dict) -> str:
    table = {"department": names["departments"], "station": names["stations"]}.get(row.target_kind, {})
    return f"{table[row.target]}（{row.target}）" if row.target in table else row.target


def _show(key: str, value, names: dict) -> str:
    """A logged value as a person reads it: roles by name, departments and stations by name, yes/no, (空)."""
    if value is None or value == "" or value == []:
        return "（空）"
    if key == "roles":
        return "、".join(names["roles"].get(r, r) for r in (value if isinstance(value, list) else str(value).split(",")))
    if key == "department":
        return names["departments"].get(value, value)
    if key == "station":
        return names["stations"].get(value, value)
    if key == "active":
        return "在用" if value else "停用"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(_show(key, v, names) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{FIELD_NAMES.get(k) or MORE_FIELDS.get(k) or '其他'}：{_show(k, v, names)}" for k, v in value.items())
    return VALUES.get(str(value), str(value))
