"""改派: a supervisor or the window gives an open task to another eligible person, as a recorded step of the case.

Engine tests per use case and role (warm and cold services, each case ending verified by ``audit verify``), bad
input, the supervisor's list of tasks no active account may act on, a tampered 改派 event, and the pages and API."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.models import User
from tests import helpers as h
from tests.conftest import actor
from tests.test_audit_tamper import caught, reseal, sql, verdict
from tests.webclient import api_login, assert_json_error, html_login, token

USERS = User.__table__
REASON = "王代办长期病休，由他人接办"
both = pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)


def deactivate(svc, username: str) -> None:
    """What the account administrators' deactivation does to the row (built elsewhere): ``active`` false."""
    with svc.db.unit_of_work() as uow:
        uow.repo.conn.execute(update(USERS).where(USERS.c.username == username).values(active=False))
        uow.commit()


def add_specialist(svc, username: str, department: str, name: str) -> None:
    with svc.db.unit_of_work() as uow:
        uow.repo.insert_user(username=username, password_hash=uow.repo.user_by_username("zb_sthj").password_hash,
                             display_name=name, roles="specialist", department=department)
        uow.commit()


def reassign(svc, by: str, task_id: str, to: str, reason: str = REASON, scope: str = "task") -> dict:
    result = svc.reassign_task(actor(svc, by), task_id, to, reason, scope)
    h.tick()
    return result


def lead_case(svc) -> tuple[str, str]:
    """An ordinary case led by agent1, waiting at 分派服务事项; returns the case number and that task's id."""
    h.freeze_clock()
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)
    return case_no, h.find_task(svc, "agent1", "分派服务事项", case_no=case_no)["task_id"]


def key_case(svc) -> tuple[str, str]:
    """A key project led by chief1 (chief officer and lead), waiting at 分派服务事项."""
    h.freeze_clock()
    case_no = h.start(svc, key_project="重点项目")
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    h.complete(svc, "window1", "指派项目首席服务员", case_no=case_no, chief_officer="chief1",
               designated_by="县发展和改革委员会（重点项目）", assign_note="重点项目")
    h.complete(svc, "chief1", "签订代办委托协议", case_no=case_no, **h.agreement())
    return case_no, h.find_task(svc, "chief1", "分派服务事项", case_no=case_no)["task_id"]


# ---- engine: who may, and what follows ------------------------------------------------------------------------------
@both
@pytest.mark.parametrize("by", ["supervisor1", "window1"])
def test_a_task_reassigned_goes_to_the_new_person_alone(svc, all_cases_verified, by):
    case_no, task_id = lead_case(svc)
    result = reassign(svc, by, task_id, "agent2")
    assert result == {"case_no": case_no, "task_id": task_id, "from": "agent1", "to": "agent2", "scope": "task",
                      "variables": []}
    assert h.inbox_names(svc, "agent1", case_no) == []
    assert h.find_task(svc, "agent2", "分派服务事项", case_no=case_no)["assignee"] == "agent2"
    with pytest.raises(Forbidden):
        svc.complete_task(actor(svc, "agent1"), task_id, {"service_items": ["hp"]})
    with pytest.raises(Forbidden):
        svc.get_task(actor(svc, "agent1"), task_id)
    # the history says who reassigned what to whom, and why
    e = h.events(svc, case_no)[-1]
    assert (e.type, e.actor_name, e.task_name) == ("task_reassigned", by, "分派服务事项")
    assert e.payload["from"] == "agent1" and e.payload["to"] == "agent2" and e.payload["reason"] == REASON
    line = h.view(svc, case_no)["timeline"][-1]
    assert line["label"] == "改派" and "由王代办改派给刘代办" in line["summary"] and REASON in line["summary"]
    assert any(n["text"].startswith(f"办件 {case_no} 的待办「分派服务事项」已改派给您")
               for n in svc.notifications(actor(svc, "agent2")))
    # the new person completes it; the case's lead is still agent1, whose later tasks are his again
    h.dispatch(svc, case_no, ["hp"], lead="agent2")
    assert h.case_row(svc, case_no).lead_user == "agent1"
    h.approve_items(svc, case_no, ["hp"])
    assert h.inbox_names(svc, "agent1", case_no) == [("汇总办理结果", None)]
    assert h.inbox_names(svc, "agent2", case_no) == []
    assert svc.audit_case(case_no)["ok"]


