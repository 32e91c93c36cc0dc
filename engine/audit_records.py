"""Audit beyond the chain and the replay: who acted and when, the case row, documents, numbering.

:mod:`engine.audit` proves the events are intact and explain the stored workflow state. An insider with database
access can still edit what lies outside them; each check here compares such a record with what the events imply:

- :class:`AuthorityCheck`: each completed task was done by someone the task allowed (the role of its lane, the
  department, the assignee, the applicant's own unit) — as recorded at the time: the event's role and the actor's
  department recorded with it; the actor's id and name belong to one account; no event is earlier than the one
  before it, none before the case started.
- :func:`case_row_problem`: the case row's status, stage, lead, title, unit, event count, first and last event,
  due date and warning level equal what the replay gives.
- :func:`document_problems`: each issued document's content hashes to what its ``document_issued`` event recorded,
  and each such event still has its document.
- :func:`numbering_gaps`: the numbers issued for cases and each document kind run without gaps.

Nothing here touches the database: callers pass rows.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from .access import Actor, may_act
from .audit import Divergence
from .deadlines import case_summary
from .events import canonical, document_digest


def _get(e, name, default=None):
    if isinstance(e, dict):
        return e.get(name, default)
    return getattr(e, name, default)


def _aware(at) -> datetime:
    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


# ---- who acted, and when -----------------------------------------------------------------------------------------
def time_problem(events: list) -> Divergence | None:
    """Events in time order: none earlier than the one before it (so none before the case started)."""
    previous = None
    for e in events:
        at = _aware(_get(e, "at"))
        if previous is not None and at < previous:
            first = "办件开始" if _get(e, "seq") == 2 else "上一条事件"
            return Divergence(_get(e, "seq"), _get(e, "type"), f"事件时间早于{first}（时间被改动）",
                              task=_get(e, "task_name"), field="at", expected=_local(at), actual=_local(previous),
                              sides=("此事件记录于", f"{first}记录于"))
        previous = at
    return None


class AuthorityCheck:
    """Called by the replay for each completed task, with the task as the replay has it ready at that point."""

    def __init__(self, users: dict[int, Any], unit_id: int | None, role_names: dict[str, str] | None = None,
                 department_names: dict[str, str] | None = None):
        self.users, self.unit_id = users, unit_id
        self.role_names = role_names or {}              # role code -> its Chinese name (the manifest's roles)
        self.department_names = department_names or {}  # department code -> its name (the catalogue)

    def __call__(self, e, task) -> Divergence | None:
        seq, name = _get(e, "seq"), _get(e, "task_name") or task.name
        actor_id, actor_name, role = _get(e, "actor_id"), _get(e, "actor_name"), _get(e, "role")
        user = self.users.get(actor_id) if actor_id is not None else None
        if user is None or user.username != actor_name:
            return Divergence(seq, "task_completed", "办理人的账号与记录不符（办理人被改动）", task=name, field="actor",
                              expected=actor_name, actual=user.username if user is not None else None,
                              sides=("记录的办理人为", "记录的账号编号属于"))
        if role != task.role:
            return Divergence(seq, "task_completed", "办理时的角色不是该待办所在泳道的角色", task=name, field="role",
                              expected=self.role_names.get(role, role), actual=self.role_names.get(task.role, task.role),
                              sides=("记录的角色为", "该待办应由"))
        payload = _get(e, "payload") or {}
        department = payload.get("actor_department", user.department)
        acting = Actor(user.id, user.username, user.display_name, (role,) if role else (), department, user.unit_id)
        if not may_act(acting, task.role, task.department, task.assignee, self.unit_id):
            why = []
            if task.department and department != task.department:
                named = self.department_names
                why.append(f"待办属于{named.get(task.department, task.department)}，办理人属于"
                           f"{named.get(department, department) if department else '（无部门）'}")
            if task.assignee and user.username != task.assignee:
                why.append(f"待办指定由 {task.assignee} 办理")
            if role == "applicant" and user.unit_id != self.unit_id:
                why.append("办理人不是申请单位的账号")
            return Divergence(seq, "task_completed", f"办理人 {actor_name} 无权办理这项待办"
                              + (f"：{'；'.join(why)}" if why else ""), task=name)
        return None

    def reassignment(self, e, task) -> Divergence | None:
        """A 改派: the actor's id and name belong to one account, and so do the new person's; the new person was of the
        task's department (as recorded at the time). Who may reassign is the manifest's permission of the day, checked
        when it happened; the new person's later completion is checked like any other."""
        seq, name = _get(e, "seq"), _get(e, "task_name") or task.name
        payload = _get(e, "payload") or {}
        actor_id, actor_name = _get(e, "actor_id"), _get(e, "actor_name")
        user = self.users.get(actor_id) if actor_id is not None else None
        if user is None or user.username != actor_name:
            return Divergence(seq, "task_reassigned", "改派人的账号与记录不符（改派人被改动）", task=name, field="actor",
                              expected=actor_name, actual=user.username if user is not None else None,
                              sides=("记录的改派人为", "记录的账号编号属于"))
        target = self.users.get(payload.get("to_id")) if isinstance(payload.get("to_id"), int) else None
        if target is None or target.username != payload.get("to"):
            return Divergence(seq, "task_reassigned", "新办理人的账号与记录不符（改派记录被改动）", task=name, field="to",
                              expected=payload.get("to"), actual=target.username if target is not None else None,
                              sides=("记录的新办理人为", "记录的账号编号属于"))
        department = payload.get("to_department", target.department)
        if task.department and department != task.department:
            named = self.department_names.get(task.department, task.department)
            return Divergence(seq, "task_reassigned", f"新办理人 {payload.get('to')} 不属于待办的部门{named}", task=name)
        return None


