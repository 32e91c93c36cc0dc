"""The notifications outbox (issue 15): rows written in the step's transaction, delivered by the worker through real
channel servers on loopback (aiosmtpd, a recording HTTP server for the SMS gateway and the signed 武来办 webhook), with
retries and back-off, exactly one delivery per idempotency key under two workers, the failures list and its retry.

The notifications come from the real process: a 消防 item dispatched on Mon 2026-03-02 turns yellow on Wed 03-18
(see tests/test_clocks_flow.py), and the timer notifies the department (zb_zjj) and the lead agent (agent1)."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

import tests.helpers as h
from engine import notices, processes
from engine.channels import NotifySettings
from engine.clock import LOCAL_TZ, clock
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.models import Delivery, Notification, User
from engine.repository import Repository
from engine.worker import run_once
from tests.conftest import ROOT, actor
from tests.notify_servers import RecordingServer, SmtpSink, settings

DELIVERIES, NOTIFICATIONS, USERS = Delivery.__table__, Notification.__table__, User.__table__
YELLOW = "【黄牌预警】消防（设计审查/验收）（县住房和城乡建设局）办理时限即将届满，请抓紧办理"
both = pytest.mark.parametrize("svc", ["warm", "cold"], indirect=True)


@pytest.fixture
def process_files():
    """The process set without its message templates (``notifications.json``, tested in tests/test_notices.py): the
    outbox is checked here with the yellow card's notice alone."""
    files = processes.read_dir(ROOT / "processes")
    files.pop(notices.FILE)
    return files


def L(y, m, d, hh=0, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=LOCAL_TZ)


def contact(svc, username: str, phone: str | None = None, email: str | None = None) -> None:
    with svc.db.unit_of_work() as uow:
        uow.repo.conn.execute(update(USERS).where(USERS.c.username == username).values(phone=phone, email=email))
        uow.commit()


def choose(svc, username: str, channels: list[str], config: NotifySettings) -> list[str]:
    """The user's choice on /account/notifications, with the channels of ``config`` configured."""
    service = svc.fresh() if hasattr(svc, "fresh") else svc      # cold: a service opened afresh, as a new process
    service.notify_settings = config
    return service.set_notification_channels(actor(svc, username), channels)


def dispatched(svc) -> str:
    clock.set(L(2026, 3, 2, 9))
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, ["xf"])
    return case_no


def turn_yellow(svc) -> int:
    clock.set(L(2026, 3, 18, 1))
    return run_once(svc)


def rows(svc, table=DELIVERIES, order=None) -> list:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.conn.execute(select(table).order_by(order if order is not None else table.c.id)).all()


def deliver(svc, config: NotifySettings, **kw) -> dict:
    return svc.deliver_due(settings=config, **kw)


def utc(value):
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ---- the outbox is written with the step that causes it ----------------------------------------------------------------
@both
@pytest.mark.usefixtures("all_cases_verified")
def test_a_timer_step_writes_the_notice_and_one_delivery_per_chosen_channel_then_the_worker_sends_each(svc):
    """Warm and cold (every use case in a freshly opened service, engine caches cleared): the rows are written by
    the timer's step; in-app is delivered at once, e-mail, SMS and the webhook by the worker, each exactly once."""
    with RecordingServer() as sms, RecordingServer(secret="hook-secret") as hook, SmtpSink() as smtp:
        config = settings(sms, hook, smtp)
        contact(svc, "agent1", phone="13700000001", email="agent1@wuzhi.test")
        assert choose(svc, "agent1", ["sms", "email", "webhook"], config) == ["inapp", "sms", "email", "webhook"]
        case_no = dispatched(svc)
        assert rows(svc) == []
        assert turn_yellow(svc) == 1
        got = {(r.username, r.channel): r for r in rows(svc)}
        assert set(got) == {("agent1", "inapp"), ("agent1", "sms"), ("agent1", "email"), ("agent1", "webhook"),
                            ("zb_zjj", "inapp")}
        assert {k: r.status for k, r in got.items()} == {
            ("agent1", "inapp"): "sent", ("zb_zjj", "inapp"): "sent",
            ("agent1", "sms"): "pending", ("agent1", "email"): "pending", ("agent1", "webhook"): "pending"}
        assert got[("agent1", "sms")].address == "13700000001" and got[("agent1", "email")].address == "agent1@wuzhi.test"
        assert {r.case_id for r in got.values()} == {h.case_row(svc, case_no).id}
        assert [n["text"] for n in svc.notifications(actor(svc, "zb_zjj"))] == [YELLOW]

        assert deliver(svc, config) == {"sent": 3, "retry": 0, "failed": 0}
        assert deliver(svc, config) == {"sent": 0, "retry": 0, "failed": 0}      # nothing twice
        assert [r["json"]["phone"] for r in sms.requests] == ["13700000001"]
        assert sms.requests[0]["json"]["params"]["text"] == YELLOW
        assert sms.requests[0]["json"]["params"]["link"] == f"http://bangban.test/cases/{case_no}"
        assert [r["signature_ok"] for r in hook.requests] == [True]
        assert hook.requests[0]["json"]["case_no"] == case_no
        assert [m["To"] for m in smtp.messages] == ["agent1@wuzhi.test"]
        assert all(r.status == "sent" and r.sent_at is not None for r in rows(svc))


