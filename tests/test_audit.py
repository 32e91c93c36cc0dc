"""Auditors: every case's history is a hash chain the database will not let anyone rewrite, and replaying it from its
pinned process version and its events alone gives the case as stored."""
from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from engine.audit import verify_dossier
from engine.clock import LOCAL_TZ, clock
from engine.errors import Forbidden
from engine.worker import run_once
from tests import helpers as h
from tests.conftest import actor
from tests.test_migration import renamed

TERMINATE = {"reason": "国家法律法规规章和政策发生调整", "remark": "产业政策调整，项目暂缓"}


def audited(svc, no: str) -> dict:
    result = svc.audit_case(no)
    assert result["ok"], result["text"]
    return result


def full_case(svc, items=("hp", "xf")) -> str:
    no = h.start(svc, service_items=list(items))
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, list(items))
    first = items[0]
    h.complete(svc, f"zb_{h.ITEM_DEPTS[first]}", "部门办理", h.ITEM_NAMES[first], case_no=no, **h.needs_correction("补充材料"))
    h.complete(svc, "huarui", "补正材料", h.ITEM_NAMES[first], case_no=no, **h.supplement())
    h.approve_items(svc, no, list(items))
    h.collect_and_deliver(svc, no)
    h.complete(svc, "huarui", "签收办结单", case_no=no, **h.receipt())
    h.complete(svc, "huarui", "评价代办服务", case_no=no, **h.rating())
    h.rate_departments(svc, no)
    return no


def test_replay_equals_the_live_case_on_the_main_paths(svc):
    done = full_case(svc)
    assert h.case_row(svc, done).status == "completed"
    audited(svc, done)
    refused = h.start(svc)
    h.complete(svc, "agent1", "受理审核", case_no=refused, review_decision="不予受理", refusal_explanation="不属于服务事项")
    audited(svc, refused)
    requested = h.start(svc)
    h.accept_and_commission(svc, requested)
    h.dispatch(svc, requested, ["hp", "gd"])
    h.send(svc, "huarui", requested, "termination_request", reason="申请单位申请终止帮办代办服务")
    h.complete(svc, "agent1", "审核终止申请", case_no=requested, termination_decision="同意终止", termination_opinion="同意")
    h.complete(svc, "agent1", "办理终止手续", case_no=requested, **h.slip("申请单位申请终止帮办代办服务"))
    assert h.case_row(svc, requested).status == "terminated"
    audited(svc, requested)


def test_replay_of_clocks_timers_and_an_extension(svc):
    clock.set(datetime(2026, 3, 2, 9, tzinfo=LOCAL_TZ))
    no = h.start(svc, service_items=["xf"])
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["xf"])
    task = h.find_task(svc, "zb_zjj", "部门办理", h.ITEM_NAMES["xf"], case_no=no)
    svc.send_message(actor(svc, "zb_zjj"), None, "extension_request", {"extension_days": 3, "extension_reason": "专家现场核查"},
                     task_id=task["task_id"])
    h.complete(svc, "supervisor1", "审批延期申请", case_no=no, extension_decision="批准延期", extension_days_approved=3,
               extension_opinion="同意")
    clock.set(datetime(2026, 3, 30, 9, tzinfo=LOCAL_TZ))
    run_once(svc)
    assert "timer_fired" in h.event_types(svc, no)
    audited(svc, no)


def test_replay_of_a_migrated_case(svc, process_files):
    no = h.start(svc)
    target = svc.publish(None, renamed(process_files), "改名", replace_all=True)["id"]
    assert svc.migrate_cases(target)[0]["ok"]
    h.complete(svc, "agent1", "受理初审", case_no=no, review_decision="受理", authorization_checked=True)
    audited(svc, no)


def _untrigger(svc) -> None:
    """What someone with direct database access would do first: switch off the append-only triggers."""
    with svc.db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER events_no_update"))
            conn.execute(text("DROP TRIGGER events_no_delete"))


def test_the_database_refuses_to_change_or_delete_events(svc):
    no = h.start(svc)
    case_id = h.case_row(svc, no).id
    for statement in ("UPDATE events SET type = 'x' WHERE case_id = :c", "DELETE FROM events WHERE case_id = :c"):
        with pytest.raises(DBAPIError, match="append-only"):
            with svc.db.engine.begin() as conn:
                conn.execute(text(statement), {"c": case_id})
    audited(svc, no)


@pytest.mark.parametrize("tamper, seq, words", [
    ("UPDATE events SET payload = :p WHERE case_id = :c AND seq = 3", 3, "被修改"),
    ("UPDATE events SET actor_name = 'agent2' WHERE case_id = :c AND seq = 2", 2, "被修改"),
    ("DELETE FROM events WHERE case_id = :c AND seq = 4", 4, "不连续"),
    ("SWAP", 3, "前一哈希"),
])
def test_tampering_is_detected_and_pinpointed(svc, tamper, seq, words):
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp"])
    case_id = h.case_row(svc, no).id
    _untrigger(svc)
    with svc.db.engine.begin() as conn:
        if tamper == "SWAP":
            rows = {r.seq: r for r in conn.execute(text("SELECT seq, id FROM events WHERE case_id = :c"), {"c": case_id})}
            conn.execute(text("UPDATE events SET seq = -1 WHERE id = :i"), {"i": rows[3].id})
            conn.execute(text("UPDATE events SET seq = 3 WHERE id = :i"), {"i": rows[4].id})
            conn.execute(text("UPDATE events SET seq = 4 WHERE id = :i"), {"i": rows[3].id})
        else:
            conn.execute(text(tamper), {"c": case_id, "p": json.dumps({"form": {"review_decision": "不予受理"}})})
    result = svc.audit_case(no)
    assert not result["ok"]
    assert result["divergence"]["seq"] == seq and words in result["text"], result["text"]


