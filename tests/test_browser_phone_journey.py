"""The applicant's whole journey on a phone (390×844): the application, the 补正 from its notice, the 办结单 signed,
the rating from its invitation, the 评价表 printed; staff steps are taken through the use cases in between. Every
page the applicant sees is no wider than the screen and has no table to swipe sideways."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.sync_api import expect

import tests.helpers as h
from engine.clock import LOCAL_TZ, clock
from tests.test_browser import choose, chromium_page, field, fill_application, live_server, login, require_chromium, tick  # noqa: F401  (live_server is a fixture)
from tests.test_browser_phone import PHONE, SIDEWAYS

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("all_cases_verified")]


def fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1, page.url
    assert not page.evaluate(SIDEWAYS), page.url


def open_notice(page, words: str) -> None:
    page.locator("#nav-notices").click()
    fits(page)
    notice = page.locator("#notice-list li.unread").filter(has_text=words)
    expect(notice).to_have_count(1)
    notice.get_by_role("button").click()


def test_the_applicants_whole_journey_on_a_phone(svc, live_server):  # noqa: F811
    require_chromium()
    clock.set(datetime(2026, 3, 2, 9, tzinfo=LOCAL_TZ))
    with chromium_page(live_server) as page:
        page.set_viewport_size(PHONE)
        login(page, "huarui")
        fits(page)
        page.get_by_role("link", name="新建申请").click()
        fits(page)
        no = fill_application(page, code=None, channel="网上申请（武来办）", mode="网上服务")
        fits(page)

        h.accept_and_commission(svc, no)
        h.dispatch(svc, no, ["hp"])
        h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=no, **h.needs_correction("请补充专家评审意见"))

        open_notice(page, "【补正告知】")
        expect(page.get_by_role("heading", name=re.compile("补正材料"))).to_be_visible()
        fits(page)
        field(page, "supplement_description").locator("textarea, input").first.fill("已补交专家评审意见")
        tick(page, "supplement_complete", "补正材料已按要求全部提交")
        page.get_by_role("button", name="提交", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("已办理：补正材料")
        fits(page)

        h.approve_items(svc, no, ["hp"])
        h.collect_and_deliver(svc, no)

        page.get_by_role("link", name="我的待办").click()
        fits(page)
        row = page.locator("#inbox tbody tr").filter(has_text=no).filter(has_text="签收办结单")
        row.get_by_role("link", name="办理").click()
        fits(page)
        tick(page, "results_received", "已收到批文")
        page.get_by_role("button", name="提交", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("已办理：签收办结单")
        expect(page.locator("#case-status")).to_have_text("已办结")
        fits(page)

        open_notice(page, "进行综合评价")
        expect(page.get_by_role("heading", name=re.compile("评价代办服务"))).to_be_visible()
        fits(page)
        choose(page, "rating", "非常满意")
        page.get_by_role("button", name="提交", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("已出具评价表")
        fits(page)
        with page.expect_popup() as popup:
            page.get_by_role("link", name=re.compile("评价表")).first.click()
        sheet = popup.value
        sheet.wait_for_load_state("load")
        sheet.set_viewport_size(PHONE)                  # a new tab takes the browser's size, not the first tab's
        expect(sheet.locator("h1")).to_have_text("帮办代办服务评价表")
        fits(sheet)
    assert h.case_row(svc, no).status == "completed"
