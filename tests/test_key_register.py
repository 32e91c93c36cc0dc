"""The key-project register (重点项目 by 县发展和改革委员会, 重点企业 by 县科技和工业信息化局) and the three key routes.

Engine tests (no Flask): the register per role, its bad input, validity dates and revocation; then the routes a claim
takes, each run warm and cold and ending with ``audit verify``: a designated claim goes to the chief officer; a claim
the register does not hold goes to the 综合窗口's 核实重点认定, which decides (with a reason) between the key route and
the ordinary one; no claim goes the ordinary way. HTTP tests of the register pages per role are at the end.
"""
from __future__ import annotations

from datetime import date

import pytest

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from tests import helpers as h
from tests.conftest import actor
from tests.webclient import html_login, token

REGISTERED_PROJECT = "2026-410823-14-03-000001"     # the demo register's (engine.demo.KEY_DESIGNATIONS)
JIAHE_CODE = "91410823MA9JH00029"                    # 嘉禾's credit code, a key enterprise in the demo register
HUARUI_CODE = "91410823MA9HR0001H"
VERIFY = "核实重点认定"
ASSIGN = "指派项目首席服务员"


@pytest.fixture(autouse=True)
def frozen_clock():
    h.freeze_clock()


def add(svc, who: str, kind: str, code: str, **over):
    values = dict(name="某重点项目", document_no="武发改重〔2026〕21号", valid_from="2026-01-01", valid_to=None)
    values.update(over)
    return svc.add_key_designation(actor(svc, who), kind, code, **values)


def admin_log(svc) -> list:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.admin_changes(target_kind="key")


# ---- the register, per role ------------------------------------------------------------------------------------------
def test_each_designator_manages_only_its_own_kind(svc):
    project = add(svc, "fgw1", "project", "2026-410823-99-01-000123", name="智能装备产业园项目")
    enterprise = add(svc, "kgj1", "enterprise", HUARUI_CODE, name="武陟县华瑞食品有限公司",
                     document_no="武科工重企〔2026〕9号")
    with pytest.raises(Forbidden, match="县科技和工业信息化局"):
        add(svc, "fgw1", "enterprise", "91410823MA9XX0003A")
    with pytest.raises(Forbidden, match="县发展和改革委员会"):
        add(svc, "kgj1", "project", "2026-410823-99-01-000124")
    for who in ("agent1", "window1", "supervisor1", "auditor1", "chief1", "huarui", "station1", "zb_sthj"):
        for kind in ("project", "enterprise"):
            with pytest.raises(Forbidden):
                add(svc, who, kind, "2026-410823-99-01-000125" if kind == "project" else "91410823MA9XX0004B")

    # readable by the window, agents, the supervisor, the auditor and the designators; not by applicants or clerks
    for who in ("window1", "agent1", "supervisor1", "auditor1", "fgw1", "kgj1"):
        listed = svc.key_register(actor(svc, who))
        assert {r["code"] for r in listed["rows"]} >= {"2026-410823-99-01-000123", HUARUI_CODE}
    for who in ("huarui", "station1", "zb_sthj", "owner1"):
        with pytest.raises(Forbidden):
            svc.key_register(actor(svc, who))
    assert svc.key_register(actor(svc, "fgw1"))["manage_kinds"] == ["project"]
    assert svc.key_register(actor(svc, "kgj1"))["manage_kinds"] == ["enterprise"]
    assert svc.key_register(actor(svc, "auditor1"))["manage_kinds"] == []

    # search by code, name or document number; filter by kind
    found = svc.key_register(actor(svc, "window1"), q="智能装备")["rows"]
    assert [r["id"] for r in found] == [project["id"]]
    assert [r["id"] for r in svc.key_register(actor(svc, "window1"), q="9号")["rows"]] == [enterprise["id"]]
    assert {r["kind"] for r in svc.key_register(actor(svc, "window1"), kind="enterprise")["rows"]} == {"enterprise"}

    # revocation: by the own kind's designator only, with a reason, once
    with pytest.raises(Forbidden):
        svc.revoke_key_designation(actor(svc, "kgj1"), project["id"], "认定有误")
    with pytest.raises(Forbidden):
        svc.revoke_key_designation(actor(svc, "window1"), project["id"], "认定有误")
    with pytest.raises(InvalidInput, match="撤销原因"):
        svc.revoke_key_designation(actor(svc, "fgw1"), project["id"], "  ")
    svc.revoke_key_designation(actor(svc, "fgw1"), project["id"], "项目已调出重点项目名单")
    with pytest.raises(Conflict, match="已经撤销"):
        svc.revoke_key_designation(actor(svc, "fgw1"), project["id"], "再次撤销")
    with pytest.raises(NotFound):
        svc.revoke_key_designation(actor(svc, "fgw1"), 999999, "不存在")
    row = next(r for r in svc.key_register(actor(svc, "window1"))["rows"] if r["id"] == project["id"])
    assert (row["state"], row["revoked_by"]) == ("已撤销", "fgw1")

    # every change is in the administrative change log: who, what, old → new, why
    log = admin_log(svc)
    assert [(e.action, e.actor_name, e.target) for e in reversed(log)] == [
        ("key_designation_added", "fgw1", "project:2026-410823-99-01-000123"),
        ("key_designation_added", "kgj1", f"enterprise:{HUARUI_CODE}"),
        ("key_designation_revoked", "fgw1", "project:2026-410823-99-01-000123")]
    assert log[0].reason == "项目已调出重点项目名单" and log[0].new["revoked"] is True
    assert log[2].new["document_no"] == "武发改重〔2026〕21号" and log[2].old is None


