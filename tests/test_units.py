"""Applicant units (issue 13): 统一社会信用代码, online registration and its review by the 综合窗口, a unit
administrator's handlers, the unit fields of an application taken from the unit record, and possible duplicate
applications flagged at 受理审核. Engine tests per use case and role, then the pages per role over HTTP."""
from __future__ import annotations

import pytest

from engine import creditcode
from engine.demo import SAMPLE_APPLICATION, UNITS
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from tests import helpers as h
from tests.conftest import actor
from tests.webclient import html_login, token
from web import create_app

HUARUI, JIAHE = UNITS[0]["name"], UNITS[1]["name"]
# published codes of listed companies (华为技术、深圳市腾讯计算机系统、阿里巴巴（中国）、中国石油天然气集团、小米科技)
REAL_CODES = ["914403001922038216", "91440300708461136T", "91330100799655058B", "91110000100017643K",
              "91110108551385082Q"]
NEW_CODE = creditcode.with_check("91410823MA9XY0003")


def registration(**overrides) -> dict:
    form = {"name": "武陟县新源机械制造有限公司", "credit_code": NEW_CODE, "legal_representative": "王新源",
            "address": "武陟县木城街道新源路1号", "postcode": "454950", "leader_name": "王新源",
            "leader_phone": "0391-7223003", "contact_name": "赵经办", "contact_phone": "13712345678",
            "username": "xinyuan", "display_name": "赵经办（新源机械）", "password": "xinyuan-2026"}
    form.update(overrides)
    return form


def unit_row(svc, unit_id: int):
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.unit(unit_id)


def user_row(svc, username: str):
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.user_by_username(username)


def admin_log(svc, kind: str | None = None) -> list:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.admin_changes(kind)


# ---- 统一社会信用代码 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", REAL_CODES + [u["credit_code"] for u in UNITS])
def test_real_published_codes_and_the_demo_units_codes_are_valid(code):
    assert creditcode.validate(code) == code


@pytest.mark.parametrize("code, fragment", [
    ("91440300708461136", "应为 18 位，现为 17 位"),
    ("91440300708461136TT", "应为 18 位，现为 19 位"),
    ("", "请填写"),
    ("91440300708461136A", "第 18 位应为「T」"),
    ("914403001922038217", "第 18 位应为「6」"),
    ("91440300708461136t", "请使用大写字母"),
    ("９1440300708461136T", "请使用半角字符"),
    ("91440300708461136Ｔ", "请使用半角字符"),
    ("91440300708461136I", "不使用字母 I、O、Z、S、V"),
    ("9144030070846113OT", "不使用字母 I、O、Z、S、V"),
    ("91440300708461136-", "只能由数字和大写字母组成"),
    ("B1440300708461136T", "第 1 位"),
    ("9144A300708461136T", "第 3 至 8 位"),
])
def test_each_bad_code_gets_its_own_chinese_message(code, fragment):
    with pytest.raises(creditcode.CreditCodeError) as info:
        creditcode.validate(code)
    assert fragment in info.value.message


def test_full_width_input_is_not_silently_converted():
    wide = "".join(chr(ord(c) + 0xFEE0) for c in REAL_CODES[0])
    with pytest.raises(creditcode.CreditCodeError, match="半角"):
        creditcode.validate(wide)


