"""HTTP tests of the process owner's pages and APIs, the bpmn-js files and the case diagram (Flask test client).

Who may do what: applicants, agents and specialists see nothing of process versions; the supervisor and the auditor
read them; only the process owner opens the modeler and publishes. A broken process set is reported problem by
problem (with the BPMN element id where there is one) and publishing it changes nothing. A published rename reaches new
cases only. ``/vendor/bpmn-js/`` serves bpmn-js's dist files and nothing else.
"""
from __future__ import annotations

import json
import re

import pytest
from flask.testing import FlaskClient

from tests import test_web
from tests.test_web import (
    ACCEPT,
    APPLICATION,
    COMMISSION,
    PROCESS,
    api_complete,
    api_login,
    assert_html_error,
    assert_json_error,
    html_login,
)
from web.views import BPMN_JS_DIST, MODELER_BUILD

app = test_web.app      # the fixture: the app whose every response is checked for a leaked traceback

BPMN = "bangban_case.bpmn"
REVIEW = '<bpmn:userTask id="Task_Review" name="受理审核">'
RENAMED = '<bpmn:userTask id="Task_Review" name="受理初审">'
VIEWER = "bpmn-navigated-viewer.production.min.js"


def latest_files(c) -> dict[str, str]:
    versions = c.get("/api/processes/versions").json["versions"]
    latest = next(v for v in versions if v["latest"])
    r = c.get(f"/api/processes/versions/{latest['id']}/files")
    assert r.status_code == 200, r.text
    return r.json["files"]


def version_count(app) -> int:
    return len(api_login(app, "owner1").get("/api/processes/versions").json["versions"])


def start_case(c) -> dict:
    r = c.post("/api/cases", json={"process": PROCESS, "data": APPLICATION})
    assert r.status_code == 201, r.text
    return r.json


def broken(kind: str, bpmn: str) -> str:
    """The BPMN with one thing wrong, as a process owner might get it wrong (or an attacker might send it)."""
    if kind == "unknown lane":
        out = bpmn.replace('<bpmn:lane id="Lane_Applicant" name="申请单位">',
                           '<bpmn:lane id="Lane_Applicant" name="不存在的泳道">')
    elif kind == "script imports os":
        out = bpmn.replace("<bpmn:script>items = catalogue_items(service_items)",
                           "<bpmn:script>import os\nitems = catalogue_items(service_items)")
    elif kind == "xxe":
        out = bpmn.replace('<?xml version="1.0" encoding="UTF-8"?>\n',
                           '<?xml version="1.0" encoding="UTF-8"?>\n'
                           '<!DOCTYPE bpmn:definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n', 1)
        out = out.replace('name="受理审核"', 'name="&xxe;"', 1)
    else:
        raise AssertionError(kind)
    assert out != bpmn
    return out


# =============================================================================================================
# Permissions
# =============================================================================================================
@pytest.mark.parametrize("username", ["huarui", "agent1", "zb_sthj"])
def test_case_workers_see_nothing_of_process_versions(app, username):
    owner_files = latest_files(api_login(app, "owner1"))
    before = version_count(app)
    page = html_login(app, username)
    assert "流程管理" not in page.get("/inbox").text
    for path in ("/processes", "/processes/modeler", "/processes/diff?old=1&new=1"):
        assert_html_error(page.get(path), 403, "无权")
    c = api_login(app, username)
    for path in ("/api/processes/versions", "/api/processes/versions/1/files", "/api/processes/versions/1/diff/1"):
        assert_json_error(c.get(path), 403, "无权")
    assert_json_error(c.post("/api/processes/validate", json={"files": {BPMN: owner_files[BPMN]}}), 403)
    assert_json_error(c.post("/api/processes/publish", json={"files": {BPMN: owner_files[BPMN].replace(REVIEW, RENAMED)},
                                                             "comment": "越权发布"}), 403)
    assert version_count(app) == before


