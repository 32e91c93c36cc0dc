"""The session check of a request rides in the use case's own transaction (issue 14, item 3): one transaction per
request instead of two, and still no request is answered for a session the database no longer confirms — whether
the use case reads or writes, opens a transaction or none, on this server or another one."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update

from engine import caches
from engine.clock import wall
from engine.demo import SAMPLE_APPLICATION
from engine.models import Case, Session, User
from tests.webclient import api_login, assert_json_error, html_login

users, sessions, cases = User.__table__, Session.__table__, Case.__table__


@pytest.fixture
def app(svc):
    from web import create_app
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


class Transactions:
    """Counts the transactions begun on the service's database while a request runs."""

    def __init__(self, svc):
        self.engine, self.n = svc.db.engine, 0

    def _begin(self, _conn):
        self.n += 1

    def __enter__(self):
        event.listen(self.engine, "begin", self._begin)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "begin", self._begin)


def run(svc, call):
    with Transactions(svc) as t:
        response = call()
    return response, t.n


def case_count(svc) -> int:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.conn.execute(select(func.count()).select_from(cases)).scalar_one()


def set_user(svc, username: str, **values) -> None:
    with svc.db.unit_of_work() as uow:
        uow.conn.execute(update(users).where(users.c.username == username).values(**values))
        uow.commit()


def end_sessions_of(svc, username: str) -> None:
    """As an administrator on another server does it: only the database changes."""
    with svc.db.unit_of_work() as uow:
        uid = uow.conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one()
        uow.conn.execute(update(sessions).where(sessions.c.user_id == uid).values(ended_at=wall.now(),
                                                                                   ended_reason="deactivated"))
        uow.commit()


def new_case(client):
    return client.post("/api/cases", json={"process": "bangban_case", "data": dict(SAMPLE_APPLICATION)})


def test_a_known_session_costs_no_transaction_of_its_own(app, svc):
    client = api_login(app, "agent1")
    assert client.get("/api/tasks").status_code == 200              # this process now knows the session
    response, n = run(svc, lambda: client.get("/api/tasks"))
    assert response.status_code == 200 and n == 1                   # the inbox's transaction only (before: 2)
    response, n = run(svc, lambda: client.get("/api/me"))
    assert response.json["username"] == "agent1" and n == 1         # no use-case transaction: the check alone
    caches.clear_all()                                               # a cold process looks the session up first
    response, n = run(svc, lambda: client.get("/api/tasks"))
    assert response.status_code == 200 and n == 2


def test_a_session_ended_elsewhere_is_refused_in_the_use_cases_transaction_and_nothing_is_written(app, svc):
    client = api_login(app, "huarui")
    assert new_case(client).status_code == 201                      # the way works, and the session is known
    before = case_count(svc)
    end_sessions_of(svc, "huarui")
    response, n = run(svc, lambda: new_case(client))
    assert_json_error(response, 401, "请先登录")
    assert case_count(svc) == before and n == 2                     # the case's transaction (refused), the lookup
    assert_json_error(client.get("/api/tasks"), 401, "请先登录")   # the cookie was cleared as well


@pytest.mark.parametrize("path", ["/api/me", "/api/tasks", "/api/cases/NO-SUCH-CASE"])
def test_a_deactivated_user_is_out_on_the_next_request_whatever_the_route_does(app, svc, path):
    client = api_login(app, "agent2")
    assert client.get("/api/me").status_code == 200
    set_user(svc, "agent2", active=False)
    assert_json_error(client.get(path), 401, "请先登录")


def test_changed_roles_count_on_the_next_request(app, svc):
    client = api_login(app, "agent2")
    assert client.get("/api/me").json["roles"] == ["agent"]
    set_user(svc, "agent2", roles="agent,supervisor")
    assert client.get("/api/me").json["roles"] == ["agent", "supervisor"]
    set_user(svc, "agent2", roles="applicant", unit_id=None)
    response, n = run(svc, lambda: client.get("/api/me"))
    assert response.json["roles"] == ["applicant"] and n == 2       # check failed, then the fresh lookup


def test_the_once_a_minute_write_and_the_idle_timeout_still_happen(app, svc):
    wall.set(wall.now())
    client = api_login(app, "agent1")
    assert client.get("/api/tasks").status_code == 200
    wall.advance(timedelta(seconds=59))
    response, n = run(svc, lambda: client.get("/api/tasks"))
    assert response.status_code == 200 and n == 1
    wall.advance(timedelta(seconds=2))                              # a minute since the last write: written now
    response, n = run(svc, lambda: client.get("/api/tasks"))
    assert response.status_code == 200 and n == 3                   # lookup, its write, the inbox
    with svc.db.unit_of_work(write=False) as uow:
        [seen] = uow.conn.execute(select(sessions.c.last_seen_at)).scalars().all()
    assert abs((seen.replace(tzinfo=None) - wall.now().replace(tzinfo=None)).total_seconds()) < 1
    wall.advance(timedelta(minutes=31))
    assert_json_error(client.get("/api/tasks"), 401, "登录已超时，请重新登录")


def test_pages_redirect_to_the_login_when_the_session_ended_elsewhere(app, svc):
    client = html_login(app, "agent1")
    assert client.get("/inbox").status_code == 200
    end_sessions_of(svc, "agent1")
    r = client.get("/inbox")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