# ---- registration and review --------------------------------------------------------------------------------------
def test_registration_is_pending_until_the_window_approves_then_its_handler_applies(svc, all_cases_verified):
    result = svc.register_unit(registration())
    assert result["status"] == "pending"
    handler = actor(svc, "xinyuan")
    row = user_row(svc, "xinyuan")
    assert row.active and row.unit_admin and handler.roles == ("applicant",)
    assert svc.my_unit(handler)["status"] == "pending"
    assert svc.startable_processes(handler) == []
    with pytest.raises(InvalidInput, match="正在审核"):
        svc.start_case(handler, h.PROCESS, h.application(unit_name="武陟县新源机械制造有限公司"))
    with pytest.raises(InvalidInput, match="正在审核"):
        svc.start_form(handler, h.PROCESS)
    # an agent cannot choose it either
    assert result["unit_id"] not in [u["id"] for u in svc.start_form(actor(svc, "agent1"), h.PROCESS)["units"]]

    for who in ("agent1", "supervisor1", "huarui", "auditor1"):
        with pytest.raises(Forbidden):
            svc.review_unit(actor(svc, who), result["unit_id"], "approve")
    pending = svc.unit_registrations(actor(svc, "window1"))
    assert [u["name"] for u in pending] == ["武陟县新源机械制造有限公司"]
    assert pending[0]["handlers"][0]["username"] == "xinyuan"
    svc.review_unit(actor(svc, "window1"), result["unit_id"], "approve")
    with pytest.raises(Conflict, match="已审核"):
        svc.review_unit(actor(svc, "window1"), result["unit_id"], "reject", "重复")
    assert unit_row(svc, result["unit_id"]).reviewed_by == "window1"
    assert [n["text"] for n in svc.notifications(handler)] == ["本单位注册已审核通过，可以提交帮办代办申请"]
    assert [(c.action, c.actor_name) for c in admin_log(svc, "unit")] == [("unit_approved", "window1"),
                                                                          ("unit_registered", "xinyuan")]

    # the unit fields come from the record: the handler need not type them
    form = svc.start_form(handler, h.PROCESS)
    assert form["defaults"]["unit_name"] == "武陟县新源机械制造有限公司"
    assert form["schema"]["properties"]["unit_name"]["readOnly"] is True
    data = h.application()
    for field in ("unit_name", "unit_address", "postcode", "leader_name", "leader_phone"):
        data.pop(field)
    case_no = svc.start_case(handler, h.PROCESS, data).case_no
    row = h.case_row(svc, case_no)
    assert row.unit_name == "武陟县新源机械制造有限公司" and row.unit_id == result["unit_id"]
    app = svc.application(handler, case_no)
    assert "武陟县木城街道新源路1号" in str(app)


def test_rejection_needs_a_reason_the_handler_sees_it_and_the_unit_may_register_again(svc):
    first = svc.register_unit(registration())
    window = actor(svc, "window1")
    with pytest.raises(InvalidInput, match="原因"):
        svc.review_unit(window, first["unit_id"], "reject", "  ")
    with pytest.raises(InvalidInput):
        svc.review_unit(window, first["unit_id"], "maybe")
    with pytest.raises(NotFound):
        svc.review_unit(window, "abc", "approve")
    assert unit_row(svc, first["unit_id"]).status == "pending"
    svc.review_unit(window, first["unit_id"], "reject", "营业执照信息与统一社会信用代码不符")
    handler = actor(svc, "xinyuan")
    mine = svc.my_unit(handler)
    assert (mine["status"], mine["review_reason"]) == ("rejected", "营业执照信息与统一社会信用代码不符")
    assert "营业执照信息与统一社会信用代码不符" in svc.notifications(handler)[0]["text"]
    change = admin_log(svc, "unit")[0]
    assert (change.action, change.reason, change.actor_name) == ("unit_rejected", "营业执照信息与统一社会信用代码不符", "window1")

    # the same name and credit code may register again (a new record), with a new login
    with pytest.raises(InvalidInput, match="登录名"):
        svc.register_unit(registration())
    again = svc.register_unit(registration(username="xinyuan2"))
    assert again["unit_id"] != first["unit_id"] and unit_row(svc, again["unit_id"]).status == "pending"
    # but not twice while one is pending or approved
    with pytest.raises(InvalidInput) as info:
        svc.register_unit(registration(username="xinyuan3"))
    assert {"credit_code", "name"} <= set(info.value.details)
    with pytest.raises(InvalidInput, match="已有单位注册"):
        svc.register_unit(registration(username="huarui2", name="另一家公司", credit_code=UNITS[0]["credit_code"]))