@both
def test_the_case_lead_handed_over_takes_every_later_lead_task(svc, all_cases_verified):
    case_no, task_id = lead_case(svc)
    result = reassign(svc, "window1", task_id, "agent2", scope="lead")
    assert result["variables"] == ["case_agent", "lead_officer"]
    row = h.case_row(svc, case_no)
    assert row.lead_user == "agent2" and row.case_vars["lead_officer"] == "agent2"
    assert h.view(svc, case_no)["case"]["lead_name"] == "刘代办"
    assert "并由其接替本办件的牵头工作" in h.view(svc, case_no)["timeline"][-1]["summary"]
    # the new lead may now decide a termination, the old one may not
    assert [a["key"] for a in h.view(svc, case_no, "agent2")["actions"]] == ["termination"]
    assert h.view(svc, case_no, "agent1")["actions"] == []
    h.dispatch(svc, case_no, ["hp"], lead="agent2")
    h.approve_items(svc, case_no, ["hp"])
    assert h.inbox_names(svc, "agent1", case_no) == []
    h.collect_and_deliver(svc, case_no, lead="agent2")
    h.complete(svc, "huarui", "签收办结单", case_no=case_no, **h.receipt())
    assert h.find_task(svc, "huarui", "评价代办服务", case_no=case_no)


@both
def test_the_lead_handed_over_while_items_run_moves_the_clocks_and_the_termination_review(svc, all_cases_verified):
    case_no, _ = lead_case(svc)
    h.dispatch(svc, case_no, ["hp"])
    h.send(svc, "huarui", case_no, "termination_request", reason="申请单位申请终止帮办代办服务")
    review = h.find_task(svc, "agent1", "审核终止申请", case_no=case_no)["task_id"]
    reassign(svc, "supervisor1", review, "agent2", "王代办已调离", scope="lead")
    with svc.db.unit_of_work(write=False) as uow:
        assert {c.lead_user for c in uow.repo.clocks_for_case(h.case_row(svc, case_no).id)} == {"agent2"}
    h.complete(svc, "agent2", "审核终止申请", case_no=case_no, termination_decision="不同意终止",
               termination_opinion="项目可以继续办理")
    h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=case_no, **h.approve("HP-2026-001"))
    assert h.inbox_names(svc, "agent2", case_no) == [("汇总办理结果", None)]


@both
def test_a_chief_officer_replaced_for_the_rest_of_a_key_project(svc, all_cases_verified):
    case_no, task_id = key_case(svc)
    # agent2 may do this agent-lane task, but cannot take over a chief officer's case: the chief tasks need 首席
    with pytest.raises(InvalidInput) as refused:
        reassign(svc, "supervisor1", task_id, "agent2", scope="lead")
    assert "项目首席服务员" in refused.value.message
    form = svc.reassign_form(actor(svc, "supervisor1"), task_id)
    assert {c["username"]: c["takes_lead"] for c in form["candidates"]} == \
        {"agent1": False, "agent2": False, "chief2": True}
    assert form["lead_possible"] and form["assignee_name"] == "赵首席"
    result = reassign(svc, "supervisor1", task_id, "chief2", scope="lead")
    assert result["variables"] == ["chief_officer", "lead_officer"]
    assert h.case_row(svc, case_no).case_vars["chief_officer"] == "chief2"
    h.dispatch(svc, case_no, ["hp"], lead="chief2")
    h.approve_items(svc, case_no, ["hp"])
    h.collect_and_deliver(svc, case_no, lead="chief2")
    assert h.inbox_names(svc, "chief1", case_no) == []


