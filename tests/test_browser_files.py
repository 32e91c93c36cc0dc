"""Materials in a real browser (issue 17): on a phone (390×844) the applicant uploads a PDF to a fresh application
from the case page, then a 补正 version from the 补正材料 task; the department's specialist sees both versions of
the item's material and previews the current one inline. Staff steps in between go through the use cases."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.sync_api import expect

import tests.helpers as h
from engine.clock import LOCAL_TZ, clock
from engine.filestore import FileStore
from tests import filesamples as f
from tests.test_browser import chromium_page, live_server, login, logout, require_chromium  # noqa: F401
from tests.test_browser_phone import PHONE
from tests.test_browser_phone_journey import fits

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("all_cases_verified")]
HP = "环境影响报告书（表）"


@pytest.fixture
def files_dir(svc, tmp_path):
    """The service's own store (not an environment variable: the audit after the test must find the files)."""
    svc.file_store = FileStore(tmp_path / "files")
    return tmp_path / "files"


def upload_row(page, material: str):
    return page.locator("tr.material").filter(has=page.locator(f'input[name="material"][value="{material}"]'))


def test_applicant_uploads_on_a_phone_and_the_specialist_previews(svc, live_server, files_dir, tmp_path):  # noqa: F811
    require_chromium()
    clock.set(datetime(2026, 3, 2, 9, tzinfo=LOCAL_TZ))
    no = h.start(svc, service_items=["hp"])
    first, second = tmp_path / "环评报告书.pdf", tmp_path / "环评报告书（补正）.pdf"
    first.write_bytes(f.pdf("第一版"))
    second.write_bytes(f.pdf("第二版"))
    with chromium_page(live_server) as page:
        page.set_viewport_size(PHONE)
        login(page, "huarui")
        page.goto(f"/cases/{no}")
        page.locator("#materials-link").click()
        expect(page.locator("#missing-hp")).to_contain_text(HP)
        fits(page)
        row = upload_row(page, HP)
        row.locator('input[type="file"]').set_input_files(str(first))
        row.get_by_role("button", name="上传").click()
        expect(page.get_by_role("status")).to_contain_text(f"已上传「{HP}」第 1 版")
        expect(upload_row(page, HP).locator(".file-current")).to_contain_text("第1版：环评报告书.pdf")
        fits(page)

        h.accept_and_commission(svc, no)
        h.dispatch(svc, no, ["hp"])
        h.complete(svc, "zb_sthj", "部门办理", "环评", case_no=no, **h.needs_correction("请补交修改后的报告书"))

        page.get_by_role("link", name="我的待办").click()
        page.locator("#inbox tbody tr").filter(has_text=no).filter(has_text="补正材料").get_by_role("link", name="办理").click()
        expect(page.locator("#task-materials")).to_contain_text(HP)
        fits(page)
        row = upload_row(page, HP)
        row.locator('input[type="file"]').set_input_files(str(second))
        row.get_by_role("button", name="上传新版本").click()
        expect(page.get_by_role("status")).to_contain_text(f"已上传「{HP}」第 2 版")
        expect(page.get_by_role("heading", name=re.compile("补正材料"))).to_be_visible()     # back on the task
        fits(page)
        logout(page)

        page.set_viewport_size({"width": 1280, "height": 900})
        login(page, "zb_sthj")
        page.goto(f"/cases/{no}")
        page.locator("#materials-link").click()
        row = upload_row(page, HP)
        expect(row.locator(".file-current")).to_contain_text("第2版：环评报告书（补正）.pdf")
        row.locator("details.earlier summary").click()
        expect(row.locator("details.earlier")).to_contain_text("第1版：环评报告书.pdf")
        preview = row.locator(".file-current ~ a.preview-link").first.get_attribute("href")
        shown = page.request.get(preview)
        assert shown.ok and shown.headers["content-type"] == "application/pdf"
        assert shown.headers["content-disposition"].startswith("inline") and shown.body() == f.pdf("第二版")
        assert shown.headers["x-content-type-options"] == "nosniff"