@pytest.mark.usefixtures("all_cases_verified")
def test_a_step_that_fails_after_writing_its_notification_leaves_nothing_to_send(svc, monkeypatch):
    with RecordingServer() as sms:
        config = settings(sms)
        contact(svc, "agent1", phone="13700000001")
        choose(svc, "agent1", ["sms"], config)
        dispatched(svc)
        written = []
        original_add, original_append = Repository.add_notifications, Repository.append_events

        def add(self, new_rows):
            original_add(self, new_rows)
            written.extend(new_rows)
            with_rows = self.conn.execute(select(func.count()).select_from(DELIVERIES)).scalar_one()
            assert with_rows == 3          # inside the step's transaction: in-app × 2 and the SMS

        def fail(self, events):
            raise RuntimeError("断电：在写完通知之后、提交之前")

        monkeypatch.setattr(Repository, "add_notifications", add)
        monkeypatch.setattr(Repository, "append_events", fail)
        clock.set(L(2026, 3, 18, 1))
        with pytest.raises(RuntimeError):
            run_once(svc)
        assert [r["text"] for r in written] == [YELLOW, YELLOW]
        assert rows(svc) == [] and rows(svc, NOTIFICATIONS) == []
        assert deliver(svc, config) == {"sent": 0, "retry": 0, "failed": 0} and sms.requests == []

        monkeypatch.setattr(Repository, "append_events", original_append)   # the power is back: the step runs again
        assert run_once(svc) == 1
        assert deliver(svc, config)["sent"] == 1 and len(sms.requests) == 1


# ---- retries -----------------------------------------------------------------------------------------------------------
def test_a_failing_gateway_is_retried_with_exponential_back_off_then_succeeds(svc):
    with RecordingServer() as sms:
        config = settings(sms, backoff_seconds=60, max_attempts=5)
        contact(svc, "agent1", phone="13700000001")
        choose(svc, "agent1", ["sms"], config)
        dispatched(svc)
        turn_yellow(svc)
        sms.fail_next = 2
        start = clock.now()
        assert deliver(svc, config) == {"sent": 0, "retry": 1, "failed": 0}
        (row,) = [r for r in rows(svc) if r.channel == "sms"]
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "短信网关答复错误（HTTP 500）")
        assert utc(row.next_attempt_at) == utc(start) + timedelta(seconds=60)
        assert deliver(svc, config)["retry"] == 0 and len(sms.requests) == 1      # not due yet
        clock.shift(timedelta(seconds=61))
        assert deliver(svc, config) == {"sent": 0, "retry": 1, "failed": 0}
        (row,) = [r for r in rows(svc) if r.channel == "sms"]
        assert row.attempts == 2 and utc(row.next_attempt_at) == utc(clock.now()) + timedelta(seconds=120)   # doubled
        clock.shift(timedelta(seconds=119))
        assert deliver(svc, config)["sent"] == 0
        clock.shift(timedelta(seconds=2))
        assert deliver(svc, config) == {"sent": 1, "retry": 0, "failed": 0}
        (row,) = [r for r in rows(svc) if r.channel == "sms"]
        assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
        assert [r["answered"] for r in sms.requests] == [500, 500, 200]
        assert len({r["json"]["request_id"] for r in sms.requests}) == 1        # the same idempotency key each time


