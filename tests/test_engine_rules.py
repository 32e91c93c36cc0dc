"""Access and input rules of the use cases (no Flask): who may see and do what, and what a rejected request leaves."""
from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from tests import helpers as h
from tests.conftest import actor

HP = h.ITEM_NAMES["hp"]
CASE_NO = re.compile(r"^410823(\d{8})(\d{4})$")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def frozen_clock():
    h.freeze_clock()


def _dispatched(svc, items=("hp",)) -> str:
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, list(items))
    return case_no


# ---- who may act ----------------------------------------------------------------------------------------------
def test_specialist_of_another_department_is_forbidden(svc):
    case_no = _dispatched(svc)
    task = h.find_task(svc, "zb_sthj", "部门办理", HP, case_no)
    assert h.inbox(svc, "zb_zjj") == []
    before = h.snapshot(svc, case_no)
    with pytest.raises(Forbidden) as err:
        svc.complete_task(actor(svc, "zb_zjj"), task["task_id"], h.approve("XF-1"))
    assert CJK.search(err.value.message)
    with pytest.raises(Forbidden):
        svc.get_task(actor(svc, "zb_zjj"), task["task_id"])
    # Neither an agent nor the applicant may decide a department's item.
    for other in ("agent1", "huarui"):
        with pytest.raises(Forbidden):
            svc.complete_task(actor(svc, other), task["task_id"], h.approve("XF-1"))
    assert h.snapshot(svc, case_no) == before
    h.complete(svc, "zb_sthj", "部门办理", HP, case_no=case_no, **h.approve("武环审〔2026〕1号"))
    assert h.open_tasks(svc, case_no) == [("汇总办理结果", None)]


def test_applicant_of_another_unit_cannot_see_or_act(svc):
    case_no = _dispatched(svc)
    h.complete(svc, "zb_sthj", "部门办理", HP, case_no=case_no, **h.needs_correction("补充环评报告"))
    task = h.find_task(svc, "huarui", "补正材料", HP, case_no)
    jiahe = actor(svc, "jiahe")
    assert h.inbox(svc, "jiahe") == []
    before = h.snapshot(svc, case_no)
    with pytest.raises(NotFound):
        svc.get_case(jiahe, case_no)
    with pytest.raises(NotFound):
        svc.application(jiahe, case_no)
    with pytest.raises(NotFound):
        svc.get_document(jiahe, case_no, 1)
    with pytest.raises(NotFound):
        svc.send_message(jiahe, case_no, "termination_request", {"reason": "申请单位申请终止帮办代办服务"})
    with pytest.raises(Forbidden):
        svc.get_task(jiahe, task["task_id"])
    with pytest.raises(Forbidden):
        svc.complete_task(jiahe, task["task_id"], h.supplement())
    assert svc.search_cases(jiahe)["total"] == 0
    assert h.snapshot(svc, case_no) == before
    # The case's own applicant can do all of it.
    assert svc.get_case(actor(svc, "huarui"), case_no)["case"]["case_no"] == case_no
    h.complete(svc, "huarui", "补正材料", HP, case_no=case_no, **h.supplement())


def test_completing_a_task_twice_is_a_conflict_and_changes_nothing(svc):
    case_no = h.start(svc)
    task = h.find_task(svc, "agent1", "受理审核", case_no=case_no)
    svc.complete_task(actor(svc, "agent1"), task["task_id"], h.accept())
    before = h.snapshot(svc, case_no)
    for who in ("agent1", "agent2"):
        with pytest.raises(Conflict) as err:
            svc.complete_task(actor(svc, who), task["task_id"], h.accept())
        assert CJK.search(err.value.message)
    with pytest.raises(Conflict):
        svc.complete_task(actor(svc, "agent1"), task["task_id"],
                          {"review_decision": "不予受理", "refusal_explanation": "改变主意"})
    after = h.snapshot(svc, case_no)
    assert after == before
    assert len(after["events"]) == len(before["events"]) and after["row_version"] == before["row_version"]
    assert h.case_row(svc, case_no).status == "active"


