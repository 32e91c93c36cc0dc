"""Shared helpers of the HTTP tests: logging in as a person or as an API client, CSRF tokens, Chinese errors."""
from __future__ import annotations

import json
import re

from flask.testing import FlaskClient

PASSWORD = "demo1234"
CJK = re.compile(r"[\u4e00-\u9fff]")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def html_login(app, username: str) -> FlaskClient:
    """Log in through the login page, as a person would."""
    c = app.test_client()
    page = c.get("/login")
    assert page.status_code == 200 and "登录" in page.text
    r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token(page.text)})
    assert r.status_code == 302, r.text
    return c


def api_login(app, username: str) -> FlaskClient:
    c = app.test_client()
    r = c.post("/api/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json["username"] == username
    return c


def token(html: str) -> str:
    m = TOKEN.search(html)
    assert m, "页面上没有 csrf_token"
    return m.group(1)


def chinese(text: str) -> bool:
    return bool(CJK.search(text or ""))


def assert_json_error(r, status: int, *fragments: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.is_json, r.text
    body = r.json
    assert chinese(body.get("message")), body
    for f in fragments:
        assert f in json.dumps(body, ensure_ascii=False), (f, body)
    return body


class LiveServers:
    """JSON API clients of real ``bangban serve`` processes: each request goes to the next server in turn, with the
    same session cookie (the servers share the secret key), as behind a load balancer without sticky sessions."""

    def __init__(self, base_urls: list[str]):
        self.base_urls = base_urls
        self.turn = 0
        self.cookies: dict[str, str] = {}
        self.log: list[tuple[str, str, str, int]] = []   # server, method, path, status

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        import http.client
        from urllib.parse import urlsplit
        base = self.base_urls[self.turn % len(self.base_urls)]
        self.turn += 1
        parts = urlsplit(base)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = {"Accept": "application/json"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name] = rest.split(";", 1)[0]
        finally:
            conn.close()
        self.log.append((base, method, path, response.status))
        return response.status, (json.loads(raw) if raw else {})

    def ok(self, method: str, path: str, body: dict | None = None, status: int = 200) -> dict:
        got, data = self.request(method, path, body)
        assert got == status, (method, path, got, data)
        return data