@pytest.mark.parametrize("code, message", [
    ("91410823MA9XX000", "18"),                        # too short
    ("91410823ma9xx0003a", "统一社会信用代码"),          # lowercase
    ("９１410823MA9XX0003A", "统一社会信用代码"),        # full-width digits
    ("91410823MA9XX0003I", "统一社会信用代码"),          # I is not in the charset
])
def test_bad_credit_codes_are_refused_in_chinese(svc, code, message):
    with pytest.raises(InvalidInput, match=message) as err:
        add(svc, "kgj1", "enterprise", code)
    assert "统一社会信用代码" in err.value.message
    assert svc.key_register(actor(svc, "kgj1"))["total"] == 3   # the demo's three, nothing half-written
    assert admin_log(svc) == []


@pytest.mark.parametrize("over, message", [
    ({"document_no": ""}, "认定文件文号"),
    ({"name": "x"}, "名称"),
    ({"name": "项目\x07名称"}, "控制字符"),
    ({"valid_from": ""}, "有效期起"),
    ({"valid_from": "2026/01/01"}, "日期"),
    ({"valid_from": "2026-02-30"}, "有效的日期"),
    ({"valid_from": "2026-06-01", "valid_to": "2026-05-31"}, "不能早于"),
])
def test_bad_designations_are_refused_in_chinese(svc, over, message):
    with pytest.raises(InvalidInput, match=message):
        add(svc, "fgw1", "project", "2026-410823-99-01-000200", **over)
    with pytest.raises(InvalidInput, match="认定类别"):
        add(svc, "fgw1", "other", "2026-410823-99-01-000200")
    assert admin_log(svc) == []


def test_a_code_designated_for_an_overlapping_period_is_refused(svc):
    add(svc, "fgw1", "project", "2026-410823-99-01-000300", valid_from="2026-01-01", valid_to="2026-06-30")
    with pytest.raises(Conflict, match="请先撤销"):
        add(svc, "fgw1", "project", "2026-410823-99-01-000300", valid_from="2026-06-01")
    add(svc, "fgw1", "project", "2026-410823-99-01-000300", valid_from="2026-07-01", document_no="武发改重〔2026〕40号")
    with pytest.raises(Conflict, match="请先撤销"):   # the demo's own designation of the sample project
        add(svc, "fgw1", "project", REGISTERED_PROJECT, valid_from="2027-01-01", valid_to="2027-12-31")


# ---- the three routes of a claim (warm and cold, each ending with audit verify) ------------------------------------