def test_unknown_task_id_is_not_found(svc):
    case_no = h.start(svc)
    before = h.snapshot(svc, case_no)
    for task_id in (str(uuid.uuid4()), "no-such-task", ""):
        with pytest.raises(NotFound) as err:
            svc.complete_task(actor(svc, "agent1"), task_id, h.accept())
        assert CJK.search(err.value.message)
        with pytest.raises(NotFound):
            svc.get_task(actor(svc, "agent1"), task_id)
    assert h.snapshot(svc, case_no) == before


# ---- what may be entered ---------------------------------------------------------------------------------------
REVIEW_PROBLEMS = [
    pytest.param({"authorization_checked": True}, "review_decision", "「审核结论」为必填项", id="missing-required"),
    pytest.param(h.accept(review_opinion=123), "review_opinion", "「审核意见」应为文本", id="wrong-type"),
    pytest.param(h.accept(authorization_checked="是"), "authorization_checked", "应为是/否", id="wrong-type-boolean"),
    pytest.param(h.accept(review_opinion="意" * 1001), "review_opinion", "「审核意见」不能超过 1000 个字", id="too-long"),
    pytest.param(h.accept(approved_by="局长"), "approved_by", "表单中有不允许的字段：approved_by", id="unknown-field"),
    pytest.param({"review_decision": "不予受理"}, "refusal_explanation", "「不予受理的原因及解释」为必填项",
                 id="conditionally-required"),
    pytest.param({"review_decision": "同意"}, "review_decision", "「审核结论」的取值不在可选范围内", id="not-an-option"),
]


@pytest.mark.parametrize(("form", "field", "message"), REVIEW_PROBLEMS)
def test_invalid_task_input_is_rejected_and_changes_nothing(svc, form, field, message):
    case_no = h.start(svc)
    task = h.find_task(svc, "agent1", "受理审核", case_no=case_no)
    before = h.snapshot(svc, case_no)
    with pytest.raises(InvalidInput) as err:
        svc.complete_task(actor(svc, "agent1"), task["task_id"], form)
    assert message in err.value.message
    assert err.value.message.startswith("表单填写有误：")
    assert field in err.value.details
    assert CJK.search(err.value.details[field])
    assert h.snapshot(svc, case_no) == before
    # The task is still there and takes a valid form.
    svc.complete_task(actor(svc, "agent1"), task["task_id"], h.accept())
    assert h.open_tasks(svc, case_no) == [("材料交接并签订委托书", None)]


def test_a_form_that_is_not_an_object_is_rejected(svc):
    case_no = h.start(svc)
    task = h.find_task(svc, "agent1", "受理审核", case_no=case_no)
    before = h.snapshot(svc, case_no)
    with pytest.raises(InvalidInput) as err:
        svc.complete_task(actor(svc, "agent1"), task["task_id"], ["受理"])
    assert err.value.message == "提交的内容应为表单对象"
    assert h.snapshot(svc, case_no) == before


APPLICATION_PROBLEMS = [
    pytest.param({"project_name": None}, "「项目名称」为必填项", id="missing-required"),
    pytest.param({"total_investment": "五千万"}, "「投资总额（万元）」应为数字", id="wrong-type"),
    pytest.param({"project_name": "项" * 101}, "「项目名称」不能超过 100 个字", id="too-long"),
    pytest.param({"secret_flag": True}, "表单中有不允许的字段：secret_flag", id="unknown-field"),
    pytest.param({"service_items": ["no-such-item"]}, "「具体服务事项」的取值不在可选范围内", id="unknown-item"),
    pytest.param({"declaration": False}, "请勾选「", id="declaration-not-given"),
]


@pytest.mark.parametrize(("overrides", "message"), APPLICATION_PROBLEMS)
def test_invalid_application_is_rejected_without_using_a_number(svc, overrides, message):
    data = h.application(**{k: v for k, v in overrides.items() if v is not None})
    for k in [k for k, v in overrides.items() if v is None]:
        del data[k]
    with pytest.raises(InvalidInput) as err:
        svc.start_case(actor(svc, "huarui"), h.PROCESS, data)
    assert message in err.value.message
    assert svc.search_cases(actor(svc, "agent1"))["total"] == 0
    assert h.start(svc) == f"410823{h.DAY}0001"  # no case number was used up


