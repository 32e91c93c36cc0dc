"""Notifications through the web: the unread badge on every page, opening a notice, 全部标为已读, the channel page,
the failures page with its 重试 button (supervisor and system administrator only; others 403 in Chinese), and the
case page's 通知记录."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import update

import tests.helpers as h
from engine.models import User
from tests.notify_servers import RecordingServer, settings
from tests.test_notifications import L, dispatched, process_files, turn_yellow  # noqa: F401 (process_files: without templates)
from tests.webclient import api_login, html_login, token
from web import create_app

BADGE = re.compile(r'id="unread-badge"[^>]*>(\d+)<')


@pytest.fixture
def app(svc):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


def badge(html: str) -> int:
    m = BADGE.search(html)
    return int(m.group(1)) if m else 0


def test_unread_badge_on_every_page_opening_a_notice_and_marking_all_read(svc, app):
    case_no = dispatched(svc)
    turn_yellow(svc)
    with svc.db.unit_of_work() as uow:
        uow.repo.add_notifications([{"recipient": "user:agent1", "case_id": None, "text": "第二条通知",
                                     "created_at": L(2026, 3, 18, 2)}])
        uow.commit()
    c = html_login(app, "agent1")
    for page in ("/inbox", "/cases", f"/cases/{case_no}", "/account/password", "/notifications"):
        assert badge(c.get(page).text) == 2, page
    listing = c.get("/notifications").text
    assert listing.count("【未读】") == 2 and "全部标为已读" in listing and "【黄牌预警】" in listing
    # open the yellow-card notice: marked read, lands on its case
    opener = r'action="/notifications/(\d+)/open"[^<]*<input[^>]*>\s*<button[^>]*>'
    yellow = re.search(opener + "<strong>【未读】</strong>【黄牌预警】", listing)
    assert yellow, listing
    r = c.post(f"/notifications/{yellow.group(1)}/open", data={"csrf_token": token(listing)})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/cases/{case_no}")
    assert badge(c.get("/inbox").text) == 1
    assert c.post(f"/notifications/{yellow.group(1)}/open", data={}).status_code == 400       # no CSRF token
    assert c.post("/notifications/999999/open", data={"csrf_token": token(listing)}).status_code == 404
    r = c.post("/notifications/read-all", data={"csrf_token": token(listing)}, follow_redirects=True)
    assert "已将 1 条通知标为已读" in r.text and badge(r.text) == 0 and "【未读】" not in r.text
    # someone else's notices are their own: zb_zjj still has one unread
    z = html_login(app, "zb_zjj")
    assert badge(z.get("/inbox").text) == 1
    api = api_login(app, "zb_zjj")
    body = api.get("/api/notifications").json
    assert body["unread"] == 1 and body["notifications"][0]["read"] is False
    assert api.post("/api/notifications/read-all").json == {"marked": 1, "unread": 0}
    assert api.get("/api/notifications").json["unread"] == 0


def test_failures_page_and_retry_button_for_supervisor_and_admin_only(svc, app):
    config = settings(sms_url="http://127.0.0.1:9/nothing-listens", max_attempts=1)
    svc.notify_settings = config
    with svc.db.unit_of_work() as uow:
        uow.repo.conn.execute(update(User.__table__).where(User.__table__.c.username == "agent1").values(phone="13700000001"))
        uow.commit()
    c = html_login(app, "agent1")
    page = c.get("/account/notifications")
    assert page.status_code == 200 and "短信" in page.text and "13700000001" in page.text
    assert "电子邮件" in page.text and "本服务尚未启用" in page.text
    r = c.post("/account/notifications", data={"csrf_token": token(page.text), "channel": ["sms"]}, follow_redirects=True)
    assert "通知渠道已保存" in r.text
    r = c.post("/account/notifications", data={"csrf_token": token(page.text), "channel": ["email"]})
    assert r.status_code == 422 and "所选通知渠道不存在或尚未启用" in r.text
    case_no = dispatched(svc)
    turn_yellow(svc)
    assert svc.deliver_due() == {"sent": 0, "retry": 0, "failed": 1}

    for who in ("agent1", "auditor1", "zb_zjj", "huarui", "owner1"):
        other = html_login(app, who)
        r = other.get("/notifications/failures")
        assert r.status_code == 403 and "您的角色无权使用此功能" in r.text, who
        assert "通知发送失败" not in other.get("/notifications").text.split("</nav>")[0]
        assert other.post("/notifications/deliveries/1/retry", data={"csrf_token": token(other.get("/inbox").text)}
                          ).status_code == 403
    admin = html_login(app, "admin1")
    assert "无法连接短信网关" in admin.get("/notifications/failures").text
    s = html_login(app, "supervisor1")
    page = s.get("/notifications/failures").text
    assert "通知发送失败</a>" in page and "王代办" in page and "无法连接短信网关" in page and case_no in page
    delivery = re.search(r'action="/notifications/deliveries/(\d+)/retry"', page).group(1)
    assert s.post("/notifications/deliveries/abc/retry", data={"csrf_token": token(page)}).status_code == 404
    with RecordingServer() as sms:
        svc.notify_settings = settings(sms)
        r = s.post(f"/notifications/deliveries/{delivery}/retry", data={"csrf_token": token(page)}, follow_redirects=True)
        assert "已重新排队发送：王代办（短信）" in r.text and "没有发送失败的通知" in r.text
        r = s.post(f"/notifications/deliveries/{delivery}/retry", data={"csrf_token": token(page)})
        assert r.status_code == 422 and "无需重试" in r.text
        assert svc.deliver_due()["sent"] == 1 and len(sms.requests) == 1
    case_page = s.get(f"/cases/{case_no}").text
    records = case_page.split('id="deliveries"')[1].split("</table>")[0]
    assert "通知记录" in case_page and "王代办" in records and "短信" in records and "已发送" in records
    assert "站内通知" in records
    # the applicant's case page shows only what was sent to the applicant (nothing here)
    assert 'id="deliveries"' not in html_login(app, "huarui").get(f"/cases/{case_no}").text
    h.assert_verified(svc, case_no)
