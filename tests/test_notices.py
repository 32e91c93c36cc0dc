"""What is sent about a case (issue 15, item 3): the templates of ``processes/notifications.json`` matched against each
step's events by ``engine/notices.py`` and written with the step.

Along real cases (warm and cold): the applicant is told of acceptance or refusal (with the explanation), each 补正
request (with what to bring; the notice opens the task), each item's result, 办结 with the delivery method and
tracking number, the rating invitation (opening the rating task), termination with its reason; staff are told of each
new task (with its deadline) and the department of the supervisor's 督办. Each message once; a step's keys written
again add nothing; a template naming what the process set does not have is refused at publish, in Chinese."""
from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import select

import tests.helpers as h
from engine import forms, notices
from engine.clock import LOCAL_TZ, clock
from engine.errors import InvalidInput
from engine.events import EventBuffer
from engine.models import Notification
from engine.worker import run_once
from tests.conftest import actor

NOTIFICATIONS = Notification.__table__
both = pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
TITLE = h.APPLICATION["project_name"]


def L(y, m, d, hh=0, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ)


def sent(svc, case_no: str | None = None, recipient: str | None = None) -> list[tuple[str, str, str, str]]:
    """(recipient, subject, text, link) of the notifications written, in order."""
    with svc.db.unit_of_work(write=False) as uow:
        stmt = select(NOTIFICATIONS).order_by(NOTIFICATIONS.c.id)
        if case_no is not None:
            stmt = stmt.where(NOTIFICATIONS.c.case_id == h.case_row(svc, case_no).id)
        rows = uow.repo.conn.execute(stmt).all()
    return [(r.recipient, r.subject, r.text, r.link) for r in rows if recipient is None or r.recipient == recipient]


def unit_of(svc, username: str = "huarui") -> str:
    return f"unit:{actor(svc, username).unit_id}"


def task_id(svc, username: str, name: str, case_no: str) -> str:
    return h.find_task(svc, username, name, case_no=case_no)["task_id"]


@both
@pytest.mark.usefixtures("all_cases_verified")
def test_the_applicant_is_told_every_step_once_along_a_case(svc):
    clock.set(L(2026, 3, 2, 9))
    no = h.start(svc)
    unit = unit_of(svc)
    assert sent(svc, no, unit) == []          # nothing for the applicant at submission
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp", "xf", "gd"])
    h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=no, **h.needs_correction("请补充环评报告表及专家评审意见"))
    supplement_task = task_id(svc, "huarui", "补正材料", no)
    h.complete(svc, "zb_zjj", "部门办理", h.ITEM_NAMES["xf"], case_no=no, **h.approve("XF-2026-001"))
    h.complete(svc, "zb_gdgs", "部门办理", "供电", case_no=no, **h.refuse("用电容量超出线路承载能力"))
    h.complete(svc, "huarui", "补正材料", "环评", case_no=no, **h.supplement())
    h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=no, **h.approve("HP-2026-001"))
    h.collect_and_deliver(svc, no)
    (slip_no,) = [n for k, n, _t in h.documents(svc, no) if k == "办结单"]
    h.complete(svc, "huarui", "签收办结单", case_no=no, **h.receipt())
    rate_task = task_id(svc, "huarui", "评价代办服务", no)
    h.complete(svc, "huarui", "评价代办服务", case_no=no, **h.rating())
    h.rate_departments(svc, no)

    page = f"/cases/{no}"
    assert sent(svc, no, unit) == [
        (unit, "申请已受理",
         f"您单位提交的帮办代办申请（{TITLE}）已受理，办件编号 {no}。代办员将与您联系，办理材料交接并签订委托书。", page),
        (unit, "补正告知",
         f"【补正告知】办件 {no} 的服务事项「环评」（焦作市生态环境局武陟分局）需要补正材料：请补充环评报告表及专家评审意见。"
         "请于2026年3月12日前补正：点此打开“补正材料”待办提交。", f"/tasks/{supplement_task}"),
        (unit, "事项已准予许可",
         f"办件 {no} 的服务事项「消防（设计审查/验收）」（县住房和城乡建设局）已准予许可，批文/证照编号：XF-2026-001。", page),
        (unit, "事项不予许可",
         f"办件 {no} 的服务事项「供电」（国网武陟县供电公司）不予许可。理由及依据：用电容量超出线路承载能力", page),
        (unit, "事项已准予许可",
         f"办件 {no} 的服务事项「环评」（焦作市生态环境局武陟分局）已准予许可，批文/证照编号：HP-2026-001。", page),
        (unit, "办结送达",
         f"您单位的帮办代办项目（{TITLE}，办件编号 {no}）办理结果已于2026年3月2日以邮寄方式送达，邮寄单号 SF123456789，"
         f"办结单编号 {slip_no}。请签收办结单：签收后即办结；逾期未签收的，按送达办结。", page),
        (unit, "邀请评价", f"办件 {no}（{TITLE}）已完成帮办代办服务工作。请对帮办代办服务进行综合评价，"
         "请于2026年3月9日前办理（逾期记为未评价）：点此直接打开评价表。",
         f"/tasks/{rate_task}"),
    ]
    # Every handler of the unit has them in the app, and no one of another unit.
    notes = svc.notifications(actor(svc, "huarui"), limit=50)
    assert [n["subject"] for n in notes if n["case_no"] == no][::-1] == [s for _r, s, _t, _l in sent(svc, no, unit)]
    assert [n for n in svc.notifications(actor(svc, "jiahe"), limit=50) if n["case_no"] == no] == []
    # No English, code or repr slips into what is sent.
    for _r, _subject, text, _l in sent(svc, no):
        assert "{" not in text and "None" not in text and "[" not in text, text