NOTE_TYPES = frozenset({"timer_fired", "clock_started", "clock_paused", "clock_resumed", "clock_stopped",
                        "clock_extended"})


def _own_note(payload: dict) -> str:
    """A clock or timer note as compared: without the step's ready tasks, which the last event of a step carries."""
    return canonical({k: v for k, v in (payload or {}).items() if k != "ready_after"})


def missing_notes(events: list, produced: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The clock and timer notes a replay produced that the log does not record (each as often as it is missing), in
    the replay's order."""
    recorded = Counter((_get(e, "type"), _own_note(_get(e, "payload"))) for e in events if _get(e, "type") in NOTE_TYPES)
    out = []
    for type_, payload in produced:
        if type_ not in NOTE_TYPES:
            continue
        key = (type_, _own_note(payload))
        if recorded[key] > 0:
            recorded[key] -= 1
        else:
            out.append((type_, payload))
    return out


def note_problem(events: list, produced: list[tuple[str, dict]]) -> Divergence | None:
    """The clock and timer events the log records are exactly those the replay produced (a forged 暂停计时 or a
    removed 延期 is caught even when the chain was resealed)."""
    own = _own_note
    recorded = Counter((_get(e, "type"), own(_get(e, "payload"))) for e in events if _get(e, "type") in NOTE_TYPES)
    replayed = Counter((t, own(p)) for t, p in produced if t in NOTE_TYPES)
    if recorded == replayed:
        return None
    extra = recorded - replayed
    if extra:
        type_, payload = next(iter(extra))
        e = next(e for e in events if _get(e, "type") == type_ and own(_get(e, "payload")) == payload)
        return Divergence(_get(e, "seq"), type_, "这条时限事件不是办理步骤产生的（事件被伪造或改动）", field="payload",
                          expected=clock_note(type_, json.loads(payload)))
    type_, payload = next(iter(replayed - recorded))
    return Divergence(None, type_, "重放产生的时限事件在记录中找不到（事件被删除或改动）", field="payload",
                      actual=clock_note(type_, json.loads(payload)))


def clock_note(type_: str, payload: dict) -> str:
    """A clock or timer event as a reader names it: 「时限暂停（补正）：环评，原因：需要补正」 (no keys, no JSON)."""
    from .views import EVENT_LABELS
    what = payload.get("title") or payload.get("timer") or payload.get("clock") or ""
    parts = [f"{EVENT_LABELS.get(type_, '时限事件')}：{what}" if what else EVENT_LABELS.get(type_, "时限事件")]
    for key, label in (("reason", "原因"), ("days", "天数"), ("limit_days", "时限"), ("due_date", "期限")):
        if payload.get(key) not in (None, ""):
            parts.append(f"{label}：{payload[key]}")
    return "，".join(str(p) for p in parts)


# ---- the case row ------------------------------------------------------------------------------------------------
def replayed_row(run, events: list, stage: str | None, start_title: Callable[[dict], str], clock_rows: list) -> dict:
    """What the case row should say after the replay of ``events`` (``stage``: as tracked step by step). Its due date
    and warning level summarise the stored clock rows as they were saved with it (levels depend on the moment of the
    last save, which a calendar change may have moved without an event); the clock rows themselves are checked
    against the replay by :func:`engine.audit.compare` and :func:`engine.audit.due_date_check`."""
    first = events[0]
    payload = _get(first, "payload") or {}
    due_date, warning = case_summary(clock_rows)
    return {"status": run.status(), "stage": stage, "lead_user": run.lead(), "title": start_title(payload),
            "unit_id": payload.get("unit_id"), "unit_name": payload.get("unit_name"), "event_seq": len(events),
            "created_at": _aware(_get(first, "at")), "last_hash": _get(events[-1], "hash"),
            "due_date": due_date, "warning": warning}


FIELD_NAMES = {"status": "办件状态", "stage": "办理阶段", "lead_user": "牵头代办员", "title": "项目名称",
               "unit_id": "申请单位", "unit_name": "申请单位名称", "event_seq": "事件数", "created_at": "提交时间",
               "last_hash": "最后哈希", "due_date": "办结期限", "warning": "预警等级"}


def case_row_problem(case, expected: dict, status_names: dict[str, str] | None = None) -> Divergence | None:
    """The first field of the case row that differs from the replay."""
    for field, want in expected.items():
        have = _get(case, field)
        if field == "unit_name" and want is None:
            continue                      # cases started before 2026-11-30 did not record the unit's name
        if field == "created_at":
            have = _aware(have)
        if isinstance(want, date) and not isinstance(want, datetime) and isinstance(have, str):
            have = date.fromisoformat(have[:10])
        if have != want:
            return Divergence(None, None, f"办件记录的{FIELD_NAMES[field]}与事件重放不符（办件记录被改动）", field=field,
                              field_label="", expected=_said(field, have, status_names or {}),
                              actual=_said(field, want, status_names or {}),
                              sides=("办件记录为", "事件重放得到"))
    return None


def _show(value):
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _said(field: str, value, status_names: dict[str, str]):
    """A case row's value as the auditor reads it: statuses (the manifest's outcomes) and warning levels by their
    Chinese names, times local."""
    from .deadlines import LEVEL_NAMES
    if field == "status":
        return status_names.get(value, value)
    if field == "warning":
        return LEVEL_NAMES.get(value, value)
    if isinstance(value, datetime):
        return _local(value)
    return _show(value)


def _local(at: datetime) -> str:
    from .clock import LOCAL_TZ
    return _aware(at).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


# ---- documents ---------------------------------------------------------------------------------------------------
def document_problems(documents: list, events: list) -> Divergence | None:
    """Each document's content against the hash its ``document_issued`` event recorded; each event's document."""
    issued = {}
    for e in events:
        if _get(e, "type") == "document_issued":
            issued[(_get(e, "payload") or {}).get("document_id")] = e
    rows = {_get(d, "id"): d for d in documents}
    for doc_id, e in issued.items():
        payload = _get(e, "payload")
        d = rows.get(doc_id)
        if d is None:
            return Divergence(_get(e, "seq"), "document_issued", f"单据 {payload.get('number')} 已不存在（单据被删除）",
                              field="document")
        if (_get(d, "kind"), _get(d, "number")) != (payload.get("kind"), payload.get("number")):
            return Divergence(_get(e, "seq"), "document_issued", "单据的种类或编号与签发记录不符（单据被改动）",
                              field="number", expected=f"{payload.get('kind')} {payload.get('number')}",
                              actual=f"{_get(d, 'kind')} {_get(d, 'number')}", sides=("签发记录为", "单据表中为"))
        want = payload.get("sha256")
        if want and document_digest(_get(d, "kind"), _get(d, "number"), _aware(_get(d, "issued_at")),
                                    _get(d, "issued_by"), _get(d, "task_id"), _get(d, "title"), _get(d, "data")) != want:
            return Divergence(_get(e, "seq"), "document_issued",
                              f"单据 {payload.get('number')} 的内容与签发时的哈希不符（单据被改动）", field="document")
    for doc_id, d in rows.items():
        if doc_id not in issued:
            return Divergence(None, None, f"单据 {_get(d, 'number')} 没有签发记录（单据被添加）", field="document")
    return None


# ---- numbering ---------------------------------------------------------------------------------------------------
def numbering_gaps(counters: list, numbers: dict[str, set[str]], formats: dict[str, dict]) -> list[str]:
    """Numbers that were issued (the counter of their kind and period went past them) but no longer exist; and
    numbers that exist beyond their counter. ``numbers``: ``{kind: {number, ...}}`` (``case`` for cases)."""
    out: list[str] = []
    expected_all: dict[str, set[str]] = {}
    for c in counters:
        rule = formats.get(_get(c, "kind"))
        if rule is None:
            continue
        period = str(_get(c, "period"))
        try:
            day = datetime.strptime(period, "%Y%m%d") if len(period) == 8 else datetime(int(period), 1, 1)
        except ValueError:
            continue
        expected = {rule["format"].format(date=day, year=day.year, seq=i) for i in range(1, int(_get(c, "value")) + 1)}
        expected_all.setdefault(_get(c, "kind"), set()).update(expected)
        missing = sorted(expected - numbers.get(_get(c, "kind"), set()))
        label = "办件编号" if _get(c, "kind") == "case" else f"{_get(c, 'kind')}编号"
        if missing:
            shown = "、".join(missing[:10]) + (f" 等 {len(missing)} 个" if len(missing) > 10 else "")
            out.append(f"{label}缺号（已发出但记录不存在，可能被删除）：{shown}")
    for kind, have in numbers.items():
        extra = sorted(have - expected_all.get(kind, set()))
        if extra and kind in formats:
            label = "办件编号" if kind == "case" else f"{kind}编号"
            shown = "、".join(extra[:10]) + (f" 等 {len(extra)} 个" if len(extra) > 10 else "")
            out.append(f"{label}不在编号计数之内（编号或计数被改动）：{shown}")
    return out