def _first(svc, case_no: str):
    return h.events(svc, case_no)[0]


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_a_registered_key_project_goes_to_the_chief_route(svc):
    case_no = h.start(svc, key_project="重点项目", service_items=["hp"])
    facts = _first(svc, case_no).payload["facts"]
    assert facts["key_registered"] is True and facts["key_document"] == "武发改重〔2026〕3号"
    assert "已核验" in facts["key_note"]
    row = h.case_row(svc, case_no)
    assert row.case_vars["key_registered"] is True and row.case_vars["key_document"] == "武发改重〔2026〕3号"
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    assert h.inbox_names(svc, "window1") == [(ASSIGN, None)]
    h.complete(svc, "window1", ASSIGN, case_no=case_no, chief_officer="chief2",
               designated_by="县发展和改革委员会（重点项目）")
    h.complete(svc, "chief2", "签订代办委托协议", case_no=case_no, **h.agreement())
    assert h.case_row(svc, case_no).lead_user == "chief2"
    timeline = h.view(svc, case_no)["timeline"]
    assert "已核验" in timeline[0]["summary"]
    h.assert_round_trip(svc, case_no)


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_a_registered_key_enterprise_goes_to_the_chief_route(svc):
    case_no = h.start(svc, "jiahe", unit_name="河南嘉禾新材料科技有限公司", key_project="重点企业", project_code="",
                      service_items=["hp"])
    facts = _first(svc, case_no).payload["facts"]
    assert (facts["key_registered"], facts["key_document"]) == (True, "武科工重企〔2026〕2号")
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    assert h.inbox_names(svc, "window1") == [(ASSIGN, None)]


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_an_unregistered_claim_decided_as_key_goes_to_the_chief(svc):
    case_no = h.start(svc, key_project="重点项目", project_code="2026-410823-99-01-000777", service_items=["hp"])
    facts = _first(svc, case_no).payload["facts"]
    assert facts["key_registered"] is False and facts["key_document"] is None
    assert "没有有效认定" in facts["key_note"]
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    assert h.inbox_names(svc, "window1") == [(VERIFY, None)]
    assert h.inbox_names(svc, "agent1") == []
    task = h.find_task(svc, "window1", VERIFY)
    detail = svc.get_task(actor(svc, "window1"), task["task_id"])
    assert detail["schema"]["required"] == ["key_decision", "key_decision_reason"]
    # the reason is required, and blank is no reason; nothing changes on a refused submission
    for bad in ({"key_decision": "按重点项目/企业办理"}, {"key_decision": "按重点项目/企业办理", "key_decision_reason": "   "},
                {"key_decision": "都可以", "key_decision_reason": "核实无误"}):
        with pytest.raises(InvalidInput):
            svc.complete_task(actor(svc, "window1"), task["task_id"], bad)
    for who in ("agent1", "chief1", "huarui"):
        with pytest.raises(Forbidden):
            svc.complete_task(actor(svc, who), task["task_id"],
                              {"key_decision": "按一般项目办理", "key_decision_reason": "未列入名单"})
    h.complete(svc, "window1", VERIFY, case_no=case_no, key_decision="按重点项目/企业办理",
               key_decision_reason="已电话核实县发改委，认定文件尚在印发中")
    assert h.inbox_names(svc, "window1") == [(ASSIGN, None)]
    done = [e for e in h.events(svc, case_no) if e.type == "task_completed" and e.task_name == VERIFY]
    assert done[0].payload["form"] == {"key_decision": "按重点项目/企业办理",
                                       "key_decision_reason": "已电话核实县发改委，认定文件尚在印发中"}
    assert done[0].actor_name == "window1" and done[0].role == "window"
    h.complete(svc, "window1", ASSIGN, case_no=case_no, chief_officer="chief1",
               designated_by="县发展和改革委员会（重点项目）")
    h.complete(svc, "chief1", "签订代办委托协议", case_no=case_no, **h.agreement())
    assert h.case_row(svc, case_no).lead_user == "chief1"
    h.assert_round_trip(svc, case_no)


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_an_unregistered_claim_decided_as_ordinary_runs_the_ordinary_route_to_the_end(svc):
    case_no = h.start(svc, key_project="重点企业", service_items=["hp"])   # 华瑞 is no key enterprise in the register
    assert "统一社会信用代码 91410823MA9HR0001H" in _first(svc, case_no).payload["facts"]["key_note"]
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    h.complete(svc, "window1", VERIFY, case_no=case_no, key_decision="按一般项目办理",
               key_decision_reason="科工局认定名单中没有该企业")
    assert h.inbox_names(svc, "window1") == []
    assert h.inbox_names(svc, "agent1") == [("材料交接并签订委托书", None)]
    h.complete(svc, "agent1", "材料交接并签订委托书", case_no=case_no, **h.commission())
    h.dispatch(svc, case_no, ["hp"])
    h.approve_items(svc, case_no, ["hp"])
    h.collect_and_deliver(svc, case_no)
    h.complete(svc, "huarui", "签收办结单", case_no=case_no, **h.receipt())
    # no chief was assigned: nobody rates the window
    assert h.inbox_names(svc, "chief1") == [] and h.inbox_names(svc, "chief2") == []
    h.complete(svc, "huarui", "评价代办服务", case_no=case_no, **h.rating())
    h.complete(svc, "window1", "评价部门业务专办窗口", h.DEPT_NAMES["sthj"], case_no=case_no, **h.rating())
    assert h.case_row(svc, case_no).status == "completed"
    assert h.case_row(svc, case_no).lead_user == "agent1"


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_no_claim_goes_the_ordinary_way_without_verification(svc):
    case_no = h.start(svc, service_items=["hp"])
    assert _first(svc, case_no).payload["facts"] == {"key_registered": False, "key_document": None, "key_note": None}
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    assert h.inbox_names(svc, "window1") == []
    assert h.inbox_names(svc, "agent1") == [("材料交接并签订委托书", None)]


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
@pytest.mark.usefixtures("all_cases_verified")
def test_the_register_counts_on_the_application_day_only_while_valid_and_not_revoked(svc):
    # 2026-03-02 is the frozen application day
    add(svc, "fgw1", "project", "P-FUTURE", valid_from="2026-03-03")
    add(svc, "fgw1", "project", "P-EXPIRED", valid_from="2025-01-01", valid_to="2026-03-01")
    add(svc, "fgw1", "project", "P-LASTDAY", valid_from="2026-03-02", valid_to="2026-03-02")
    revoked = add(svc, "fgw1", "project", "P-REVOKED")
    svc.revoke_key_designation(actor(svc, "fgw1"), revoked["id"], "撤销认定")
    got = {}
    for code in ("P-FUTURE", "P-EXPIRED", "P-LASTDAY", "P-REVOKED"):
        no = h.start(svc, key_project="重点项目", project_code=code, service_items=["hp"])
        got[code] = _first(svc, no).payload["facts"]["key_registered"]
        h.complete(svc, "agent1", "受理审核", case_no=no, **h.accept())
    assert got == {"P-FUTURE": False, "P-EXPIRED": False, "P-LASTDAY": True, "P-REVOKED": False}
    assert sorted(n for n, _ in h.inbox_names(svc, "window1")) == sorted([VERIFY, VERIFY, VERIFY, ASSIGN])
    states = {r["code"]: r["state"] for r in svc.key_register(actor(svc, "window1"))["rows"]}
    assert states["P-FUTURE"] == "未生效" and states["P-EXPIRED"] == "已过期" and states["P-LASTDAY"] == "有效"
    assert states["P-REVOKED"] == "已撤销"
    # a project claim without a project number is not registered, and says why
    no = h.start(svc, key_project="重点项目", project_code="", service_items=["hp"])
    assert "未填写项目编号" in _first(svc, no).payload["facts"]["key_note"]
    assert date(2026, 3, 2) == h.START.date()


