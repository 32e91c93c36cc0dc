"""Steps that end a case or publish a version ask first, in Debian's Chromium as the people do it.

The agent opens 受理审核: the application is shown beside the form; choosing 不予受理 and submitting brings up the
confirmation naming the consequence; 取消 leaves the case exactly as it was (still 办理中, 受理审核 still open, no
告知书); 确定 refuses it. The process owner's 发布 asks with the browser's dialog; dismissing it publishes nothing.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import helpers as h
from tests.test_browser import choose, chromium_page, field, live_server, login, open_task, require_chromium  # noqa: F401

pytestmark = pytest.mark.browser

EXPLANATION = "项目不属于帮办代办服务范围"


def state(svc, case_no: str) -> tuple:
    return (h.case_row(svc, case_no).status, h.open_tasks(svc, case_no), h.event_types(svc, case_no),
            h.documents(svc, case_no))


def test_refusal_asks_and_cancelling_leaves_the_case_unchanged(svc, live_server):  # noqa: F811
    require_chromium()
    h.freeze_clock()
    case_no = h.start(svc)
    before = state(svc, case_no)
    with chromium_page(live_server) as page:
        login(page, "agent1")
        open_task(page, case_no, "受理审核")
        application = page.locator('section[data-view="application"]')
        expect(application.get_by_role("heading")).to_contain_text("帮办代办服务申请表")
        expect(application).to_contain_text("年产万吨食品项目")
        expect(application).not_to_contain_text("project_name")

        choose(page, "review_decision", "不予受理")
        field(page, "refusal_explanation").locator("textarea").fill(EXPLANATION)
        page.get_by_role("button", name="提交", exact=True).click()
        box = page.get_by_role("alertdialog")
        expect(box).to_be_visible()
        expect(box).to_contain_text("不予受理后办件即告结束，申请单位将收到不予受理告知书")
        expect(page.get_by_role("button", name="确定")).to_be_focused()
        assert state(svc, case_no) == before
        # on a phone the application and the question fit the screen
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth") <= 391
        expect(box).to_be_in_viewport()
        page.set_viewport_size({"width": 1280, "height": 900})

        box.get_by_role("link", name="取消").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("受理审核")
        expect(page.get_by_role("alertdialog")).to_have_count(0)
        assert state(svc, case_no) == before
        assert before[0] == "active" and [n for n, _ in before[1]] == ["受理审核"]

        # asked again, and confirmed this time
        choose(page, "review_decision", "不予受理")
        field(page, "refusal_explanation").locator("textarea").fill(EXPLANATION)
        page.get_by_role("button", name="提交", exact=True).click()
        page.get_by_role("alertdialog").get_by_role("button", name="确定").click()
        expect(page.get_by_role("status")).to_contain_text("已办理：受理审核，已出具不予受理告知书")
    status, tasks, _, documents = state(svc, case_no)
    assert (status, tasks) == ("refused", []) and [d[0] for d in documents] == ["不予受理告知书"]


def test_publishing_a_version_asks_and_dismissing_publishes_nothing(svc, live_server):  # noqa: F811
    require_chromium()
    owner = h.actor(svc, "owner1")
    versions = svc.process_versions(owner)
    with chromium_page(live_server) as page:
        login(page, "owner1")
        page.goto("/processes/modeler")
        expect(page.locator("#bpmn-editor")).to_have_attribute("data-state", "ready")
        asked: list[str] = []

        def dismiss(dialog):
            asked.append(dialog.message)
            dialog.dismiss()
        page.once("dialog", dismiss)
        page.get_by_label("发布说明").fill("只为确认发布前的提示")
        page.get_by_role("button", name="发布").click()
        page.wait_for_timeout(500)      # what a click would have started (a request to the server) has had time
        assert len(asked) == 1 and "发布后，此后提交的新办件都按这个版本" in asked[0] and "确定发布吗？" in asked[0]
        expect(page.locator("#modeler-result")).not_to_have_attribute("data-published", re.compile(".*"))
        expect(page.locator("#modeler-message")).to_have_count(0)
        assert svc.process_versions(owner) == versions

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="发布").click()
        latest = next(v["id"] for v in versions if v["latest"])
        expect(page.locator("#modeler-result")).to_have_attribute("data-published", str(latest))
        expect(page.locator("#modeler-message")).to_contain_text("没有产生新版本")