@both
def test_a_department_task_goes_to_another_specialist_of_that_department(svc, all_cases_verified):
    case_no, _ = lead_case(svc)
    h.dispatch(svc, case_no, ["hp", "xf"])
    add_specialist(svc, "zb_sthj2", "sthj", "环评二号专办员")
    task_id = h.find_task(svc, "zb_sthj", "部门办理", "环评", case_no=case_no)["task_id"]
    with pytest.raises(InvalidInput) as refused:        # a specialist of another department
        reassign(svc, "supervisor1", task_id, "zb_zjj")
    assert "不是该部门的专办员" in refused.value.message
    reassign(svc, "supervisor1", task_id, "zb_sthj2")
    assert h.inbox_names(svc, "zb_sthj", case_no) == []
    with pytest.raises(Forbidden):
        svc.complete_task(actor(svc, "zb_sthj"), task_id, h.approve("HP-1"))
    h.complete(svc, "zb_sthj2", "部门办理", "环评", case_no=case_no, **h.approve("HP-2026-001"))
    assert h.items(svc, case_no)["hp"]["licence_no"] == "HP-2026-001"


@pytest.mark.parametrize("who", ["agent1", "agent2", "chief1", "zb_sthj", "huarui", "owner1", "auditor1"])
def test_only_the_supervisor_and_the_window_may_reassign(svc, all_cases_verified, who):
    case_no, task_id = lead_case(svc)
    before = len(h.events(svc, case_no))
    with pytest.raises(Forbidden):
        svc.reassign_task(actor(svc, who), task_id, "agent2", REASON)
    with pytest.raises(Forbidden):
        svc.reassign_form(actor(svc, who), task_id)
    with pytest.raises(Forbidden):
        svc.reassignment_queue(actor(svc, who))
    assert len(h.events(svc, case_no)) == before
    assert h.find_task(svc, "agent1", "分派服务事项", case_no=case_no)


@pytest.mark.parametrize(("to", "reason", "scope", "words"), [
    ("window1", REASON, "task", "不是「全科代办员」"),
    ("zb_sthj", REASON, "task", "不是「全科代办员」"),
    ("huarui", REASON, "task", "不是「全科代办员」"),
    ("agent2-inactive", REASON, "task", "不存在或已停用"),
    ("nobody", REASON, "task", "不存在或已停用"),
    ("agent1", REASON, "task", "无需改派"),
    ("", REASON, "task", "请选择新办理人"),
    (None, REASON, "task", "请选择新办理人"),
    ("agent2", "", "task", "请填写改派原因"),
    ("agent2", "   ", "task", "请填写改派原因"),
    ("agent2", None, "task", "请填写改派原因"),
    ("agent2", "原因" * 251, "task", "不能超过 500 字"),
    ("agent2", "休假\x00", "task", "控制字符"),
    ("agent2", REASON, "everything", "改派范围"),
    ("agent2", REASON, ["task"], "改派范围"),
])
def test_bad_reassignments_are_chinese_422_and_change_nothing(svc, all_cases_verified, to, reason, scope, words):
    case_no, task_id = lead_case(svc)
    if to == "agent2-inactive":
        deactivate(svc, "agent2")
        to = "agent2"
    before = (len(h.events(svc, case_no)), h.case_row(svc, case_no).state)
    with pytest.raises(InvalidInput) as refused:
        svc.reassign_task(actor(svc, "supervisor1"), task_id, to, reason, scope)
    assert words in refused.value.message
    assert (len(h.events(svc, case_no)), h.case_row(svc, case_no).state) == before
    assert h.find_task(svc, "agent1", "分派服务事项", case_no=case_no)["assignee"] == "agent1"


