"""改派: a supervisor or the comprehensive window gives an open task to another eligible person, as a step of the case.

Who may: the roles with the manifest permission ``reassign`` (县行政审批和政务信息管理局, 帮办代办综合窗口).
To whom: an active account that may do the task — the role of its lane, and for a department's task a specialist
of that department. Never the tasks of the applicant: those belong to every handler of the applying unit, so there
is no one person to replace (a unit's handlers are managed by the unit). A reason is required.

Two scopes:

- ``task`` (只改派此项待办): this open task alone goes to the new person; when it is done (or ends), the tasks after it
  are assigned as the process says.
- ``lead`` (由其接替本办件的牵头工作): the person who held the task is also replaced in every case variable naming
  them (the case's lead agent ``lead_officer``/``case_agent``, its chief officer ``chief_officer``), so every later
  task of the case that names them goes to the new person too (a lead agent who left is replaced for the rest of the
  case). The new person must have the roles of every task those variables assign.

Each 改派 is an event ``task_reassigned`` (from, to, reason, scope, the variables replaced) in the case's hash chain,
written in the same transaction as the new state; the override is kept in the workflow's state (the task's data, the
case variables), so a restored case and the audit replay (``engine.audit``) give the same assignee.
The supervisor's page lists the open tasks no active account may act on (a deactivated assignee, a department or a
role with no one active) with the people each can go to.
"""
from __future__ import annotations

from .. import access
from ..access import Actor
from ..clock import clock, now
from ..errors import Conflict, InvalidInput, NotFound
from ..events import EventBuffer
from ..processes import ProcessSet
from ..runtime import TaskInfo
from .base import _TASK_ID

SCOPES = {"task": "只改派此项待办", "lead": "由其接替本办件的牵头工作"}
MAX_REASON = 500
QUEUE_LIMIT = 200


def _roles(row) -> set[str]:
    return set(filter(None, (row.roles or "").split(",")))


def _clean_reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("请填写改派原因", {"reason": "请填写改派原因"})
    text = reason.strip()
    if len(text) > MAX_REASON:
        raise InvalidInput(f"改派原因不能超过 {MAX_REASON} 字", {"reason": f"不能超过 {MAX_REASON} 字"})
    if not all(ch.isprintable() or ch in "\n\t" for ch in text):
        raise InvalidInput("改派原因含有不可见的控制字符", {"reason": "含有不可见的控制字符"})
    return text