@pytest.mark.parametrize("username", ["supervisor1", "auditor1"])
def test_supervisor_and_auditor_read_versions_but_may_not_publish(app, username):
    page = html_login(app, username)
    assert 'href="/processes">流程管理</a>' in page.get("/inbox").text
    listing = page.get("/processes")
    assert listing.status_code == 200
    assert 'id="versions"' in listing.text and "#1" in listing.text and "最新" in listing.text
    assert 'id="open-modeler"' not in listing.text          # no way into the modeler offered
    assert_html_error(page.get("/processes/modeler"), 403, "无权")

    c = api_login(app, username)
    versions = c.get("/api/processes/versions")
    assert versions.status_code == 200 and [v["latest"] for v in versions.json["versions"]] == [True]
    files = latest_files(c)
    assert BPMN in files and "bangban.json" in files and "forms/review.json" in files
    r = c.post("/api/processes/publish", json={"files": {BPMN: files[BPMN].replace(REVIEW, RENAMED)}, "comment": "越权发布"})
    assert_json_error(r, 403, "无权")
    assert version_count(app) == 1


def test_the_owner_opens_the_modeler_on_the_latest_version(app):
    page = html_login(app, "owner1")
    assert 'href="/processes">流程管理</a>' in page.get("/inbox").text
    listing = page.get("/processes")
    assert listing.status_code == 200 and 'id="open-modeler"' in listing.text
    r = page.get("/processes/modeler")
    assert r.status_code == 200
    for shown in ('id="bpmn-editor"', 'id="validate-button"', 'id="publish-button"', 'id="publish-comment"',
                  'id="properties-panel"', "/vendor/bangban-modeler/bangban-modeler.js",
                  "/vendor/bangban-modeler/bangban-modeler.css", "/static/diagram-util.js", "/static/modeler.js",
                  "/static/form-editor.js"):
        assert shown in r.text, shown
    embedded = re.search(r'<script type="application/json" id="process-files">(.*?)</script>', r.text, re.S).group(1)
    files = json.loads(embedded)
    assert files == latest_files(api_login(app, "owner1"))
    assert "</script" not in embedded.lower()           # the embedded JSON cannot end its script element
    version = json.loads(re.search(r'id="process-version">(.*?)</script>', r.text, re.S).group(1))
    assert version["id"] == 1


# =============================================================================================================
# Validation and refused publication
# =============================================================================================================
@pytest.mark.parametrize(("kind", "element", "fragment"), [
    ("unknown lane", "Lane_Applicant", "不存在的泳道"),
    ("script imports os", "Script_Items", "import"),
    ("xxe", None, "DOCTYPE"),
])
def test_a_broken_bpmn_is_reported_and_not_published(app, kind, element, fragment):
    owner = api_login(app, "owner1")
    bad = broken(kind, latest_files(owner)[BPMN])
    r = owner.post("/api/processes/validate", json={"files": {BPMN: bad}})
    assert r.status_code == 200, r.text
    assert r.json["ok"] is False
    problems = r.json["problems"]
    assert problems and all(set(p) >= {"message", "file", "line", "element"} for p in problems)
    hit = [p for p in problems if fragment in p["message"]]
    assert hit, problems
    assert hit[0]["file"] == BPMN and isinstance(hit[0]["line"], int)
    if element:
        assert hit[0]["element"] == element

    before = owner.get("/api/processes/versions").json["versions"]
    r = owner.post("/api/processes/publish", json={"files": {BPMN: bad}, "comment": "有问题的版本"})
    body = assert_json_error(r, 422, "未发布")
    assert [p["message"] for p in body["details"]] == [p["message"] for p in problems]
    assert owner.get("/api/processes/versions").json["versions"] == before
    # and new cases still start on the version that was there
    assert [t["name"] for t in start_case(api_login(app, "huarui"))["tasks"]] == ["受理审核"]


def test_publishing_needs_a_comment_and_the_unchanged_set_validates_clean(app):
    owner = api_login(app, "owner1")
    files = latest_files(owner)
    r = owner.post("/api/processes/validate", json={"files": {BPMN: files[BPMN]}})
    assert r.status_code == 200 and r.json == {"ok": True, "problems": []}
    r = owner.post("/api/processes/publish", json={"files": {BPMN: files[BPMN].replace(REVIEW, RENAMED)}, "comment": "  "})
    assert_json_error(r, 422, "发布说明")
    assert version_count(app) == 1