def test_the_lead_cannot_be_handed_over_from_a_pool_task_nor_an_applicants_task_be_reassigned(svc, all_cases_verified):
    h.freeze_clock()
    case_no = h.start(svc)
    review = h.find_task(svc, "agent1", "受理审核", case_no=case_no)["task_id"]
    with pytest.raises(InvalidInput) as refused:       # 受理审核 is any agent's: no lead to hand over yet
        reassign(svc, "window1", review, "agent2", scope="lead")
    assert "只能改派此项待办" in refused.value.message
    reassign(svc, "window1", review, "agent2")          # but the task itself may go to one agent
    assert h.inbox_names(svc, "agent1", case_no) == []
    h.complete(svc, "agent2", "受理审核", case_no=case_no, **h.accept())
    h.complete(svc, "agent2", "材料交接并签订委托书", case_no=case_no, **h.commission())
    h.dispatch(svc, case_no, ["hp"], lead="agent2")
    h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=case_no, **h.needs_correction("补交环评报告表"))
    correction = h.find_task(svc, "huarui", "补正材料", case_no=case_no)["task_id"]
    with pytest.raises(InvalidInput) as refused:
        reassign(svc, "supervisor1", correction, "agent1")
    assert "申请单位的待办" in refused.value.message


def test_a_task_already_done_or_unknown(svc, all_cases_verified):
    case_no, task_id = lead_case(svc)
    h.dispatch(svc, case_no, ["hp"])
    with pytest.raises(Conflict):
        svc.reassign_task(actor(svc, "supervisor1"), task_id, "agent2", REASON)
    for bad in ("00000000-0000-0000-0000-000000000000", "not-a-task", "x" * 5000):
        with pytest.raises(NotFound):
            svc.reassign_task(actor(svc, "supervisor1"), bad, "agent2", REASON)


# ---- the supervisor's list -------------------------------------------------------------------------------------------
@both
def test_a_deactivated_leads_tasks_and_an_unstaffed_department_are_listed(svc, all_cases_verified):
    case_no, task_id = lead_case(svc)
    other, _ = lead_case(svc)
    h.dispatch(svc, other, ["hp", "xf"])
    assert svc.reassignment_queue(actor(svc, "supervisor1")) == []
    deactivate(svc, "agent1")
    deactivate(svc, "zb_sthj")
    queue = svc.reassignment_queue(actor(svc, "window1"))
    listed = {(q["case_no"], q["name"], q["title"]): q for q in queue}
    assert set(listed) == {(case_no, "分派服务事项", None), (other, "部门办理", "环评")}
    lead = listed[(case_no, "分派服务事项", None)]
    assert lead["why"] == "指定办理人已停用" and lead["assignee_name"] == "王代办"
    assert [c["username"] for c in lead["candidates"]] == ["agent2", "chief1", "chief2"]
    dept = listed[(other, "部门办理", "环评")]
    assert dept["why"] == "该部门没有在岗的专办员" and dept["candidates"] == []
    assert dept["department_name"] == "焦作市生态环境局武陟分局"
    reassign(svc, "supervisor1", task_id, "agent2", "王代办已调离", scope="lead")
    add_specialist(svc, "zb_sthj2", "sthj", "环评二号专办员")      # the department staffed again: nothing to do
    assert svc.reassignment_queue(actor(svc, "supervisor1")) == []
    h.dispatch(svc, case_no, ["gd"], lead="agent2")


# ---- audit: a tampered 改派 ------------------------------------------------------------------------------------------
def user_id(db, username: str) -> int:
    with db.engine.begin() as c:
        return c.execute(select(USERS.c.id).where(USERS.c.username == username)).scalar_one()


def test_a_reassignment_forged_after_the_fact_fails_verify(svc, db, process_files):
    case_no, task_id = lead_case(svc)
    reassign(svc, "supervisor1", task_id, "agent2")
    h.dispatch(svc, case_no, ["hp"], lead="agent2")
    assert verdict(db, process_files, case_no)["ok"]
    h.drop_append_only_guards(db.engine)
    e = next(e for e in h.events(svc, case_no) if e.type == "task_reassigned")
    done = next(e for e in h.events(svc, case_no) if e.type == "task_completed" and e.task_name == "分派服务事项")
    # unsealed: the chain breaks
    sql(db, "UPDATE events SET payload = :p WHERE id = :i", p=json.dumps(dict(e.payload, reason="改过的原因"),
                                                                          ensure_ascii=False), i=e.id)
    caught(db, process_files, case_no, "哈希不符", seq=e.seq)
    # resealed, the task "given" to chief1 instead: agent2's completion is refused by the replay
    sql(db, "UPDATE events SET payload = :p WHERE id = :i",
        p=json.dumps(dict(e.payload, to="chief1", to_id=user_id(db, "chief1")), ensure_ascii=False), i=e.id)
    reseal(db, case_no)
    caught(db, process_files, case_no, "无权办理", "chief1", seq=done.seq)
    # the 改派 as it was, but the completion credited to the old holder: refused, the task was agent2's
    sql(db, "UPDATE events SET payload = :p WHERE id = :i", p=json.dumps(e.payload, ensure_ascii=False), i=e.id)
    reseal(db, case_no)
    assert verdict(db, process_files, case_no)["ok"]
    sql(db, "UPDATE events SET actor_id = :a, actor_name = 'agent1' WHERE id = :i", a=user_id(db, "agent1"), i=done.id)
    reseal(db, case_no)
    caught(db, process_files, case_no, "无权办理", "agent2", seq=done.seq)


