"""Service stations (基层政务服务站) and withdrawal before acceptance (撤回申请).

A station clerk submits applications for local units: the channel is the clerk's station (set by the service, not by
the form), recorded on ``case_started`` and in the case variables; the clerk sees the cases they submitted and nothing
else, and has no tasks. An applicant may withdraw an application while 受理审核 is open: the case ends as 已撤回 without
a 终止单; after acceptance the withdrawal is refused with a Chinese 409. Engine paths run warm and cold and end with
``audit verify``; the HTTP tests go through the JSON API and the pages.
"""
from __future__ import annotations

import pytest

from engine.errors import Conflict, Forbidden, NotFound
from engine.usecases.base import PAGE_SIZE
from tests import helpers as h
from tests.conftest import actor
from tests.webclient import api_login, assert_json_error, html_login

STATION_CHANNEL = "乡镇（街道）便民服务中心"


@pytest.fixture(autouse=True)
def frozen_clock():
    h.freeze_clock()


def unit_id(svc, name: str) -> int:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.unit_by_name(name).id


def station_start(svc, username: str = "station1", unit: str = "河南嘉禾新材料科技有限公司", **over) -> str:
    data = h.application(unit_name=unit, channel="综合窗口", **over)
    started = svc.start_case(actor(svc, username), h.PROCESS, data, unit_id=unit_id(svc, unit))
    h.tick()
    return started.case_no


def add_clerk(svc, username: str, station: str | None) -> None:
    from werkzeug.security import generate_password_hash
    with svc.db.unit_of_work() as uow:
        uow.repo.insert_user(username=username, password_hash=generate_password_hash("demo1234", method="pbkdf2:sha256:1000"),
                             display_name="城关邮政", roles="station", department=None, unit_id=None, active=True,
                             station=station)
        uow.commit()


# ---- stations -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_a_station_clerk_applies_for_a_unit_and_the_station_is_the_channel(svc):
    form = svc.start_form(actor(svc, "station1"), h.PROCESS)
    assert form["needs_unit"] is True and {u["name"] for u in form["units"]} >= {"河南嘉禾新材料科技有限公司"}
    assert form["defaults"]["channel"] == STATION_CHANNEL
    case_no = station_start(svc)
    first = h.events(svc, case_no)[0]
    assert (first.actor_name, first.role) == ("station1", "station")
    assert first.payload["form"]["channel"] == STATION_CHANNEL          # not the 综合窗口 the form said
    assert first.payload["facts"]["station"] == "zdz"
    assert first.payload["facts"]["station_name"] == "詹店镇便民服务中心"
    row = h.case_row(svc, case_no)
    assert row.unit_name == "河南嘉禾新材料科技有限公司"
    assert row.case_vars["station_name"] == "詹店镇便民服务中心" and row.case_vars["station"] == "zdz"
    assert "詹店镇便民服务中心" in h.view(svc, case_no, "station1")["timeline"][0]["summary"]
    # the unit's own handler sees it and acts on it; the clerk has no tasks in the flow
    assert h.inbox_names(svc, "station1") == []
    assert [c["case_no"] for c in svc.search_cases(actor(svc, "jiahe"))["cases"]] == [case_no]
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    assert h.inbox_names(svc, "station1") == []
    # the clerk follows the progress
    assert h.view(svc, case_no, "station1")["case"]["stage"] == "代办受理"
    assert h.inbox_names(svc, "jiahe") == []


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_a_station_clerk_sees_only_the_cases_they_submitted(svc):
    mine = [station_start(svc), station_start(svc, unit="武陟县华瑞食品有限公司")]
    other = h.start(svc, "huarui")
    add_clerk(svc, "station2", "yzcg")
    theirs = station_start(svc, "station2")
    listed = svc.search_cases(actor(svc, "station1"))
    assert sorted(c["case_no"] for c in listed["cases"]) == sorted(mine) and listed["total"] == 2
    assert [c["case_no"] for c in svc.search_cases(actor(svc, "station2"))["cases"]] == [theirs]
    assert h.events(svc, theirs)[0].payload["form"]["channel"] == "邮政网点"
    for no in (other, theirs):
        with pytest.raises(NotFound):
            svc.get_case(actor(svc, "station1"), no)
    with pytest.raises(NotFound):
        svc.application(actor(svc, "station1"), other)
    assert svc.application(actor(svc, "station1"), mine[0])["case"]["case_no"] == mine[0]
    # the agents still see everything
    assert svc.search_cases(actor(svc, "agent1"))["total"] == 4
    assert PAGE_SIZE >= 4


