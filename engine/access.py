"""Who may see and do what. Every access decision of the service is made here, from data, not from views.

- The lane of a task gives the role that may act; a task's ``department`` and ``assignee`` narrow it further.
- An applicant acts and sees only within its own unit.
- Which cases a role sees is set per role in the manifest (``sees_cases``: all / unit / involved / submitted (the
  cases this user submitted, e.g. a station clerk's) / none).
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import Forbidden


@dataclass(frozen=True)
class Actor:
    id: int
    username: str
    display_name: str
    roles: tuple[str, ...]
    department: str | None
    unit_id: int | None

    @classmethod
    def from_row(cls, row) -> "Actor":
        return cls(row.id, row.username, row.display_name, tuple(r for r in row.roles.split(",") if r),
                   row.department, row.unit_id)

    def has(self, role: str) -> bool:
        return role in self.roles


def may_act(actor: Actor, role: str | None, department: str | None, assignee: str | None, unit_id: int | None) -> bool:
    """The one rule for acting on a task (an inbox row or a ready task)."""
    if role is None or not actor.has(role):
        return False
    if department and actor.department != department:
        return False
    if assignee and actor.username != assignee:
        return False
    if role == "applicant" and (actor.unit_id is None or actor.unit_id != unit_id):
        return False
    return True


def check_may_act(actor: Actor, task) -> None:
    if not may_act(actor, task.role, task.department, task.assignee, task.unit_id):
        raise Forbidden("您无权办理此待办")


def case_scope(actor: Actor, roles_config: dict) -> dict:
    """A filter for case queries: ``{"all": True}`` or the unit and parties this actor may see."""
    scope: dict = {"parties": []}
    for role in actor.roles:
        sees = roles_config.get(role, {}).get("sees_cases", "none")
        if sees == "all":
            return {"all": True}
        if sees == "unit" and actor.unit_id is not None:
            scope["unit_id"] = actor.unit_id
        if sees == "submitted":
            scope["created_by"] = actor.id
        if sees == "involved":
            scope["parties"].append(f"user:{actor.username}")
            if actor.department:
                scope["parties"].append(f"dept:{actor.department}")
    return scope


def parties_of_task(role: str | None, department: str | None, assignee: str | None) -> list[str]:
    out = []
    if department:
        out.append(f"dept:{department}")
    if assignee:
        out.append(f"user:{assignee}")
    return out


def check_read_only(actor: Actor, roles_config: dict) -> None:
    """Roles marked ``read_only`` in the manifest (the auditor) never change anything."""
    if actor.roles and all(roles_config.get(r, {}).get("read_only") for r in actor.roles):
        raise Forbidden("您的角色只能查看，不能办理或修改")