def test_after_the_last_attempt_it_is_failed_listed_for_the_supervisor_and_retried_from_there(svc):
    config = settings(sms_url="http://127.0.0.1:9/nothing-listens", max_attempts=2, backoff_seconds=0)
    contact(svc, "agent1", phone="13700000001")
    choose(svc, "agent1", ["sms"], config)
    case_no = dispatched(svc)
    turn_yellow(svc)
    assert deliver(svc, config) == {"sent": 0, "retry": 1, "failed": 0}
    assert deliver(svc, config) == {"sent": 0, "retry": 0, "failed": 1}
    for who in ("agent1", "zb_zjj", "auditor1", "huarui"):
        with pytest.raises(Forbidden):
            svc.failed_deliveries(actor(svc, who))
    (failed,) = svc.failed_deliveries(actor(svc, "supervisor1"))
    assert failed["last_error"] == "无法连接短信网关" and failed["attempts"] == 2 and failed["case_no"] == case_no
    assert failed["who"] == "王代办" and failed["channel"] == "短信" and failed["status_label"] == "发送失败"
    assert svc.failed_deliveries(actor(svc, "admin1")) == [failed]
    with pytest.raises(Forbidden):
        svc.retry_delivery(actor(svc, "agent1"), failed["id"])
    with pytest.raises(NotFound):
        svc.retry_delivery(actor(svc, "supervisor1"), 999999)
    with RecordingServer() as sms:
        fixed = settings(sms)
        svc.retry_delivery(actor(svc, "supervisor1"), failed["id"])
        with pytest.raises(InvalidInput):
            svc.retry_delivery(actor(svc, "supervisor1"), failed["id"])      # pending now, not failed
        assert svc.failed_deliveries(actor(svc, "supervisor1")) == []
        assert deliver(svc, fixed) == {"sent": 1, "retry": 0, "failed": 0}
        assert len(sms.requests) == 1
    view = h.view(svc, case_no)
    assert {(d["who"] != "", d["channel"], d["status_label"]) for d in view["deliveries"]} >= {(True, "短信", "已发送"),
                                                                                                  (True, "站内通知", "已发送")}
    log = svc.admin_log(actor(svc, "admin1"))
    assert any(e["action"] == "重新发送通知" for e in log["entries"])


# ---- exactly once under two workers ----------------------------------------------------------------------------------
def test_two_workers_claiming_at_once_deliver_each_idempotency_key_exactly_once(svc):
    with RecordingServer(delay=0.002) as sms:
        config = settings(sms, batch=5)
        contact(svc, "owner1", phone="13700000009")
        choose(svc, "owner1", ["sms"], config)
        at = clock.now()
        with svc.db.unit_of_work() as uow:
            uow.repo.add_notifications([{"recipient": "role:process_owner", "case_id": None, "text": f"第{i}条",
                                         "created_at": at, "idem_key": f"k{i}"} for i in range(80)])
            uow.repo.add_notifications([{"recipient": "role:process_owner", "case_id": None, "text": "重复写入",
                                         "created_at": at, "idem_key": "k7"}])     # the same key again: a no-op
            uow.commit()
        assert len(rows(svc, NOTIFICATIONS)) == 80
        results, gate = [], threading.Barrier(2)

        def work():
            gate.wait()
            results.append(svc.deliver_due(settings=config))

        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sum(r["sent"] for r in results) == 80
        keys = [r["json"]["request_id"] for r in sms.requests]
        assert sorted(keys) == sorted(f"k{i}/sms/owner1" for i in range(80))      # each exactly once
        assert all(r.status == "sent" and r.attempts == 1 for r in rows(svc) if r.channel == "sms")


# ---- each adapter against its real server -------------------------------------------------------------------------------
def test_email_over_smtp_end_to_end_against_a_loopback_server(svc):
    with SmtpSink() as smtp:
        config = settings(smtp=smtp)
        contact(svc, "agent1", email="agent1@wuzhi.test")
        choose(svc, "agent1", ["email"], config)
        case_no = dispatched(svc)
        turn_yellow(svc)
        assert deliver(svc, config)["sent"] == 1
        (mail,) = smtp.messages
        assert mail["From"] == "bangban@wuzhi.test" and mail["To"] == "agent1@wuzhi.test"
        assert mail["Subject"].startswith("帮办代办通知：【黄牌预警】")
        body = mail.get_content()
        assert YELLOW in body and f"办件编号：{case_no}" in body and f"http://bangban.test/cases/{case_no}" in body
        assert smtp.envelopes[0].rcpt_tos == ["agent1@wuzhi.test"]
        (row,) = [r for r in rows(svc) if r.channel == "email"]
        assert mail["X-Bangban-Delivery"] == row.idem_key
        # a wrong password is refused by the server: told in Chinese, retried later
        with svc.db.unit_of_work() as uow:
            uow.repo.add_notifications([{"recipient": "user:agent1", "case_id": None, "text": "测试", "created_at": clock.now()}])
            uow.commit()
        assert deliver(svc, settings(smtp=smtp, smtp_password="wrong")) == {"sent": 0, "retry": 1, "failed": 0}
        assert [r.last_error for r in rows(svc) if r.status == "pending"] == ["邮件服务器登录失败，请检查账号与密码配置"]


