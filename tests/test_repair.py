"""Repair of cases that the faulty release (multi-instance results not merged in a process that had not created the
children) left in a state their own history does not explain: ``bangban audit repair``.

The faulty release is reproduced exactly: a process whose specs come straight from SpiffWorkflow's parser, without the
serializer's restore (``engine.spiff_runtime.restored_specs`` as it was before the fix), takes the departments'
decisions of a case that another process dispatched.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from engine import caches
from engine import spiff_runtime as rt
from engine.cli import cli
from engine.services import Bangban
from tests import helpers as h
from tests.conftest import actor

HP, XF, GD = h.ITEM_NAMES["hp"], h.ITEM_NAMES["xf"], h.ITEM_NAMES["gd"]


@pytest.fixture(autouse=True)
def frozen_clock():
    h.freeze_clock()


@pytest.fixture
def faulty(db, process_files, monkeypatch):
    """A freshly started process of the faulty release: specs as the parser leaves them."""
    def open_faulty() -> Bangban:
        caches.clear_all()
        with monkeypatch.context() as m:
            m.setattr(rt, "restored_specs", lambda spec, subs: (spec, subs))
            service = Bangban.open_latest(db, process_files)
            service.version(service.current_version_id)
        caches.clear_all()   # later processes are fixed ones
        return service
    return open_faulty


def dispatched(svc, items=("hp", "xf", "gd")) -> str:
    no = h.start(svc, service_items=list(items))
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, list(items))
    return no


def stuck_case(svc, faulty) -> str:
    """Dispatched by one process, every department decided by a freshly started faulty one: no 汇总办理结果."""
    no = dispatched(svc)
    h.approve_items(faulty(), no, ["hp", "xf", "gd"])
    return no


def test_the_faulty_release_is_reproduced(svc, faulty):
    no = stuck_case(svc, faulty)
    row = h.case_row(svc, no)
    assert row.status == "active" and h.open_tasks(svc, no) == []          # stuck: active, nothing to do
    result = svc.audit_case(no)
    assert not result["ok"] and "此步之后的待办与记录不同" in result["text"]


def test_a_stuck_case_is_repaired_from_its_replay_and_then_runs_on(svc, faulty):
    no = stuck_case(svc, faulty)
    before = h.snapshot(svc, no)

    dry = svc.repair_case(no, dry_run=True, by="tester", reason="测试")
    assert dry["result"] == "would_repair" and "可以修复" in dry["text"]
    assert h.snapshot(svc, no) == before                                    # a dry run changes nothing

    repaired = svc.repair_case(no, by="tester", reason="多实例结果未合并")
    assert repaired["result"] == "repaired", repaired["text"]
    assert [c["field"] for c in repaired["corrected"]] == ["ready_after"]
    # The missing task is back in the lead's inbox, the departments' results are in the case.
    assert h.inbox_names(svc, "agent1", no) == [("汇总办理结果", None)]
    assert h.item_states(svc, no) == {"hp": "准予许可", "xf": "准予许可", "gd": "准予许可"}
    event = h.events(svc, no)[-1]
    assert event.type == "state_repaired" and event.actor_name is None
    assert event.payload["by"] == "tester" and event.payload["reason"] == "多实例结果未合并"
    assert len(event.payload["old_state_hash"]) == 64 and event.payload["old_state_hash"] != event.payload["new_state_hash"]
    assert event.payload["ready_after"] == [["Task_Collect", ""]]
    h.assert_event_chain(svc, no)
    h.assert_verified(svc, no)
    for user in ("owner1", "supervisor1"):
        notes = svc.notifications(actor(svc, user))
        assert any(no in n["text"] and "修复" in n["text"] for n in notes)
    assert "按事件记录修复办件状态" in [e["label"] for e in h.view(svc, no)["timeline"]]

    # Repairing again finds nothing to do; the case then runs to its end and stays verifiable.
    assert svc.repair_case(no)["result"] == "intact"
    h.collect_and_deliver(svc, no)
    h.complete(svc, "huarui", "签收办结单", case_no=no, **h.receipt())
    h.complete(svc, "huarui", "评价代办服务", case_no=no, **h.rating())
    h.rate_departments(svc, no)
    assert h.case_row(svc, no).status == "completed"
    h.assert_round_trip(svc, no)


def test_a_completed_case_that_lost_results_gets_them_back_and_its_missing_rating_task(svc, faulty):
    """Two departments decided in a faulty process, the last one in the dispatching process: the case went on with
    one result, delivered, and the window rated the single department it was shown."""
    no = dispatched(svc)
    h.approve_items(faulty(), no, ["hp", "xf"])
    h.approve_items(svc, no, ["gd"])
    h.collect_and_deliver(svc, no)
    h.complete(svc, "huarui", "签收办结单", case_no=no, **h.receipt())
    h.complete(svc, "huarui", "评价代办服务", case_no=no, **h.rating())
    h.rate_departments(svc, no)
    assert h.case_row(svc, no).status == "completed"
    assert not svc.audit_case(no)["ok"]

    result = svc.repair_case(no, by="tester", reason="多实例结果未合并")
    assert result["result"] == "repaired", result["text"]
    row = h.case_row(svc, no)
    # 已办结 since the 办结单 was signed; the two departments never rated get their evaluations as open tasks, which
    # never hold the case's status (issue 15: 办结 at delivery).
    assert row.status == "completed"
    assert h.inbox_names(svc, "window1", no) == sorted(("评价部门业务专办窗口", h.DEPT_NAMES[d]) for d in ("sthj", "zjj"))
    assert h.item_states(svc, no) == {"hp": "准予许可", "xf": "准予许可", "gd": "准予许可"}
    h.assert_verified(svc, no)
    h.rate_departments(svc, no)
    assert h.case_row(svc, no).status == "completed"
    h.assert_round_trip(svc, no)


def test_an_intact_case_needs_no_repair_and_a_broken_chain_is_refused(svc, faulty):
    intact = dispatched(svc, ["hp"])
    assert svc.repair_case(intact) == {"case_no": intact, "result": "intact", "text": "完整，无需修复"}
    assert svc.repair_case("410823000000000000")["result"] == "missing"
    assert svc.repair_case("\x00")["result"] == "missing"

    stuck = stuck_case(svc, faulty)
    with svc.db.unit_of_work() as uow:   # an insider edits an event (the triggers dropped first, as an attacker would)
        if svc.db.is_sqlite:
            uow.conn.execute(text("DROP TRIGGER IF EXISTS events_no_update"))
        else:
            uow.conn.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        uow.conn.execute(text("UPDATE events SET actor_name = 'agent2' WHERE seq = 2 AND case_id = "
                              "(SELECT id FROM cases WHERE case_no = :no)"), {"no": stuck})
        uow.commit()
    before = h.snapshot(svc, stuck)
    refused = svc.repair_case(stuck, by="tester")
    assert refused["result"] == "refused" and "事件链不完整" in refused["text"] and "第 2 条事件" in refused["text"]
    assert h.snapshot(svc, stuck) == before


def test_repair_command(svc, faulty, db_url, monkeypatch):
    stuck = stuck_case(svc, faulty)
    intact = dispatched(svc, ["hp"])
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()
    caches.clear_all()
    verify = runner.invoke(cli, ["audit", "verify", "--all"])
    assert verify.exit_code == 1 and f"不通过 {stuck}" in verify.output

    dry = runner.invoke(cli, ["audit", "repair", "--all", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"{stuck}：可以修复" in dry.output and "可修复 1 件（未做更改）" in dry.output and "完整 1 件" in dry.output
    assert runner.invoke(cli, ["audit", "verify", "--all"]).exit_code == 1

    done = runner.invoke(cli, ["audit", "repair", "--all", "--reason", "上线修复"])
    assert done.exit_code == 0, done.output
    assert f"{stuck}：已修复" in done.output and "已修复 1 件" in done.output
    assert h.events(svc, stuck)[-1].payload["reason"] == "上线修复"
    caches.clear_all()
    again = runner.invoke(cli, ["audit", "verify", "--all"])
    assert again.exit_code == 0, again.output
    one = runner.invoke(cli, ["audit", "repair", intact, "410823000000000000"])
    assert one.exit_code == 1 and "完整，无需修复" in one.output and "办件不存在" in one.output