# =============================================================================================================
# Publishing a rename: new cases get it, old cases keep their version; the diff page lists it
# =============================================================================================================
def test_a_published_rename_reaches_new_cases_only(app):
    huarui = api_login(app, "huarui")
    old = start_case(huarui)
    assert [t["name"] for t in old["tasks"]] == ["受理审核"]

    owner = api_login(app, "owner1")
    files = latest_files(owner)
    r = owner.post("/api/processes/publish", json={"files": {BPMN: files[BPMN].replace(REVIEW, RENAMED)},
                                                   "comment": "受理审核更名为受理初审"})
    assert r.status_code == 201, r.text
    published = r.json
    assert published["id"] == 2 and not published["unchanged"] and len(published["short"]) == 12
    versions = owner.get("/api/processes/versions").json["versions"]
    assert [(v["id"], v["latest"], v["author"]) for v in versions] == [(2, True, "owner1"), (1, False, "system")]
    assert versions[0]["comment"] == "受理审核更名为受理初审"
    assert versions[1]["cases"] == {"办理中": 1}

    new = start_case(huarui)
    assert [t["name"] for t in new["tasks"]] == ["受理初审"]
    agent = api_login(app, "agent1")
    inbox = {t["case_no"]: t["name"] for t in agent.get("/api/tasks").json["tasks"]}
    assert inbox[old["case_no"]] == "受理审核" and inbox[new["case_no"]] == "受理初审"

    old_diagram = huarui.get(f"/api/cases/{old['case_no']}/diagram").json
    new_diagram = huarui.get(f"/api/cases/{new['case_no']}/diagram").json
    assert REVIEW in old_diagram["xml"] and RENAMED not in old_diagram["xml"]
    assert RENAMED in new_diagram["xml"]
    assert new_diagram["version"] == published["short"] and old_diagram["version"] != published["short"]
    assert old_diagram["current"] == new_diagram["current"] == ["Task_Review"]
    assert new_diagram["tasks"] == [{"element": "Task_Review", "name": "受理初审", "title": None}]
    case_page = html_login(app, "huarui").get(f"/cases/{new['case_no']}")
    assert f"版本 {published['short']}" in case_page.text

    # both versions run on: each case's agent task is done under its own name
    api_complete(agent, new["case_no"], "受理初审", ACCEPT)
    api_complete(agent, new["case_no"], "材料交接并签订委托书", COMMISSION)
    api_complete(agent, old["case_no"], "受理审核", ACCEPT)
    api_complete(agent, old["case_no"], "材料交接并签订委托书", COMMISSION)
    assert "Task_Review" in huarui.get(f"/api/cases/{new['case_no']}/diagram").json["completed"]

    # the diff page lists the rename, by id and by hash prefix
    page = html_login(app, "owner1")
    listing = page.get("/processes")
    assert 'href="/processes/diff?old=1&amp;new=2">比较</a>' in listing.text
    assert "受理审核更名为受理初审" in listing.text
    for old_ref, new_ref in (("1", "2"), (versions[1]["short"], published["short"][:8])):
        diff = page.get(f"/processes/diff?old={old_ref}&new={new_ref}")
        assert diff.status_code == 200, diff.text[:500]
        rows = re.findall(r'<tr data-kind="(\w+)" data-element="([^"]+)">(.*?)</tr>', diff.text, re.S)
        assert [(kind, element) for kind, element, _ in rows] == [("changed", "Task_Review")]
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[0][2], re.S)]
        assert cells == ["修改", "任务", BPMN, "Task_Review", "受理初审", "名称：受理审核 → 受理初审"]
    assert_html_error(page.get("/processes/diff?old=1"), 422, "请选择")
    assert_html_error(page.get("/processes/diff?old=1&new=999"), 404)


# =============================================================================================================
# bpmn-js, served from its npm dist folder only
# =============================================================================================================
def test_bpmn_js_dist_files_are_served(app):
    c = FlaskClient(app, app.response_class)        # not the recording client: fonts are no text
    assert BPMN_JS_DIST.is_dir(), "bpmn-js 未安装：./run 会用 npm ci --prefix web/frontend 安装"
    for path, mimetype in ((VIEWER, "javascript"), ("bpmn-modeler.production.min.js", "javascript"),
                           ("assets/bpmn-js.css", "text/css"), ("assets/diagram-js.css", "text/css"),
                           ("assets/bpmn-font/css/bpmn-embedded.css", "text/css"),
                           ("assets/bpmn-font/font/bpmn.woff2", "font/woff2")):
        r = c.get(f"/vendor/bpmn-js/{path}")
        assert r.status_code == 200, path
        assert mimetype in r.mimetype, (path, r.mimetype)
        assert r.data == (BPMN_JS_DIST / path).read_bytes()
        r.close()