def test_sms_gateway_request_carries_sign_name_template_credentials_and_a_verifiable_signature(svc):
    import hashlib
    import hmac
    with RecordingServer() as sms:
        config = settings(sms)
        choose(svc, "huarui", ["sms"], config)        # an applicant: the phone comes from the unit's contact
        with svc.db.unit_of_work() as uow:
            unit_id = uow.repo.user_by_username("huarui").unit_id
            uow.repo.add_notifications([{"recipient": f"unit:{unit_id}", "case_id": None, "created_at": clock.now(),
                                         "text": "您的申请已受理", "subject": "已受理", "kind": "accepted"}])
            uow.commit()
        assert deliver(svc, config)["sent"] == 1
        (req,) = sms.requests
        assert req["json"] == {"request_id": req["json"]["request_id"], "phone": "13800000000", "sign_name": "武陟政务",
                               "template_id": "SMS_0001",
                               "params": {"subject": "已受理", "text": "您的申请已受理", "case_no": "", "link": ""}}
        assert req["headers"]["x-sms-access-key"] == "key-1"
        stamp = req["headers"]["x-sms-timestamp"]
        assert req["headers"]["x-sms-signature"] == hmac.new(b"sms-secret", stamp.encode() + b"." + req["body"],
                                                             hashlib.sha256).hexdigest()
    with pytest.raises(InvalidInput, match="未登记手机号"):
        choose(svc, "agent2", ["sms"], config)
    with pytest.raises(InvalidInput, match="尚未启用"):
        choose(svc, "agent2", ["email"], config)


def test_webhook_signature_is_verified_by_the_receiving_server_and_a_wrong_secret_is_refused(svc):
    with RecordingServer(secret="hook-secret") as hook:
        choose(svc, "agent1", ["webhook"], settings(hook=hook))
        with svc.db.unit_of_work() as uow:
            uow.repo.add_notifications([{"recipient": "user:agent1", "case_id": None, "created_at": clock.now(),
                                         "text": "您有新的待办", "kind": "task", "idem_key": "hook-1"}])
            uow.commit()
        assert deliver(svc, settings(hook=hook, webhook_secret="not-the-secret"))["retry"] == 1
        assert [r["signature_ok"] for r in hook.requests] == [False]
        assert [r.last_error for r in rows(svc) if r.channel == "webhook"] == ["武来办推送答复错误（HTTP 401）"]
        clock.shift(timedelta(minutes=2))
        assert deliver(svc, settings(hook=hook))["sent"] == 1
        body = hook.requests[-1]["json"]
        assert hook.requests[-1]["signature_ok"] is True
        assert body["id"] == "hook-1/webhook/agent1" and body["kind"] == "task" and body["text"] == "您有新的待办"
        assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
        assert body["recipient"]["username"] == "agent1" and set(body) == {"id", "kind", "subject", "text", "case_no",
                                                                              "link", "recipient", "created_at"}


# ---- in-app: read / unread ----------------------------------------------------------------------------------------------
@both
def test_in_app_notices_are_unread_until_opened_or_all_marked_read(svc):
    case_no = dispatched(svc)
    turn_yellow(svc)
    agent = actor(svc, "agent1")
    assert svc.unread_notices(agent) == 1
    (notice,) = svc.notifications(agent)
    assert notice["read"] is False and notice["case_no"] == case_no
    with pytest.raises(NotFound):
        svc.open_notice(actor(svc, "agent2"), notice["id"])       # someone else's
    assert svc.open_notice(agent, notice["id"]) == f"/cases/{case_no}"
    assert svc.unread_notices(agent) == 0 and svc.notifications(agent)[0]["read"] is True
    zb = actor(svc, "zb_zjj")
    assert svc.unread_notices(zb) == 1
    assert svc.mark_all_notices_read(zb) == 1 and svc.unread_notices(zb) == 0
    assert svc.mark_all_notices_read(zb) == 0


def test_the_migration_gives_notices_written_before_it_an_unread_in_app_row_per_user(svc, db_url):
    from alembic import command

    from engine.db import normalize_url
    from engine.migrate import alembic_config
    case_no = dispatched(svc)
    turn_yellow(svc)                                    # to dept:zjj and agent1
    with svc.db.unit_of_work() as uow:
        uow.repo.add_notifications([{"recipient": "role:process_owner", "case_id": None, "text": "流程出错",
                                     "created_at": clock.now()}])
        uow.commit()
    svc.db.engine.dispose()
    cfg = alembic_config(normalize_url(db_url))
    command.downgrade(cfg, "20261201_0014_search")
    command.upgrade(cfg, "head")
    svc.db.engine.dispose()
    got = sorted((r.username, r.channel, r.status, r.read_at) for r in rows(svc))
    assert got == [("agent1", "inapp", "sent", None), ("owner1", "inapp", "sent", None), ("zb_zjj", "inapp", "sent", None)]
    assert [n["case_no"] for n in svc.notifications(actor(svc, "zb_zjj"))] == [case_no]
    assert svc.unread_notices(actor(svc, "owner1")) == 1
