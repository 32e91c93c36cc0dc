"""The 系统管理员: staff accounts, departments, service stations, the administrative log — engine use cases per role,
and the pages over HTTP per role (the administrator can, everyone else gets 403; the auditor and the supervisor read
the log but change nothing)."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select

from engine.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound
from engine.models import AdminChange, Session, User
from engine.passwords import check_password
from engine.staff_rules import Directory, check_account
from tests import helpers as h
from tests.conftest import actor
from tests.webclient import chinese, html_login, token
from web import create_app

SPECIALIST = {"username": "zhang_san", "display_name": "张三", "roles": ["specialist"], "department": "县公安局",
              "phone": "13800001111", "email": "zhangsan@wuzhi.gov.cn"}


def _user(svc, username: str):
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.user_by_username(username)


def _count(svc, table) -> int:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.conn.execute(select(func.count()).select_from(table)).scalar_one()


def _log(svc) -> list:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.admin_changes()


def _open_session(svc, user_id: int, sid: str) -> None:
    at = datetime(2026, 11, 30, tzinfo=UTC)
    with svc.db.unit_of_work() as uow:
        uow.conn.execute(insert(Session.__table__).values(id=sid, user_id=user_id, created_at=at, last_seen_at=at))
        uow.commit()


def _session(svc, sid: str):
    with svc.db.unit_of_work(write=False) as uow:
        return uow.conn.execute(select(Session.__table__).where(Session.__table__.c.id == sid)).first()


# ---- accounts: engine ----------------------------------------------------------------------------------------------
def test_admin_creates_an_account_with_a_one_time_password_and_the_change_is_logged(svc):
    admin = actor(svc, "admin1")
    result = svc.create_staff(admin, SPECIALIST)
    row = _user(svc, "zhang_san")
    assert row.department == "gaj" and row.roles == "specialist" and row.active and row.must_change_password
    assert check_password(row.password_hash, result["password"]) and len(result["password"]) >= 12
    entry = _log(svc)[0]
    assert (entry.actor_name, entry.action, entry.target, entry.new["roles"]) == ("admin1", "create_user", "zhang_san",
                                                                                  ["specialist"])
    logged = json.dumps([dict(r._mapping) for r in _log(svc)], default=str, ensure_ascii=False)
    assert result["password"] not in logged and row.password_hash not in logged
    shown = svc.admin_log(admin)["entries"][0]
    assert shown["action"] == "新建账号" and {"field": "角色", "old": "—", "new": "部门业务专办员"} in shown["changes"]
    assert {"field": "部门", "old": "—", "new": "县公安局"} in shown["changes"]
    found = svc.list_staff(admin, q="张三")
    assert found["total"] == 1 and found["users"][0]["department_name"] == "县公安局"


@pytest.mark.parametrize("change, fragment", [
    ({"username": "1abc"}, "登录名「1abc」不合规"),
    ({"username": "agent1"}, "登录名「agent1」已存在"),
    ({"roles": ["wizard"]}, "未知的角色「wizard」"),
    ({"roles": ["applicant"]}, "未知的角色「applicant」"),
    ({"roles": []}, "缺少角色"),
    ({"department": ""}, "部门业务专办员须指定所属部门"),
    ({"department": "县魔法局"}, "未知的部门「县魔法局」"),
    ({"station": "不存在的站"}, "未知的服务站"),
    ({"phone": "12345"}, "手机号「12345」格式不对"),
    ({"email": "not-an-email"}, "邮箱「not-an-email」格式不对"),
    ({"display_name": "张\u0000三"}, "姓名含有控制字符"),
    ({"display_name": ""}, "缺少姓名"),
])
def test_bad_account_input_is_refused_in_chinese_and_nothing_is_written(svc, change, fragment):
    users, log = _count(svc, User.__table__), _count(svc, AdminChange.__table__)
    with pytest.raises(InvalidInput) as err:
        svc.create_staff(actor(svc, "admin1"), dict(SPECIALIST, **change))
    assert fragment in err.value.message and chinese(err.value.message)
    assert (_count(svc, User.__table__), _count(svc, AdminChange.__table__)) == (users, log)


def test_a_station_clerk_needs_a_station():
    directory = Directory({"station": "服务站工作人员", "agent": "全科代办员"}, {}, {"zdz": "詹店镇便民服务中心"})
    _, problems = check_account({"username": "clerk1", "display_name": "站员", "roles": "服务站工作人员"}, directory)
    assert problems == ["服务站工作人员须指定所属服务站"]
    account, problems = check_account({"username": "clerk1", "display_name": "站员", "roles": "station",
                                       "station": "詹店镇便民服务中心"}, directory)
    assert problems == [] and account["station"] == "zdz"


def test_editing_roles_is_logged_old_to_new_in_chinese(svc):
    admin = actor(svc, "admin1")
    svc.update_staff(admin, "agent2", {"display_name": "刘代办", "roles": ["agent", "chief"], "phone": "0391-7221234"})
    assert _user(svc, "agent2").roles == "agent,chief"
    entry = svc.admin_log(admin, kind="user", target="agent2")["entries"][0]
    assert entry["action"] == "修改账号" and entry["who"] == "admin1"
    assert {"field": "角色", "old": "全科代办员", "new": "全科代办员、项目首席服务员"} in entry["changes"]
    assert {"field": "手机", "old": "（空）", "new": "0391-7221234"} in entry["changes"]
    assert not any(c.isascii() and c.isalpha() for e in entry["changes"] for c in e["field"])


@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
def test_deactivating_ends_the_users_sessions_at_once_and_reactivating_lets_them_back(svc):
    admin, agent = actor(svc, "admin1"), _user(svc, "agent1")
    _open_session(svc, agent.id, "a" * 64)
    result = svc.set_staff_active(admin, "agent1", False, "调离")
    assert result["sessions_ended"] == 1
    ended = _session(svc, "a" * 64)
    assert ended.ended_at is not None and ended.ended_reason == "deactivated"
    with pytest.raises(NotAuthenticated):
        svc.login("agent1", "demo1234")
    svc.set_staff_active(admin, "agent1", True)
    assert svc.login("agent1", "demo1234").actor.username == "agent1"
    actions = [r.action for r in _log(svc)][:2]
    assert actions == ["activate_user", "deactivate_user"]


def test_reset_password_gives_a_one_time_password_and_ends_sessions(svc):
    row = _user(svc, "agent1")
    _open_session(svc, row.id, "b" * 64)
    result = svc.reset_staff_password(actor(svc, "admin1"), "agent1")
    after = _user(svc, "agent1")
    assert check_password(after.password_hash, result["password"]) and not check_password(after.password_hash, "demo1234")
    assert after.must_change_password and _session(svc, "b" * 64).ended_reason == "password_reset"
    entry = _log(svc)[0]
    assert entry.action == "reset_password" and after.password_hash not in json.dumps(entry.new)


def test_an_admin_cannot_lock_themself_out_and_one_active_admin_remains(svc):
    admin = actor(svc, "admin1")
    with pytest.raises(Forbidden, match="不能停用自己的账号"):
        svc.set_staff_active(admin, "admin1", False)
    with pytest.raises(Forbidden, match="不能取消自己的系统管理员角色"):
        svc.update_staff(admin, "admin1", {"display_name": "冯管理", "roles": ["auditor"]})
    with pytest.raises(Conflict, match="至少要保留一名在用的系统管理员"):
        svc.set_staff_active(None, "admin1", False)          # the command line: still not the last one
    with pytest.raises(Conflict, match="至少要保留一名"):
        svc.update_staff(None, "admin1", {"display_name": "冯管理", "roles": ["auditor"]})
    assert _user(svc, "admin1").active and _user(svc, "admin1").roles == "admin"
    svc.create_staff(admin, {"username": "admin2", "display_name": "第二管理员", "roles": ["admin"]})
    svc.set_staff_active(actor(svc, "admin2"), "admin1", False)
    assert not _user(svc, "admin1").active


@pytest.mark.parametrize("username", ["agent1", "supervisor1", "auditor1", "owner1", "window1", "huarui"])
def test_only_the_admin_manages_accounts_departments_and_stations(svc, username):
    who = actor(svc, username)
    for call in (lambda: svc.list_staff(who), lambda: svc.create_staff(who, SPECIALIST),
                 lambda: svc.set_staff_active(who, "agent2", False), lambda: svc.reset_staff_password(who, "agent2"),
                 lambda: svc.import_staff(who, "登录名,姓名,角色\nx1y,某,agent\n".encode(), "a.csv"),
                 lambda: svc.departments(who), lambda: svc.add_department(who, "xinbu", "新部门"),
                 lambda: svc.remove_department(who, "gaj"), lambda: svc.stations(who),
                 lambda: svc.add_station(who, "xz", "某镇便民服务中心", "乡镇（街道）便民服务中心")):
        with pytest.raises(Forbidden):
            call()
    assert _user(svc, "agent2").active and _user(svc, "zhang_san") is None


def test_the_auditor_and_the_supervisor_read_the_admin_log_others_do_not(svc):
    svc.create_staff(actor(svc, "admin1"), SPECIALIST)
    for username in ("auditor1", "supervisor1", "admin1"):
        assert svc.admin_log(actor(svc, username))["entries"][0]["target"] == "zhang_san"
    for username in ("agent1", "owner1", "huarui", "zb_gaj"):
        with pytest.raises(Forbidden):
            svc.admin_log(actor(svc, username))


def test_staff_pages_do_not_reach_applicant_handlers(svc):
    with pytest.raises(NotFound):
        svc.get_staff(actor(svc, "admin1"), "huarui")
    assert "huarui" not in {u["username"] for u in svc.list_staff(actor(svc, "admin1"), q="huarui")["users"]}


# ---- departments -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)
def test_departments_come_from_the_catalogue_and_names_are_read_from_the_table(svc):
    admin = actor(svc, "admin1")
    codes = {d["code"] for d in svc.departments(admin)}
    assert codes == set(svc.current.catalogue.departments)
    svc.edit_department(admin, "sthj", "焦作市生态环境局武陟分局（审批科）", "0391-7220000")
    assert svc.department_names()["sthj"] == "焦作市生态环境局武陟分局（审批科）"
    entry = svc.admin_log(admin, kind="department")["entries"][0]
    assert entry["action"] == "修改部门" and {"field": "窗口电话", "old": "（空）", "new": "0391-7220000"} in entry["changes"]


def test_a_department_with_open_items_cannot_be_removed(svc):
    admin = actor(svc, "admin1")
    no = h.start(svc, service_items=["hp"])
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp"])
    with pytest.raises(Conflict) as err:
        svc.remove_department(admin, "sthj")
    assert err.value.details == {"inbox": 1, "clocks": 1, "users": 1}
    for text in ("1 项未办结的待办", "1 个正在计时的事项", "1 个在用账号", "事项目录中 1 个事项（环评）"):
        assert text in err.value.message
    assert next(d for d in svc.departments(admin) if d["code"] == "sthj")["active"]


def test_removing_a_department_deletes_it_or_deactivates_it_when_it_has_history(svc):
    admin = actor(svc, "admin1")
    svc.add_department(admin, "xinbu", "县新设局", "0391-7229999")
    svc.add_department(admin, "kongbu", "县空闲局")
    svc.create_staff(admin, {"username": "xin1", "display_name": "新专办", "roles": ["specialist"], "department": "xinbu"})
    with pytest.raises(Conflict, match="1 个在用账号"):
        svc.remove_department(admin, "xinbu")
    svc.set_staff_active(admin, "xin1", False)
    assert svc.remove_department(admin, "xinbu")["result"] == "deactivated"
    assert svc.remove_department(admin, "kongbu")["result"] == "removed"
    rows = {d["code"]: d for d in svc.departments(admin)}
    assert not rows["xinbu"]["active"] and "kongbu" not in rows
    with pytest.raises(InvalidInput, match="未知的部门"):      # a deactivated department takes no new accounts
        svc.create_staff(admin, {"username": "xin2", "display_name": "新专办二", "roles": ["specialist"],
                                 "department": "xinbu"})
    with pytest.raises(Conflict, match="已存在"):
        svc.add_department(admin, "gaj", "另一个公安局")
    with pytest.raises(InvalidInput, match="部门代码须以小写英文字母开头"):
        svc.add_department(admin, "X Y", "某局")


def test_a_catalogue_naming_an_unknown_department_fails_validation_until_the_department_is_added(svc, process_files):
    admin, owner = actor(svc, "admin1"), actor(svc, "owner1")
    catalogue = json.loads(process_files["catalogue.json"])
    catalogue["departments"].append({"code": "xinbu", "name": "县新设局"})
    catalogue["items"][0]["department"] = "xinbu"
    changed = {"catalogue.json": json.dumps(catalogue, ensure_ascii=False).encode("utf-8")}
    problems = svc.validate(owner, changed)
    assert any("xinbu" in p["message"] and "不在部门表中" in p["message"] and p["element"] == "qydj" for p in problems)
    before = svc.current_version_id
    with pytest.raises(InvalidInput) as err:
        svc.publish(owner, changed, "企业登记改由新设局办理")
    assert any("企业登记" in p["message"] and "xinbu" in p["message"] for p in err.value.details)
    assert svc.current_version_id == before
    svc.add_department(admin, "xinbu", "县新设局")
    assert svc.validate(owner, changed) == []
    assert svc.publish(owner, changed, "企业登记改由新设局办理")["id"] != before


def test_the_admin_log_is_paged_and_filtered(svc):
    admin = actor(svc, "admin1")
    for i in range(52):
        svc.edit_department(admin, "gaj", "县公安局", f"0391-72{i:05d}")
    svc.add_station(admin, "xiaodong", "小董乡便民服务中心", "乡镇（街道）便民服务中心")
    first = svc.admin_log(admin)
    assert len(first["entries"]) == 50 and first["entries"][0]["kind"] == "服务站" and first["next_before"]
    rest = svc.admin_log(admin, before=first["next_before"])
    assert len(rest["entries"]) == 3 and rest["next_before"] is None
    assert {e["id"] for e in first["entries"]}.isdisjoint(e["id"] for e in rest["entries"])
    only = svc.admin_log(admin, kind="department", target="gaj")["entries"]
    assert len(only) == 50 and all(e["target"] == "县公安局（gaj）" and e["action"] == "修改部门" for e in only)
    assert only[0]["changes"] == [{"field": "窗口电话", "old": "0391-7200050", "new": "0391-7200051"}]
    assert svc.admin_log(admin, kind="no-such-kind")["kind"] is None


# ---- stations --------------------------------------------------------------------------------------------------------
def test_stations_are_kept_as_records(svc):
    admin = actor(svc, "admin1")
    assert {s["name"] for s in svc.stations(admin)} == {"詹店镇便民服务中心", "武陟县邮政城关网点"}
    svc.add_station(admin, "xiaodong", "小董乡便民服务中心", "乡镇（街道）便民服务中心", "0391-7233001")
    with pytest.raises(InvalidInput, match="服务站类型须为"):
        svc.add_station(admin, "qita", "某处", "超市")
    svc.edit_station(admin, "xiaodong", "小董乡便民服务中心", "乡镇（街道）便民服务中心", "0391-7233002")
    svc.update_staff(admin, "agent2", {"display_name": "刘代办", "roles": ["agent"], "station": "小董乡便民服务中心"})
    with pytest.raises(Conflict, match="1 个在用账号"):
        svc.set_station_active(admin, "xiaodong", False)
    svc.update_staff(admin, "agent2", {"display_name": "刘代办", "roles": ["agent"], "station": ""})
    svc.set_station_active(admin, "xiaodong", False)
    assert not next(s for s in svc.stations(admin) if s["code"] == "xiaodong")["active"]
    shown = [e["action"] for e in svc.admin_log(admin, kind="station")["entries"]]
    assert shown == ["停用服务站", "修改服务站", "新增服务站"]


# ---- HTTP, per role ------------------------------------------------------------------------------------------------
@pytest.fixture
def app(svc):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


PAGES = ["/admin/users", "/admin/users/new", "/admin/users/agent2", "/admin/import", "/admin/departments",
         "/admin/stations", "/admin/log"]


@pytest.mark.parametrize("username, allowed", [
    ("admin1", set(PAGES)), ("auditor1", {"/admin/log"}), ("supervisor1", {"/admin/log"}), ("agent1", set()),
    ("owner1", set()), ("window1", set()), ("huarui", set()), ("zb_gaj", set()),
])
def test_admin_pages_per_role(app, username, allowed):
    c = html_login(app, username)
    nav = c.get("/inbox").text
    assert ("账号管理" in nav) == ("/admin/users" in allowed)
    assert ("管理日志" in nav) == ("/admin/log" in allowed)
    for path in PAGES:
        r = c.get(path)
        assert r.status_code == (200 if path in allowed else 403), (path, r.status_code)
        assert chinese(r.text)
    page = c.get("/inbox").text
    r = c.post("/admin/users/new", data={"csrf_token": token(page), "username": "evil1", "display_name": "某",
                                         "roles": "admin"})
    assert r.status_code == (200 if username == "admin1" else 403)
    r = c.post("/admin/departments", data={"csrf_token": token(page), "action": "remove", "code": "bank"})
    assert r.status_code in ((302, 409) if username == "admin1" else (403,))


def test_admin_creates_edits_deactivates_and_resets_over_http(app, svc):
    c = html_login(app, "admin1")
    form = c.get("/admin/users/new").text
    assert 'name="csrf_token"' in form
    assert c.post("/admin/users/new", data={"username": "li_si", "display_name": "李四", "roles": "agent"}).status_code == 400
    r = c.post("/admin/users/new", data={"csrf_token": token(form), "username": "li_si", "display_name": "李四",
                                         "roles": ["agent"], "phone": "13900002222"})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store" and "一次性密码只显示这一次" in r.text
    shown = r.text.split('class="otp">')[1].split("<")[0]
    assert check_password(_user(svc, "li_si").password_hash, shown)
    assert "li_si" in c.get("/admin/users?q=李").text
    bad = c.post("/admin/users/new", data={"csrf_token": token(form), "username": "li_si", "display_name": "李四",
                                           "roles": ["agent"]})
    assert bad.status_code == 422 and "登录名「li_si」已存在" in bad.text
    edit = c.get("/admin/users/li_si").text
    r = c.post("/admin/users/li_si", data={"csrf_token": token(edit), "display_name": "李四", "roles": ["agent", "window"]})
    assert r.status_code == 302 and _user(svc, "li_si").roles == "agent,window"
    r = c.post("/admin/users/li_si/active", data={"csrf_token": token(edit), "active": "0", "reason": "离职"})
    assert r.status_code == 302 and not _user(svc, "li_si").active
    r = c.post("/admin/users/li_si/password", data={"csrf_token": token(edit)})
    assert r.status_code == 200 and "一次性密码" in r.text
    self_off = c.post("/admin/users/admin1/active", data={"csrf_token": token(edit), "active": "0"})
    assert self_off.status_code == 403 and "不能停用自己的账号" in self_off.text
    log = c.get("/admin/log?kind=user&target=li_si").text
    for text in ("新建账号", "修改账号", "停用账号", "重置密码", "全科代办员 → 全科代办员、帮办代办综合窗口", "离职"):
        assert text in log
    assert "{" not in log.split('id="admin-log"')[1].split("</table>")[0]


def test_the_auditor_reads_the_log_over_http_but_cannot_change_anything(app, svc):
    svc.create_staff(actor(svc, "admin1"), SPECIALIST)
    c = html_login(app, "auditor1")
    log = c.get("/admin/log")
    assert log.status_code == 200 and "zhang_san" in log.text and "部门业务专办员" in log.text
    page = c.get("/inbox").text
    for path, data in (("/admin/users/zhang_san/active", {"active": "0"}), ("/admin/users/zhang_san/password", {}),
                       ("/admin/stations", {"action": "add", "code": "abc", "name": "某站", "kind": "邮政网点"})):
        assert c.post(path, data={"csrf_token": token(page), **data}).status_code == 403
    assert _user(svc, "zhang_san").active and len(svc.stations(None)) == 2


def test_department_and_station_pages_over_http(app, svc):
    c = html_login(app, "admin1")
    page = c.get("/admin/departments").text
    assert "县公安局" in page
    r = c.post("/admin/departments", data={"csrf_token": token(page), "action": "add", "code": "xinbu", "name": "县新设局",
                                           "phone": "0391-7229999"})
    assert r.status_code == 302 and "县新设局" in c.get("/admin/departments").text
    refused = c.post("/admin/departments", data={"csrf_token": token(page), "action": "remove", "code": "gaj"})
    assert refused.status_code == 409 and "不能删除" in refused.text and "1 个在用账号" in refused.text
    r = c.post("/admin/stations", data={"csrf_token": token(page), "action": "add", "code": "ningguo",
                                        "name": "宁郭镇便民服务中心", "kind": "乡镇（街道）便民服务中心"})
    assert r.status_code == 302 and "宁郭镇便民服务中心" in c.get("/admin/stations").text
    bad = c.post("/admin/stations", data={"csrf_token": token(page), "action": "add", "code": "x",
                                          "name": "某站", "kind": "邮政网点"})
    assert bad.status_code == 422 and "服务站代码" in bad.text