def test_invalid_message_form_is_rejected_and_changes_nothing(svc):
    case_no = h.start(svc)
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    before = h.snapshot(svc, case_no)
    agent1 = actor(svc, "agent1")
    with pytest.raises(InvalidInput) as err:
        svc.send_message(agent1, case_no, "termination", {"reason": "国家法律法规规章和政策发生调整"})
    assert "「说明」为必填项" in err.value.message
    with pytest.raises(InvalidInput) as err:
        svc.send_message(agent1, case_no, "termination", {"reason": "不想办了", "remark": "说明理由"})
    assert "「终止原因」的取值不在可选范围内" in err.value.message
    with pytest.raises(NotFound):
        svc.send_message(agent1, case_no, "no_such_message", {})
    assert h.snapshot(svc, case_no) == before


# ---- read-only roles --------------------------------------------------------------------------------------------
def test_auditor_can_read_but_not_change_anything(svc):
    case_no = h.start(svc)
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    auditor = actor(svc, "auditor1")
    task = h.find_task(svc, "agent1", "材料交接并签订委托书", case_no=case_no)
    before = h.snapshot(svc, case_no)

    assert svc.get_case(auditor, case_no)["case"]["case_no"] == case_no
    assert svc.search_cases(auditor)["total"] == 1
    assert svc.inbox(auditor) == []
    assert svc.startable_processes(auditor) == []
    assert svc.get_case(auditor, case_no)["actions"] == []
    with pytest.raises(Forbidden):
        svc.start_case(auditor, h.PROCESS, h.application(), unit_id=h.case_row(svc, case_no).unit_id)
    with pytest.raises(Forbidden):
        svc.start_form(auditor, h.PROCESS)
    with pytest.raises(Forbidden) as err:
        svc.complete_task(auditor, task["task_id"], h.commission())
    assert CJK.search(err.value.message)
    for key, form in (("termination", {"reason": "国家法律法规规章和政策发生调整", "remark": "审计要求"}),
                      ("termination_request", {"reason": "申请单位申请终止帮办代办服务"})):
        with pytest.raises(Forbidden):
            svc.send_message(auditor, case_no, key, form)
    assert h.snapshot(svc, case_no) == before
    assert svc.search_cases(actor(svc, "agent1"))["total"] == 1


# ---- case numbers -----------------------------------------------------------------------------------------------
def test_case_numbers_are_dated_and_sequential(svc):
    numbers = [h.start(svc) for _ in range(3)]
    # An agent may start a case on behalf of a unit; it takes the next number of the same day.
    jiahe_unit = actor(svc, "jiahe").unit_id
    numbers.append(svc.start_case(actor(svc, "agent1"), h.PROCESS, h.application(unit_name="河南嘉禾新材料科技有限公司"),
                                  unit_id=jiahe_unit).case_no)
    for no in numbers:
        assert CASE_NO.match(no) and CASE_NO.match(no).group(1) == h.DAY
    assert [CASE_NO.match(no).group(2) for no in numbers] == ["0001", "0002", "0003", "0004"]
    assert h.case_row(svc, numbers[3]).unit_name == "河南嘉禾新材料科技有限公司"

    # The date is the local (Asia/Shanghai) date: 16:30 UTC is already the next day, which starts again at 0001.
    h.freeze_clock(datetime(2026, 3, 2, 16, 30, tzinfo=UTC))
    assert h.start(svc) == "410823202603030001"
    assert h.start(svc) == "410823202603030002"
    h.freeze_clock(datetime(2026, 3, 2, 15, 59, tzinfo=UTC))  # 23:59 local on the 2nd
    assert h.start(svc) == f"410823{h.DAY}0005"


# ---- searching --------------------------------------------------------------------------------------------------
def _numbers(result: dict) -> list[str]:
    return sorted(c["case_no"] for c in result["cases"])