def test_the_modeler_bundle_is_served(app):
    """bpmn-js with bpmn-js-properties-panel and bpmn-js-i18n's Chinese words, built by esbuild from web/frontend/src
    (./run builds it after npm ci); only its script and style sheet."""
    assert (MODELER_BUILD / "bangban-modeler.js").is_file(), "建模器脚本未构建：./run 会在 npm ci 之后运行 npm run build"
    c = FlaskClient(app, app.response_class)
    for name, mimetype, inside in (("bangban-modeler.js", "javascript", "办理设置"),
                                   ("bangban-modeler.css", "text/css", ".bio-properties-panel")):
        r = c.get(f"/vendor/bangban-modeler/{name}")
        assert r.status_code == 200 and mimetype in r.mimetype, name
        assert inside in r.get_data(as_text=True), name
        r.close()
    for path in ("bangban-modeler.js.LEGAL.txt", "../package.json", "..%2Fpackage.json", "../src/modeler.js", ".bangban-built"):
        r = c.get(f"/vendor/bangban-modeler/{path}")
        assert r.status_code == 404, path
        r.close()


@pytest.mark.parametrize("path", [
    "../package.json", "../../bpmn-moddle/package.json", "assets/../../package.json", "assets/../" + VIEWER,
    "../../../../../../etc/passwd", "/etc/passwd", "//etc/passwd", "%2Fetc%2Fpasswd", "%2e%2e/package.json",
    "..%2Fpackage.json", "%2E%2E%2F%2E%2E%2Fpackage.json", "%252e%252e%252fpackage.json", "..\\package.json",
    "assets", "assets/", "assets/bpmn-font", "missing.js", ".hidden.js", "assets/.hidden.css", "../LICENSE",
    "bpmn-viewer.production.min.js.map", "assets/bpmn-font/font/bpmn.exe", VIEWER + "%00.js", "../../../web/views.py",
])
def test_anything_else_under_vendor_is_not_found(app, path):
    r = app.test_client().get(f"/vendor/bpmn-js/{path}")
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert "页面不存在" in r.text


# =============================================================================================================
# The case diagram
# =============================================================================================================
def test_the_case_page_has_the_diagram_and_the_api_says_what_is_done_and_open(app):
    huarui = api_login(app, "huarui")
    case_no = start_case(huarui)["case_no"]
    agent = api_login(app, "agent1")
    api_complete(agent, case_no, "受理审核", ACCEPT)
    api_complete(agent, case_no, "材料交接并签订委托书", COMMISSION)

    page = html_login(app, "huarui").get(f"/cases/{case_no}")
    assert page.status_code == 200
    assert f'id="case-diagram" class="diagram" data-src="/api/cases/{case_no}/diagram"' in page.text
    for shown in (f"/vendor/bpmn-js/{VIEWER}", "/static/case-diagram.js", "已办理", "当前待办", "未到达"):
        assert shown in page.text, shown
    for kept in ('id="case-no"', 'id="case-status"', 'id="stages"', 'id="open-tasks"', 'id="items"', 'id="documents"',
                 'id="timeline"'):
        assert kept in page.text, kept
    viewer = app.test_client().get(f"/vendor/bpmn-js/{VIEWER}")
    assert viewer.status_code == 200
    viewer.close()

    for username in ("huarui", "agent1", "agent2", "supervisor1", "auditor1"):
        r = api_login(app, username).get(f"/api/cases/{case_no}/diagram")
        assert r.status_code == 200, (username, r.text)
        d = r.json
        assert d["case_no"] == case_no and d["file"] == BPMN and d["xml"].startswith("<?xml")
        assert {"StartApplication", "Task_Review", "Gw_Accept", "Task_Commission"} <= set(d["completed"])
        assert "Task_Dispatch" not in d["completed"]
        assert d["current"] == ["Task_Dispatch"]
        assert d["tasks"] == [{"element": "Task_Dispatch", "name": "分派服务事项", "title": None}]

    for username in ("jiahe", "zb_sthj", "owner1"):        # another unit's applicant; a department not involved
        assert_json_error(api_login(app, username).get(f"/api/cases/{case_no}/diagram"), 404)
        assert_html_error(html_login(app, username).get(f"/cases/{case_no}"), 404)
    r = app.test_client().get(f"/api/cases/{case_no}/diagram")
    assert_json_error(r, 401)