def test_a_clerk_without_a_station_cannot_apply_and_nothing_is_written(svc):
    add_clerk(svc, "station3", None)
    add_clerk(svc, "station4", "nowhere")
    for who in ("station3", "station4"):
        with pytest.raises(Forbidden, match="服务站"):
            station_start(svc, who)
    assert svc.search_cases(actor(svc, "agent1"))["total"] == 0


# ---- withdrawal --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_the_applicant_withdraws_before_review(svc):
    case_no = h.start(svc)
    assert [a["key"] for a in h.view(svc, case_no, "huarui")["actions"]] == ["withdrawal"]
    assert h.view(svc, case_no, "agent1")["actions"] == []
    for who, error in (("agent1", Forbidden), ("window1", Forbidden), ("jiahe", NotFound), ("auditor1", Forbidden)):
        with pytest.raises(error):
            svc.send_message(actor(svc, who), case_no, "withdrawal", {"reason": "不办了"})
    h.send(svc, "huarui", case_no, "withdrawal", reason="项目暂缓实施")
    row = h.case_row(svc, case_no)
    assert (row.status, row.stage) == ("withdrawn", "代办受理")
    assert h.open_tasks(svc, case_no) == [] and h.inbox_names(svc, "agent1") == []
    assert h.documents(svc, case_no) == []                # no 终止单
    types = h.event_types(svc, case_no)
    assert types == ["case_started", "application_withdrawn", "task_ended", "status_changed"]
    assert h.events(svc, case_no)[2].task_name == "受理审核"     # the review ends without being done
    withdrawn = h.events(svc, case_no)[1]
    assert withdrawn.payload["form"] == {"reason": "项目暂缓实施"} and withdrawn.actor_name == "huarui"
    view = h.view(svc, case_no, "huarui")
    assert view["case"]["status_name"] == "已撤回" and view["actions"] == []
    assert view["stages"][0]["state"] == "stopped"
    assert any(e["label"] == "撤回申请" and e["fields"] for e in view["timeline"])
    # the list shows it, the status filter finds it
    found = svc.search_cases(actor(svc, "agent1"), status="withdrawn")["cases"]
    assert [(c["case_no"], c["status_name"]) for c in found] == [(case_no, "已撤回")]
    assert svc.search_cases(actor(svc, "agent1"), status="active")["total"] == 0
    with pytest.raises(Conflict):
        svc.send_message(actor(svc, "huarui"), case_no, "withdrawal", {})
    h.assert_round_trip(svc, case_no)


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_withdrawal_needs_no_reason_and_a_station_case_can_be_withdrawn_by_its_unit(svc):
    case_no = station_start(svc)
    with pytest.raises(Forbidden):
        svc.send_message(actor(svc, "station1"), case_no, "withdrawal", {})
    h.send(svc, "jiahe", case_no, "withdrawal")
    assert h.case_row(svc, case_no).status == "withdrawn"
    assert [c["status_name"] for c in svc.search_cases(actor(svc, "station1"))["cases"]] == ["已撤回"]


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_after_acceptance_or_refusal_withdrawal_is_refused(svc):
    accepted = h.start(svc)
    h.complete(svc, "agent1", "受理审核", case_no=accepted, **h.accept())
    with pytest.raises(Conflict, match="不能再撤回") as err:
        svc.send_message(actor(svc, "huarui"), accepted, "withdrawal", {"reason": "不办了"})
    assert "申请终止" in err.value.message
    assert [a["key"] for a in h.view(svc, accepted, "huarui")["actions"]] == ["termination_request"]
    assert h.case_row(svc, accepted).status == "active"
    assert h.event_types(svc, accepted).count("application_withdrawn") == 0

    refused = h.start(svc)
    h.complete(svc, "agent2", "受理审核", case_no=refused, review_decision="不予受理",
               refusal_explanation="不属于帮办代办服务事项")
    with pytest.raises(Conflict):
        svc.send_message(actor(svc, "huarui"), refused, "withdrawal", {})
    assert h.case_row(svc, refused).status == "refused"


