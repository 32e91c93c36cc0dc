"""What a staff account must be, checked the same way for one account (page, command line) and for every line of an
import: login, name, roles, department, station, phone, email. Pure functions, no database: the caller passes the
directory (assignable roles, active departments and stations) it read."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

LOGIN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{2,31}")
MOBILE = re.compile(r"1[3-9]\d{9}")
LANDLINE = re.compile(r"0\d{2,3}-?\d{7,8}(-\d{1,6})?")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
SEPARATORS = re.compile(r"[,，、;；/\s]+")
NAME_LIMIT = 30
OTP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"   # no 0/O, 1/l/I
OTP_LENGTH = 12
FIELD_NAMES = {"username": "登录名", "display_name": "姓名", "roles": "角色", "department": "部门", "station": "服务站",
               "phone": "手机", "email": "邮箱", "active": "状态", "must_change_password": "首次登录须改密码",
               "name": "名称", "code": "代码", "kind": "类型"}


@dataclass
class Directory:
    """What an account may name: the assignable roles (code → name), active departments and stations (code → name),
    and the roles that need a department or a station."""

    roles: dict[str, str]
    departments: dict[str, str]
    stations: dict[str, str]
    needs_department: frozenset = frozenset({"specialist"})
    needs_station: frozenset = frozenset({"station"})
    _by_name: dict = field(default_factory=dict, repr=False)

    def resolve(self, kind: str, value: str) -> str | None:
        """A role, department or station given by its code or its Chinese name; ``None`` when unknown."""
        table = {"roles": self.roles, "departments": self.departments, "stations": self.stations}[kind]
        if value in table:
            return value
        names = self._by_name.setdefault(kind, {name: code for code, name in table.items()})
        return names.get(value)


def one_time_password() -> str:
    """A random password shown once to the administrator; the user must change it at first login."""
    while True:
        pw = "".join(secrets.choice(OTP_ALPHABET) for _ in range(OTP_LENGTH))
        if any(c.isdigit() for c in pw) and any(c.isupper() for c in pw) and any(c.islower() for c in pw):
            return pw


def has_control(value: str) -> bool:
    return any(not ch.isprintable() for ch in value)


def clean(value) -> str:
    """A cell or field as text, surrounding spaces (also full-width) removed."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip(" \u3000")


def split_roles(value: str) -> list[str]:
    return [t for t in SEPARATORS.split(value) if t]


def check_account(fields: dict, directory: Directory, login_required: bool = True) -> tuple[dict, list[str]]:
    """The account ``fields`` describe (login, name, roles, department, station, phone, email as given), checked.
    Returns the clean values (codes, not names) and every problem found (Chinese; empty when the account is good)."""
    problems: list[str] = []
    out: dict = {}
    raw = {k: clean(fields.get(k)) if not isinstance(fields.get(k), (list, tuple)) else fields.get(k)
           for k in ("username", "display_name", "roles", "department", "station", "phone", "email")}
    for key, value in raw.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(has_control(str(v)) for v in values):
            problems.append(f"{FIELD_NAMES[key]}含有控制字符或不可见字符")
            raw[key] = "" if not isinstance(value, (list, tuple)) else []
    if login_required:
        login = raw["username"]
        if not login:
            problems.append("缺少登录名")
        elif not LOGIN.fullmatch(login):
            problems.append(f"登录名「{login[:40]}」不合规：须以英文字母开头，3–32 位英文字母、数字、下划线、点或短横线")
        out["username"] = login
    name = raw["display_name"]
    if not name:
        problems.append("缺少姓名")
    elif len(name) > NAME_LIMIT:
        problems.append(f"姓名超过 {NAME_LIMIT} 个字")
    out["display_name"] = name
    tokens = raw["roles"] if isinstance(raw["roles"], (list, tuple)) else split_roles(raw["roles"])
    roles: list[str] = []
    for token in tokens:
        code = directory.resolve("roles", clean(token))
        if code is None:
            problems.append(f"未知的角色「{clean(token)[:30]}」")
        elif code not in roles:
            roles.append(code)
    if not tokens:
        problems.append("缺少角色")
    out["roles"] = roles
    out["department"] = _one(raw["department"], "departments", directory, "部门", problems)
    out["station"] = _one(raw["station"], "stations", directory, "服务站", problems)
    if set(roles) & directory.needs_department and not out["department"] and not raw["department"]:
        problems.append("部门业务专办员须指定所属部门")
    if set(roles) & directory.needs_station and not out["station"] and not raw["station"]:
        problems.append("服务站工作人员须指定所属服务站")
    phone = raw["phone"].replace(" ", "")
    if phone and not (MOBILE.fullmatch(phone) or LANDLINE.fullmatch(phone)):
        problems.append(f"手机号「{phone[:30]}」格式不对：应为 11 位手机号或带区号的固定电话")
    out["phone"] = phone or None
    email = raw["email"]
    if email and (len(email) > 120 or not EMAIL.fullmatch(email)):
        problems.append(f"邮箱「{email[:60]}」格式不对")
    out["email"] = email or None
    return out, problems


def _one(value: str, kind: str, directory: Directory, label: str, problems: list[str]) -> str | None:
    if not value:
        return None
    code = directory.resolve(kind, value)
    if code is None:
        problems.append(f"未知的{label}「{value[:40]}」（须为已登记且在用的{label}名称或代码）")
    return code
