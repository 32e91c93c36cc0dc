"""Every role × every route, generated from the route table (``app.url_map``) and the manifest's roles.

Each route is public (listed below, on purpose), for any logged-in user (``login_required``: what they see is then
narrowed by the engine's case scope), or for the roles with one of its permissions (``permission_required``). For every
route and method, as nobody and as one user of every role of the manifest:
- nobody: a protected page sends to the login page, a protected API route answers 401;
- a role without the route's permission gets 403, with a Chinese message, before anything is done;
- a role with it is not refused for its role (no 403 unless the engine's own scope refuses a particular case);
- nothing answers 5xx.
A new route is covered the moment it is added; one that is neither protected nor listed as public fails here.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.models import User
from tests.helpers import accept_and_commission, freeze_clock, start
from tests.webclient import PASSWORD, chinese
from web import create_app

PUBLIC = {
    "auth.login": "登录页",
    "api.login": "接口登录",
    "api.openapi": "接口说明（OpenAPI）",
    "views.index": "首页（按登录状态转到待办或登录页）",
    "views.bpmn_js": "流程图组件的静态文件",
    "views.favicon": "网站图标（浏览器在每个页面自动请求）",
    "views.modeler_bundle": "流程建模器的脚本与样式（静态文件）",
    "static": "样式与脚本",
    "api.logout": "退出登录（未登录时无事可做）",
    "auth.logout": "退出登录（未登录时无事可做）",
    "units.register": "单位网上注册（注册前还没有账号）",
    "views.verify": "扫码验真（单据上的二维码，只说明单据真伪与种类、编号、日期、出具单位；查错过多即限流）",
}
"""Routes anyone may call, and why. A route missing here and not protected fails the test."""

SKIP_ENDPOINTS = {"static", "views.bpmn_js", "views.modeler_bundle", "views.favicon"}
WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH")


def _users_by_role(svc) -> dict[str, tuple[str, list[str]]]:
    """One active demo user per role of the manifest, with all its roles (the test fails for a role without one).
    A user with a single role is preferred, so each role is seen on its own where the demo data allows."""
    with svc.db.unit_of_work(write=False) as uow:
        rows = list(uow.conn.execute(select(User.__table__).where(User.__table__.c.active.is_(True))
                                     .order_by(User.__table__.c.id)))
    found: dict[str, tuple[str, list[str]]] = {}
    for row in sorted(rows, key=lambda r: (r.roles.count(","), r.id)):
        roles_of_user = [r for r in row.roles.split(",") if r]
        for role in roles_of_user:
            found.setdefault(role, (row.username, roles_of_user))
    roles = svc.current.manifest["roles"]
    missing = [r for r in roles if r not in found]
    assert not missing, f"演示数据中没有这些角色的账号：{missing}"
    return {role: found[role] for role in roles}


@pytest.fixture
def world(svc):
    """A case with its first tasks done, so routes with a case number, task id or document id have real values."""
    freeze_clock()
    case_no = start(svc)
    accept_and_commission(svc, case_no)
    with svc.db.unit_of_work(write=False) as uow:
        case = uow.repo.case_by_no(case_no)
        task_id = uow.repo.inbox_for_case(case.id)[0].task_id
        doc_id = uow.conn.exec_driver_sql("SELECT id FROM documents ORDER BY id LIMIT 1").scalar()
    return {"case_no": case_no, "task_id": task_id, "doc_id": doc_id or 1, "key": "termination", "year": 2026,
            "process_id": "bangban_case", "day": "2026-10-01", "version_id": 1, "old": 1, "new": 1,
            "filename": "bpmn-viewer.development.js"}


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP_ENDPOINTS:
            continue
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method, view


def _url(rule, values: dict) -> str:
    args = {a: values.get(a, "x") for a in rule.arguments}
    for a, conv in rule._converters.items():
        if type(conv).__name__ == "IntegerConverter" and not isinstance(args[a], int):
            args[a] = 1
    path = rule.rule
    for a, v in args.items():
        path = re.sub(r"<(?:[^:<>]+:)?" + re.escape(a) + r">", str(v), path)
    return path


def _login(app, username: str):
    c = app.test_client()
    r = c.post("/api/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, (username, r.status_code, r.text)
    return c


def _call(client, method: str, url: str, api: bool):
    if api:
        return client.open(url, method=method, json={} if method in WRITE_METHODS else None)
    return client.open(url, method=method, data={} if method in WRITE_METHODS else None)


def test_every_route_is_public_on_purpose_or_protected(svc):
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    unprotected = sorted({rule.endpoint for rule, _m, view in _routes(app)
                          if not getattr(view, "bangban_login", False) and rule.endpoint not in PUBLIC})
    assert unprotected == [], f"这些路由既不要求登录也未列为公开：{unprotected}"
    stale = sorted(set(PUBLIC) - set(app.view_functions))
    assert stale == [], f"公开路由清单中有已不存在的路由：{stale}"


def test_every_role_on_every_route(svc, world):
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    users = _users_by_role(svc)
    manifest_roles = svc.current.manifest["roles"]
    permissions_of = {role: {p for r in roles for p in manifest_roles.get(r, {}).get("permissions", [])}
                      for role, (_username, roles) in users.items()}
    clients = {role: _login(app, username) for role, (username, _roles) in users.items()}
    anonymous = app.test_client()
    problems: list[str] = []
    checked = 0
    for rule, method, view in _routes(app):
        url = _url(rule, world)
        api = rule.rule.startswith("/api/")
        needs = set(getattr(view, "bangban_permissions", ()) or ())
        protected = getattr(view, "bangban_login", False)
        r = _call(anonymous, method, url, api)
        checked += 1
        if r.status_code >= 500:
            problems.append(f"未登录 {method} {url} → {r.status_code}")
        elif protected and api and r.status_code != 401:
            problems.append(f"未登录 {method} {url} 应为 401，实为 {r.status_code}")
        elif protected and not api and not (r.status_code == 302 and "/login" in r.headers.get("Location", "")):
            problems.append(f"未登录 {method} {url} 应转到登录页，实为 {r.status_code}")
        if rule.endpoint in ("api.logout", "auth.logout"):
            continue      # logging every role out would end the sessions the rest of the matrix uses
        for role, client in clients.items():
            r = _call(client, method, url, api)
            checked += 1
            allowed = not needs or bool(needs & permissions_of[role])
            where = f"{role}（{users[role][0]}）{method} {url}"
            if r.status_code >= 500:
                problems.append(f"{where} → {r.status_code}")
            elif not allowed and r.status_code != 403:
                problems.append(f"{where} 无权限 {sorted(needs)}，应为 403，实为 {r.status_code}")
            elif not allowed and not chinese(r.get_data(as_text=True)):
                problems.append(f"{where} 的 403 没有中文说明")
            elif allowed and needs and r.status_code == 403:
                problems.append(f"{where} 有权限 {sorted(needs & permissions_of[role])}，却被拒绝（403）")
    assert not problems, f"共检查 {checked} 次请求，{len(problems)} 处不符：\n" + "\n".join(problems)
    assert checked > 100


# ---- what every role reads: no English word on any page ------------------------------------------------------------
ALLOWED_LATIN = {"BPMN", "CSV", "XLSX", "PDF", "JSON", "OpenAPI", "API", "SHA", "HTTPS", "GBK", "UTF", "XML", "ICP",
                 "SpiffWorkflow", "bpmn", "js", "csv", "xlsx", "json", "bangban",
                 "DOCX", "JPG", "PNG", "OFD"}
"""Latin words a Chinese page may show: names of file formats and of the standards a process owner works with."""
LATIN_WORD = re.compile(r"(?<![A-Za-z0-9_@.\-/])[A-Za-z]{3,}(?![A-Za-z0-9_@.\-/])")


def _visible_text(html: str) -> str:
    import lxml.html
    doc = lxml.html.fromstring(html)
    for bad in doc.xpath("//script|//style|//template|//noscript"):
        bad.drop_tree()
    words = [doc.text_content()]
    words += doc.xpath("//@placeholder|//@title|//@aria-label|//@alt|//input[@type='submit']/@value")
    return " ".join(words)


def test_no_page_shows_an_english_word_to_any_role(svc, world):
    """Every page (GET, not the API) as every role: the visible text, placeholders, titles and labels carry no English
    word (file-format names aside); logins and codes with digits are data, not words."""
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    users = _users_by_role(svc)
    with svc.db.unit_of_work(write=False) as uow:      # data, not words: logins and the codes of departments/stations
        data = {r[0] for r in uow.conn.exec_driver_sql(
            "SELECT username FROM users UNION SELECT code FROM departments UNION SELECT code FROM stations")}
    found: dict[str, set[str]] = {}
    pages = 0
    for role, (username, _roles) in users.items():
        client = _login(app, username)
        for rule, method, _view in _routes(app):
            if method != "GET" or rule.rule.startswith("/api/") or rule.endpoint in ("auth.logout",):
                continue
            r = client.get(_url(rule, world))
            if r.status_code != 200 or not r.mimetype == "text/html":
                continue
            pages += 1
            text = _visible_text(r.get_data(as_text=True))
            words = {w for w in LATIN_WORD.findall(text) if w not in ALLOWED_LATIN and w not in data}
            if words:
                found.setdefault(f"{rule.rule}（{role}）", set()).update(words)
    assert pages > 50
    assert not found, "页面上出现了英文词：\n" + "\n".join(f"{k}: {sorted(v)}" for k, v in sorted(found.items()))