# ---- HTTP -----------------------------------------------------------------------------------------------------------
@pytest.fixture
def app(svc):
    from web import create_app
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


def test_station_and_withdrawal_over_http(app, svc):
    clerk = api_login(app, "station1")
    data = h.application(unit_name="河南嘉禾新材料科技有限公司", channel="网上申请（武来办）")
    r = clerk.post("/api/cases", json={"data": data})
    assert_json_error(r, 422, "申请单位")
    r = clerk.post("/api/cases", json={"data": data, "unit_id": unit_id(svc, "河南嘉禾新材料科技有限公司")})
    assert r.status_code == 201, r.text
    case_no = r.json["case_no"]
    assert clerk.get(f"/api/cases/{case_no}").status_code == 200
    assert [c["case_no"] for c in clerk.get("/api/cases").json["cases"]] == [case_no]
    assert clerk.get("/api/tasks").json["tasks"] == []
    other = api_login(app, "huarui").post("/api/cases", json={"data": h.application()}).json["case_no"]
    assert_json_error(clerk.get(f"/api/cases/{other}"), 404)
    page = html_login(app, "station1").get("/cases")
    assert case_no in page.text and other not in page.text

    # withdrawal: the applicant, before review; 已撤回 on the list and the case page
    applicant = api_login(app, "huarui")
    assert_json_error(api_login(app, "agent1").post(f"/api/cases/{other}/messages/withdrawal", json={}), 403)
    r = applicant.post(f"/api/cases/{other}/messages/withdrawal", json={"reason": "重复提交"})
    assert r.status_code == 200, r.text
    assert applicant.get(f"/api/cases/{other}").json["case"]["status_name"] == "已撤回"
    listed = html_login(app, "agent1").get("/cases?status=withdrawn")
    assert other in listed.text and "已撤回" in listed.text and case_no not in listed.text
    assert "已撤回" in html_login(app, "huarui").get(f"/cases/{other}").text
    # after acceptance: a Chinese 409, nothing changes
    agent = api_login(app, "agent1")
    task = next(t for t in agent.get("/api/tasks").json["tasks"] if t["case_no"] == case_no)
    assert agent.post(f"/api/tasks/{task['task_id']}/complete", json=h.accept()).status_code == 200
    body = assert_json_error(api_login(app, "jiahe").post(f"/api/cases/{case_no}/messages/withdrawal", json={}), 409,
                             "不能再撤回")
    assert body["error"]
    assert api_login(app, "jiahe").get(f"/api/cases/{case_no}").json["case"]["status"] == "active"
    assert_json_error(applicant.post(f"/api/cases/{other}/messages/withdrawal", json={}), 409)   # already withdrawn
    fresh = applicant.post("/api/cases", json={"data": h.application()}).json["case_no"]
    assert_json_error(applicant.post(f"/api/cases/{fresh}/messages/withdrawal", json={"reason": "长" * 1001}), 422)
    assert_json_error(applicant.post(f"/api/cases/{fresh}/messages/withdrawal", json={"why": "多余字段"}), 422)
    assert applicant.get(f"/api/cases/{fresh}").json["case"]["status"] == "active"
