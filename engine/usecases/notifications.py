"""Notifications: one's in-app notices (read/unread), the channels one chooses, the worker's delivery of the outbox
with retries, and the failures page with its retry.

A notification and its deliveries are written by ``repo.add_notifications`` in the transaction of the event that causes
it (a step, a timer, a registration review…): a rolled-back step leaves nothing to send, a committed one loses
nothing. :meth:`Notifications.deliver_due` (the worker) claims due deliveries in a short transaction, sends each
through its channel's adapter (``engine.channels``) outside any transaction, then records sent / retry later /
failed. At least once: a worker that dies after sending and before recording sends again after the claim's lease;
each message carries its idempotency key for the far side to drop the repeat.
"""
from __future__ import annotations

import logging
from datetime import UTC, timedelta

from ..access import Actor
from ..channels import CHANNEL_LABELS, INAPP, STATUS_LABELS, ChannelError, Message, NotifySettings, adapters
from ..clock import now
from ..errors import InvalidInput, NotFound
from .base import MAX_ID

log = logging.getLogger("bangban.notify")
OUTSIDE = ("email", "sms", "webhook")


class Notifications:
    """Use cases: in-app notices, channel choices, delivering the outbox, the failures page."""

    _notify_settings: NotifySettings | None = None

    @property
    def notify_settings(self) -> NotifySettings:
        if self._notify_settings is None:
            self._notify_settings = NotifySettings.from_env()
        return self._notify_settings

    @notify_settings.setter
    def notify_settings(self, value: NotifySettings) -> None:
        self._notify_settings = value

    # ---- one's own notices -------------------------------------------------------------------------------------------
    def notifications(self, actor: Actor, limit: int = 20, unread_only: bool = False) -> list[dict]:
        """The actor's in-app notices, newest first."""
        with self.db.unit_of_work(write=False) as uow:
            rows = uow.repo.notices(actor.username, max(1, min(int(limit), 500)), unread_only)
        return [{"id": r.id, "text": r.text, "subject": r.subject, "case_no": r.case_no, "created_at": r.created_at,
                 "read": r.read_at is not None, "link": r.link or (f"/cases/{r.case_no}" if r.case_no else None)}
                for r in rows]

    def unread_notices(self, actor: Actor) -> int:
        with self.db.unit_of_work(write=False) as uow:
            return uow.repo.unread_count(actor.username)

    def open_notice(self, actor: Actor, notice_id) -> str | None:
        """Mark one of the actor's notices read; returns where it leads (a path on this site), if anywhere."""
        nid = _id(notice_id)
        with self.db.unit_of_work() as uow:
            row = uow.repo.notice(actor.username, nid) if nid else None
            if row is None:
                raise NotFound("通知不存在")
            if row.read_at is None:
                uow.repo.mark_read(actor.username, [nid], now())
                uow.commit()
        link = row.link or (f"/cases/{row.case_no}" if row.case_no else None)
        return link if link and link.startswith("/") and not link.startswith("//") else None

    def mark_all_notices_read(self, actor: Actor) -> int:
        with self.db.unit_of_work() as uow:
            count = uow.repo.mark_read(actor.username, None, now())
            uow.commit()
        return count

    # ---- channel choice ----------------------------------------------------------------------------------------------
    def notification_channels(self, actor: Actor) -> dict:
        """The channels the actor may choose (configured ones), the address each would use, and the actor's choice."""
        settings = self.notify_settings
        channels = adapters(settings)
        with self.db.unit_of_work(write=False) as uow:
            chosen = uow.repo.notification_channels(actor.username)
            me = next(iter(uow.repo.recipient_users(f"user:{actor.username}")), None)
        phone = (me.phone or me.unit_phone) if me else None
        addresses = {"email": me.email if me else None, "sms": phone, "webhook": phone}
        missing = {"email": "未登记电子邮箱", "sms": "未登记手机号", "webhook": None}
        return {"chosen": [INAPP] + chosen,
                "channels": [{"name": INAPP, "label": CHANNEL_LABELS[INAPP], "configured": True, "address": None,
                              "fixed": True, "problem": None}]
                + [{"name": n, "label": CHANNEL_LABELS[n], "configured": channels[n].configured, "address": addresses[n],
                    "fixed": False,
                    "problem": None if not channels[n].configured or addresses[n] or missing[n] is None else missing[n]}
                   for n in OUTSIDE]}

    def set_notification_channels(self, actor: Actor, channels: list[str]) -> list[str]:
        """Choose the outside channels (in-app is always on). Only configured channels the actor has an address for."""
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels) or len(channels) > 10:
            raise InvalidInput("通知渠道应为渠道名称的列表")
        offered = {c["name"]: c for c in self.notification_channels(actor)["channels"]}
        picked = []
        for name in dict.fromkeys(channels):
            if name == INAPP:
                continue
            c = offered.get(name)
            if c is None or not c["configured"]:
                raise InvalidInput("所选通知渠道不存在或尚未启用")
            if c["problem"]:
                raise InvalidInput(f"{c['label']}：您的账号{c['problem']}，请先补充联系方式")
            picked.append(name)
        with self.db.unit_of_work() as uow:
            uow.repo.set_notification_channels(actor.username, picked, now())
            uow.commit()
        return [INAPP] + picked

    # ---- the worker --------------------------------------------------------------------------------------------------
    def deliver_due(self, max_messages: int = 1000, settings: NotifySettings | None = None) -> dict:
        """Send the deliveries that are due now (at most ``max_messages``): {"sent", "retry", "failed"} counts."""
        settings = settings or self.notify_settings
        channels = adapters(settings)
        counts = {"sent": 0, "retry": 0, "failed": 0}
        done = 0
        while done < max_messages:
            at = now()
            batch = min(settings.batch, max_messages - done)
            with self.db.unit_of_work() as uow:
                claimed = uow.repo.claim_deliveries(at, at + timedelta(seconds=settings.lease_seconds), batch)
                uow.commit()
            if not claimed:
                break
            outcomes = [self._attempt(row, channels, settings, counts) for row in claimed]
            with self.db.unit_of_work() as uow:
                uow.repo.finish_deliveries(outcomes)
                uow.commit()
            done += len(claimed)
            if len(claimed) < batch:
                break
        return counts

    @staticmethod
    def _attempt(row, channels: dict, settings: NotifySettings, counts: dict) -> dict:
        link = row.link or (f"/cases/{row.case_no}" if row.case_no else None)
        message = Message(idem_key=row.idem_key, kind=row.kind or "notice", subject=row.subject or _subject(row.text),
                          text=row.text, case_no=row.case_no, link=settings.public_url + link if link else None,
                          username=row.username, display_name=row.display_name, address=row.address,
                          created_at=row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC))
        try:
            adapter = channels.get(row.channel)
            if adapter is None:
                raise ChannelError("未知的通知渠道")
            if not adapter.configured:
                raise ChannelError(f"{adapter.label}通道尚未配置，请系统管理员配置")
            adapter.send(message)
        except ChannelError as exc:
            error = exc.message
        except Exception:  # an adapter's own bug must not stop the round; recorded as a failure to retry
            log.exception("delivery %s failed unexpectedly", row.id)
            error = "发送时出现内部错误"
        else:
            counts["sent"] += 1
            return {"id": row.id, "attempts": row.attempts, "status": "sent", "sent_at": now(), "last_error": None}
        if row.attempts >= settings.max_attempts:
            counts["failed"] += 1
            log.warning("delivery %s failed for good after %d attempts", row.id, row.attempts)
            return {"id": row.id, "attempts": row.attempts, "status": "failed", "last_error": error}
        counts["retry"] += 1
        return {"id": row.id, "attempts": row.attempts, "status": "pending", "last_error": error,
                "next_attempt_at": now() + timedelta(seconds=settings.backoff(row.attempts))}

    # ---- failures (supervisor, system administrator) ---------------------------------------------------------------
    def failed_deliveries(self, actor: Actor) -> list[dict]:
        self.check_permission(actor, "notification_failures")
        with self.db.unit_of_work(write=False) as uow:
            return [_listing(r) for r in uow.repo.failed_deliveries()]

    def retry_delivery(self, actor: Actor, delivery_id) -> dict:
        """Send a failed delivery again: pending, due now, with the full number of attempts; logged."""
        self.check_permission(actor, "notification_failures")
        did = _id(delivery_id)
        with self.db.unit_of_work() as uow:
            row = uow.repo.delivery(did) if did else None
            if row is None:
                raise NotFound("该通知发送记录不存在")
            if not uow.repo.retry_delivery(did, now()):
                raise InvalidInput("该通知不是发送失败的状态，无需重试")
            self.log_admin_change(uow, actor, "retry_delivery", "delivery", str(did),
                                  {"status": "发送失败"}, {"status": "待发送"}, row.last_error)
            uow.commit()
        return _listing(row)

    def case_deliveries(self, uow, actor: Actor, case) -> list[dict]:
        """What was sent about a case (who, channel, status, time): all of it for staff, one's own for an applicant."""
        rows = uow.repo.case_deliveries(case.id, actor.username if actor.unit_id else None)
        return [_listing(r) for r in rows]


def _id(value) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if 0 < number < MAX_ID else None


def _subject(text: str) -> str:
    return "帮办代办通知：" + (text[:40] + ("…" if len(text) > 40 else ""))


def _listing(r) -> dict:
    return {"id": r.id, "channel": CHANNEL_LABELS.get(r.channel, "其他"), "who": r.display_name or r.username or "",
            "address": r.address, "status": r.status, "status_label": STATUS_LABELS.get(r.status, r.status),
            "attempts": r.attempts, "last_error": r.last_error, "created_at": r.created_at, "sent_at": r.sent_at,
            "read": r.read_at is not None, "next_attempt_at": r.next_attempt_at, "case_no": r.case_no,
            "text": r.text, "subject": r.subject}
