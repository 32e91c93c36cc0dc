"""Real servers on loopback for the notification channels: an HTTP server that records every request (the SMS gateway
and the 武来办 webhook; it can fail on purpose and checks the webhook's HMAC signature), and an SMTP server (aiosmtpd).
Nothing in the tests is sent anywhere else."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from engine.channels import NotifySettings


class RecordingServer:
    """``fail_next``: answer that many requests with HTTP 500; ``secret``: verify ``X-Bangban-Signature`` (webhook),
    answering 401 when it does not match; ``delay``: seconds to wait before answering."""

    def __init__(self, secret: str | None = None, delay: float = 0.0):
        self.requests: list[dict] = []
        self.fail_next = 0
        self.secret = secret
        self.delay = delay
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = owner._answer(self.path, headers, body)
                payload = json.dumps({"code": "OK"} if status == 200 else {"code": "ERR"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _answer(self, path: str, headers: dict, body: bytes) -> int:
        if self.delay:
            time.sleep(self.delay)
        record = {"path": path, "headers": headers, "body": body, "json": json.loads(body.decode("utf-8")),
                  "signature_ok": None}
        if self.secret is not None:
            stamp = headers.get("x-bangban-timestamp", "")
            expected = "sha256=" + hmac.new(self.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            record["signature_ok"] = hmac.compare_digest(expected, headers.get("x-bangban-signature", ""))
        with self.lock:
            self.requests.append(record)
            if self.fail_next > 0:
                self.fail_next -= 1
                record["answered"] = 500
                return 500
        record["answered"] = 401 if record["signature_ok"] is False else 200
        return record["answered"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/send"

    def ok(self) -> list[dict]:
        return [r for r in self.requests if r["answered"] == 200]

    def __enter__(self) -> "RecordingServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SmtpSink:
    """aiosmtpd on loopback: keeps every message it accepts (parsed); AUTH PLAIN succeeds with the given
    password only."""

    def __init__(self, user: str = "bangban", password: str = "smtp-secret"):
        self.messages: list = []
        self.envelopes: list = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
                sink.envelopes.append(envelope)
                sink.messages.append(message_from_bytes(envelope.original_content, policy=default_policy))
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() \
                and auth_data.password == password.encode()
            return AuthResult(success=ok, handled=False)

        self.user, self.password = user, password
        with socket.socket() as s:      # a free loopback port (aiosmtpd checks it is up by connecting to it)
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator,
                                     auth_require_tls=False, auth_exclude_mechanism=["LOGIN"])

    def __enter__(self) -> "SmtpSink":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def settings(sms: RecordingServer | None = None, hook: RecordingServer | None = None, smtp: SmtpSink | None = None,
             **overrides) -> NotifySettings:
    values = {"public_url": "http://bangban.test", "timeout": 5.0, "backoff_seconds": 60, "max_attempts": 4}
    if sms is not None:
        values.update(sms_url=sms.url, sms_sign_name="武陟政务", sms_template_id="SMS_0001", sms_access_key="key-1",
                      sms_secret="sms-secret")
    if hook is not None:
        values.update(webhook_url=hook.url, webhook_secret=hook.secret)
    if smtp is not None:
        values.update(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_user=smtp.user, smtp_password=smtp.password,
                      smtp_from="bangban@wuzhi.test")
    values.update(overrides)
    return NotifySettings(**values)
