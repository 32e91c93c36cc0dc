"""Engine paths of the decision context (``show`` views) and of the confirmation of final steps (``confirm``).

Warm and cold (every use case in a freshly opened service); every case ends verified by ``audit verify``. A step
refused for want of confirmation leaves the case row, its events, documents and inbox exactly as they were, so it
leaves nothing for the audit replay to meet either.
"""
from __future__ import annotations

import pytest

from engine.errors import ConfirmationRequired, InvalidInput
from tests import helpers as h
from tests.conftest import actor

pytestmark = [pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True),
              pytest.mark.usefixtures("all_cases_verified")]

REFUSAL = {"review_decision": "不予受理", "refusal_explanation": "项目不属于帮办代办服务范围"}


def test_a_refusal_needs_confirmation_and_the_review_shows_the_application(svc):
    h.freeze_clock()
    case_no = h.start(svc)
    task = h.find_task(svc, "agent1", "受理审核", case_no=case_no)
    view = svc.get_task(actor(svc, "agent1"), task["task_id"])
    assert view["confirm"]["conditional"] and "不予受理后办件即告结束" in view["confirm"]["text"]
    application = next(s for s in view["sections"] if s["id"] == "application")
    assert ("项目名称", "年产万吨食品项目") in application["rows"] and ("邮编", "454950") in application["rows"]

    before = h.snapshot(svc, case_no)
    with pytest.raises(ConfirmationRequired) as asked:
        svc.complete_task(actor(svc, "agent1"), task["task_id"], REFUSAL, confirmed=False)
    assert asked.value.status == 409 and asked.value.message == view["confirm"]["text"]
    assert h.snapshot(svc, case_no) == before
    # an invalid form is refused as such before any question
    with pytest.raises(InvalidInput):
        svc.complete_task(actor(svc, "agent1"), task["task_id"], {"review_decision": "不予受理"}, confirmed=False)
    assert h.snapshot(svc, case_no) == before

    result = svc.complete_task(actor(svc, "agent1"), task["task_id"], REFUSAL, confirmed=True)
    assert result["document"]["kind"] == "不予受理告知书"
    assert h.case_row(svc, case_no).status == "refused"

    # 受理 is not asked about, even by a page that asks (confirmed=False)
    other = h.start(svc)
    task = h.find_task(svc, "agent1", "受理审核", case_no=other)
    svc.complete_task(actor(svc, "agent1"), task["task_id"], h.accept(), confirmed=False)
    assert h.case_row(svc, other).status == "active"


def test_termination_needs_confirmation_and_the_collect_task_shows_the_items(svc):
    h.freeze_clock()
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, ["hp", "xf"])
    h.approve_items(svc, case_no, ["hp", "xf"])
    collect = h.find_task(svc, "agent1", "汇总办理结果", case_no=case_no)
    items = next(s for s in svc.get_task(actor(svc, "agent1"), collect["task_id"])["sections"] if s["id"] == "items")
    assert [row[:3] for row in items["rows"]] == [["环评", "焦作市生态环境局武陟分局", "准予许可"],
                                                 ["消防（设计审查/验收）", "县住房和城乡建设局", "准予许可"]]
    assert all(row[3] for row in items["rows"])

    before = h.snapshot(svc, case_no)
    decision = {"reason": "出现不可抗力导致项目不具备办理条件", "remark": "项目用地被征收"}
    with pytest.raises(ConfirmationRequired, match="决定终止后"):
        svc.send_message(actor(svc, "agent1"), case_no, "termination", decision, confirmed=False)
    assert h.snapshot(svc, case_no) == before
    svc.send_message(actor(svc, "agent1"), case_no, "termination", decision, confirmed=True)
    h.tick()
    assert [n for n, _ in h.open_tasks(svc, case_no)] == ["办理终止手续"]
