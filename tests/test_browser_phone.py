"""Every page as every role on a phone (390×844): nothing makes the page wider than the screen.

Generated from the route table and the manifest's roles like the access matrix; a wide list scrolls inside itself. The
process modeler is a desktop tool for the process owner (a diagram editor) and is exempt, on purpose."""
from __future__ import annotations

import pytest

from tests.test_access_matrix import _routes, _url, _users_by_role, world  # noqa: F401  (world is a fixture)
from tests.test_browser import chromium_page, live_server, login, logout, require_chromium  # noqa: F401
from web import create_app

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
SIDEWAYS = """[...document.querySelectorAll('main table, main .table-wrap')]
  .filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1)
  .map(el => (el.id || el.className || el.tagName) + ' ' + el.scrollWidth + '/' + el.clientWidth).join('；')"""
DESKTOP_ONLY = {"views.process_modeler": "流程建模器（桌面工具）"}


def test_no_page_is_wider_than_a_phone_for_any_role(svc, world, live_server):  # noqa: F811
    require_chromium()
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    wide, seen = [], 0
    with chromium_page(live_server) as page:
        page.set_viewport_size(PHONE)
        for role, (username, _roles) in _users_by_role(svc).items():
            login(page, username)
            for rule, method, _view in _routes(app):
                if (method != "GET" or rule.rule.startswith("/api/") or rule.endpoint in DESKTOP_ONLY
                        or rule.endpoint.endswith("logout")):
                    continue
                response = page.goto(_url(rule, world))
                if response is None or response.status != 200 or "text/html" not in response.headers.get("content-type", ""):
                    continue
                seen += 1
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > PHONE["width"] + 1:
                    wide.append(f"{role} {rule.rule}：{width} 像素")
                # No list to swipe sideways either: its rows are stacked cards, each cell labelled with its heading.
                swiped = page.evaluate(SIDEWAYS)
                if swiped:
                    wide.append(f"{role} {rule.rule}：表格须横向滑动（{swiped}）")
            logout(page)
    assert seen > 50
    assert not wide, "这些页面在手机上比屏幕宽：\n" + "\n".join(wide)


def test_the_inbox_on_a_phone_is_a_stack_of_labelled_cards(svc, world, live_server):  # noqa: F811
    require_chromium()
    with chromium_page(live_server) as page:
        page.set_viewport_size(PHONE)
        login(page, "agent1")
        page.goto(f"{live_server}/inbox")
        rows = page.locator("#inbox tbody tr")
        assert rows.count() > 0
        first = rows.first
        box = first.bounding_box()
        assert box is not None and box["width"] <= PHONE["width"]
        cells = first.locator("td[data-label]")
        labels = [cells.nth(i).get_attribute("data-label") for i in range(cells.count())]
        assert "待办" in labels and "办件编号" in labels and "时限" in labels, labels
        # Stacked: the case number sits below the task's name, not beside it.
        task_box = first.locator("td").nth(0).bounding_box()
        number_box = first.locator("td").nth(1).bounding_box()
        assert number_box["y"] >= task_box["y"] + task_box["height"] - 1
        assert page.locator("#inbox thead").is_hidden()
        page.set_viewport_size({"width": 1366, "height": 768})          # the desktop keeps its table
        assert page.locator("#inbox thead").is_visible()
