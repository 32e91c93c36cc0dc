"""A webhook for a 武来办-style platform: the message as JSON, signed with HMAC-SHA256 (payload in README「通知」).

Headers: ``X-Bangban-Timestamp`` (Unix seconds) and ``X-Bangban-Signature: sha256=<hex>``, the hex HMAC-SHA256 of
``timestamp + "." + body`` under ``BANGBAN_WEBHOOK_SECRET``; ``X-Bangban-Delivery`` repeats the idempotency key.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

from . import ChannelError, Message, NotifySettings
from .httppost import post_json


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel:
    name, label = "webhook", "武来办"

    def __init__(self, settings: NotifySettings):
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.webhook_url and self.settings.webhook_secret)

    @staticmethod
    def payload(m: Message) -> dict:
        return {"id": m.idem_key, "kind": m.kind, "subject": m.subject, "text": m.text, "case_no": m.case_no,
                "link": m.link, "recipient": {"username": m.username, "name": m.display_name, "phone": m.address},
                "created_at": m.created_at.isoformat()}

    def send(self, m: Message) -> None:
        s = self.settings
        if not s.webhook_secret:
            raise ChannelError("武来办推送未配置签名密钥，请系统管理员配置")
        body = json.dumps(self.payload(m), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        stamp = str(int(time.time()))
        headers = {"X-Bangban-Timestamp": stamp, "X-Bangban-Signature": signature(s.webhook_secret, stamp, body),
                   "X-Bangban-Delivery": m.idem_key}
        post_json(s.webhook_url, body, headers, s.timeout, "武来办推送")