@pytest.mark.parametrize("field, value, fragment", [
    ("credit_code", "91410823ma9xy00038", "请使用大写字母"),
    ("credit_code", NEW_CODE[:-1] + ("0" if NEW_CODE[-1] != "0" else "1"), "校验位不正确"),
    ("credit_code", "９" + NEW_CODE[1:], "请使用半角字符"),
    ("credit_code", NEW_CODE[:17], "应为 18 位"),
    ("contact_phone", "0391-7223003", "手机号码"),
    ("contact_phone", "12712345678", "手机号码"),
    ("postcode", "45495", "邮编"),
    ("name", "x" * 101, "不能超过 100"),
    ("name", "新源\x07机械", "控制字符"),
    ("legal_representative", "", "请填写法定代表人"),
    ("username", "坏 名字", "登录名"),
    ("password", "short", "密码"),
    ("password", "xinyuan", "密码"),
    ("leader_phone", "电话号码", "负责人电话"),
])
def test_each_bad_registration_field_is_refused_in_chinese_and_nothing_is_written(svc, field, value, fragment):
    with pytest.raises(InvalidInput) as info:
        svc.register_unit(registration(**{field: value}))
    assert fragment in info.value.details[field]
    assert user_row(svc, "xinyuan") is None and admin_log(svc, "unit") == []


def test_registrations_from_one_address_are_throttled(svc):
    for i in range(5):
        svc.register_unit(registration(name=f"武陟县测试单位{i}号有限公司", username=f"t{i}xx",
                                       credit_code=creditcode.with_check(f"91410823MA9TT000{i}")), address="10.0.0.9")
    with pytest.raises(InvalidInput, match="过于频繁"):
        svc.register_unit(registration(), address="10.0.0.9")
    assert svc.register_unit(registration(), address="10.0.0.10")["status"] == "pending"


# ---- the unit administrator's handlers ----------------------------------------------------------------------------
def test_the_unit_admin_adds_and_removes_handlers_who_see_the_units_cases(svc):
    admin = actor(svc, "huarui")
    case_no = h.start(svc)
    added = svc.add_unit_handler(admin, {"username": "huarui2", "display_name": "王经办", "phone": "13711112222"})
    assert len(added["one_time_password"]) >= 10
    second = user_row(svc, "huarui2")
    assert second.must_change_password and not second.unit_admin and second.unit_id == admin.unit_id
    assert svc.login("huarui2", added["one_time_password"]).actor.username == "huarui2"
    handler2 = actor(svc, "huarui2")
    # a second handler sees the unit's cases; another unit's handler does not
    assert [c["case_no"] for c in svc.search_cases(handler2)["cases"]] == [case_no]
    assert svc.get_case(handler2, case_no)["case"]["case_no"] == case_no
    assert svc.search_cases(actor(svc, "jiahe"))["total"] == 0
    with pytest.raises(NotFound):
        svc.get_case(actor(svc, "jiahe"), case_no)
    # only the unit's admin manages its handlers
    for who in ("huarui2", "jiahe", "agent1", "window1"):
        with pytest.raises(Forbidden if who != "jiahe" else NotFound):
            svc.remove_unit_handler(actor(svc, who), second.id)
    with pytest.raises(Forbidden):
        svc.add_unit_handler(handler2, {"username": "x123", "display_name": "某某", "phone": "13711112223"})
    with pytest.raises(InvalidInput, match="登录名"):
        svc.add_unit_handler(admin, {"username": "agent1", "display_name": "某某", "phone": "13711112223"})
    with pytest.raises(InvalidInput, match="手机号码"):
        svc.add_unit_handler(admin, {"username": "hr3", "display_name": "某某", "phone": "0391-123456"})

    svc.remove_unit_handler(admin, second.id)
    assert not user_row(svc, "huarui2").active
    with pytest.raises(Exception, match="用户名或密码错误"):
        svc.login("huarui2", added["one_time_password"])
    with pytest.raises(Conflict, match="唯一的管理员"):
        svc.remove_unit_handler(admin, admin.id)
    assert [c.action for c in admin_log(svc, "user")] == ["unit_handler_removed", "unit_handler_added"]
    # with a second admin, the first may step down
    other_admin = svc.add_unit_handler(admin, {"username": "huarui3", "display_name": "陈经办", "phone": "13711113333",
                                               "unit_admin": "true"})
    assert user_row(svc, "huarui3").unit_admin
    svc.remove_unit_handler(admin, admin.id)
    assert not user_row(svc, "huarui").active and other_admin["username"] == "huarui3"


