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
