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


CODE_ERRORS = [     # a script's own mistake: (the script, the Chinese the user reads, the original the owners read)
    ("x = undefined_name", "用到了未定义的名字「undefined_name」", "NameError: name 'undefined_name' is not defined"),
    ("x = {}['k']", "缺少所需的键「k」", "KeyError: 'k'"),
    ("x = {}[0]", "缺少所需的键「0」", "KeyError"),               # SpiffWorkflow itself failed on a key that is no text
    ("x = 2.0 ** 10 ** 9", "数值过大", "OverflowError"),           # likewise (errno, text)
    ("x = 1 / 0", "除数为零", "ZeroDivisionError"),
    ("x = int('9' * 5000)", "整数位数过多（整数与文字互转以 4300 位为限）", "ValueError: Exceeds the limit (4300 digits)"),
    ("def f(n):\n    return f(n + 1)\nx = f(0)", "嵌套或链条过深，超过了递归上限", "RecursionError"),
]


@pytest.mark.parametrize(("script", "chinese", "original"), CODE_ERRORS, ids=[c[0][:30] for c in CODE_ERRORS])
def test_a_script_s_own_error_is_told_in_chinese_and_the_owners_get_the_original(svc, db, process_files, script,
                                                                                  chinese, original):
    failing = Bangban.open(db, _with(process_files, "items = catalogue_items(service_items)",
                                     f"items = catalogue_items(service_items)\n{script}"))
    case_no = h.start(failing)
    h.accept_and_commission(failing, case_no)
    before = h.snapshot(failing, case_no)
    with pytest.raises(ProcessDefinitionError) as failed:
        h.dispatch(failing, case_no, ["hp"])
    message = failed.value.message
    assert message == f"流程运行出错（已通知流程管理员，办件保持原状）：元素「生成办理事项」：代码出错：{chinese}", message
    assert "Error" not in message
    assert h.snapshot(failing, case_no) == before
    notes = [n["text"] for n in failing.notifications(actor(failing, "owner1")) if case_no in n["text"]]
    assert notes and chinese in notes[-1] and f"（原文：{original}" in notes[-1], notes
    assert "0x" not in notes[-1] and "\n" not in notes[-1]