class Reassignment:
    """Use cases: 改派 an open task (or a case's lead) to another eligible person; the tasks that need it."""

    def _reassign_roles(self) -> list[str]:
        return [code for code, r in self.current.manifest["roles"].items() if "reassign" in r.get("permissions", [])]

    def _check_reassigner(self, actor: Actor) -> None:
        self.check_permission(actor, "reassign")
        access.check_read_only(actor, self.current.manifest["roles"])

    @staticmethod
    def _eligible(user, role: str | None, department: str | None) -> bool:
        """Whether this active account may do a task of ``role`` (and ``department``) once it is assigned to them."""
        return bool(role) and role != "applicant" and role in _roles(user) \
            and (not department or user.department == department)

    def _why_not(self, ps: ProcessSet, user, task: TaskInfo) -> str | None:
        if user is None or not user.active:
            return "新办理人账号不存在或已停用"
        role_name = ps.manifest["roles"].get(task.role, {}).get("name", task.role)
        if task.role not in _roles(user):
            return f"{user.display_name}不是「{role_name}」，不能办理此待办"
        if task.department and user.department != task.department:
            dept = ps.catalogue.departments.get(task.department, task.department)
            return f"此待办由{dept}办理，{user.display_name}不是该部门的专办员"
        if user.username == task.assignee:
            return f"此待办已由{user.display_name}办理，无需改派"
        return None

    def _lead_problem(self, ps: ProcessSet, run, task: TaskInfo, user) -> str | None:
        """Why ``user`` cannot take over the case's lead from the task's assignee, if they cannot."""
        held = sorted(k for k, v in run.case_vars.items() if task.assignee and v == task.assignee)
        if not held:
            return "此待办的办理人不是本办件记录的牵头人员，只能改派此项待办"
        needed = set().union(*(ps.assignee_roles.get(var, set()) for var in held)) | {task.role}
        missing = sorted(needed - _roles(user))
        if missing:
            names = "、".join(ps.manifest["roles"].get(r, {}).get("name", r) for r in missing)
            return f"接替本办件牵头工作的人还须是：{names}"
        return None

    def _open_task(self, uow, task_id: str, lock: bool):
        """The case of an open task (locked for a change) and the task as its workflow has it ready now."""
        case = uow.repo.case_of_task(task_id, lock=lock) if _TASK_ID.fullmatch(str(task_id)) else None
        if case is None:
            self._ready_row(uow, task_id)          # 404, or 409 for a task already done or ended
            raise NotFound("待办不存在")
        ps = self.version(case.version_id)
        run = self._load_run(uow, case, ps)
        task = run.ready_task(task_id)
        if task is None:
            raise Conflict("该待办已被办理或已结束，请刷新后查看")
        if task.role == "applicant":
            raise InvalidInput("申请单位的待办由本单位任一经办人办理，不能改派给他人")
        return case, ps, run, task

    def reassign_form(self, actor: Actor, task_id: str) -> dict:
        """What the 改派 form shows: the task, who holds it now, the people it can go to, whether the case's lead
        can be handed over with it."""
        self._check_reassigner(actor)
        with self.db.unit_of_work(write=False) as uow:
            case, ps, run, task = self._open_task(uow, task_id, lock=False)
            staff = uow.repo.active_staff()
            holder = uow.repo.users_by_usernames([task.assignee]).get(task.assignee or "")
        candidates = [{"username": u.username, "display_name": u.display_name,
                       "takes_lead": self._lead_problem(ps, run, task, u) is None}
                      for u in staff if self._eligible(u, task.role, task.department) and u.username != task.assignee]
        return {"case": self._case_header(case, ps), "task": self._task_dict(task),
                "role_name": ps.manifest["roles"].get(task.role, {}).get("name", task.role),
                "department_name": ps.catalogue.departments.get(task.department or "", None),
                "assignee_name": holder.display_name if holder is not None else task.assignee,
                "assignee_active": bool(holder is not None and holder.active),
                "lead_possible": any(c["takes_lead"] for c in candidates), "candidates": candidates, "scopes": SCOPES}

    def reassign_task(self, actor: Actor, task_id: str, to_username, reason, scope: str = "task") -> dict:
        """改派 one open task to ``to_username`` (``scope`` ``lead``: and the case's lead held by its assignee)."""
        self._check_reassigner(actor)
        reason = _clean_reason(reason)
        if not isinstance(scope, str) or scope not in SCOPES:
            raise InvalidInput("改派范围应为「只改派此项待办」或「由其接替本办件的牵头工作」", {"scope": "取值无效"})
        if not isinstance(to_username, str) or not to_username.strip():
            raise InvalidInput("请选择新办理人", {"to": "请选择新办理人"})
        with clock.step() as step, self.db.unit_of_work() as uow:
            case, ps, run, task = self._open_task(uow, task_id, lock=True)
            step.after(case.updated_at)
            if case.status in ps.manifest.get("final_outcomes", []):   # 已办结 with evaluations open may be reassigned
                raise Conflict("办件已结束，不能改派")
            target = uow.repo.user_by_username(to_username.strip()[:64]) if to_username.strip().isprintable() else None
            problem = self._why_not(ps, target, task) or \
                (self._lead_problem(ps, run, task, target) if scope == "lead" else None)
            if problem:
                raise InvalidInput(problem, {"to": problem})
            existing = uow.repo.inbox_for_case(case.id)
            holder = uow.repo.users_by_usernames([task.assignee]).get(task.assignee or "")
            at = now()
            replaced = run.reassign(task, target.username, lead=scope == "lead")
            if replaced:
                run.changed_clocks |= set(run.clocks)     # the clock rows carry the case's lead (时限督办 lists it)
            role = self._acting_role(actor, self._reassign_roles())
            events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
            events.add("task_reassigned", at, actor, role, {
                "title": task.title, "from": task.assignee,
                "from_name": holder.display_name if holder is not None else None,
                "to": target.username, "to_id": target.id, "to_name": target.display_name,
                "to_department": target.department, "reason": reason, "scope": scope, "variables": replaced},
                task.id, task.element_id, task.name)
            self._save(uow, case, ps, run, events, at, existing=existing, actor=actor)
            label = task.name + (f"（{task.title}）" if task.title else "")
            uow.repo.add_notifications([{"recipient": f"user:{target.username}", "case_id": case.id, "created_at": at,
                                         "text": f"办件 {case.case_no} 的待办「{label}」已改派给您，原因：{reason}"[:500]}])
            uow.commit()
        return {"case_no": case.case_no, "task_id": task.id, "from": task.assignee, "to": target.username,
                "scope": scope, "variables": replaced}

    def reassignment_queue(self, actor: Actor) -> list[dict]:
        """Open tasks that no active account may act on now, oldest first, each with the people it can go to."""
        self._check_reassigner(actor)
        with self.db.unit_of_work(write=False) as uow:
            staff = uow.repo.active_staff()
            people = [Actor(u.id, u.username, u.display_name, tuple(_roles(u)), u.department, None) for u in staff]
            unattended = [(g.role, g.department, g.assignee) for g in uow.repo.inbox_assignments()
                          if not any(access.may_act(p, g.role, g.department, g.assignee, None) for p in people)]
            rows = uow.repo.inbox_of_assignments(unattended, QUEUE_LIMIT)
            holders = uow.repo.users_by_usernames([r.assignee for r in rows])
        roles, departments = self.current.manifest["roles"], self.department_names()
        out = []
        for r in rows:
            holder = holders.get(r.assignee or "")
            if r.assignee and (holder is None or not holder.active):
                why = "指定办理人已停用"
            elif r.assignee:
                why = "指定办理人已不具备办理此待办的岗位或部门"
            elif r.department:
                why = "该部门没有在岗的专办员"
            else:
                why = "该岗位没有在岗人员"
            out.append({"task_id": r.task_id, "case_no": r.case_no, "case_title": r.case_title,
                        "unit_name": r.unit_name, "name": r.name, "title": r.title, "created_at": r.created_at,
                        "role_name": roles.get(r.role, {}).get("name", r.role),
                        "department_name": departments.get(r.department or "", r.department),
                        "assignee": r.assignee, "assignee_name": holder.display_name if holder is not None else r.assignee,
                        "why": why,
                        "candidates": [{"username": u.username, "display_name": u.display_name} for u in staff
                                       if self._eligible(u, r.role, r.department) and u.username != r.assignee]})
        return out
