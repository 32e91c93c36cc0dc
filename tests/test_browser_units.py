"""A company registers itself in the browser, the 综合窗口 approves it, its handler applies claiming a key project that
is not in the register, and the window decides the claim with a reason (issue 13)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from engine import creditcode
from tests.test_browser import (  # noqa: F401  (live_server is a fixture)
    choose,
    chromium_page,
    fill_application,
    label,
    live_server,
    login,
    logout,
    open_task,
    require_chromium,
    submit_task,
    tick,
)

pytestmark = pytest.mark.browser
UNIT = "武陟县新源机械制造有限公司"


def login_as(page, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("我的待办")


def test_a_company_registers_the_window_approves_its_handler_applies(live_server):  # noqa: F811
    require_chromium()
    with chromium_page(live_server) as page:
        page.goto("/login")
        page.get_by_role("link", name="申请单位注册").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("申请单位注册")
        for text, value in (("单位名称", UNIT), ("统一社会信用代码", creditcode.with_check("91410823MA9XY0003").lower()),
                            ("法定代表人", "王新源"), ("单位地址", "武陟县木城街道新源路1号"), ("邮编", "454950"),
                            ("经办人姓名", "赵经办"), ("经办人手机号码", "13712345678"), ("登录名", "xinyuan"),
                            ("登录密码", "xinyuan-2026"), ("确认密码", "xinyuan-2026")):
            page.get_by_label(label(text)).fill(value)
        page.get_by_role("button", name="提交注册").click()
        expect(page.locator('[data-field="credit_code"] .field-error')).to_contain_text("请使用大写字母")
        page.get_by_label(label("统一社会信用代码")).fill(creditcode.with_check("91410823MA9XY0003"))
        page.get_by_label(label("登录密码")).fill("xinyuan-2026")
        page.get_by_label(label("确认密码")).fill("xinyuan-2026")
        page.get_by_role("button", name="提交注册").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("注册已提交，等待审核")

        login_as(page, "xinyuan", "xinyuan-2026")
        expect(page.locator("#unit-status")).to_contain_text("单位注册待审核")
        expect(page.get_by_role("link", name="新建申请")).to_have_count(0)
        logout(page)

        login(page, "window1")
        page.get_by_role("link", name="单位注册审核").click()
        row = page.locator("#registrations tbody tr").filter(has_text=UNIT)
        row.get_by_role("button", name="通过", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text(f"已审核：{UNIT}（已通过）")
        logout(page)

        login_as(page, "xinyuan", "xinyuan-2026")
        expect(page.locator("#notifications")).to_contain_text("本单位注册已审核通过")
        page.get_by_role("link", name="新建申请").click()
        unit_name = page.get_by_label(label("项目单位名称"))
        expect(unit_name).to_have_value(UNIT)
        expect(unit_name).not_to_be_editable()
        page.get_by_label(label("项目单位负责人")).fill("王新源")
        page.get_by_label(label("负责人联系电话")).fill("0391-7223003")
        case_no = fill_application(page, project="新源机械智能装备项目", key="重点项目", investment=None,
                                   code="2026-410823-34-03-000777",      # not in the key-project register
                                   channel="网上申请（武来办）", mode="网上服务", handler=("赵经办", "13712345678"))
        logout(page)

        # the agent accepts; the claim is not in the register, so the window verifies it
        login(page, "agent1")
        open_task(page, case_no, "受理审核")
        choose(page, "review_decision", "受理")
        tick(page, "authorization_checked", "已核验")
        submit_task(page, "受理审核")
        logout(page)

        login(page, "window1")
        open_task(page, case_no, "核实重点认定")
        expect(page.locator("main")).to_contain_text("没有查到有效认定")
        choose(page, "key_decision", "按一般项目办理")
        page.get_by_role("button", name="提交", exact=True).click()
        expect(page.locator('[data-field="key_decision_reason"]')).to_contain_text("必填")   # the reason is required
        page.get_by_label(label("理由")).fill("发改委尚未认定，按一般项目办理，认定后可申请转重点")
        submit_task(page, "核实重点认定")
        logout(page)

        login(page, "agent1")                         # the ordinary route: the agent signs the commission
        open_task(page, case_no, "材料交接并签订委托书")