def test_search_by_number_unit_and_project_is_scoped(svc):
    mine = h.start(svc)
    theirs = h.start(svc, "jiahe", unit_name="河南嘉禾新材料科技有限公司", project_name="高性能新材料生产线项目",
                     service_items=["qydj"])
    agent = actor(svc, "agent1")
    assert _numbers(svc.search_cases(agent)) == sorted([mine, theirs])
    assert _numbers(svc.search_cases(agent, q=theirs)) == [theirs]
    assert _numbers(svc.search_cases(agent, q=theirs[-6:])) == [theirs]
    assert _numbers(svc.search_cases(agent, unit="嘉禾")) == [theirs]
    assert _numbers(svc.search_cases(agent, unit="华瑞食品")) == [mine]
    assert _numbers(svc.search_cases(agent, project="食品")) == [mine]
    assert _numbers(svc.search_cases(agent, project="新材料")) == [theirs]
    assert _numbers(svc.search_cases(agent, project="不存在的项目")) == []
    assert _numbers(svc.search_cases(agent, q="%%")) == []  # LIKE wildcards are searched literally (one character is refused)
    assert _numbers(svc.search_cases(agent, status="active")) == sorted([mine, theirs])
    found = svc.search_cases(agent, q=mine)["cases"][0]
    assert (found["title"], found["unit_name"], found["status_name"]) == ("年产万吨食品项目", "武陟县华瑞食品有限公司", "办理中")

    # Applicants see only their own unit's cases, whatever they search for.
    huarui, jiahe = actor(svc, "huarui"), actor(svc, "jiahe")
    assert _numbers(svc.search_cases(huarui)) == [mine]
    assert _numbers(svc.search_cases(jiahe)) == [theirs]
    assert _numbers(svc.search_cases(jiahe, q=mine)) == []
    assert _numbers(svc.search_cases(jiahe, unit="华瑞")) == []
    assert _numbers(svc.search_cases(jiahe, project="食品")) == []
    assert svc.search_cases(jiahe, q=mine)["total"] == 0
    with pytest.raises(NotFound):
        svc.get_case(jiahe, mine)
    assert svc.get_case(jiahe, theirs)["case"]["case_no"] == theirs


def test_specialist_sees_only_cases_involving_its_department(svc):
    case_no = h.start(svc)  # applies for hp, xf and gd
    other = h.start(svc, "jiahe", unit_name="河南嘉禾新材料科技有限公司", service_items=["qydj"])
    sthj, zjj, scjg = actor(svc, "zb_sthj"), actor(svc, "zb_zjj"), actor(svc, "zb_scjg")
    h.accept_and_commission(svc, case_no)
    # Before dispatch no department is involved yet.
    for specialist in (sthj, zjj, scjg):
        assert svc.search_cases(specialist)["total"] == 0
    with pytest.raises(NotFound):
        svc.get_case(sthj, case_no)

    h.dispatch(svc, case_no, ["hp"])  # xf and gd are not dispatched after all
    assert _numbers(svc.search_cases(sthj)) == [case_no]
    assert _numbers(svc.search_cases(sthj, project="食品")) == [case_no]
    assert _numbers(svc.search_cases(sthj, unit="嘉禾")) == []
    assert svc.get_case(sthj, case_no)["case"]["case_no"] == case_no
    assert svc.search_cases(zjj)["total"] == 0
    with pytest.raises(NotFound):
        svc.get_case(zjj, case_no)

    h.accept_and_commission(svc, other)
    h.dispatch(svc, other, ["qydj"])
    assert _numbers(svc.search_cases(scjg)) == [other]
    assert _numbers(svc.search_cases(sthj)) == [case_no]

    # Once involved, always involved: the department still finds the case after its item is done.
    h.complete(svc, "zb_sthj", "部门办理", HP, case_no=case_no, **h.approve("武环审〔2026〕1号"))
    assert _numbers(svc.search_cases(sthj)) == [case_no]
    assert svc.search_cases(zjj)["total"] == 0


def test_control_characters_in_a_form_are_refused_and_change_nothing(svc):
    from engine.errors import InvalidInput
    applicant = actor(svc, "huarui")
    data = dict(h.application(), project_name="年产\x00万吨")
    with pytest.raises(InvalidInput, match="控制字符"):
        svc.start_case(applicant, "bangban_case", data)
    assert svc.search_cases(applicant)["total"] == 0