def test_a_reassignment_pointing_at_another_account_or_holder_fails_verify(svc, db, process_files):
    case_no, task_id = lead_case(svc)
    reassign(svc, "supervisor1", task_id, "agent2")
    h.drop_append_only_guards(db.engine)
    e = next(e for e in h.events(svc, case_no) if e.type == "task_reassigned")
    sql(db, "UPDATE events SET payload = :p WHERE id = :i",
        p=json.dumps(dict(e.payload, to_id=user_id(db, "window1")), ensure_ascii=False), i=e.id)
    reseal(db, case_no)
    caught(db, process_files, case_no, "新办理人的账号与记录不符", seq=e.seq)
    sql(db, "UPDATE events SET payload = :p WHERE id = :i",
        p=json.dumps(dict(e.payload, **{"from": "chief2"}), ensure_ascii=False), i=e.id)
    reseal(db, case_no)
    caught(db, process_files, case_no, "改派前的办理人与重放不同", seq=e.seq)
    sql(db, "UPDATE events SET payload = :p WHERE id = :i",
        p=json.dumps(dict(e.payload, to="chief1"), ensure_ascii=False), i=e.id)
    reseal(db, case_no)
    caught(db, process_files, case_no, "新办理人的账号与记录不符", seq=e.seq)


# ---- pages and API ---------------------------------------------------------------------------------------------------
@pytest.fixture
def app(svc):
    from web import create_app
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


def test_the_case_page_offers_reassign_to_supervisor_and_window_only(app, svc, all_cases_verified):
    case_no, task_id = lead_case(svc)
    for who in ("supervisor1", "window1"):
        assert f"/tasks/{task_id}/reassign" in html_login(app, who).get(f"/cases/{case_no}").text
    for who in ("agent1", "auditor1", "huarui"):
        c = html_login(app, who)
        assert "/reassign" not in c.get(f"/cases/{case_no}").text
        assert c.get(f"/tasks/{task_id}/reassign").status_code == 403
    c = html_login(app, "supervisor1")
    page = c.get(f"/tasks/{task_id}/reassign")
    assert page.status_code == 200 and "改派待办" in page.text and "刘代办" in page.text and "王代办" in page.text
    bad = c.post(f"/tasks/{task_id}/reassign", data={"csrf_token": token(page.text), "to": "agent2", "reason": ""})
    assert bad.status_code == 422 and "请填写改派原因" in bad.text
    bad = c.post(f"/tasks/{task_id}/reassign", data={"csrf_token": token(page.text), "to": "window1", "reason": "x"})
    assert bad.status_code == 422 and "不是「全科代办员」" in bad.text
    assert c.post(f"/tasks/{task_id}/reassign", data={"to": "agent2", "reason": "x"}).status_code == 400
    done = c.post(f"/tasks/{task_id}/reassign", data={"csrf_token": token(page.text), "to": "agent2", "reason": REASON,
                                                       "scope": "lead"})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/cases/{case_no}")
    case_page = c.get(f"/cases/{case_no}").text
    assert "改派" in case_page and "由王代办改派给刘代办" in case_page and "task_reassigned" not in case_page
    h.tick()
    agent2 = html_login(app, "agent2")
    assert "分派服务事项" in agent2.get("/inbox").text
    assert html_login(app, "agent1").get(f"/tasks/{task_id}").status_code == 403


