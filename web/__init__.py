"""Thin Flask layer: parses input, calls one engine use case, renders the result. No business rule lives here."""
from __future__ import annotations

import os
import secrets
import time
from datetime import date, datetime
from pathlib import Path

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from engine import processes
from engine.config import ROOT, Settings
from engine.db import Database
from engine.services import Bangban

MAX_REQUEST_BYTES = 256 * 1024
MAX_PROCESS_UPLOAD_BYTES = 4 * 1024 * 1024   # a whole process set sent by the modeler


def _secret_key() -> str:
    key = os.environ.get("BANGBAN_SECRET_KEY")
    if key:
        return key
    path = ROOT / "var" / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session; ``SESSION_COOKIE_SECURE = None`` (the default here) marks the cookie Secure when
    the request came over HTTPS (``request.is_secure``; behind a reverse proxy that needs ``BANGBAN_TRUSTED_PROXIES``
    or ``BANGBAN_SECURE_COOKIES=1``)."""

    DECODED_MAX = 4096          # cookies remembered
    DECODED_FOR = 60.0          # seconds, and never past the cookie's own expiry

    def __init__(self) -> None:
        # A cookie this process verified -> (secret key, its content, valid until (epoch seconds)): the same bytes
        # always decode to the same content, so a known cookie is not verified (HMAC, base64, JSON) again. Only
        # content of plain values (a session token, a CSRF token) is kept, so nothing cached can be changed in place.
        self._decoded: dict[str, tuple[str, dict, float]] = {}

    def get_cookie_secure(self, app: Flask) -> bool:
        setting = app.config["SESSION_COOKIE_SECURE"]
        return request.is_secure if setting is None else bool(setting)

    def open_session(self, app: Flask, request):
        value = request.cookies.get(self.get_cookie_name(app))
        key = app.secret_key
        if not value or not key:
            return super().open_session(app, request)
        known = self._decoded.get(value)
        if known is not None and known[0] == key and time.time() < known[2]:
            return self.session_class(known[1])
        serializer = self.get_signing_serializer(app)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(isinstance(v, str | int | bool | None) for v in data.values()):
            if len(self._decoded) >= self.DECODED_MAX:
                self._decoded.clear()
            self._decoded[value] = (key, dict(data), min(signed_at.timestamp() + max_age, time.time() + self.DECODED_FOR))
        return self.session_class(data)


def _secure_cookies() -> bool | None:
    """``BANGBAN_SECURE_COOKIES``: 1 always Secure, 0 never, unset: when the request is HTTPS."""
    value = os.environ.get("BANGBAN_SECURE_COOKIES", "").strip()
    return {"1": True, "0": False}.get(value)


def _trusted_proxies() -> int:
    """``BANGBAN_TRUSTED_PROXIES``: how many reverse proxies stand in front (their X-Forwarded-For/-Proto are then
    believed: the client's address for login throttling, HTTPS for the Secure cookie); 0 (default): none."""
    value = os.environ.get("BANGBAN_TRUSTED_PROXIES", "").strip()
    return int(value) if value.isascii() and value.isdigit() and int(value) <= 10 else 0


class JSONProvider(DefaultJSONProvider):
    ensure_ascii = False

    @staticmethod
    def default(o):
        if isinstance(o, datetime):
            from .filters import as_utc
            return as_utc(o).isoformat()
        if isinstance(o, date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.session_interface = SessionInterface()
    proxies = _trusted_proxies()
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    app.json_provider_class = JSONProvider
    app.json = JSONProvider(app)
    app.config.update(
        SECRET_KEY=None,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=_secure_cookies(),
        JSON_AS_ASCII=False,
    )
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key()

    service = app.config.get("BANGBAN_SERVICE")
    if service is None:
        settings = Settings.from_env()
        service = Bangban.open_latest(Database(app.config.get("DATABASE_URL") or settings.database_url),
                                      processes.read_dir(Path(app.config.get("PROCESS_DIR") or settings.process_dir)))
        service.ensure_departments()       # an empty departments table is filled from the catalogue
    app.extensions["bangban"] = service

    @app.before_request
    def larger_limit_for_process_files():
        from flask import request
        if request.path.startswith(("/api/processes/", "/processes/")):
            request.max_content_length = MAX_PROCESS_UPLOAD_BYTES

    from . import account, admin, api, auth, errors, filters, reassign, units, views
    auth.init_app(app)
    filters.init_app(app)
    errors.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(reassign.bp)
    app.register_blueprint(units.bp)
    from . import keyregister
    app.register_blueprint(keyregister.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(account.bp)
    from . import notifications
    app.register_blueprint(notifications.bp)
    from . import files
    app.register_blueprint(files.bp)
    return app
