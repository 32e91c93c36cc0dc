"""Where a notification goes besides the service's own pages: one small adapter per channel.

Each adapter has ``name`` (stored in ``deliveries.channel``), ``label`` (shown to users), ``configured`` (whether the
settings it needs are present) and ``send(message)``, which either returns (delivered, as far as the far side said) or
raises :class:`ChannelError` with a Chinese reason (kept as the delivery's ``last_error``, shown on the failures page).
Every message carries its idempotency key, which the adapters pass on (e-mail ``Message-ID``, the SMS request's
``request_id``, the webhook's ``id``), so that a far side can drop the repeat of an at-least-once delivery.

Settings come from the environment (:class:`NotifySettings`); tests point every adapter at a loopback server.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

INAPP = "inapp"
CHANNEL_LABELS = {"inapp": "站内通知", "email": "电子邮件", "sms": "短信", "webhook": "武来办"}
STATUS_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败"}


class ChannelError(Exception):
    """A delivery that did not go through; ``message`` is Chinese and says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message[:500]


@dataclass(frozen=True)
class Message:
    """One notification as one recipient gets it over one channel."""

    idem_key: str
    kind: str
    subject: str
    text: str
    case_no: str | None
    link: str | None            # absolute, under the service's public address, or None
    username: str | None
    display_name: str | None
    address: str | None         # e-mail address or phone number
    created_at: datetime


def _int(name: str, default: int, low: int = 0, high: int = 1_000_000) -> int:
    raw = os.environ.get(name, "").strip()
    if raw.isascii() and raw.isdigit() and low <= int(raw) <= high:
        return int(raw)
    return default


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return default if raw == "" else raw in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class NotifySettings:
    public_url: str = "http://127.0.0.1:8000"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    smtp_starttls: bool = False
    sms_url: str | None = None
    sms_sign_name: str = ""
    sms_template_id: str = ""
    sms_access_key: str | None = None
    sms_secret: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    timeout: float = 10.0
    max_attempts: int = 6               # 1: no retries
    backoff_seconds: int = 60           # the wait after the first failure; doubled after each further one
    backoff_max_seconds: int = 3600
    lease_seconds: int = 120            # a claimed delivery whose worker died is taken again after this
    batch: int = 100
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> "NotifySettings":
        env = os.environ.get
        return cls(
            public_url=(env("BANGBAN_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            smtp_host=env("BANGBAN_SMTP_HOST") or None,
            smtp_port=_int("BANGBAN_SMTP_PORT", 25, 1, 65535),
            smtp_user=env("BANGBAN_SMTP_USER") or None,
            smtp_password=env("BANGBAN_SMTP_PASSWORD") or None,
            smtp_from=env("BANGBAN_SMTP_FROM") or None,
            smtp_starttls=_flag("BANGBAN_SMTP_STARTTLS", False),
            sms_url=env("BANGBAN_SMS_URL") or None,
            sms_sign_name=env("BANGBAN_SMS_SIGN_NAME") or "",
            sms_template_id=env("BANGBAN_SMS_TEMPLATE_ID") or "",
            sms_access_key=env("BANGBAN_SMS_ACCESS_KEY") or None,
            sms_secret=env("BANGBAN_SMS_SECRET") or None,
            webhook_url=env("BANGBAN_WEBHOOK_URL") or None,
            webhook_secret=env("BANGBAN_WEBHOOK_SECRET") or None,
            timeout=float(_int("BANGBAN_NOTIFY_TIMEOUT", 10, 1, 300)),
            max_attempts=_int("BANGBAN_NOTIFY_MAX_ATTEMPTS", 6, 1, 100),
            backoff_seconds=_int("BANGBAN_NOTIFY_BACKOFF_SECONDS", 60, 0, 86400),
            backoff_max_seconds=_int("BANGBAN_NOTIFY_BACKOFF_MAX_SECONDS", 3600, 0, 7 * 86400),
            lease_seconds=_int("BANGBAN_NOTIFY_LEASE_SECONDS", 120, 1, 86400),
            batch=_int("BANGBAN_NOTIFY_BATCH", 100, 1, 10000),
        )

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt: base × 2^(attempts−1), capped."""
        return float(min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, min(attempts - 1, 30))))


def adapters(settings: NotifySettings) -> dict:
    """Every outside channel's adapter (in-app needs none: its rows are delivered when written)."""
    from .mail import EmailChannel
    from .sms import SmsChannel
    from .webhook import WebhookChannel
    return {a.name: a for a in (EmailChannel(settings), SmsChannel(settings), WebhookChannel(settings))}