def test_a_dossier_checks_on_its_own_and_tampering_in_it_is_found(svc):
    no = full_case(svc, ("gd",))
    dossier = json.loads(json.dumps(svc.export_dossier(actor(svc, "auditor1"), no)))
    assert verify_dossier(dossier)["ok"]
    dossier["events"][5]["payload"]["form"] = {"forged": True}
    bad = verify_dossier(dossier)
    assert not bad["ok"] and bad["divergence"]["seq"] == 6
    assert not verify_dossier({"format": "x"})["ok"]


def test_the_auditor_reads_everything_and_changes_nothing(svc, process_files):
    no = h.start(svc)
    auditor = actor(svc, "auditor1")
    assert svc.get_case(auditor, no)["case"]["case_no"] == no
    assert svc.audit_steps(auditor, no)["steps"]
    task = h.find_task(svc, "agent1", "受理审核", case_no=no)
    before = h.snapshot(svc, no)
    attempts = [
        lambda: svc.start_case(auditor, "bangban_case", h.application()),
        lambda: svc.complete_task(auditor, task["task_id"], h.accept()),
        lambda: svc.send_message(auditor, no, "termination", TERMINATE),
        lambda: svc.publish(auditor, renamed(process_files), "x", replace_all=True),
        lambda: svc.set_calendar_day(auditor, datetime(2027, 1, 1).date(), "rest"),
        lambda: svc.migrate_cases(1, actor=auditor),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden):
            attempt()
    assert h.snapshot(svc, no) == before


WALK = st.fixed_dictionaries({
    "key": st.booleans(),
    "items": st.lists(st.sampled_from(["hp", "xf", "gd"]), min_size=1, max_size=3, unique=True),
    "corrections": st.integers(min_value=0, max_value=2),
    "refuse_first": st.booleans(),
    "stop": st.sampled_from([None, "acceptance", "joint", "delivery"]),
    "by_request": st.booleans(),
})


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(walk=WALK)
def test_random_walks_replay_to_the_live_state(svc, walk):
    """Random paths through the flow, each step in one warm service or (cold) in a service opened afresh."""
    lead = "chief1" if walk["key"] else "agent1"
    no = h.start(svc, key_project="重点项目" if walk["key"] else "否", service_items=walk["items"])
    h.complete(svc, "agent1", "受理审核", case_no=no, **h.accept())
    if walk["key"]:
        h.complete(svc, "window1", "指派项目首席服务员", case_no=no, chief_officer="chief1",
                   designated_by="县发展和改革委员会（重点项目）")
        h.complete(svc, "chief1", "签订代办委托协议", case_no=no, agreement_signed=True, materials_received="全部材料",
                   service_mode_confirmed="上门服务")
    else:
        h.complete(svc, "agent1", "材料交接并签订委托书", case_no=no, **h.commission())

    def stop_here(point: str) -> bool:
        if walk["stop"] != point:
            return False
        if walk["by_request"]:
            h.send(svc, "huarui", no, "termination_request", reason="申请单位申请终止帮办代办服务")
            h.complete(svc, lead, "审核终止申请", case_no=no, termination_decision="同意终止", termination_opinion="同意")
        else:
            h.send(svc, lead, no, "termination", **TERMINATE)
        h.complete(svc, lead, "办理终止手续", case_no=no, **h.slip("申请单位申请终止帮办代办服务"))
        return True

    if not stop_here("acceptance"):
        h.dispatch(svc, no, walk["items"], lead=lead)
        first = walk["items"][0]
        for _ in range(walk["corrections"]):
            h.complete(svc, f"zb_{h.ITEM_DEPTS[first]}", "部门办理", h.ITEM_NAMES[first], case_no=no,
                       **h.needs_correction("补充材料"))
            h.complete(svc, "huarui", "补正材料", h.ITEM_NAMES[first], case_no=no, **h.supplement())
        if not stop_here("joint"):
            for i, code in enumerate(walk["items"]):
                form = h.refuse("不符合条件") if walk["refuse_first"] and i == 0 else h.approve(f"{code}-1")
                h.complete(svc, f"zb_{h.ITEM_DEPTS[code]}", "部门办理", h.ITEM_NAMES[code], case_no=no, **form)
            h.complete(svc, lead, "汇总办理结果", case_no=no, results_collected=True)
            if not stop_here("delivery"):
                h.complete(svc, lead, "统一送达", case_no=no, **h.deliver())
                h.complete(svc, "huarui", "签收办结单", case_no=no, **h.receipt())
    audited(svc, no)