# ---- the unit fields of an application ----------------------------------------------------------------------------
def test_an_agent_cannot_enter_an_application_for_huarui_with_jiahes_name(svc):
    agent = actor(svc, "agent1")
    huarui_id = actor(svc, "huarui").unit_id
    with pytest.raises(InvalidInput) as info:
        svc.start_case(agent, h.PROCESS, h.application(unit_name=JIAHE), unit_id=huarui_id)
    assert JIAHE in info.value.message and HUARUI in info.value.message
    assert svc.search_cases(agent)["total"] == 0
    # an applicant cannot either
    with pytest.raises(InvalidInput, match=JIAHE):
        svc.start_case(actor(svc, "huarui"), h.PROCESS, h.application(unit_name=JIAHE))
    # with the unit picked, the unit fields come from its record (whatever else was typed)
    form = svc.start_form(agent, h.PROCESS, unit_id=huarui_id)
    assert form["defaults"] == {"unit_name": HUARUI, "unit_address": UNITS[0]["address"], "postcode": "454950",
                                "leader_name": "张华瑞", "leader_phone": "0391-7221001"}
    case_no = svc.start_case(agent, h.PROCESS, h.application(unit_name="", unit_address="别处", leader_name="冒名者"),
                             unit_id=huarui_id).case_no
    data = h.events(svc, case_no)[0].payload["form"]
    assert (data["unit_name"], data["unit_address"], data["leader_name"]) == (HUARUI, UNITS[0]["address"], "张华瑞")
    with pytest.raises(InvalidInput, match="请选择申请单位"):
        svc.start_case(agent, h.PROCESS, h.application())
    with pytest.raises(InvalidInput, match="不存在"):
        svc.start_case(agent, h.PROCESS, h.application(), unit_id=10**9)


def test_sample_application_matches_the_demo_unit_record():
    for field, attr in (("unit_name", "name"), ("unit_address", "address"), ("postcode", "postcode"),
                        ("leader_name", "leader_name"), ("leader_phone", "leader_phone")):
        assert SAMPLE_APPLICATION[field] == UNITS[0][attr]


# ---- possible duplicates ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
def test_a_second_application_with_the_same_project_code_and_overlapping_items_is_flagged(svc, all_cases_verified):
    first = h.start(svc, project_code="2026-410823-14-03-000123", service_items=["hp", "xf", "gd"])
    other_code = h.start(svc, project_code="2026-410823-14-03-000999", service_items=["hp"])
    no_overlap = h.start(svc, project_code="2026-410823-14-03-000123", service_items=["gs"])
    second = h.start(svc, project_code="2026-410823-14-03-000123", service_items=["xf", "hp", "gs"])
    task = h.find_task(svc, "agent1", "受理审核", case_no=second)
    context = dict(svc.get_task(actor(svc, "agent1"), task["task_id"])["context"])
    assert context["疑似重复申请"] == (f"办件 {first}（项目编号相同，事项重叠：消防（设计审查/验收）、环评）；"
                                  f"办件 {no_overlap}（项目编号相同，事项重叠：供水）")
    assert h.events(svc, second)[0].payload["facts"]["duplicate_warning"] == context["疑似重复申请"]
    for quiet in (first, other_code, no_overlap):
        quiet_task = h.find_task(svc, "agent1", "受理审核", case_no=quiet)
        assert "疑似重复申请" not in dict(svc.get_task(actor(svc, "agent1"), quiet_task["task_id"])["context"])
    # not refused: it is accepted like any other; once the first is closed, a new one is not flagged by it
    h.complete(svc, "agent1", "受理审核", case_no=second, **h.accept())
    h.complete(svc, "agent1", "受理审核", case_no=first, review_decision="不予受理", refusal_explanation="重复申请")
    h.complete(svc, "agent1", "受理审核", case_no=no_overlap, review_decision="不予受理", refusal_explanation="重复申请")
    third = h.start(svc, project_code="2026-410823-14-03-000123", service_items=["gd"])
    third_task = h.find_task(svc, "agent1", "受理审核", case_no=third)
    assert "疑似重复申请" not in dict(svc.get_task(actor(svc, "agent1"), third_task["task_id"])["context"])
    assert h.case_row(svc, third).project_code == "2026-410823-14-03-000123"


