"""The process owner changes the flow in the browser's modeler, and cases see it: in Debian's Chromium, like
tests/test_browser.py (a real waitress server in a thread, no ``playwright install``).

An applicant starts a case first (the old case). Then owner1 opens 流程管理 → the modeler, renames 受理审核 to
受理初审 through bpmn-js's own API, adds a form file as JSON text and a new user task after 签收办结单 in the
申请单位 lane (its spiffworkflow properties entered in the properties panel), sees 校验 mark the task while its
form is missing, validates clean, and publishes. A new case then shows 受理初审 in agent1's inbox and in its case
diagram; the old case still shows 受理审核. Both cases then run to their end, the new one through the added task.
Screenshots (the modeler with a problem marked and after publishing, the version list, the diff, both case
diagrams) go to tmp_path and are copied to /tmp/bangban-screens/.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from engine.services import Bangban
from tests import test_browser
from tests.helpers import (
    approve_items,
    collect_and_deliver,
    complete,
    dispatch,
    inbox_names,
    rate_departments,
    rating,
    receipt,
    view,
)
from tests.test_browser import chromium_page, fill_application, login, logout, require_chromium

pytestmark = pytest.mark.browser

live_server = test_browser.live_server      # the fixture: the app under waitress in a thread
SCREENS = Path("/tmp/bangban-screens")
NEW_TASK = "确认办结资料"
NEW_FORM = "forms/confirm_materials.json"
CONFIRM_FORM = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": NEW_TASK,
    "description": "核对办结单所列批文、证照原件是否齐全。",
    "type": "object",
    "properties": {
        "materials_complete": {"type": "boolean", "title": "办结资料已核对齐全", "const": True},
        "remarks": {"type": "string", "title": "备注", "maxLength": 200},
    },
    "required": ["materials_complete"],
    "additionalProperties": False,
}

# bpmn-js's own API, as a person's drag and drop would use it: make room after 签收办结单 with the space tool,
# create a user task there inside the 帮办代办服务 subprocess, route 签收办结单 → new task → 送达完成, name it.
ADD_TASK = """(name) => {
  const m = window.bangbanModeler;
  const registry = m.get('elementRegistry'), modeling = m.get('modeling'), canvas = m.get('canvas');
  const receipt = registry.get('Task_Receipt'), end = registry.get('Sub_End'), sub = registry.get('Sub_Service');
  const start = receipt.x + receipt.width + 20;
  const all = registry.filter(e => e !== canvas.getRootElement());
  const room = m.get('spaceTool').calculateAdjustments(all, 'x', 150, start);
  modeling.createSpace(room.movingShapes, room.resizingShapes, {x: 150, y: 0}, 'e', start);
  const task = modeling.createShape({type: 'bpmn:UserTask'},
                                    {x: receipt.x + receipt.width + 110, y: receipt.y + receipt.height / 2}, sub);
  modeling.reconnectEnd(registry.get('Flow_Task_Receipt_Sub_End'), task, {x: task.x, y: task.y + task.height / 2});
  const flow = modeling.connect(task, end);
  modeling.updateLabel(task, name);
  return [task.id, flow.id];
}"""
SELECT = """(id) => {
  const m = window.bangbanModeler;
  m.get('selection').select(m.get('elementRegistry').get(id));
  window.BangbanDiagram.focus(m, [id], 0.9);
}"""


def shot(locator_or_page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    locator_or_page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENS / name)
    return path


def start_case(page, project: str) -> str:
    """The applicant fills in 帮办代办服务申请表 with one service item and submits it."""
    page.get_by_role("link", name="新建申请").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("帮办代办服务申请表")
    return fill_application(page, project=project)


def diagram_ready(page):
    box = page.locator("#case-diagram")
    expect(box).to_have_attribute("data-state", "ready")
    return box


def test_the_owner_renames_and_adds_a_task_in_the_modeler_and_only_new_cases_get_it(live_server, svc, tmp_path):
    require_chromium()
    with chromium_page(live_server) as page:
        page.set_viewport_size({"width": 1600, "height": 1000})
        login(page, "huarui")
        old_case = start_case(page, "旧版本项目")
        logout(page)
        new_task_id = change_the_flow(page, tmp_path)
        new_case = see_both_versions(page, old_case, tmp_path)
    both_cases_run_to_their_end(svc, old_case, new_case)
    # the new task and its lane came through bpmn-js: the new version's diagram names it in the 申请单位 lane
    ps = svc.version(svc.current_version_id)
    assert ps.hash != svc.version(1).hash and new_task_id in ps.files["bangban_case.bpmn"].decode()


def change_the_flow(page, tmp_path: Path) -> str:
    login(page, "owner1")
    page.on("dialog", lambda dialog: dialog.accept())    # 发布 asks first (tests/test_browser_confirm.py)
    page.get_by_role("link", name="流程管理").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("流程管理")
    expect(page.locator("#versions tbody tr")).to_have_count(1)
    page.get_by_role("link", name="编辑最新版本（流程建模）").click()
    expect(page.locator("#bpmn-editor")).to_have_attribute("data-state", "ready")
    expect(page.locator("#base-version")).to_contain_text("基于版本 #1")
    expect(page.locator("#bpmn-editor .djs-palette")).to_be_visible()

    # -- rename 受理审核 through bpmn-js's API; the panel shows the name and the task's spiffworkflow properties kept --
    page.evaluate("""() => { const m = window.bangbanModeler;
        m.get('modeling').updateLabel(m.get('elementRegistry').get('Task_Review'), '受理初审'); }""")
    page.evaluate(SELECT, "Task_Review")
    expect(page.locator("#bio-properties-panel-name")).to_have_value("受理初审")
    props = page.locator("#prop-table tr")
    # form, stage, record_actor, what it shows (the duplicate warning, the application), the 不予受理告知书 and when
    # it is issued, the confirmation of a refusal and when it is asked
    expect(props).to_have_count(8)
    expect(page.locator('#prop-table tr[data-name="formJsonSchemaFilename"] input').nth(1)).to_have_value("review.json")
    expect(page.locator('#prop-table tr[data-name="show"] input').nth(1)).to_have_value("duplicate_warning, application()")
    expect(page.locator('#prop-table tr[data-name="record_actor"] input').nth(1)).to_have_value("case_agent")
    expect(page.locator('#file-list button[data-file="bangban_case.bpmn"] .dirty')).to_be_visible()

    # -- a new form, typed as JSON text --------------------------------------------------------------------------
    page.locator("#new-form-name").fill(NEW_FORM)
    page.get_by_role("button", name="添加", exact=True).click()
    editor = page.locator("#json-editor")
    expect(page.locator("#form-editor")).to_be_visible()          # a form opens in the designer; JSON for experts
    expect(editor).to_be_hidden()
    page.get_by_role("tab", name="JSON 文本（供熟悉 JSON 的人员）").click()
    expect(editor).to_be_visible()
    expect(page.locator("#bpmn-editor")).to_be_hidden()
    editor.fill(json.dumps(CONFIRM_FORM, ensure_ascii=False, indent=2) + "\n")
    expect(page.locator(f'#file-list button[data-file="{NEW_FORM}"]')).to_contain_text(NEW_TASK)
    page.locator('#file-list button[data-file="bangban_case.bpmn"]').click()
    expect(page.locator("#bpmn-editor")).to_be_visible()
    expect(editor).to_be_hidden()

    # -- a new user task after 签收办结单; 校验 marks it while its form is missing ---------------------------------------
    task_id, flow_id = page.evaluate(ADD_TASK, NEW_TASK)
    assert re.fullmatch(r"Activity_\w+", task_id) and re.fullmatch(r"Flow_\w+", flow_id)
    page.get_by_role("button", name="校验").click()
    problems = page.locator("#problems li")
    expect(problems).to_have_count(1)
    expect(problems.first).to_have_attribute("data-element", task_id)
    expect(problems.first).to_contain_text(f"任务「{NEW_TASK}」未指定表单")
    expect(page.locator(f'.djs-element.bb-problem[data-element-id="{task_id}"]')).to_have_count(1)
    note = page.locator(f'.bb-problem-note[data-element="{task_id}"]')
    expect(note).to_contain_text("未指定表单")
    problems.first.get_by_role("button", name="定位").click()
    expect(page.locator("#props")).to_have_attribute("data-element", task_id)
    expect(page.locator("#props")).to_contain_text("申请单位")            # its lane: the role that will do it
    shot(page, tmp_path, "modeler_problems.png")

    # -- its properties, entered by name in the panel's 全部属性 ------------------------------------------------------
    page.locator("#prop-expert summary").click()
    for name, value in (("formJsonSchemaFilename", "confirm_materials.json"), ("stage", "统一送达")):
        page.locator("#prop-new-name").fill(name)
        page.locator("#prop-new-value").fill(value)
        page.get_by_role("button", name="添加属性").click()
        expect(page.locator(f'#prop-table tr[data-name="{name}"] input').nth(1)).to_have_value(value)
    expect(page.locator("#prop-table tr")).to_have_count(2)

    page.get_by_role("button", name="校验").click()
    expect(page.locator("#modeler-message")).to_have_text("校验通过：没有发现问题。")
    expect(page.locator(".djs-element.bb-problem")).to_have_count(0)
    expect(page.locator(".bb-problem-note")).to_have_count(0)

    # -- 发布 needs a comment, and refuses (422) a set with a problem: here a form that is no JSON -------------------
    page.get_by_role("button", name="发布").click()
    expect(page.locator("#modeler-message")).to_have_text("请填写发布说明。")
    page.get_by_label("发布说明").fill("受理审核更名为受理初审；签收办结单后增加确认办结资料")
    page.locator(f'#file-list button[data-file="{NEW_FORM}"]').click()
    editor.fill(json.dumps(CONFIRM_FORM, ensure_ascii=False, indent=2)[:-2] + "\n")
    page.locator('#file-list button[data-file="bangban_case.bpmn"]').click()
    page.get_by_role("button", name="发布").click()
    expect(page.locator("#modeler-message")).to_contain_text("未发布")
    broken_form = page.locator(f'#problems li[data-file="{NEW_FORM}"]')
    expect(broken_form.first).to_contain_text("不是有效的 JSON")
    broken_form.first.get_by_role("button", name="打开").click()
    expect(editor).to_be_visible()
    expect(editor).to_have_attribute("data-file", NEW_FORM)
    editor.fill(json.dumps(CONFIRM_FORM, ensure_ascii=False, indent=2) + "\n")
    page.locator('#file-list button[data-file="bangban_case.bpmn"]').click()
    expect(page.locator("#versions-link")).to_have_count(0)
    page.get_by_role("button", name="发布").click()
    expect(page.locator("#modeler-message")).to_contain_text("已发布新版本 #2")
    expect(page.locator("#modeler-result")).to_have_attribute("data-published", "2")
    expect(page.locator("#base-version")).to_contain_text("基于版本 #2")
    expect(page.locator("#file-list .dirty")).to_have_count(0)
    page.evaluate(SELECT, task_id)
    shot(page, tmp_path, "modeler.png")

    # -- the version list and the diff ---------------------------------------------------------------------------------
    page.get_by_role("link", name="查看全部版本").click()
    rows = page.locator("#versions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("最新")
    expect(rows.first).to_contain_text("吴流程")
    expect(rows.nth(1)).to_contain_text("办理中 1")
    shot(page, tmp_path, "process_versions.png")
    rows.first.get_by_role("link", name="比较").click()
    changes = page.locator("#changes tbody tr")
    expect(page.locator('#changes tr[data-element="Task_Review"]')).to_contain_text("名称：受理审核 → 受理初审")
    added = re.compile(rf"新增[\s\S]*{NEW_TASK}[\s\S]*泳道：申请单位")
    expect(page.locator(f'#changes tr[data-element="{task_id}"]')).to_contain_text(added)
    expect(page.locator('#changes tr[data-element="Flow_Task_Receipt_Sub_End"]')).to_contain_text(f"终点：Sub_End → {task_id}")
    expect(page.locator("#changes")).to_contain_text(NEW_FORM)
    expect(page.locator(f'#changes tr[data-element="{flow_id}"]')).to_contain_text(f"{task_id} → Sub_End")
    # nothing else changed: bpmn-js kept every other element, lane, property and script as it was. (engine/versions.py
    # takes a subprocess's properties from all its descendants, so the new task's form also shows as a change of
    # Sub_Service: that row is left out here.)
    expect(changes).not_to_have_count(0)
    elements = [row.get_attribute("data-element") for row in changes.all()]
    assert sorted(e or "" for e in elements if e != "Sub_Service") == sorted(
        ["Task_Review", task_id, flow_id, "Flow_Task_Receipt_Sub_End", ""]), changes.all_inner_texts()
    shot(page, tmp_path, "process_diff.png")
    logout(page)
    return task_id


def see_both_versions(page, old_case: str, tmp_path: Path) -> str:
    login(page, "huarui")
    new_case = start_case(page, "新版本项目")
    expect(page.locator("#open-tasks")).to_contain_text("受理初审")
    logout(page)

    login(page, "agent1")
    inbox = page.locator("#inbox tbody tr")
    expect(inbox.filter(has_text=new_case)).to_contain_text("受理初审")
    expect(inbox.filter(has_text=old_case)).to_contain_text("受理审核")
    expect(inbox.filter(has_text=old_case)).not_to_contain_text("受理初审")

    for case_no, name, screen in ((new_case, "受理初审", "case_new_version.png"), (old_case, "受理审核", "case_old_version.png")):
        page.goto(f"/cases/{case_no}")
        box = diagram_ready(page)
        task = box.locator('.djs-element[data-element-id="Task_Review"]')
        expect(task).to_have_class(re.compile(r"\bbb-current\b"))
        expect(task).to_contain_text(name)
        expect(box.locator('.djs-element[data-element-id="StartApplication"]')).to_have_class(re.compile(r"\bbb-done\b"))
        expect(box.locator(".bb-current")).to_have_count(1)
        expect(page.locator("#case-diagram-status")).to_contain_text(f"当前待办：{name}")
        has_new_task = box.locator(".djs-element.djs-shape", has_text=NEW_TASK)
        expect(has_new_task).to_have_count(1 if case_no == new_case else 0)
        shot(page.locator("#diagram-card"), tmp_path, screen)
    logout(page)
    return new_case


def both_cases_run_to_their_end(svc: Bangban, old_case: str, new_case: str) -> None:
    """Through the engine, quickly: the published diagram runs to 已办结, through the new task; the old one without it."""
    for case_no in (old_case, new_case):
        review = "受理初审" if case_no == new_case else "受理审核"
        complete(svc, "agent1", review, case_no=case_no, review_decision="受理", authorization_checked=True)
        complete(svc, "agent1", "材料交接并签订委托书", case_no=case_no, commission_signed=True,
                 materials_received="营业执照、项目备案证明等", service_mode_confirmed="现场服务")
        dispatch(svc, case_no, ["hp"])
        approve_items(svc, case_no, ["hp"])
        collect_and_deliver(svc, case_no)
        complete(svc, "huarui", "签收办结单", case_no=case_no, **receipt())
        if case_no == new_case:
            assert ("确认办结资料", None) in inbox_names(svc, "huarui", case_no)
            assert view(svc, case_no)["case"]["status"] == "active"
            complete(svc, "huarui", NEW_TASK, case_no=case_no, materials_complete=True, remarks="原件齐全")
        else:
            assert NEW_TASK not in [n for n, _ in inbox_names(svc, "huarui", case_no)]
        complete(svc, "huarui", "评价代办服务", case_no=case_no, **rating("非常满意"))
        rate_departments(svc, case_no)
        assert view(svc, case_no)["case"]["status"] == "completed", case_no