@both
@pytest.mark.usefixtures("all_cases_verified")
def test_refusal_at_review_tells_the_applicant_why_and_new_tasks_reach_staff(svc):
    clock.set(L(2026, 3, 2, 9))
    no = h.start(svc)
    # The new application reaches the agents (the role of 受理审核), with a link to the task.
    review = task_id(svc, "agent1", "受理审核", no)
    assert sent(svc, no, "role:agent") == [
        ("role:agent", "新待办：受理审核", f"【新待办】受理审核：办件 {no}（武陟县华瑞食品有限公司，{TITLE}）。",
         f"/tasks/{review}")]
    assert any(n["link"] == f"/tasks/{review}" for n in svc.notifications(actor(svc, "agent2")))
    h.complete(svc, "agent1", "受理审核", case_no=no, review_decision="不予受理",
               refusal_explanation="申请事项不属于帮办代办服务范围，请向县市场监管局咨询")
    assert sent(svc, no, unit_of(svc)) == [
        (unit_of(svc), "申请不予受理", f"您单位提交的帮办代办申请（{TITLE}，办件编号 {no}）不予受理，"
                                     f"不予受理告知书编号 {h.doc_number('武帮代不受', 1)}。"
                                     "原因及解释：申请事项不属于帮办代办服务范围，请向县市场监管局咨询", f"/cases/{no}")]
    assert h.case_row(svc, no).status == "refused"


@both
@pytest.mark.usefixtures("all_cases_verified")
def test_termination_tells_the_applicant_the_reason_and_the_slip(svc):
    clock.set(L(2026, 3, 2, 9))
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["xf"])
    h.send(svc, "agent1", no, "termination", reason="国家法律法规规章和政策发生调整", remark="政策调整")
    h.complete(svc, "agent1", "办理终止手续", case_no=no, **h.slip("国家法律法规规章和政策发生调整"))
    (slip_no,) = [n for k, n, _t in h.documents(svc, no) if k == "终止单"]
    unit = unit_of(svc)
    assert [(s, t) for _r, s, t, _l in sent(svc, no, unit)][1:] == [
        ("帮办代办服务已终止", f"办件 {no}（{TITLE}）的帮办代办服务已终止。终止原因：国家法律法规规章和政策发生调整。"
                              "代办员将与您办理资料移交和终止单签字。"),
        ("终止单已出具", f"办件 {no}（{TITLE}）的终止手续已办理，终止单编号 {slip_no}。")]
    assert h.case_row(svc, no).status == "terminated"


