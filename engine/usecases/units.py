"""Applicant units: a company registers itself online with its first handler, the 综合窗口 approves or rejects the
registration, a unit's administrator manages its handlers; and what intake takes from the unit record (the unit
fields of an application, named by the manifest's ``unit_fields``) and the possible duplicates it flags (the
manifest's ``duplicate_check``)."""
from __future__ import annotations

import re
import secrets
from datetime import UTC, timedelta

from .. import creditcode, forms, passwords
from ..access import Actor, check_read_only
from ..clock import now, wall
from ..db import UnitOfWork
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..processes import ProcessSet
from .base import MAX_ID

MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
PHONE = re.compile(r"^[0-9+\-() ]{7,20}$")          # the application form's pattern for 负责人联系电话
POSTCODE = re.compile(r"^[0-9]{6}$")
LOGIN = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
REGISTRATIONS_PER_ADDRESS = 5                        # per hour: online registration is anonymous
REGISTRATION_WINDOW = timedelta(hours=1)
IDENTITY_ATTRIBUTES = ("name", "credit_code")        # a unit field naming another unit is refused, not replaced
STATUS_NAMES = {"pending": "待审核", "approved": "已通过", "rejected": "未通过"}
_OTP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"


def _text(form: dict, name: str, title: str, problems: dict, low: int, high: int, required: bool = True) -> str | None:
    raw = form.get(name)
    try:
        value = forms.plain_text(raw, title, high)
    except InvalidInput as exc:
        problems[name] = exc.message
        return None
    if not value:
        if required:
            problems[name] = f"请填写{title}"
        return None
    if len(value) < low:
        problems[name] = f"{title}至少 {low} 个字"
        return None
    return value


def _matches(form: dict, name: str, title: str, problems: dict, pattern: re.Pattern, hint: str,
             required: bool = True, limit: int = 20) -> str | None:
    value = _text(form, name, title, problems, 1, limit, required)
    if value is not None and not pattern.fullmatch(value):
        problems[name] = f"{title}{hint}"
        return None
    return value


def check_password(password: object, username: str, problems: dict, name: str = "password") -> str | None:
    """The shared password policy (``engine.passwords``): the problem goes into ``problems[name]``."""
    if not isinstance(password, str) or not password:
        problems[name] = "请设置登录密码"
        return None
    problem = passwords.password_problem(password, username)
    if problem:
        problems[name] = problem
        return None
    return password


def one_time_password() -> str:
    return "".join(secrets.choice(_OTP_ALPHABET) for _ in range(12))


def _unit_dict(row) -> dict:
    return {"id": row.id, "name": row.name, "credit_code": row.credit_code, "legal_representative": row.legal_representative,
            "address": row.address, "postcode": row.postcode, "leader_name": row.leader_name,
            "leader_phone": row.leader_phone, "contact_name": row.contact_name, "contact_phone": row.contact_phone,
            "status": row.status, "status_name": STATUS_NAMES.get(row.status, row.status),
            "registered_at": row.registered_at, "reviewed_by": row.reviewed_by, "reviewed_at": row.reviewed_at,
            "review_reason": row.review_reason}


