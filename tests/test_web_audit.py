"""The auditor's pages: replay stepping, verification, dossier download; nobody else gets them."""
from __future__ import annotations

import json

import pytest

from engine.audit import verify_dossier
from tests import helpers as h
from tests.webclient import html_login as login
from web import create_app


@pytest.fixture
def app(svc):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})




def test_the_auditor_steps_through_a_case_and_downloads_its_dossier(svc, app):
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp", "gd"])
    auditor = login(app, "auditor1")
    case_page = auditor.get(f"/cases/{no}")
    assert 'id="audit-link"' in case_page.text
    page = auditor.get(f"/cases/{no}/audit")
    assert page.status_code == 200 and "核验通过" in page.text
    data = json.loads(page.text.split('id="audit-data">')[1].split("</script>")[0])
    steps = data["steps"]
    assert steps[0]["event"]["label"] == "提交申请" and steps[0]["state"]["current"] == ["Task_Review"]
    review = next(s for s in steps if s["event"]["task"] == "受理审核")
    assert review["changes"]["review_decision"] == [None, "受理"]
    assert sorted(steps[-1]["state"]["current"]) == ["Task_Handle"]
    api = auditor.get(f"/api/cases/{no}/audit").json
    assert api["verification"]["ok"] and len(api["steps"]) == len(steps)
    dossier = auditor.get(f"/api/cases/{no}/dossier")
    assert dossier.status_code == 200 and "attachment" in dossier.headers["Content-Disposition"]
    assert verify_dossier(json.loads(dossier.data))["ok"]
    # reading never changes anything, and writing is refused
    assert auditor.post("/api/cases", json={"data": h.application()}).status_code == 403


@pytest.mark.parametrize("username", ["huarui", "agent1", "zb_sthj", "owner1"])
def test_others_do_not_get_the_audit_pages(svc, app, username):
    no = h.start(svc)
    client = login(app, username)
    assert client.get(f"/cases/{no}/audit").status_code in (403, 404)
    assert client.get(f"/api/cases/{no}/dossier").status_code in (403, 404)
    assert 'id="audit-link"' not in client.get(f"/cases/{no}").text
