"""Factories and assertions shared by the engine tests (no Flask).

Everything goes through the ``Bangban`` use cases, except the save/restore checks, which read the stored case
row and rebuild its workflow with ``CaseRun.load`` directly.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from engine import forms
from engine.clock import clock, service_today
from engine.demo import SAMPLE_APPLICATION
from engine.events import event_hash
from engine.processes import ProcessSet
from engine.runtime import CaseRun
from engine.services import Bangban
from tests.conftest import actor

# 2026-03-02 09:00 in Asia/Shanghai: every test runs on this frozen clock (no wall-clock dependence).
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
DAY = "20260302"
YEAR = 2026
PROCESS = "bangban_case"

ITEM_NAMES = {"hp": "环评", "xf": "消防（设计审查/验收）", "gd": "供电"}
ITEM_DEPTS = {"hp": "sthj", "xf": "zjj", "gd": "gdgs"}
DEPT_NAMES = {"sthj": "焦作市生态环境局武陟分局", "zjj": "县住房和城乡建设局", "gdgs": "国网武陟县供电公司"}

APPLICATION = SAMPLE_APPLICATION


# ---- clock -------------------------------------------------------------------------------------------------
def freeze_clock(at: datetime = START) -> None:
    clock.set(at)


def tick(minutes: int = 1) -> None:
    """Move the frozen clock on, so that inbox rows and events get distinct, ordered times."""
    clock.advance(timedelta(minutes=minutes))


# ---- form data ---------------------------------------------------------------------------------------------
def application(**overrides) -> dict:
    data = json.loads(json.dumps(APPLICATION))
    data.update(overrides)
    return data


def accept(**overrides) -> dict:
    return dict({"review_decision": "受理", "authorization_checked": True}, **overrides)


def commission(**overrides) -> dict:
    return dict({"commission_signed": True, "materials_received": "营业执照、项目备案证明等",
                 "service_mode_confirmed": "现场服务"}, **overrides)


def agreement(**overrides) -> dict:
    return dict({"agreement_signed": True, "materials_received": "营业执照、项目备案证明等",
                 "service_mode_confirmed": "上门服务"}, **overrides)


def approve(licence_no: str, **overrides) -> dict:
    return dict({"item_decision": "准予许可", "licence_no": licence_no}, **overrides)


def refuse(reason: str, **overrides) -> dict:
    return dict({"item_decision": "不予许可", "refusal_reason": reason}, **overrides)


def correction_due(days: int = 10) -> str:
    """A 补正 deadline ``days`` calendar days after today by the (frozen or moved) service clock."""
    return service_today(days).isoformat()


def needs_correction(request: str, **overrides) -> dict:
    return dict({"item_decision": "需要补正", "correction_request": request, "correction_due": correction_due()},
                **overrides)


def supplement(**overrides) -> dict:
    return dict({"supplement_description": "已按要求补交全部材料", "supplement_complete": True}, **overrides)


def deliver(**overrides) -> dict:
    return dict({"delivery_method": "邮寄", "tracking_no": "SF123456789", "delivery_date": "2026-03-02",
                 "work_record": "全程代办完成，批文已邮寄送达", "filed": True}, **overrides)


def receipt(**overrides) -> dict:
    """签收办结单: the signer is the logged-in handler (recorded by the service), never typed."""
    return dict({"results_received": True}, **overrides)


def rating(value: str = "满意", **overrides) -> dict:
    """A 评价表: the rater is the logged-in user (recorded by the service), never typed."""
    return dict({"rating": value}, **overrides)


def slip(reason: str, **overrides) -> dict:
    return dict({"termination_reason": reason, "termination_date": "2026-03-10",
                 "materials_returned": "申请材料原件全部退还", "both_signed": True}, **overrides)


# ---- driving cases -----------------------------------------------------------------------------------------
def start(svc: Bangban, username: str = "huarui", **overrides) -> str:
    started = svc.start_case(actor(svc, username), PROCESS, application(**overrides))
    tick()
    return started.case_no


def inbox(svc: Bangban, username: str, case_no: str | None = None) -> list[dict]:
    return [t for t in svc.inbox(actor(svc, username)) if case_no is None or t["case_no"] == case_no]


def inbox_names(svc: Bangban, username: str, case_no: str | None = None) -> list[tuple[str, str | None]]:
    return sorted((t["name"], t["title"]) for t in inbox(svc, username, case_no))


def find_task(svc: Bangban, username: str, task_name: str, title: str | None = None,
              case_no: str | None = None) -> dict:
    """The one inbox task of ``username`` with this name (and title, and case); fails listing the inbox."""
    rows = inbox(svc, username, case_no)
    found = [t for t in rows if t["name"] == task_name and (title is None or t["title"] == title)]
    assert len(found) == 1, f"{username} 的待办中应恰有一条「{task_name}」（{title}）：{[(t['name'], t['title']) for t in rows]}"
    return found[0]


def complete(svc: Bangban, username: str, task_name: str, title: str | None = None, *, case_no: str | None = None,
             **form) -> dict:
    """Find ``username``'s inbox task by name (and title) and complete it with ``form``."""
    task = find_task(svc, username, task_name, title, case_no)
    result = svc.complete_task(actor(svc, username), task["task_id"], form)
    tick()
    return result