class Units:
    """Use cases: unit registration and its review, a unit's handlers; the unit fields and duplicates of intake."""

    # ---- registration (anonymous) ------------------------------------------------------------------------------
    def register_unit(self, form: dict, address: str | None = None) -> dict:
        """A company registers itself and its first handler (who becomes the unit's administrator). The unit waits for
        the 综合窗口's review; its handler may log in but not apply until it is approved."""
        if not isinstance(form, dict):
            raise InvalidInput("提交的内容应为表单对象")
        problems: dict[str, str] = {}
        name = _text(form, "name", "单位名称", problems, 2, 100)
        code_raw = form.get("credit_code")
        code = None
        try:
            code = creditcode.validate(code_raw if code_raw is not None else "")
        except creditcode.CreditCodeError as exc:
            problems["credit_code"] = exc.message
        legal = _text(form, "legal_representative", "法定代表人", problems, 2, 30)
        address_text = _text(form, "address", "单位地址", problems, 2, 200)
        postcode = _matches(form, "postcode", "邮编", problems, POSTCODE, "应为 6 位数字", limit=6)
        leader = _text(form, "leader_name", "单位负责人", problems, 2, 30, required=False)
        leader_phone = _matches(form, "leader_phone", "负责人电话", problems, PHONE,
                                "应为 7 至 20 位的电话号码（数字、+、-、括号、空格）", required=False)
        contact = _text(form, "contact_name", "经办人姓名", problems, 2, 30)
        contact_phone = _matches(form, "contact_phone", "经办人手机号码", problems, MOBILE, "应为 11 位手机号码（1 开头）")
        username = _matches(form, "username", "登录名", problems, LOGIN,
                            "应为 3 至 32 位字母、数字、下划线、点或连字符", limit=32)
        display = _text(form, "display_name", "经办人显示名", problems, 2, 30, required=False) or contact
        password = check_password(form.get("password"), username or "", problems)
        if "password" not in problems and form.get("password_confirm") is not None \
                and form.get("password_confirm") != form.get("password"):
            problems["password_confirm"] = "两次输入的密码不一致"
        if problems:
            raise InvalidInput("注册信息有误：" + "；".join(problems.values()), details=problems)
        at = now()
        with self.db.unit_of_work() as uow:
            self._throttle_registration(uow, address, at)
            if uow.repo.live_unit_with(credit_code=code) is not None:
                problems["credit_code"] = f"统一社会信用代码 {code} 已有单位注册（或正在审核），请勿重复注册"
            if uow.repo.live_unit_with(name=name) is not None:
                problems["name"] = f"单位名称「{name}」已有单位注册（或正在审核）"
            if uow.repo.user_by_username(username) is not None:
                problems["username"] = f"登录名 {username} 已被使用，请换一个"
            if problems:
                raise InvalidInput("注册信息有误：" + "；".join(problems.values()), details=problems)
            unit_id = uow.repo.insert_unit(
                name=name, credit_code=code, legal_representative=legal, address=address_text, postcode=postcode,
                leader_name=leader, leader_phone=leader_phone, contact_name=contact, contact_phone=contact_phone,
                status="pending", registered_at=at)
            user_id = uow.repo.insert_unit_user(
                username=username, password_hash=passwords.hash_password(password), display_name=display,
                roles="applicant", unit_id=unit_id, active=True, unit_admin=True, phone=contact_phone,
                created_at=at, password_changed_at=at)
            # logged as done by the new handler account itself (registration is anonymous, not the command line)
            uow.repo.add_admin_change(at=at, actor_id=user_id, actor_name=username, action="unit_registered",
                                      target_kind="unit", target=code,
                                      new={"单位名称": name, "统一社会信用代码": code, "经办人账号": username})
            uow.commit()
        return {"unit_id": unit_id, "name": name, "credit_code": code, "username": username, "status": "pending"}

    @staticmethod
    def _throttle_registration(uow: UnitOfWork, address: str | None, at) -> None:
        """At most ``REGISTRATIONS_PER_ADDRESS`` registrations an hour from one address (shared by all processes)."""
        if not address:
            return
        key = "unit_register:" + str(address)[:120]
        row = uow.repo.registration_throttle(key)
        since = row.first_failure_at if row is not None else None
        if since is not None and since.tzinfo is None:          # SQLite gives back naive UTC
            since = since.replace(tzinfo=UTC)
        if since is None or at - since > REGISTRATION_WINDOW:
            uow.repo.set_registration_throttle(key, 1, at, exists=row is not None)
            return
        if row.failures >= REGISTRATIONS_PER_ADDRESS:
            raise InvalidInput("本地址注册过于频繁，请一小时后再试")
        uow.repo.set_registration_throttle(key, row.failures + 1, row.first_failure_at, exists=True)

    # ---- the handler's own unit ----------------------------------------------------------------------------------
    def my_unit(self, actor: Actor | None) -> dict | None:
        """The unit of an applicant with its registration status (what the handler sees on login)."""
        if actor is None or actor.unit_id is None:
            return None
        with self.db.unit_of_work(write=False) as uow:
            row = uow.repo.unit(actor.unit_id)
            me = uow.repo.user_by_id(actor.id)
        if row is None:
            return None
        out = _unit_dict(row)
        out["is_admin"] = bool(me is not None and me.unit_admin)
        return out

    def is_unit_admin(self, actor: Actor | None) -> bool:
        if actor is None or actor.unit_id is None or not actor.has("applicant"):
            return False
        with self.db.unit_of_work(write=False) as uow:
            me = uow.repo.user_by_id(actor.id)
        return bool(me is not None and me.active and me.unit_admin)

    # ---- review by the 综合窗口 ----------------------------------------------------------------------------------
    def unit_registrations(self, actor: Actor, status: str | None = None) -> list[dict]:
        self.check_permission(actor, "unit_registrations")
        if status not in (None, "", *STATUS_NAMES):
            raise InvalidInput("未知的审核状态")
        with self.db.unit_of_work(write=False) as uow:
            rows = uow.repo.unit_registrations(status or None)
            out = []
            for row in rows:
                item = _unit_dict(row)
                item["handlers"] = [{"username": u.username, "display_name": u.display_name, "phone": u.phone}
                                    for u in uow.repo.unit_users(row.id)]
                out.append(item)
        return out

    def review_unit(self, actor: Actor, unit_id: object, decision: str, reason: str | None = None) -> dict:
        """Approve (``approve``) or reject (``reject``, with a reason) a pending registration; the unit's handlers are
        notified (they see it when they log in)."""
        self.check_permission(actor, "unit_registrations")
        check_read_only(actor, self.current.manifest["roles"])
        if decision not in ("approve", "reject"):
            raise InvalidInput("请选择通过或不通过")
        reason = forms.plain_text(reason, "审核意见", 500, multiline=True) or None
        if decision == "reject" and not reason:
            raise InvalidInput("不通过时须填写原因", details={"reason": "请填写不通过的原因"})
        uid = _id(unit_id, "单位注册")
        at = now()
        with self.db.unit_of_work() as uow:
            row = uow.repo.unit_locked(uid)
            if row is None or row.registered_at is None:
                raise NotFound("单位注册不存在")
            if row.status != "pending":
                raise Conflict(f"该单位注册已审核（{STATUS_NAMES.get(row.status, row.status)}），不能重复审核")
            status = "approved" if decision == "approve" else "rejected"
            uow.repo.update_unit(uid, status=status, reviewed_by=actor.username, reviewed_at=at, review_reason=reason)
            text = ("本单位注册已审核通过，可以提交帮办代办申请" if status == "approved"
                    else f"本单位注册未通过审核，原因：{reason}。可修改后重新注册")
            uow.repo.add_notifications([{"recipient": f"user:{u.username}", "case_id": None, "text": text[:500],
                                         "created_at": at} for u in uow.repo.unit_users(uid) if u.active])
            self.log_admin_change(uow, actor, f"unit_{status}", "unit", row.credit_code or str(uid),
                                  old={"状态": STATUS_NAMES["pending"]}, new={"状态": STATUS_NAMES[status]}, reason=reason)
            uow.commit()
        return {"unit_id": uid, "name": row.name, "status": status, "status_name": STATUS_NAMES[status]}

    # ---- the unit administrator's handlers ---------------------------------------------------------------------
    def _unit_admin(self, uow: UnitOfWork, actor: Actor):
        me = uow.repo.user_by_id(actor.id) if actor is not None else None
        if me is None or not me.active or not me.unit_admin or me.unit_id is None or not actor.has("applicant"):
            raise Forbidden("只有本单位的管理员可以管理经办人")
        unit = uow.repo.unit(me.unit_id)
        if unit is None or unit.status == "rejected":
            raise Forbidden("本单位注册未通过审核，不能管理经办人")
        return me, unit

    def unit_handlers(self, actor: Actor) -> dict:
        with self.db.unit_of_work(write=False) as uow:
            me, unit = self._unit_admin(uow, actor)
            handlers = [{"id": u.id, "username": u.username, "display_name": u.display_name, "phone": u.phone,
                         "active": u.active, "unit_admin": u.unit_admin, "created_at": u.created_at, "me": u.id == me.id}
                        for u in uow.repo.unit_users(unit.id)]
        return {"unit": _unit_dict(unit), "handlers": handlers}

    def add_unit_handler(self, actor: Actor, form: dict) -> dict:
        """A new handler account of the administrator's unit, with a one-time password to change at first login."""
        if not isinstance(form, dict):
            raise InvalidInput("提交的内容应为表单对象")
        problems: dict[str, str] = {}
        username = _matches(form, "username", "登录名", problems, LOGIN,
                            "应为 3 至 32 位字母、数字、下划线、点或连字符", limit=32)
        display = _text(form, "display_name", "姓名", problems, 2, 30)
        phone = _matches(form, "phone", "手机号码", problems, MOBILE, "应为 11 位手机号码（1 开头）")
        admin = form.get("unit_admin") in (True, "true", "on", "1")
        if problems:
            raise InvalidInput("经办人信息有误：" + "；".join(problems.values()), details=problems)
        password, at = one_time_password(), now()
        with self.db.unit_of_work() as uow:
            me, unit = self._unit_admin(uow, actor)
            if uow.repo.user_by_username(username) is not None:
                raise InvalidInput(f"登录名 {username} 已被使用，请换一个", details={"username": "登录名已被使用"})
            user_id = uow.repo.insert_unit_user(
                username=username, password_hash=passwords.hash_password(password), display_name=display,
                roles="applicant", unit_id=unit.id, active=True, unit_admin=admin, phone=phone,
                must_change_password=True, created_at=at)
            self.log_admin_change(uow, actor, "unit_handler_added", "user", username,
                                  new={"单位": unit.name, "姓名": display, "手机": phone,
                                       "本单位管理员": "是" if admin else "否"})
            uow.commit()
        return {"id": user_id, "username": username, "display_name": display, "one_time_password": password}

    def remove_unit_handler(self, actor: Actor, user_id: object) -> dict:
        """Deactivate a handler of the administrator's unit (their sessions end); the last administrator stays."""
        uid = _id(user_id, "经办人")
        with self.db.unit_of_work() as uow:
            me, unit = self._unit_admin(uow, actor)
            target = uow.repo.user_by_id(uid)
            if target is None or target.unit_id != unit.id:
                raise NotFound("本单位没有这个经办人")
            if not target.active:
                raise Conflict("该经办人已停用")
            if target.unit_admin and not any(u.unit_admin and u.active and u.id != uid for u in uow.repo.unit_users(unit.id)):
                raise Conflict("这是本单位唯一的管理员，不能停用；请先指定另一位管理员")
            uow.repo.update_user(uid, active=False)
            uow.repo.end_sessions(uid, wall.now(), "deactivated")
            self.log_admin_change(uow, actor, "unit_handler_removed", "user", target.username,
                                  old={"状态": "启用"}, new={"状态": "停用"})
            uow.commit()
        return {"id": uid, "username": target.username, "active": False}

    # ---- intake: the unit fields of an application, possible duplicates ---------------------------------------
    @staticmethod
    def _unit_values(proc: dict, unit) -> dict:
        """The form fields the manifest's ``unit_fields`` fills from the unit record (those the record has)."""
        out = {}
        for field, attr in (proc.get("unit_fields") or {}).items():
            value = getattr(unit, attr, None)
            if value not in (None, ""):
                out[field] = value
        return out

    @staticmethod
    def _with_unit_fields(ps: ProcessSet, proc: dict, unit, form_data) -> dict:
        """The submitted data with its unit fields taken from the applying unit's record. A field naming another unit
        (the unit's name or credit code) is refused; the others are replaced by the record's value."""
        mapping = proc.get("unit_fields") or {}
        if not mapping or not isinstance(form_data, dict):
            return form_data
        data = dict(form_data)
        for field, attr in mapping.items():
            have = getattr(unit, attr, None)
            if have in (None, ""):
                continue
            sent = data.get(field)
            if attr in IDENTITY_ATTRIBUTES and isinstance(sent, str) and sent.strip() \
                    and forms.clean_text(sent).strip() != have:
                title = ps.field_title(field)
                message = f"{title}「{sent.strip()[:100]}」与申请单位「{unit.name}」不一致，不能以其他单位的名义申请"
                raise InvalidInput(message, details={field: message})
            data[field] = have
        return data

    @staticmethod
    def _duplicate_finding(uow: UnitOfWork, ps: ProcessSet, process_id: str, proc: dict, data: dict) -> tuple:
        """(the key value to store on the case, {variable: finding} or {}): open cases of the same process with the
        same key (项目编号) whose overlap field (service items) shares a value with this application (manifest
        ``duplicate_check``: ``key``, ``overlap``, ``variable``)."""
        check = proc.get("duplicate_check")
        if not isinstance(check, dict) or not check.get("key") or not check.get("variable"):
            return None, {}
        key = data.get(check["key"])
        key = key.strip()[:50] if isinstance(key, str) else None
        if not key:
            return None, {}
        overlap = check.get("overlap")
        mine = _as_list(data.get(overlap)) if overlap else []
        found = []
        for row in uow.repo.open_cases_with_project_code(process_id, key):
            theirs = set(_as_list(((row.payload or {}).get("form") or {}).get(overlap))) if overlap else set()
            common = [c for c in mine if isinstance(c, str) and c in theirs]
            if overlap and not common:
                continue
            names = "、".join(str(ps.catalogue.items.get(c, {}).get("name", c)) for c in common)
            same = f"办件 {row.case_no}（{ps.field_title(check['key'])}相同"
            found.append(same + (f"，事项重叠：{names}）" if names else "）"))
        return key, ({check["variable"]: "；".join(found)[:2000]} if found else {})


def _as_list(value) -> list:
    return list(value) if isinstance(value, list) else ([] if value in (None, "") else [value])


def _id(value: object, what: str) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise NotFound(f"{what}不存在") from None
    if not 0 < number < MAX_ID:
        raise NotFound(f"{what}不存在")
    return number
