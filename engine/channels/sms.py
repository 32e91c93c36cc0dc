"""SMS through an HTTP SMS gateway: a JSON POST with the sign name, template id and parameters from configuration.

Request (``BANGBAN_SMS_URL``)::

    POST {"request_id": 幂等键, "phone": "13800000000", "sign_name": 签名, "template_id": 模板编号,
          "params": {"subject": …, "text": …, "case_no": …, "link": …}}
    X-Sms-Access-Key: BANGBAN_SMS_ACCESS_KEY
    X-Sms-Timestamp: 秒
    X-Sms-Signature: hex(HMAC-SHA256(BANGBAN_SMS_SECRET, 时间戳 + "." + 请求体))

A 2xx answer whose JSON (if any) has no ``code`` or ``code`` of ``"OK"``/``0`` is success; anything else is a failure.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

from . import ChannelError, Message, NotifySettings
from .httppost import post_json


class SmsChannel:
    name, label = "sms", "短信"

    def __init__(self, settings: NotifySettings):
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.sms_url)

    def payload(self, m: Message) -> dict:
        s = self.settings
        return {"request_id": m.idem_key, "phone": m.address, "sign_name": s.sms_sign_name, "template_id": s.sms_template_id,
                "params": {"subject": m.subject, "text": m.text, "case_no": m.case_no or "", "link": m.link or ""}}

    def send(self, m: Message) -> None:
        if not m.address:
            raise ChannelError("没有登记手机号，无法发送短信")
        s = self.settings
        body = json.dumps(self.payload(m), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        stamp = str(int(time.time()))
        headers = {"X-Sms-Timestamp": stamp}
        if s.sms_access_key:
            headers["X-Sms-Access-Key"] = s.sms_access_key
        if s.sms_secret:
            headers["X-Sms-Signature"] = hmac.new(s.sms_secret.encode(), stamp.encode() + b"." + body,
                                                  hashlib.sha256).hexdigest()
        answer = post_json(s.sms_url, body, headers, s.timeout, "短信网关")
        code = (answer or {}).get("code", "OK")
        if code not in ("OK", "ok", 0, "0"):
            raise ChannelError("短信网关拒绝发送（答复代码 " + str(code)[:40] + "）")