def send(svc: Bangban, username: str, case_no: str, key: str, **form) -> dict:
    result = svc.send_message(actor(svc, username), case_no, key, form)
    tick()
    return result


def accept_and_commission(svc: Bangban, case_no: str, agent: str = "agent1") -> None:
    complete(svc, agent, "受理审核", case_no=case_no, **accept())
    complete(svc, agent, "材料交接并签订委托书", case_no=case_no, **commission())


def dispatch(svc: Bangban, case_no: str, items: list[str], lead: str = "agent1") -> None:
    complete(svc, lead, "分派服务事项", case_no=case_no, service_items=items)


def approve_items(svc: Bangban, case_no: str, codes: list[str]) -> None:
    for code in codes:
        complete(svc, f"zb_{ITEM_DEPTS[code]}", "部门办理", ITEM_NAMES[code], case_no=case_no,
                 **approve(f"{code.upper()}-{YEAR}-001"))


def collect_and_deliver(svc: Bangban, case_no: str, lead: str = "agent1") -> dict:
    complete(svc, lead, "汇总办理结果", case_no=case_no, results_collected=True)
    return complete(svc, lead, "统一送达", case_no=case_no, **deliver())


def rate_departments(svc: Bangban, case_no: str) -> None:
    for task in inbox(svc, "window1", case_no):
        if task["name"] == "评价部门业务专办窗口":
            complete(svc, "window1", "评价部门业务专办窗口", task["title"], case_no=case_no, **rating())


# ---- reading -----------------------------------------------------------------------------------------------
def case_row(svc: Bangban, case_no: str):
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.case_by_no(case_no)


def events(svc: Bangban, case_no: str) -> list:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.events_for_case(uow.repo.case_by_no(case_no).id)


def event_types(svc: Bangban, case_no: str) -> list[str]:
    return [e.type for e in events(svc, case_no)]


def documents(svc: Bangban, case_no: str) -> list[tuple[str, str, str | None]]:
    with svc.db.unit_of_work(write=False) as uow:
        rows = uow.repo.documents_for_case(uow.repo.case_by_no(case_no).id)
    return [(d.kind, d.number, d.title) for d in rows]


def case_inbox(svc: Bangban, case_no: str) -> list:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.inbox_for_case(uow.repo.case_by_no(case_no).id)


def open_tasks(svc: Bangban, case_no: str) -> list[tuple[str, str | None]]:
    return sorted((r.name, r.title) for r in case_inbox(svc, case_no))


def view(svc: Bangban, case_no: str, username: str = "supervisor1") -> dict:
    return svc.get_case(actor(svc, username), case_no)


def items(svc: Bangban, case_no: str) -> dict[str, dict]:
    return {i["code"]: i for i in view(svc, case_no)["items"]}


def item_states(svc: Bangban, case_no: str) -> dict[str, str]:
    return {code: i["state"] for code, i in items(svc, case_no).items()}


def snapshot(svc: Bangban, case_no: str) -> dict:
    """Everything a rejected request must leave untouched."""
    row = case_row(svc, case_no)
    return {"row_version": row.row_version, "state": row.state, "case_vars": row.case_vars, "status": row.status,
            "stage": row.stage, "event_seq": row.event_seq, "last_hash": row.last_hash,
            "events": [(e.seq, e.type, e.hash) for e in events(svc, case_no)], "documents": documents(svc, case_no),
            "inbox": sorted((r.task_id, r.name, r.assignee or "", r.department or "") for r in case_inbox(svc, case_no))}


# ---- assertions --------------------------------------------------------------------------------------------
def doc_number(fmt_prefix: str, seq: int) -> str:
    return f"{fmt_prefix}〔{YEAR}〕{seq:04d}号"


