"""A diagram whose code misbehaves at run time fails that one case, clearly, and nothing else."""
from __future__ import annotations

from datetime import datetime

import pytest

from engine.clock import LOCAL_TZ, clock
from engine.errors import ProcessDefinitionError
from engine.services import Bangban
from engine.worker import run_once
from tests import helpers as h
from tests.conftest import actor


def _with(files: dict, old: str, new: str) -> dict:
    bpmn = files["bangban_case.bpmn"].decode()
    assert old in bpmn
    return dict(files, **{"bangban_case.bpmn": bpmn.replace(old, new).encode()})


def test_an_endless_loop_in_a_script_fails_only_that_case(svc, db, process_files):
    good_case = h.start(svc)
    looping = Bangban.open(db, _with(process_files, "items = catalogue_items(service_items)",
                                     "items = catalogue_items(service_items)\nwhile True:\n    pass"))
    bad_case = h.start(looping)
    h.accept_and_commission(looping, bad_case)
    before = h.snapshot(looping, bad_case)
    with pytest.raises(ProcessDefinitionError, match="超时"):
        h.dispatch(looping, bad_case, ["hp"])
    assert h.snapshot(looping, bad_case) == before          # the case is left exactly as it was
    notes = looping.notifications(actor(looping, "owner1"))
    assert any(bad_case in n["text"] and "流程运行出错" in n["text"] for n in notes)
    # the service and the other case go on
    h.accept_and_commission(svc, good_case)
    h.dispatch(svc, good_case, ["hp"])
    assert [t["name"] for t in svc.inbox(actor(svc, "zb_sthj")) if t["case_no"] == good_case] == ["部门办理"]


def test_a_case_whose_tick_fails_is_reported_and_the_worker_goes_on(svc, monkeypatch):
    clock.set(datetime(2026, 3, 2, 9, tzinfo=LOCAL_TZ))
    bad_case, good_case = h.start(svc), h.start(svc)
    for no in (bad_case, good_case):
        h.accept_and_commission(svc, no)
        h.dispatch(svc, no, ["xf"])
    bad_id = h.case_row(svc, bad_case).id
    real_tick = Bangban._tick

    def failing_tick(self, uow, case, at):
        if case.id == bad_id:
            raise ProcessDefinitionError("流程运行出错：流程脚本运行超时（可能是死循环）")
        return real_tick(self, uow, case, at)

    monkeypatch.setattr(Bangban, "_tick", failing_tick)
    before = h.snapshot(svc, bad_case)
    clock.set(datetime(2026, 3, 19, 9, tzinfo=LOCAL_TZ))
    assert run_once(svc) == 1                                   # the good case; the bad one is skipped this round
    assert [e.payload.get("timer") for e in h.events(svc, good_case) if e.type == "timer_fired"] == ["黄牌预警"]
    assert h.snapshot(svc, bad_case) == before
    assert any(bad_case in n["text"] for n in svc.notifications(actor(svc, "owner1")))
