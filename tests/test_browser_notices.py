"""The applicant on a phone (390×844) sees an unread notice for 补正 (written by the template of
``processes/notifications.json`` in the department's step), opens the 补正 task from it, and submits it there."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.sync_api import expect

import tests.helpers as h
from engine.clock import LOCAL_TZ, clock
from tests.conftest import actor
from tests.test_browser import chromium_page, field, live_server, login, require_chromium, tick  # noqa: F401
from tests.test_browser_phone import PHONE

pytestmark = pytest.mark.browser
REQUEST = "请补充环评报告表及专家评审意见"


def test_the_applicant_opens_the_correction_task_from_its_notice_on_a_phone(svc, live_server):  # noqa: F811
    require_chromium()
    clock.set(datetime(2026, 3, 2, 9, tzinfo=LOCAL_TZ))
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp"])
    h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=no, **h.needs_correction(REQUEST))
    task = h.find_task(svc, "huarui", "补正材料", case_no=no)["task_id"]
    unread = svc.unread_notices(actor(svc, "huarui"))
    assert unread == 2                                   # 已受理, 补正告知

    with chromium_page(live_server) as page:
        page.set_viewport_size(PHONE)
        login(page, "huarui")
        expect(page.locator("#unread-badge")).to_have_text(str(unread))
        page.locator("#nav-notices").click()
        notice = page.locator("#notice-list li.unread").filter(has_text="【补正告知】")
        expect(notice).to_have_count(1)
        expect(notice).to_contain_text(f"办件 {no} 的服务事项「环评」（焦作市生态环境局武陟分局）需要补正材料：{REQUEST}")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
        notice.get_by_role("button").click()

        # The notice leads straight to the task: the request is shown beside the form.
        expect(page).to_have_url(re.compile(rf"/tasks/{task}$"))
        expect(page.get_by_role("heading", name=re.compile("补正材料"))).to_be_visible()
        expect(page.get_by_text(REQUEST).first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
        expect(page.locator("#unread-badge")).to_have_text(str(unread - 1))      # opened: read

        field(page, "supplement_description").locator("textarea, input").first.fill("已补交环评报告表及专家评审意见")
        tick(page, "supplement_complete", "补正材料已按要求全部提交")
        page.get_by_role("button", name="提交", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("已办理：补正材料")

        page.locator("#nav-notices").click()
        expect(page.locator("#notice-list li").filter(has_text="【补正告知】")).to_have_class("read")
    assert h.find_task(svc, "zb_sthj", "部门办理", "环评", case_no=no)
