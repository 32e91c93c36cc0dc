"""Every HTML form of every page, as every role, posted with hostile values: never a 5xx, always a Chinese answer.

Generated from the route table: for each page that has forms, the fields are read from the page itself (inputs,
selects, text areas, with the page's CSRF token), then posted with values an outsider would try: control characters,
100,000 characters, full-width digits, a spreadsheet formula, a negative and a 40-digit number, nothing at all."""
from __future__ import annotations

import lxml.html

from tests.test_access_matrix import _routes, _url, _users_by_role, world  # noqa: F401  (world is a fixture)
from tests.webclient import PASSWORD, chinese
from web import create_app

HOSTILE = ["\x00\x01\x1b[31m", "长" * 100_000, "１２３４５", "=cmd|' /C calc'!A0", "-1", "9" * 40, ""]


def _forms(html: str, path: str) -> list[tuple[str, dict[str, str]]]:
    doc = lxml.html.fromstring(html)
    out = []
    for form in doc.forms:
        if (form.method or "GET").upper() != "POST":
            continue
        action = form.get("action") or path
        fields = {}
        for el in form.inputs:
            name = el.get("name")
            if name:
                fields[name] = el.get("value") or ""
        out.append((action, fields))
    return out


def test_every_form_survives_hostile_values_for_every_role(svc, world):  # noqa: F811
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    problems, posted, stale = [], 0, 0
    for role, (username, _roles) in _users_by_role(svc).items():
        client = app.test_client()
        client.post("/api/login", json={"username": username, "password": PASSWORD})
        for rule, method, _view in _routes(app):
            if method != "GET" or rule.rule.startswith("/api/") or rule.endpoint.endswith("logout"):
                continue
            page = client.get(_url(rule, world))
            if page.status_code != 200 or page.mimetype != "text/html":
                continue
            for action, fields in _forms(page.get_data(as_text=True), _url(rule, world)):
                if "logout" in action:
                    continue
                for value in HOSTILE:
                    data = {k: (v if k == "csrf_token" else value) for k, v in fields.items()}
                    r = client.post(action, data=data)
                    posted += 1
                    stale += "页面已过期" in r.get_data(as_text=True)
                    if r.status_code >= 500 or (r.status_code >= 400 and not chinese(r.get_data(as_text=True))):
                        problems.append(f"{role} POST {action} 值 {value[:12]!r}… → {r.status_code}")
    assert posted > 100 and stale == 0, (posted, stale)     # the forms' own CSRF tokens were accepted
    assert not problems, f"{len(problems)} 处：\n" + "\n".join(sorted(set(problems))[:60])