# ---- over HTTP, per role ------------------------------------------------------------------------------------------
@pytest.fixture
def app(svc):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


def _post(client, path: str, data: dict):
    page = client.get(path)
    return client.post(path, data=dict(data, csrf_token=token(page.text)))


def test_http_anonymous_registers_the_window_approves_the_handler_applies(app, svc):
    anon = app.test_client()
    assert anon.get("/register").status_code == 200
    for path in ("/units/registrations", "/units/handlers"):
        assert anon.get(path).status_code == 302        # to the login page
    bad = _post(anon, "/register", registration(credit_code="91410823ma9xy00038"))
    assert bad.status_code == 422 and "请使用大写字母" in bad.text and "Traceback" not in bad.text
    ok = _post(anon, "/register", dict(registration(), password_confirm="xinyuan-2026"))
    assert ok.status_code == 200 and "等待审核" in ok.text

    handler = app.test_client()
    page = handler.get("/login")
    handler.post("/login", data={"username": "xinyuan", "password": "xinyuan-2026", "csrf_token": token(page.text)})
    inbox = handler.get("/inbox").text
    assert "单位注册待审核" in inbox and "新建申请" not in inbox
    assert handler.get("/cases/new").status_code == 422
    assert handler.get("/units/registrations").status_code == 403

    for who in ("agent1", "huarui", "supervisor1", "auditor1"):
        c = html_login(app, who)
        assert c.get("/units/registrations").status_code == 403
        assert "单位注册审核" not in c.get("/inbox").text
    window = html_login(app, "window1")
    listing = window.get("/units/registrations")
    assert listing.status_code == 200 and "武陟县新源机械制造有限公司" in listing.text and "单位注册审核" in listing.text
    unit_id = svc.unit_registrations(actor(svc, "window1"))[0]["id"]
    refused = window.post("/units/registrations", data={"unit_id": unit_id, "decision": "reject", "reason": "",
                                                        "csrf_token": token(listing.text)})
    assert refused.status_code == 422 and "原因" in refused.text
    approved = window.post("/units/registrations", data={"unit_id": unit_id, "decision": "approve",
                                                         "csrf_token": token(listing.text)})
    assert approved.status_code == 302
    assert "本单位注册已审核通过" in handler.get("/inbox").text

    start = handler.get("/cases/new")
    assert start.status_code == 200 and 'readonly' in start.text and "武陟县新源机械制造有限公司" in start.text
    form = {k: v for k, v in SAMPLE_APPLICATION.items() if not k.startswith(("unit_", "leader_", "postcode"))}
    form = {k: ("true" if v is True else v) for k, v in form.items()}
    created = handler.post("/cases/new", data=dict(form, csrf_token=token(start.text)))
    assert created.status_code == 302, created.text
    assert svc.search_cases(actor(svc, "xinyuan"))["cases"][0]["unit_name"] == "武陟县新源机械制造有限公司"


