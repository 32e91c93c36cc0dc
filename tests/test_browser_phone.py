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
            logout(page)
    assert seen > 50
    assert not wide, "这些页面在手机上比屏幕宽：\n" + "\n".join(wide)