@both
@pytest.mark.usefixtures("all_cases_verified")
def test_the_department_gets_its_task_with_the_deadline_and_the_supervisors_instruction(svc):
    clock.set(L(2026, 3, 2, 9))
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["xf"])
    handle = task_id(svc, "zb_zjj", "部门办理", no)
    assert sent(svc, no, "dept:zjj") == [
        ("dept:zjj", "新待办：部门办理",
         f"【新待办】部门办理（消防（设计审查/验收））：办件 {no}（武陟县华瑞食品有限公司，{TITLE}），请于2026年3月23日前办理。",
         f"/tasks/{handle}")]
    # Red on Tue 03-24: the supervisor gets the 督办 task; the department then gets the supervisor's instruction.
    clock.set(L(2026, 3, 24, 9))
    assert run_once(svc) == 1
    supervise = task_id(svc, "supervisor1", "督办", no)
    assert ("role:supervisor", "新待办：督办",
            f"【新待办】督办（消防（设计审查/验收）（县住房和城乡建设局））：办件 {no}（武陟县华瑞食品有限公司，{TITLE}），"
            "已超过2026年3月23日的办理期限。",
            f"/tasks/{supervise}") in sent(svc, no, "role:supervisor")
    before = len(sent(svc, no, "dept:zjj"))
    h.complete(svc, "supervisor1", "督办", case_no=no, supervise_method="电话督办",
               supervise_opinion="请于两个工作日内办结", rectify_by="2026-03-26")
    text = (f"【督办】办件 {no} 的服务事项「消防（设计审查/验收）」（县住房和城乡建设局）已超过办理时限。"
            "县行政审批和政务信息管理局电话督办，督办意见：请于两个工作日内办结；要求办结日期：2026年3月26日。")
    assert sent(svc, no, "dept:zjj")[before:] == [("dept:zjj", "督办通知", text, f"/cases/{no}")]
    assert sent(svc, no, "user:agent1")[-1] == ("user:agent1", "督办通知", text, f"/cases/{no}")
    assert text in [n["text"] for n in svc.notifications(actor(svc, "zb_zjj"))]
    assert text not in [n["text"] for n in svc.notifications(actor(svc, "zb_sthj"))]


@pytest.mark.usefixtures("all_cases_verified")
def test_a_step_written_again_adds_no_message(svc):
    """The keys are (case, event, template, recipient): the messages of the last step derived again from the stored
    case, at the same event, are all known; at a later event they would be new."""
    clock.set(L(2026, 3, 2, 9))
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp", "xf"])
    count = len(sent(svc))

    def again(offset: int) -> int:
        with svc.db.unit_of_work() as uow:
            case = uow.repo.case_by_no(no, lock=True)
            ps = svc.version(case.version_id)
            run = svc._load_run(uow, case, ps)
            events = EventBuffer(case.case_no, case.id, case.event_seq + offset, case.last_hash)
            svc._notices(uow, case, ps, run, events, run.ready_tasks(), [], clock.now())
            uow.commit()
        return len(sent(svc))

    assert again(0) == count
    assert again(0) == count
    assert again(1) == count + 2        # the two departments' new-task messages, as a later event would send them


def _publish(svc, templates: list[dict]):
    doc = json.loads(svc.current.files[notices.FILE])
    doc["templates"] += templates
    owner = actor(svc, "owner1")
    return svc.publish(owner, {notices.FILE: json.dumps(doc, ensure_ascii=False).encode("utf-8")}, "增加通知模板")