def test_http_agent_picks_the_unit_first_and_cannot_name_another(app, svc):
    agent = html_login(app, "agent1")
    first = agent.get("/cases/new")
    assert first.status_code == 200 and 'id="unit-picker"' in first.text and 'id="task-form"' not in first.text
    huarui_id = actor(svc, "huarui").unit_id
    picked = agent.get(f"/cases/new?unit_id={huarui_id}")
    assert picked.status_code == 200 and 'id="applying-unit"' in picked.text and "武陟县产业集聚区华瑞路8号" in picked.text
    form = {k: ("true" if v is True else v) for k, v in SAMPLE_APPLICATION.items()}
    form["unit_name"] = JIAHE
    refused = agent.post(f"/cases/new?unit_id={huarui_id}", data=dict(form, unit_id=huarui_id,
                                                                       csrf_token=token(picked.text)))
    assert refused.status_code == 422 and JIAHE in refused.text and HUARUI in refused.text
    assert svc.search_cases(actor(svc, "agent1"))["total"] == 0
    assert agent.get("/cases/new?unit_id=abc").status_code == 422


def test_http_only_the_unit_admin_manages_handlers(app, svc):
    for who in ("agent1", "window1", "auditor1", "supervisor1"):
        assert html_login(app, who).get("/units/handlers").status_code == 403
    admin = html_login(app, "huarui")
    assert "本单位经办人" in admin.get("/inbox").text
    page = admin.get("/units/handlers")
    assert page.status_code == 200 and "huarui" in page.text
    added = admin.post("/units/handlers", data={"action": "add", "username": "huarui2", "display_name": "王经办",
                                                "phone": "13711112222", "csrf_token": token(page.text)})
    assert added.status_code == 200 and "一次性密码" in added.text
    bad = admin.post("/units/handlers", data={"action": "add", "username": "huarui2", "display_name": "王经办",
                                              "phone": "13711112222", "csrf_token": token(page.text)})
    assert bad.status_code == 422 and "已被使用" in bad.text
    second_id = user_row(svc, "huarui2").id
    # another unit's admin cannot remove it
    other = html_login(app, "jiahe")
    assert other.post("/units/handlers", data={"action": "remove", "user_id": second_id,
                                               "csrf_token": token(other.get("/units/handlers").text)}).status_code == 404
    last = admin.post("/units/handlers", data={"action": "remove", "user_id": user_row(svc, "huarui").id,
                                               "csrf_token": token(page.text)})
    assert last.status_code == 409 and "唯一的管理员" in last.text
    removed = admin.post("/units/handlers", data={"action": "remove", "user_id": second_id,
                                                  "csrf_token": token(page.text)})
    assert removed.status_code == 302 and not user_row(svc, "huarui2").active


def test_the_manifest_names_fields_of_the_start_form_and_attributes_of_the_unit(process_files):
    import json

    from engine.validation import validate_set
    manifest = json.loads(process_files["bangban.json"])
    assert validate_set(process_files) == []
    proc = manifest["processes"]["bangban_case"]
    proc["unit_fields"] = dict(proc["unit_fields"], unit_fax="fax", leader_name="boss")
    proc["duplicate_check"] = {"key": "project_no", "overlap": "service_items", "variable": "project_name"}
    files = dict(process_files, **{"bangban.json": json.dumps(manifest, ensure_ascii=False).encode()})
    messages = [p.message for p in validate_set(files)]
    assert "流程 bangban_case 的 unit_fields 中的字段 unit_fax 不在申请表中" in messages
    assert any(m.startswith("流程 bangban_case 的 unit_fields 中的单位信息 boss 不存在") for m in messages)
    assert "流程 bangban_case 的 duplicate_check 中的字段 project_no 不在申请表中" in messages
    assert "流程 bangban_case 的 duplicate_check 的变量 project_name 与申请表字段同名" in messages
