"""One ordinary case carried through the real UI in Debian's Chromium, by every role in turn.

The app is served by waitress on 127.0.0.1 (a free port) against the test database of the ``svc`` fixture. The
browser only does what a person does: log in, open 我的待办, fill the form by its labels, submit, log out.
Assertions are on what the person sees. ``playwright install`` is never run: the project's setup installs
Debian's ``chromium`` package, and without it this test fails (it is no optional extra).
"""
from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from waitress import wasyncore
from waitress.server import create_server

from tests import helpers as h
from web import create_app

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PASSWORD = "demo1234"
STAGES = ["代办受理", "联合办理", "限时办结", "统一送达", "事后评价"]


@pytest.fixture
def live_server(svc):
    """The real app under waitress in a background thread; closed from inside its own loop afterwards."""
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "x"})
    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, name="waitress-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        # closing every dispatcher (listener, trigger, open connections) from the loop thread ends server.run()
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        thread.join(timeout=30)
        server.task_dispatcher.shutdown()
        assert not thread.is_alive(), "waitress 未能停止"


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"找不到 {CHROMIUM}：浏览器测试需要 Debian 的 chromium 软件包（项目的安装步骤会安装它）；"
                    "本测试不会运行 playwright install，也不会跳过", pytrace=False)


@contextmanager
def chromium_page(base_url: str):
    """A fresh Chromium page on the live server; fails afterwards if any page script threw."""
    expect.set_options(timeout=15_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=base_url, locale="zh-CN", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            context.close()
            browser.close()
    assert not errors, f"页面脚本出错：{errors}"


# ---- what a person does ------------------------------------------------------------------------------------
def login(page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("我的待办")
    expect(page.locator("#current-user")).not_to_be_empty()


def logout(page) -> None:
    page.get_by_role("button", name="退出").click()
    expect(page.get_by_role("heading", name="登录")).to_be_visible()


def field(page, name: str):
    """The block of one form field (its label, its input or choices, its error)."""
    return page.locator(f'[data-field="{name}"]')


def literal(text: str) -> str:
    """``text`` for a regular expression Playwright passes on as /.../ (where a bare slash would end it)."""
    return re.escape(text).replace("/", r"\/")


def label(text: str) -> re.Pattern:
    """A field's label as shown: its title, with a * when required."""
    return re.compile(rf"^\s*{literal(text)}\s*\*?\s*$")


def choose(page, name: str, option: str) -> None:
    field(page, name).get_by_role("radio", name=option, exact=True).check()


def tick(page, name: str, text: str) -> None:
    field(page, name).get_by_role("checkbox", name=re.compile(rf"^\s*{literal(text)}")).check()


def open_task(page, case_no: str, task: str, title: str | None = None) -> None:
    page.get_by_role("link", name="我的待办").click()
    rows = page.locator("#inbox tbody tr").filter(has_text=case_no).filter(has_text=task)
    if title:
        rows = rows.filter(has_text=title)
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name="办理").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(task)
    if title:
        expect(page.get_by_role("heading", level=1)).to_contain_text(title)


def submit_task(page, task: str) -> None:
    page.get_by_role("button", name="提交", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(f"已办理：{task}")


def fill_application(page, project: str = "年产万吨食品项目", code: str | None = "2026-410823-14-03-000001",
                     items: tuple[str, ...] = ("环评",), key: str = "否", channel: str = "综合窗口",
                     mode: str = "现场服务", handler: tuple[str, str] = ("张三", "13800000000"),
                     investment: str | None = "5000") -> str:
    """On the open 帮办代办服务申请表: fill it in as an applicant would, submit it; the new case's number."""
    page.get_by_label(label("项目单位经办人")).fill(handler[0])
    page.get_by_label(label("经办人联系电话")).fill(handler[1])
    page.get_by_label(label("项目名称")).fill(project)
    if code:
        page.get_by_label(label("项目编号")).fill(code)
    if investment:
        page.get_by_label(label("投资总额（万元）")).fill(investment)
    choose(page, "fund_source", "国内企业投资")
    choose(page, "land_nature", "出让")
    choose(page, "key_project", key)
    choose(page, "commission_scope", "全部")
    choose(page, "construction_started", "否")
    for item in items:
        tick(page, "service_items", item)
    page.get_by_label(label("申请渠道")).select_option(label=channel)
    page.get_by_label(label("服务方式")).select_option(label=mode)
    tick(page, "declaration", "本人承诺")
    tick(page, "commitment", "已阅读并同意")
    page.get_by_role("button", name="提交申请").click()
    expect(page.get_by_role("status")).to_contain_text("申请已提交，办件编号")
    return page.locator("#case-no").inner_text()


# ---- the case ------------------------------------------------------------------------------------------------
def test_one_ordinary_case_through_the_browser(live_server, tmp_path):
    require_chromium()
    with chromium_page(live_server) as page:
        carry_one_case(page, tmp_path)


def carry_one_case(page, tmp_path: Path) -> None:
    # -- the applicant fills in the application, ticking two service items ---------------------------------------
    login(page, "huarui")
    page.get_by_role("link", name="新建申请").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("帮办代办服务申请表")
    expect(page.get_by_label(label("项目单位名称"))).to_have_value("武陟县华瑞食品有限公司")
    case_no = fill_application(page, items=("环评", "消防（设计审查/验收）"))
    assert re.fullmatch(r"410823\d{12}", case_no)
    expect(page.locator("#case-status")).to_have_text("办理中")
    expect(page.locator("#items tbody tr")).to_have_count(2)
    logout(page)

    # -- the agent accepts, signs the commission and dispatches ---------------------------------------------------
    login(page, "agent1")
    open_task(page, case_no, "受理审核")
    choose(page, "review_decision", "受理")
    tick(page, "authorization_checked", "已核验")
    submit_task(page, "受理审核")
    open_task(page, case_no, "材料交接并签订委托书")
    tick(page, "commission_signed", "双方已签订委托书")
    page.get_by_label(label("交接材料清单")).fill("营业执照、项目备案证明、环评报告表")
    page.get_by_label(label("服务方式")).select_option(label="现场服务")
    submit_task(page, "材料交接并签订委托书")
    expect(page.get_by_role("status")).to_contain_text("已出具委托书")
    open_task(page, case_no, "分派服务事项")
    tick(page, "service_items", "环评")
    tick(page, "service_items", "消防（设计审查/验收）")
    submit_task(page, "分派服务事项")
    expect(page.locator("#stages .stage-current")).to_have_text("限时办结")
    logout(page)

    # -- two specialists: 环评 first asks for a correction, 消防 approves -------------------------------------------
    login(page, "zb_sthj")
    open_task(page, case_no, "部门办理", "环评")
    choose(page, "item_decision", "需要补正")
    page.get_by_label(label("需补正的全部材料（一次性告知）")).fill("补交环境影响报告表专家评审意见")
    page.locator("#f-correction_due").fill(h.correction_due())
    submit_task(page, "部门办理")
    logout(page)
    login(page, "zb_zjj")
    page.get_by_role("link", name="我的待办").click()
    expect(page.locator("#inbox")).not_to_contain_text("环评")
    open_task(page, case_no, "部门办理", "消防（设计审查/验收）")
    choose(page, "item_decision", "准予许可")
    page.get_by_label(label("批文/证照编号")).fill("武建消审〔2026〕7号")
    submit_task(page, "部门办理")
    logout(page)

    # -- the applicant supplies the missing material; 环评 is approved -------------------------------------------
    login(page, "huarui")
    open_task(page, case_no, "补正材料", "环评")
    expect(page.locator("main")).to_contain_text("环评")
    page.get_by_label(label("已补正的材料说明")).fill("已补交环境影响报告表专家评审意见")
    tick(page, "supplement_complete", "补正材料已按要求全部提交")
    submit_task(page, "补正材料")
    logout(page)
    login(page, "zb_sthj")
    open_task(page, case_no, "部门办理", "环评")
    choose(page, "item_decision", "准予许可")
    page.get_by_label(label("批文/证照编号")).fill("武环审〔2026〕1号")
    submit_task(page, "部门办理")
    logout(page)

    # -- the agent collects the results and posts them -----------------------------------------------------------
    login(page, "agent1")
    open_task(page, case_no, "汇总办理结果")
    tick(page, "results_collected", "各部门办理结果已全部收齐")
    submit_task(page, "汇总办理结果")
    open_task(page, case_no, "统一送达")
    choose(page, "delivery_method", "邮寄")
    page.get_by_label(label("邮寄单号")).fill("SF123456789")
    page.get_by_label(label("送达日期")).fill("2026-03-20")
    page.get_by_label(label("帮办代办情况工作纪实")).fill("全程代办完成，批文已邮寄送达")
    tick(page, "filed", "已备案")
    submit_task(page, "统一送达")
    expect(page.get_by_role("status")).to_contain_text("已出具办结单")
    logout(page)

    # -- the applicant signs the receipt and rates the service -------------------------------------------------------
    login(page, "huarui")
    open_task(page, case_no, "签收办结单")
    tick(page, "results_received", "已收到批文")
    submit_task(page, "签收办结单")
    open_task(page, case_no, "评价代办服务")
    choose(page, "rating", "非常满意")
    page.get_by_label(label("意见和建议")).fill("代办员服务周到")
    submit_task(page, "评价代办服务")
    logout(page)

    # -- the window rates each department ----------------------------------------------------------------------------
    login(page, "window1")
    for dept in ("焦作市生态环境局武陟分局", "县住房和城乡建设局"):
        open_task(page, case_no, "评价部门业务专办窗口", dept)
        choose(page, "rating", "满意")
        submit_task(page, "评价部门业务专办窗口")
    page.get_by_role("link", name="我的待办").click()
    expect(page.get_by_text("暂无待办事项。")).to_be_visible()

    # -- what everyone sees at the end ---------------------------------------------------------------------------------
    page.get_by_role("link", name="办件查询").click()
    page.get_by_role("link", name=case_no).click()
    expect(page.locator("#case-status")).to_have_text("已办结")
    stages = page.locator("#stages li")
    expect(stages).to_have_text(STAGES)
    expect(page.locator("#stages li.stage-done")).to_have_count(len(STAGES))
    expect(page.locator("#open-tasks")).to_have_count(0)
    expect(page.locator("#items tbody tr")).to_have_text([re.compile(r"环评[\s\S]*准予许可[\s\S]*武环审〔2026〕1号"),
                                                          re.compile(r"消防[\s\S]*准予许可[\s\S]*武建消审〔2026〕7号")])
    documents = page.locator("#documents li")
    expect(documents).to_have_text([re.compile("帮办代办服务申请表"), re.compile(r"委托书 武帮代委〔\d{4}〕\d{4}号"),
                                     re.compile(r"补正告知书 武帮代补〔\d{4}〕\d{4}号[\s\S]*环评"),
                                     re.compile(r"办结单 武帮代结〔\d{4}〕\d{4}号"), re.compile("评价表"),
                                     re.compile(r"评价表[\s\S]*焦作市生态环境局武陟分局"),
                                     re.compile(r"评价表[\s\S]*县住房和城乡建设局")])
    screenshot = tmp_path / "final_case.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000

    # the printable 办结单 opens in a new tab with its number and the tracking number
    link = documents.get_by_role("link", name=re.compile("^办结单 "))
    number = link.inner_text().split(" ", 1)[1]
    with page.context.expect_page() as new_tab:
        link.click()
    slip = new_tab.value
    expect(slip.locator("article.paper h1").first).to_have_text("帮办代办项目办结单（第一联）")
    expect(slip.locator("article.paper .no").first).to_have_text(f"编号：{number}")
    expect(slip.locator("article.paper").first).to_contain_text("已于2026年3月20日完成委托帮办代办事项")
    expect(slip.locator("article.paper h1")).to_have_text(["帮办代办项目办结单（第一联）", "帮办代办项目办结单（第二联）"])
    expect(slip.locator(".verify svg")).to_have_count(2)                 # each copy carries its 扫码验真 code
    pdf = slip.request.get(slip.get_by_role("link", name="下载 PDF").get_attribute("href"))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")
    expect(slip.get_by_role("button", name="打印")).to_be_visible()
    slip.close()
    with page.context.expect_page() as new_tab:
        documents.get_by_role("link", name="帮办代办服务申请表").click()
    form = new_tab.value
    expect(form.locator("article.paper")).to_contain_text(case_no)
    expect(form.locator("article.paper")).to_contain_text("年产万吨食品项目")
    expect(form.locator("article.paper")).to_contain_text("环评、消防（设计审查/验收）")
    form.close()
    logout(page)
    print(f"final case page screenshot: {screenshot}")
