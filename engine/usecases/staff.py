"""Staff accounts (系统管理员): list and search, create, edit, deactivate and reactivate, reset a password, import a
staff file. Every change is logged (``log_admin_change``) in its own transaction; ``actor=None`` is the command line.

Lock-out protection: an administrator cannot deactivate themself or drop their own 系统管理员 role, and at least one
active administrator always remains. Deactivating a user or resetting their password ends their sessions at once."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from .. import staff_import
from ..access import Actor, check_read_only
from ..clock import now, wall
from ..db import UnitOfWork
from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..passwords import check_password_policy, hash_password
from ..staff_rules import Directory, check_account, clean, has_control, one_time_password
from .base import PAGE_SIZE, _term

ADMIN_ROLE = "admin"
LOGGED_FIELDS = ("display_name", "roles", "department", "station", "phone", "email")


def _hash_all(passwords: list[str]) -> list[str]:
    """Hash many one-time passwords (an import) on every CPU: each hash is deliberately slow."""
    if len(passwords) < 4:
        return [hash_password(p) for p in passwords]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(hash_password, passwords))


class Staff:
    """Use cases: staff accounts (系统管理员 pages 账号管理 and 批量导入, ``bangban user``)."""

    def _check_admin(self, actor: Actor | None, permission: str = "accounts") -> None:
        if actor is not None:
            self.check_permission(actor, permission)
            check_read_only(actor, self.current.manifest["roles"])

    def _directory(self, uow: UnitOfWork) -> Directory:
        roles = {code: name for code, name in self.role_names().items() if code != "applicant"}
        departments = {r.code: r.name for r in uow.repo.departments() if r.active}
        if not departments and not uow.repo.count_departments():
            departments = dict(self.current.catalogue.departments)      # before the table is filled
        return Directory(roles, departments, {r.code: r.name for r in uow.repo.stations() if r.active})

    def staff_choices(self, actor: Actor | None) -> dict:
        """What the account forms offer: assignable roles, active departments and stations (code → name)."""
        self._check_admin(actor)
        with self.db.unit_of_work(write=False) as uow:
            d = self._directory(uow)
        return {"roles": d.roles, "departments": d.departments, "stations": d.stations}

    def _staff_dict(self, row, names: dict[str, dict]) -> dict:
        roles = [r for r in (row.roles or "").split(",") if r]
        return {"id": row.id, "username": row.username, "display_name": row.display_name, "roles": roles,
                "role_names": [self.role_names().get(r, r) for r in roles], "department": row.department,
                "department_name": names["departments"].get(row.department or "", row.department),
                "station": row.station, "station_name": names["stations"].get(row.station or "", row.station),
                "phone": row.phone, "email": row.email, "active": bool(row.active),
                "must_change_password": bool(row.must_change_password), "created_at": row.created_at}

    def _names(self, uow: UnitOfWork) -> dict[str, dict]:
        return {"departments": {**self.current.catalogue.departments, **{r.code: r.name for r in uow.repo.departments()}},
                "stations": {r.code: r.name for r in uow.repo.stations()}}

    def list_staff(self, actor: Actor | None, q: str | None = None, role: str | None = None,
                   department: str | None = None, station: str | None = None, active: bool | None = None,
                   page: int = 1) -> dict:
        """Staff accounts by login, name or phone, paged (applicant handlers belong to their units, not here)."""
        self._check_admin(actor)
        page = max(1, min(int(page or 1), 10_000))
        with self.db.unit_of_work(write=False) as uow:
            total, rows = uow.repo.search_users(_term(q, 50), _term(role, 32), _term(department, 32), _term(station, 32),
                                                active, (page - 1) * PAGE_SIZE, PAGE_SIZE)
            names = self._names(uow)
        return {"users": [self._staff_dict(r, names) for r in rows], "total": total, "page": page,
                "pages": max(1, -(-total // PAGE_SIZE))}

    def _staff_row(self, uow: UnitOfWork, username: str):
        login = clean(username)[:64]
        row = uow.repo.user_by_username(login) if login and not has_control(login) else None
        if row is None or row.unit_id is not None:
            raise NotFound(f"账号「{login[:40]}」不存在")
        return row

    def get_staff(self, actor: Actor | None, username: str) -> dict:
        self._check_admin(actor)
        with self.db.unit_of_work(write=False) as uow:
            return self._staff_dict(self._staff_row(uow, username), self._names(uow))

    def create_staff(self, actor: Actor | None, fields: dict, password: str | None = None) -> dict:
        """A new staff account. Without ``password`` a one-time password is made, returned once (never stored in the
        clear, never logged), and must be changed at first login."""
        self._check_admin(actor)
        one_time = password is None
        if not one_time:
            check_password_policy(password, str((fields or {}).get("username") or ""))
        secret = one_time_password() if one_time else password
        pw_hash = hash_password(secret)
        with self.db.unit_of_work() as uow:
            account, problems = check_account(fields, self._directory(uow))
            if account["username"] and uow.repo.usernames_in([account["username"]]):
                problems.append(f"登录名「{account['username']}」已存在")
            if problems:
                raise InvalidInput("账号信息有误：" + "；".join(problems), details=problems)
            values = _row_values(account)
            uow.repo.insert_user(username=account["username"], password_hash=pw_hash, active=True, unit_id=None,
                                 must_change_password=one_time, created_at=now(),
                                 password_changed_at=None if one_time else now(), **values)
            self.log_admin_change(uow, actor, "create_user", "user", account["username"], None, _logged(values))
            uow.commit()
        return {"username": account["username"], "display_name": account["display_name"],
                "password": secret if one_time else None}

    def update_staff(self, actor: Actor | None, username: str, fields: dict) -> dict:
        """Change roles, department, station, contacts or name; logs old → new of what changed."""
        self._check_admin(actor)
        with self.db.unit_of_work() as uow:
            row = self._staff_row(uow, username)
            account, problems = check_account(fields, self._directory(uow), login_required=False)
            if problems:
                raise InvalidInput("账号信息有误：" + "；".join(problems), details=problems)
            old, new = _logged(_row_values(row)), _logged(_row_values(account))
            old_roles, new_roles = set(old["roles"]), set(new["roles"])
            if actor is not None and actor.id == row.id and ADMIN_ROLE in old_roles - new_roles:
                raise Forbidden("不能取消自己的系统管理员角色（以免无人能管理账号），请由另一名系统管理员操作")
            changed = {k for k in LOGGED_FIELDS if old[k] != new[k]}
            if not changed:
                return {"username": row.username, "changed": []}
            uow.repo.update_user(row.id, **{k: v for k, v in _row_values(account).items() if k in changed})
            if ADMIN_ROLE in old_roles - new_roles:
                self._keep_an_admin(uow)
            self.log_admin_change(uow, actor, "update_user", "user", row.username, {k: old[k] for k in sorted(changed)},
                                  {k: new[k] for k in sorted(changed)})
            uow.commit()
        return {"username": row.username, "changed": sorted(changed)}

    def set_staff_active(self, actor: Actor | None, username: str, active: bool, reason: str | None = None) -> dict:
        """Deactivate (ends every session of the user at once) or reactivate an account."""
        self._check_admin(actor)
        reason = clean(reason)[:200] or None
        if reason and has_control(reason):
            raise InvalidInput("原因含有控制字符")
        with self.db.unit_of_work() as uow:
            row = self._staff_row(uow, username)
            if bool(row.active) == bool(active):
                return {"username": row.username, "active": bool(active), "sessions_ended": 0}
            if not active and actor is not None and actor.id == row.id:
                raise Forbidden("不能停用自己的账号，请由另一名系统管理员操作")
            uow.repo.update_user(row.id, active=bool(active))
            ended = 0
            if not active:
                ended = uow.repo.end_sessions(row.id, wall.now(), "deactivated")
                if ADMIN_ROLE in (row.roles or "").split(","):
                    self._keep_an_admin(uow)
            self.log_admin_change(uow, actor, "activate_user" if active else "deactivate_user", "user", row.username,
                                  {"active": bool(row.active)}, {"active": bool(active)}, reason)
            uow.commit()
        return {"username": row.username, "active": bool(active), "sessions_ended": ended}

    def reset_staff_password(self, actor: Actor | None, username: str) -> dict:
        """A new one-time password (returned once): the user must change it at first login; their sessions end."""
        self._check_admin(actor)
        secret = one_time_password()
        pw_hash = hash_password(secret)
        with self.db.unit_of_work() as uow:
            row = self._staff_row(uow, username)
            uow.repo.update_user(row.id, password_hash=pw_hash, must_change_password=True)
            ended = uow.repo.end_sessions(row.id, wall.now(), "password_reset")
            self.log_admin_change(uow, actor, "reset_password", "user", row.username,
                                  {"must_change_password": bool(row.must_change_password)}, {"must_change_password": True})
            uow.commit()
        return {"username": row.username, "display_name": row.display_name, "password": secret, "sessions_ended": ended}

    def _keep_an_admin(self, uow: UnitOfWork) -> None:
        if not uow.repo.active_users_with_role(ADMIN_ROLE):
            raise Conflict("至少要保留一名在用的系统管理员，此操作未执行")

    def import_staff(self, actor: Actor | None, data: bytes, filename: str = "", dry_run: bool = False) -> dict:
        """Import a staff file (CSV/XLSX, Chinese headers). Every bad line is reported as 「第 N 行：原因」 and then
        nothing is imported; a clean file is imported in one transaction, each account with a one-time password
        (returned once). ``dry_run`` checks only."""
        self._check_admin(actor)
        staff = staff_import.read_staff_file(data, filename)
        with self.db.unit_of_work(write=False) as uow:
            directory = self._directory(uow)
            existing = uow.repo.usernames_in(staff_import.logins_of(staff))
        accounts, problems = staff_import.check_lines(staff, directory, existing)
        if problems:
            raise InvalidInput(f"{staff.describe()}：{len(problems)} 处问题，未导入任何账号。请改正后重新上传", details=problems)
        result = {"format": staff.format, "encoding": staff.encoding, "described": staff.describe(),
                  "count": len(accounts), "dry_run": dry_run}
        if dry_run:
            result["accounts"] = [{"line": a["line"], "username": a["username"], "display_name": a["display_name"],
                                   "roles": [self.role_names().get(r, r) for r in a["roles"]],
                                   "department": directory.departments.get(a["department"] or "", ""),
                                   "station": directory.stations.get(a["station"] or "", "")} for a in accounts]
            return result
        secrets_ = [one_time_password() for _ in accounts]
        hashes = _hash_all(secrets_)          # before the transaction: the write lock is held only for the inserts
        at = now()
        with self.db.unit_of_work() as uow:
            taken = uow.repo.usernames_in([a["username"] for a in accounts])
            if taken:        # created by someone else meanwhile
                raise Conflict(f"登录名已被占用：{'、'.join(sorted(taken)[:20])}，未导入任何账号")
            for account, pw_hash in zip(accounts, hashes, strict=True):
                values = _row_values(account)
                uow.repo.insert_user(username=account["username"], password_hash=pw_hash, active=True, unit_id=None,
                                     must_change_password=True, created_at=at, **values)
                self.log_admin_change(uow, actor, "import_user", "user", account["username"], None, _logged(values),
                                      f"批量导入（{staff.format}，第 {account['line']} 行）")
            uow.commit()
        result["accounts"] = [{"username": a["username"], "display_name": a["display_name"], "password": p}
                              for a, p in zip(accounts, secrets_, strict=True)]
        return result


def _row_values(source) -> dict:
    """The stored columns of an account (from a checked account dict or a users row)."""
    get = source.get if isinstance(source, dict) else lambda k: getattr(source, k)
    roles = get("roles")
    return {"display_name": get("display_name"), "roles": ",".join(roles) if isinstance(roles, list) else (roles or ""),
            "department": get("department"), "station": get("station"), "phone": get("phone"), "email": get("email")}


def _logged(values: dict) -> dict:
    """What the log keeps of an account: its fields, roles as a list (never a password or its hash)."""
    return {k: ([r for r in values[k].split(",") if r] if k == "roles" else values[k]) for k in LOGGED_FIELDS}