def assert_event_chain(svc: Bangban, case_no: str) -> None:
    """Events are numbered 1..n without gaps and each hash covers its content and the previous hash."""
    row = case_row(svc, case_no)
    rows = events(svc, case_no)
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    prev = ""
    for e in rows:
        assert e.prev_hash == prev
        assert e.hash == event_hash(prev, case_no, e.seq, e.type, e.at, e.actor_name, e.role, e.task_id,
                                    e.element_id, e.payload, e.actor_id, e.task_name)
        prev = e.hash
    assert (row.event_seq, row.last_hash) == (len(rows), prev)


def assert_same_state(dumped: str, stored: str) -> None:
    """Two dumped workflow states are the same JSON (key order aside); subprocesses compared first, readably."""
    dumped_state, stored_state = json.loads(dumped), json.loads(stored)
    lost = {k: v["spec"] for k, v in stored_state["subprocesses"].items() if k not in dumped_state["subprocesses"]}
    added = {k: v["spec"] for k, v in dumped_state["subprocesses"].items() if k not in stored_state["subprocesses"]}
    assert (lost, added) == ({}, {}), f"load/dump changed the subprocesses: lost {lost}, added {added}"
    assert _sorted_deletions(dumped_state) == _sorted_deletions(stored_state)


def _sorted_deletions(state):
    """SpiffWorkflow keeps a task's deleted data names as a set; its dump lists them in set order, which a load/dump
    may change. Names, not their order, are the state."""
    if isinstance(state, dict):
        return {k: sorted(v) if k == "deletions" and isinstance(v, list) else _sorted_deletions(v)
                for k, v in state.items()}
    if isinstance(state, list):
        return [_sorted_deletions(v) for v in state]
    return state


def rebuild(svc: Bangban, case_no: str) -> CaseRun:
    """The stored case's workflow, loaded from its row as the service does."""
    row = case_row(svc, case_no)
    return CaseRun.load(svc.version(row.version_id), row.process_id, row.state, row.case_vars)


def assert_verified(svc: Bangban, case_no: str) -> dict:
    """``audit verify`` of the case passes: its chain is intact and replaying its events gives the stored state."""
    result = svc.audit_case(case_no)
    assert result["ok"], result["text"]
    return result


def assert_round_trip(svc: Bangban, case_no: str) -> CaseRun:
    """Rebuild the stored case: same ready tasks as the inbox, and dumping it again gives the stored state; the
    case also passes ``audit verify`` (its replay equals the stored state)."""
    assert_verified(svc, case_no)
    row = case_row(svc, case_no)
    run = rebuild(svc, case_no)
    ready = sorted((t.id, t.name, t.title, t.assignee, t.department) for t in run.ready_tasks())
    projected = sorted((r.task_id, r.name, r.title, r.assignee, r.department) for r in case_inbox(svc, case_no))
    assert ready == projected
    assert run.status() == row.status
    assert_same_state(run.dump(), row.state)
    assert run.case_vars == row.case_vars
    return run


# ---- pure runtime --------------------------------------------------------------------------------------------
def options_provider(ps: ProcessSet, users: dict[str, list[str]] | None = None):
    users = users or {}

    def provide(source: str) -> list[dict]:
        if source == "catalogue_items":
            return ps.catalogue.options()
        role = source.split(":", 1)[1]
        return [{"value": u, "label": u} for u in users.get(role, [])]
    return provide


def form_data(ps: ProcessSet, form_name: str, values: dict, users: dict[str, list[str]] | None = None) -> dict:
    """Validate ``values`` against a process form as the service would (all declared fields present)."""
    return forms.validate(forms.resolve(ps.form(form_name), options_provider(ps, users)), values)


def drop_append_only_guards(engine) -> None:
    """What an insider with the database file or a superuser does before tampering: the append-only triggers go
    (SQLite: dropped; PostgreSQL: disabled on every table that has them)."""
    from sqlalchemy import text
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            for (name,) in c.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).all():
                c.execute(text(f'DROP TRIGGER "{name}"'))
        else:
            for table in ("events", "documents", "process_versions", "calendar_changes"):
                c.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))


def delete_whole_case_statements(dialect: str) -> list[str]:
    """What an insider deleting a whole case must delete, child rows first (``:cid`` the case id): every table that
    refers to the case, its search-index row (an FTS5 table keyed by rowid on SQLite), then the case row."""
    children = ("inbox", "clocks", "timers", "case_parties", "documents", "deliveries", "notifications", "events")
    search = "DELETE FROM case_search WHERE rowid = :cid" if dialect == "sqlite" else \
        "DELETE FROM case_search WHERE case_id = :cid"
    return [f"DELETE FROM {t} WHERE case_id = :cid" for t in children] + [search, "DELETE FROM cases WHERE id = :cid"]