# ---- HTTP: the register pages per role ----------------------------------------------------------------------------
@pytest.fixture
def app(svc):
    from web import create_app
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


def test_register_pages_per_role(app, svc):
    for who in ("window1", "agent1", "supervisor1", "auditor1", "fgw1", "kgj1"):
        page = html_login(app, who).get("/keyregister")
        assert page.status_code == 200 and "重点项目" in page.text and REGISTERED_PROJECT in page.text, who
    for who in ("huarui", "station1", "zb_sthj", "owner1"):
        r = html_login(app, who).get("/keyregister")
        assert r.status_code == 403 and "无权" in r.text, who
    fgw = html_login(app, "fgw1")
    assert "登记重点项目" in fgw.get("/keyregister").text and "登记重点企业" not in fgw.get("/keyregister").text
    form = fgw.get("/keyregister/new?kind=project")
    assert form.status_code == 200
    r = fgw.post("/keyregister/new", data={"csrf_token": token(form.text), "kind": "project", "code": "2026-410823-99-01-000901",
                                          "name": "网页登记项目", "document_no": "武发改重〔2026〕50号",
                                          "valid_from": "2026-01-01", "valid_to": ""})
    assert r.status_code == 302
    listed = fgw.get("/keyregister?q=网页登记")
    assert "2026-410823-99-01-000901" in listed.text and "有效" in listed.text
    # bad input: the form again with a Chinese message, nothing written
    r = fgw.post("/keyregister/new", data={"csrf_token": token(form.text), "kind": "project", "code": "P-X", "name": "坏",
                                          "document_no": "", "valid_from": "2026-01-01"})
    assert r.status_code == 422 and "认定文件文号" in r.text
    # kgj1 may not add a project, the window may not add anything
    kgj = html_login(app, "kgj1")
    page = kgj.get("/keyregister")
    r = kgj.post("/keyregister/new", data={"csrf_token": token(page.text), "kind": "project", "code": "P-Y", "name": "某项目",
                                          "document_no": "文号", "valid_from": "2026-01-01"})
    assert r.status_code == 403 and "县发展和改革委员会" in r.text
    win = html_login(app, "window1")
    page = win.get("/keyregister")
    r = win.post("/keyregister/new", data={"csrf_token": token(page.text), "kind": "project", "code": "P-Z", "name": "某项目",
                                          "document_no": "文号", "valid_from": "2026-01-01"})
    assert r.status_code == 403
    # revoke: the designator of that kind only, with a reason
    row = next(r for r in svc.key_register(actor(svc, "fgw1"), q="网页登记")["rows"])
    r = kgj.post(f"/keyregister/{row['id']}/revoke", data={"csrf_token": token(kgj.get("/keyregister").text),
                                                            "reason": "错误"})
    assert r.status_code == 403
    page = fgw.get("/keyregister")
    r = fgw.post(f"/keyregister/{row['id']}/revoke", data={"csrf_token": token(page.text), "reason": ""})
    assert r.status_code == 422 and "撤销原因" in r.text
    r = fgw.post(f"/keyregister/{row['id']}/revoke", data={"csrf_token": token(page.text), "reason": "名单调整"})
    assert r.status_code == 302
    assert "已撤销" in fgw.get("/keyregister?q=网页登记").text
    r = fgw.post("/keyregister/abc/revoke", data={"csrf_token": token(page.text), "reason": "名单调整"})
    assert r.status_code == 404


def test_the_verification_task_shows_the_claim_and_why_it_was_not_found(svc):
    case_no = h.start(svc, key_project="重点项目", project_code="2026-410823-99-01-000778", service_items=["hp"])
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    task = h.find_task(svc, "window1", VERIFY)
    context = dict(svc.get_task(actor(svc, "window1"), task["task_id"])["context"])
    assert context["是否重点项目/重点企业"] == "重点项目" and context["项目编号"] == "2026-410823-99-01-000778"
    assert "没有有效认定" in context["重点认定核验结果"]
    page = html_login_page(svc, "window1", f"/tasks/{task['task_id']}")
    assert "重点认定核验结果" in page and "key_note" not in page and "按一般项目办理" in page


def html_login_page(svc, username: str, path: str) -> str:
    from web import create_app
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    r = html_login(app, username).get(path)
    assert r.status_code == 200
    return r.text