def test_a_bad_template_is_refused_at_publish_in_chinese(svc):
    bad = [{"id": "x_unknown_var", "on": "task_completed", "element": "Task_Review", "to": ["applicant"],
            "subject": "受理", "text": "{case_no}：{review_decison}"},
           {"id": "x_attr", "on": "task_ready", "element": "Task_Supplement", "to": ["applicant"],
            "subject": "补正", "text": "{item.name}{item[0]}"},
           {"id": "x_element", "on": "task_ready", "element": "Task_Nowhere", "to": ["task"], "subject": "新", "text": "新"},
           {"id": "x_kind", "on": "reached", "element": "Task_Review", "to": ["role:nobody"], "subject": "新", "text": "新"},
           {"id": "x_when", "on": "task_completed", "element": "Task_Handle", "when": {"item_decision": "大致许可"},
            "to": ["dept:{no_such_var}"], "subject": "新", "text": "新"}]
    version = svc.current.hash
    with pytest.raises(InvalidInput) as err:
        _publish(svc, bad)
    messages = [p["message"] for p in err.value.details]
    assert err.value.message.endswith("未发布")
    assert messages == [
        "通知模板「x_unknown_var」引用了未知的变量 {review_decison}",
        "通知模板「x_attr」的文字中只能用 {变量名} 引用变量，不能有其他花括号、属性、下标或格式",
        "通知模板「x_element」绑定的流程元素 Task_Nowhere 不存在",
        "通知模板「x_kind」的事件类型「流程到达」不能绑定用户任务 Task_Review（受理审核），请用“待办办理完成”",
        "通知模板「x_kind」的通知对象角色 nobody 不存在",
        "通知模板「x_when」的通知对象引用了未知的变量 {no_such_var}",
        "通知模板「x_when」的条件值「大致许可」不是字段 item_decision 的可选值"]
    assert all(p["file"] == notices.FILE for p in err.value.details)
    assert svc.current.hash == version
    # A good one is published, and used by the next case.
    good = {"id": "x_submitted", "on": "task_ready", "element": "Task_Review", "to": ["applicant"],
            "subject": "已收到申请", "text": "已收到您单位的申请（{title}），编号 {case_no}，{date}。"}
    status = {"id": "x_status", "on": "status_changed", "when": {"to": ["refused", "withdrawn"]}, "to": ["role:supervisor"],
              "subject": "办件状态", "text": "办件 {case_no} 已{status_label}。"}
    _publish(svc, [good, status])
    clock.set(L(2026, 3, 2, 9))
    no = h.start(svc)
    assert sent(svc, no, unit_of(svc)) == [
        (unit_of(svc), "已收到申请", f"已收到您单位的申请（{TITLE}），编号 {no}，2026年3月2日。",
         f"/tasks/{task_id(svc, 'agent1', '受理审核', no)}")]
    assert sent(svc, no, "role:supervisor") == []
    h.complete(svc, "agent1", "受理审核", case_no=no, review_decision="不予受理", refusal_explanation="不属于服务范围")
    assert sent(svc, no, "role:supervisor") == [("role:supervisor", "办件状态", f"办件 {no} 已不予受理。", f"/cases/{no}")]


def test_the_formatter_reads_named_fields_only():
    values = notices.flatten({"item": {"name": "环评", "obj": object(), "deep": {"x": 1}}, "n": 3, "ok": True,
                              "when": "2026-03-05", "list": ["甲", "乙"], "nothing": None})
    assert values == {"item_name": "环评", "n": "3", "ok": "是", "when": "2026年3月5日", "list": "甲、乙", "nothing": ""}
    assert notices.render("{item_name}{item.name}{__class__}{n!r}", values) == "环评{item.name}{n!r}"
    assert notices.names_in("{a}{b.c}") == (["a"], False)


def test_a_forms_document_spec_is_checked():
    """A form's ``x-document`` (what its 评价表 names: who is rated, the completion date's field) has one shape."""
    base = {"type": "object", "properties": {"rating": {"type": "string"}}}
    assert forms.check_schema(dict(base, **{"x-document": {"rated": "lead", "date_field": "delivery_date"}})) == []
    for bad in (3, {"rated": 1}, {"rated": "lead", "who": "x"}, {"rated": ""}):
        assert forms.check_schema(dict(base, **{"x-document": bad})) == [
            "x-document 应为对象，只含 rated（lead、title 或被评价对象名称）与 date_field（完成日期字段）两项文字"]