def test_the_supervision_page_lists_a_deactivated_leads_tasks_with_a_form(app, svc, all_cases_verified):
    case_no, task_id = lead_case(svc)
    c = html_login(app, "supervisor1")
    assert "没有需要改派的待办" in c.get("/supervision").text
    deactivate(svc, "agent1")
    page = c.get("/supervision")
    assert "需要改派的待办" in page.text and case_no in page.text and "指定办理人已停用" in page.text
    assert "分派服务事项" in page.text and "刘代办" in page.text
    for who in ("agent2", "chief1", "auditor1"):      # the supervision page without the list
        assert "需要改派的待办" not in html_login(app, who).get("/supervision").text
    r = c.post(f"/tasks/{task_id}/reassign", data={"csrf_token": token(page.text), "to": "agent2", "reason": REASON,
                                                    "scope": "task", "back": "supervision"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/supervision")
    assert "没有需要改派的待办" in c.get("/supervision").text
    assert h.find_task(svc, "agent2", "分派服务事项", case_no=case_no)


@both
def test_the_api_reassigns_and_answers_each_error(app, svc, all_cases_verified):
    case_no, task_id = lead_case(svc)
    url = f"/api/tasks/{task_id}/reassign"
    for who in ("agent1", "auditor1", "zb_sthj", "huarui"):
        c = api_login(app, who)
        assert_json_error(c.post(url, json={"to": "agent2", "reason": REASON}), 403)
        assert_json_error(c.get(url), 403)
        assert_json_error(c.get("/api/reassignments"), 403)
    assert_json_error(app.test_client().post(url, json={"to": "agent2", "reason": REASON}), 401)
    c = api_login(app, "window1")
    form = c.get(url).json
    assert [x["username"] for x in form["candidates"]] == ["agent2", "chief1", "chief2"] and form["lead_possible"]
    assert_json_error(c.post(url, json={"to": "agent2"}), 422, "请填写改派原因", "reason")
    assert_json_error(c.post(url, json={"to": "window1", "reason": REASON}), 422, "全科代办员", "to")
    assert_json_error(c.post(url, json={"to": 7, "reason": REASON}), 422, "请选择新办理人")
    assert_json_error(c.post(url, json={"to": "agent2", "reason": REASON, "who": "x"}), 422)
    assert_json_error(c.post(url, data="to=agent2"), 422)
    assert_json_error(c.post("/api/tasks/00000000-0000-0000-0000-000000000000/reassign",
                             json={"to": "agent2", "reason": REASON}), 404)
    r = c.post(url, json={"to": "agent2", "reason": REASON})
    assert r.status_code == 200 and r.json["to"] == "agent2" and r.json["case_no"] == case_no
    h.tick()
    assert_json_error(c.post(url, json={"to": "agent2", "reason": REASON}), 422, "无需改派")
    assert_json_error(api_login(app, "agent1").post(f"/api/tasks/{task_id}/complete", json={"service_items": ["hp"]}),
                      403)
    done = api_login(app, "agent2").post(f"/api/tasks/{task_id}/complete", json={"service_items": ["hp"]})
    assert done.status_code == 200, done.text
    assert_json_error(c.post(url, json={"to": "agent1", "reason": REASON}), 409)
    assert c.get("/api/reassignments").json == {"tasks": []}


def test_an_exported_dossier_with_a_reassignment_verifies_elsewhere(svc, all_cases_verified):
    from engine.audit import verify_dossier
    case_no, task_id = lead_case(svc)
    reassign(svc, "window1", task_id, "agent2", scope="lead")
    h.dispatch(svc, case_no, ["hp"], lead="agent2")
    dossier = svc.export_dossier(None, case_no)
    assert verify_dossier(dossier)["ok"]
    forged = json.loads(json.dumps(dossier))
    e = next(e for e in forged["events"] if e["type"] == "task_reassigned")
    e["payload"]["to"] = "chief1"
    assert not verify_dossier(forged)["ok"]
