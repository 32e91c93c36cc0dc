"""Security of login and sessions: argon2id hashes (old ones upgraded at login), the password policy, login throttling
per account and per address, server-side sessions (ended on every server at once, idle timeout, logout), the first
login with a one-time password, and the session cookie's flags.

Engine tests call the use cases; HTTP tests go through the Flask test client, some through two app instances over one
database (two "servers" that share nothing but the database and the secret key).
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from werkzeug.security import generate_password_hash

from engine import passwords
from engine.clock import clock, wall
from engine.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, TooManyAttempts
from engine.models import AdminChange, LoginThrottle, Session, User
from engine.services import Bangban
from tests.conftest import actor
from tests.webclient import PASSWORD, assert_json_error, token
from web import create_app

users, sessions, throttle = User.__table__, Session.__table__, LoginThrottle.__table__
WRONG = "用户名或密码错误"
LOCKED = re.compile(r"^登录失败次数过多，请 (\d+) 分钟后再试$")
TIMED_OUT = "登录已超时，请重新登录"
GOOD_NEW = "绿水青山-2026"


# ---- helpers ------------------------------------------------------------------------------------------------------
def user_row(svc, username: str):
    with svc.db.unit_of_work(write=False) as uow:
        return uow.conn.execute(select(users).where(users.c.username == username)).one()


def set_user(svc, username: str, **values) -> None:
    with svc.db.unit_of_work() as uow:
        uow.conn.execute(update(users).where(users.c.username == username).values(**values))
        uow.commit()


def session_rows(svc, username: str) -> list:
    uid = user_row(svc, username).id
    with svc.db.unit_of_work(write=False) as uow:
        return uow.conn.execute(select(sessions).where(sessions.c.user_id == uid).order_by(sessions.c.created_at)).all()


def refused(call) -> BaseException:
    with pytest.raises((NotAuthenticated, TooManyAttempts)) as info:
        call()
    return info.value


def fail_login(svc, username: str, address: str = "10.1.1.1", times: int = 1) -> list[BaseException]:
    return [refused(lambda: svc.login(username, "wrong-password", address)) for _ in range(times)]


@pytest.fixture
def app(svc):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


def second_app(svc):
    """Another server over the same database: its own service (no memory shared with the first), same secret key."""
    return create_app({"BANGBAN_SERVICE": Bangban.open_latest(svc.db, {}), "SECRET_KEY": "test", "TESTING": True})


def page_login(client, username: str, password: str = PASSWORD, **kwargs):
    page = client.get("/login", **kwargs)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token(page.text)},
                       **kwargs)


def cookie_of(client) -> str:
    return client.get_cookie("session").value


def with_cookie(app, value: str):
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def set_cookie_header(response) -> str:
    [header] = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    return header


# ---- passwords: argon2id, old hashes upgraded at login ---------------------------------------------------------------
def test_new_hashes_are_argon2id_and_the_demo_users_share_one(svc):
    hashed = passwords.hash_password("任意的密码 1")
    assert hashed.startswith("$argon2id$")
    assert passwords.check_password(hashed, "任意的密码 1") and not passwords.check_password(hashed, "任意的密码 2")
    assert not passwords.needs_rehash(hashed)
    assert not passwords.check_password("", "") and not passwords.check_password("$argon2id$broken", "x")
    demo = {user_row(svc, u).password_hash for u in ("agent1", "huarui", "zb_sthj", "auditor1")}
    assert len(demo) == 1 and next(iter(demo)).startswith("$argon2id$")


def test_the_default_parameters_are_argon2s_own_and_only_the_tests_lower_them(monkeypatch):
    monkeypatch.delenv("BANGBAN_ARGON2_TESTING")
    default = PasswordHasher()
    assert passwords.hasher().time_cost == default.time_cost >= 2
    assert passwords.hasher().memory_cost == default.memory_cost >= 65536
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x")
    assert passwords.needs_rehash(cheap)          # a hash made with lower parameters is replaced at the next login
    monkeypatch.setenv("BANGBAN_ARGON2_TESTING", "1")
    assert passwords.hasher().memory_cost < default.memory_cost


@pytest.mark.parametrize("method", ["scrypt", "pbkdf2:sha256:600000"])
def test_an_old_werkzeug_hash_is_upgraded_to_argon2id_at_the_next_login(svc, method):
    old = generate_password_hash(PASSWORD, method=method)
    set_user(svc, "agent1", password_hash=old)
    fail_login(svc, "agent1")                                  # a wrong password changes nothing
    assert user_row(svc, "agent1").password_hash == old
    done = svc.login("agent1", PASSWORD, "10.1.1.2")
    assert done.actor.username == "agent1"
    upgraded = user_row(svc, "agent1").password_hash
    assert upgraded.startswith("$argon2id$") and not passwords.needs_rehash(upgraded)
    assert svc.login("agent1", PASSWORD, "10.1.1.2").actor.username == "agent1"
    assert user_row(svc, "agent1").password_hash == upgraded   # upgraded once


def test_an_argon2_hash_with_other_parameters_is_replaced_at_login(svc):
    weaker = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=16).hash(PASSWORD)
    set_user(svc, "agent1", password_hash=weaker)
    svc.login("agent1", PASSWORD)
    assert user_row(svc, "agent1").password_hash not in (weaker, "")
    assert not passwords.needs_rehash(user_row(svc, "agent1").password_hash)


# ---- the password policy ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("password, message", [
    ("Ab3$xyz", "密码至少需要 8 个字符"),
    ("", "密码至少需要 8 个字符"),
    ("password1", "这个密码太常见"),
    ("PASSWORD", "这个密码太常见"),
    ("Qwerty123", "这个密码太常见"),            # compared without regard to case
    ("1q2w3e4r5t", "这个密码太常见"),
    ("agent1-zz", None),
    ("Agent1-ZZ", None),
    ("x" * 129, "密码不能超过 128 个字符"),
    ("abc\tdefgh", "控制字符"),
    ("abcdefgh\n", "控制字符"),
    (" abcdefgh", "开头和结尾不能是空格"),
    ("长城长江黄河泰山", None),
    (GOOD_NEW, None),
])
def test_password_policy(password, message):
    problem = passwords.password_problem(password, "agent1")
    if message is None:
        assert problem is None
        passwords.check_password_policy(password, "agent1")
    else:
        assert message in problem
        with pytest.raises(InvalidInput) as info:
            passwords.check_password_policy(password, "agent1")
        assert info.value.status == 422 and message in info.value.message


def test_the_password_may_not_be_the_login_and_the_minimum_length_is_configurable(monkeypatch):
    assert passwords.password_problem("zhangsan2026", "zhangsan2026") == "密码不能与登录名相同"
    assert passwords.password_problem("ZhangSan2026", " zhangsan2026 ") == "密码不能与登录名相同"
    assert passwords.password_problem("zhangsan2026", "lisi") is None
    monkeypatch.setenv("BANGBAN_PASSWORD_MIN_LENGTH", "12")
    assert passwords.password_problem("zhangsan2026", "lisi") is None
    assert passwords.password_problem("zhangsan202", "lisi") == "密码至少需要 12 个字符"
    monkeypatch.setenv("BANGBAN_PASSWORD_MIN_LENGTH", "零")       # not a number: the default stays
    assert passwords.password_problem("zhangsan", "lisi") is None


def test_the_common_password_list_is_the_public_top_1000_with_its_source():
    lines = passwords.COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("#") and "SecLists" in lines[0] and "MIT" in lines[0]
    assert len(lines) - 1 >= 1000 and lines[1:4] == ["123456", "password", "12345678"]
    assert {"123456", "iloveyou", "qwerty123"} <= passwords.common_passwords()


# ---- login throttling ------------------------------------------------------------------------------------------------
def test_five_failures_lock_the_account_even_for_the_right_password(svc):
    errors = fail_login(svc, "agent1", times=5)
    assert [type(e) for e in errors] == [NotAuthenticated] * 4 + [TooManyAttempts]
    assert all(e.message == WRONG for e in errors[:4]) and LOCKED.match(errors[4].message)
    assert errors[4].status == 429 and LOCKED.match(errors[4].message).group(1) == "15"
    # locked: the right password from any address is refused with the same message
    for address in ("10.1.1.1", "10.9.9.9", None):
        e = refused(lambda a=address: svc.login("agent1", PASSWORD, a))
        assert isinstance(e, TooManyAttempts) and LOCKED.match(e.message), e
    assert session_rows(svc, "agent1") == []
    # other accounts are not affected
    assert svc.login("agent2", PASSWORD, "10.9.9.9").actor.username == "agent2"


def test_an_unknown_account_gets_the_same_answers_as_a_wrong_password(svc):
    known, unknown = fail_login(svc, "agent1", "10.1.1.1", 5), fail_login(svc, "nobody-here", "10.2.2.2", 5)
    assert [(type(e), e.status, LOCKED.sub("锁定", e.message)) for e in known] == \
           [(type(e), e.status, LOCKED.sub("锁定", e.message)) for e in unknown]
    assert unknown[0].message == WRONG and isinstance(unknown[4], TooManyAttempts)
    # a deactivated account answers as a wrong password too
    set_user(svc, "agent2", active=False)
    assert refused(lambda: svc.login("agent2", PASSWORD, "10.3.3.3")).message == WRONG


def test_failures_from_one_address_lock_the_address_for_every_account(svc, monkeypatch):
    # 20 failures (default) over many accounts from one address: every login from there is refused for a while
    errors = [refused(lambda n=n: svc.login(f"guess{n}", "123456", "192.0.2.7")) for n in range(20)]
    assert all(e.message == WRONG for e in errors[:19]) and isinstance(errors[19], TooManyAttempts)
    e = refused(lambda: svc.login("agent1", PASSWORD, "192.0.2.7"))
    assert isinstance(e, TooManyAttempts) and LOCKED.match(e.message)
    assert svc.login("agent1", PASSWORD, "192.0.2.8").actor.username == "agent1"   # another address may
    # configurable
    monkeypatch.setenv("BANGBAN_LOGIN_MAX_FAILURES_PER_ADDRESS", "3")
    errors = [refused(lambda n=n: svc.login(f"other{n}", "123456", "192.0.2.9")) for n in range(3)]
    assert isinstance(errors[2], TooManyAttempts)


def test_a_lock_runs_out_and_a_success_resets_the_accounts_counter(svc, monkeypatch):
    wall.set(wall.now())
    fail_login(svc, "agent1", times=5)
    wall.advance(timedelta(minutes=14))
    e = refused(lambda: svc.login("agent1", PASSWORD, "10.1.1.1"))
    assert isinstance(e, TooManyAttempts) and LOCKED.match(e.message).group(1) == "1"
    wall.advance(timedelta(minutes=1, seconds=1))
    assert svc.login("agent1", PASSWORD, "10.1.1.1").actor.username == "agent1"
    with svc.db.unit_of_work(write=False) as uow:
        assert uow.conn.execute(select(throttle).where(throttle.c.key == "user:agent1")).first() is None
    # reset by the success: four more failures do not lock
    assert [type(e) for e in fail_login(svc, "agent1", "10.4.4.4", 4)] == [NotAuthenticated] * 4
    assert svc.login("agent1", PASSWORD, "10.4.4.4")
    # failures spread beyond the window start again; the service clock of cases does not matter
    clock.set(wall.now() + timedelta(days=30))
    for _ in range(4):
        fail_login(svc, "agent2", "10.5.5.5")
        wall.advance(timedelta(minutes=5))
    assert svc.login("agent2", PASSWORD, "10.5.5.5")
    # configurable: 2 failures, 1 minute
    monkeypatch.setenv("BANGBAN_LOGIN_MAX_FAILURES", "2")
    monkeypatch.setenv("BANGBAN_LOGIN_LOCK_MINUTES", "1")
    e = fail_login(svc, "chief1", "10.6.6.6", 2)[1]
    assert isinstance(e, TooManyAttempts) and LOCKED.match(e.message).group(1) == "1"
    wall.advance(timedelta(seconds=61))
    assert svc.login("chief1", PASSWORD, "10.6.6.6")


def test_failed_logins_are_counted_in_the_database_for_every_server(svc, db, process_files):
    # alternate between two services (two server processes): the counter is shared
    other = Bangban.open_latest(db, process_files)
    for n in range(5):
        e = refused(lambda s=(svc, other)[n % 2]: s.login("agent1", "wrong", "10.7.7.7"))
    assert isinstance(e, TooManyAttempts)
    assert isinstance(refused(lambda: other.login("agent1", PASSWORD, "10.8.8.8")), TooManyAttempts)


def test_bad_input_to_login_is_a_wrong_password(svc):
    for username, password in (("", ""), ("agent1", "demo\x001234"), ("agent\x001", PASSWORD), (" ", PASSWORD),
                               ("a" * 500, PASSWORD), ("agent1", "x" * 10_000)):
        e = refused(lambda u=username, p=password: svc.login(u, p, "10.9.0.1"))
        assert e.message == WRONG
    assert svc.login(" agent1 ", PASSWORD).actor.username == "agent1"


# ---- sessions ------------------------------------------------------------------------------------------------------
def test_a_session_lives_in_the_database_and_only_its_hash_is_stored(svc):
    done = svc.login("agent1", PASSWORD, "10.0.0.5")
    assert len(done.token) >= 43 and not done.must_change_password
    [row] = session_rows(svc, "agent1")
    assert row.id != done.token and len(row.id) == 64 and done.token not in row.id
    assert row.address == "10.0.0.5" and row.ended_at is None
    current = svc.current_session(done.token)
    assert current.actor == actor(svc, "agent1") and not current.timed_out
    for other in (None, "", "x", "y" * 5000, done.token + "x", 12):
        assert svc.current_session(other).actor is None


def test_idle_sessions_time_out_and_last_use_is_written_at_most_once_a_minute(svc, monkeypatch):
    wall.set(wall.now())
    done = svc.login("agent1", PASSWORD)
    started = session_rows(svc, "agent1")[0].last_seen_at
    wall.advance(timedelta(seconds=50))
    assert svc.current_session(done.token).actor is not None
    assert session_rows(svc, "agent1")[0].last_seen_at == started          # no write within the minute
    wall.advance(timedelta(seconds=20))
    assert svc.current_session(done.token).actor is not None
    assert session_rows(svc, "agent1")[0].last_seen_at != started          # written after a minute
    wall.advance(timedelta(minutes=29))
    assert svc.current_session(done.token).actor is not None               # 29 minutes idle: still in
    clock.set(wall.now() + timedelta(days=20))                             # the service time of cases is not the wall
    assert svc.current_session(done.token).actor is not None
    wall.advance(timedelta(minutes=30, seconds=1))
    current = svc.current_session(done.token)
    assert current.actor is None and current.timed_out
    [row] = session_rows(svc, "agent1")
    assert row.ended_reason == "idle" and row.ended_at is not None
    assert svc.current_session(done.token).actor is None                   # and stays ended
    monkeypatch.setenv("BANGBAN_SESSION_IDLE_MINUTES", "5")
    second = svc.login("agent1", PASSWORD)
    wall.advance(timedelta(minutes=5, seconds=1))
    assert svc.current_session(second.token).timed_out


def test_logout_ends_the_session_and_deactivation_ends_every_session_at_once(svc, db, process_files):
    one, two = svc.login("huarui", PASSWORD), svc.login("huarui", PASSWORD)
    svc.logout(one.token)
    assert svc.current_session(one.token).actor is None and svc.current_session(two.token).actor is not None
    assert [r.ended_reason for r in session_rows(svc, "huarui")] == ["logout", None]
    svc.logout(None), svc.logout("not-a-token")                            # nothing to end: nothing happens
    # deactivated by an administrator: out on the next request, on another server too
    other = Bangban.open_latest(db, process_files)
    assert other.current_session(two.token).actor is not None
    set_user(svc, "huarui", active=False)
    assert other.current_session(two.token).actor is None
    assert [r.ended_reason for r in session_rows(svc, "huarui")] == ["logout", "deactivated"]


def test_an_administrator_ends_a_users_sessions(svc, monkeypatch):
    tokens = [svc.login("zb_sthj", PASSWORD).token for _ in range(2)]
    agent = actor(svc, "agent1")
    with pytest.raises(Forbidden):
        svc.end_user_sessions(agent, user_row(svc, "zb_sthj").id)
    assert all(svc.current_session(t).actor for t in tokens)
    admin = actor(svc, "admin1")                       # the demo's 系统管理员 (permission accounts)
    assert svc.end_user_sessions(admin, user_row(svc, "zb_sthj").id) == 2
    assert not any(svc.current_session(t).actor for t in tokens)
    with svc.db.unit_of_work(write=False) as uow:
        log = uow.conn.execute(select(AdminChange.__table__)).all()
    assert [(r.action, r.target, r.actor_name, r.new) for r in log] == [("end_sessions", "zb_sthj", "admin1",
                                                                          {"ended_sessions": 2})]


# ---- changing one's password, the first login with a one-time password -------------------------------------------
def test_changing_the_password_ends_the_other_sessions_and_lifts_the_first_login_duty(svc):
    set_user(svc, "agent2", must_change_password=True)
    here, elsewhere = svc.login("agent2", PASSWORD), svc.login("agent2", PASSWORD)
    assert here.must_change_password and svc.current_session(here.token).must_change_password
    me = here.actor
    before = user_row(svc, "agent2").password_hash
    for old, new, again, message in (
            (PASSWORD, GOOD_NEW, GOOD_NEW + "x", "两次输入的新密码不一致"),
            ("wrong-old", GOOD_NEW, GOOD_NEW, "原密码不正确"),
            ("", GOOD_NEW, GOOD_NEW, "请输入原密码"),
            (PASSWORD, "short1", "short1", "至少需要 8 个字符"),
            (PASSWORD, "iloveyou", "iloveyou", "太常见"),
            (PASSWORD, "agent2", "agent2", "8 个字符"),
            ):
        with pytest.raises(InvalidInput) as info:
            svc.change_password(me, here.token, old, new, again)
        assert message in info.value.message, (message, info.value.message)
    assert user_row(svc, "agent2").password_hash == before
    with pytest.raises(InvalidInput, match="不能与原密码相同"):
        svc.change_password(me, here.token, PASSWORD, PASSWORD, PASSWORD)
    supervisor = svc.login("supervisor1", PASSWORD)
    with pytest.raises(InvalidInput, match="不能与登录名相同"):
        svc.change_password(supervisor.actor, supervisor.token, PASSWORD, "Supervisor1", "Supervisor1")
    svc.change_password(me, here.token, PASSWORD, GOOD_NEW, GOOD_NEW)
    row = user_row(svc, "agent2")
    assert row.password_hash.startswith("$argon2id$") and not row.must_change_password and row.password_changed_at
    assert svc.current_session(here.token).actor is not None and not svc.current_session(here.token).must_change_password
    assert svc.current_session(elsewhere.token).actor is None
    assert [r.ended_reason for r in session_rows(svc, "agent2")] == [None, "password_changed"]
    assert isinstance(refused(lambda: svc.login("agent2", PASSWORD)), NotAuthenticated)
    assert svc.login("agent2", GOOD_NEW).actor.username == "agent2"
    # the hash changed underneath (another server): refused, nothing written
    set_user(svc, "agent2", password_hash=passwords.hash_password("其他服务器上改的密码"))
    with pytest.raises((Conflict, InvalidInput)):
        svc.change_password(me, here.token, GOOD_NEW, "又一个新密码-1", "又一个新密码-1")


def test_guessing_the_old_password_counts_as_failed_logins(svc):
    here = svc.login("agent1", PASSWORD)
    me = here.actor
    for _ in range(4):
        with pytest.raises(InvalidInput, match="原密码不正确"):
            svc.change_password(me, here.token, "guess", GOOD_NEW, GOOD_NEW)
    with pytest.raises(TooManyAttempts):
        svc.change_password(me, here.token, "guess", GOOD_NEW, GOOD_NEW)
    with pytest.raises(TooManyAttempts):
        svc.change_password(me, here.token, PASSWORD, GOOD_NEW, GOOD_NEW)
    assert isinstance(refused(lambda: svc.login("agent1", PASSWORD)), TooManyAttempts)


# ---- HTTP: pages and API ---------------------------------------------------------------------------------------------
def test_the_session_cookie_is_httponly_lax_not_permanent_and_secure_over_https(app, svc, monkeypatch):
    r = app.test_client().post("/api/login", json={"username": "agent1", "password": PASSWORD})
    header = set_cookie_header(r)
    assert "HttpOnly" in header and "SameSite=Lax" in header
    assert "Secure" not in header and "Expires" not in header and "Max-Age" not in header
    assert PASSWORD not in header and "agent1" not in header
    # over HTTPS the cookie is Secure by itself (SESSION_COOKIE_SECURE None: as the request came)
    r = app.test_client().post("/api/login", json={"username": "agent1", "password": PASSWORD},
                               base_url="https://localhost")
    assert "Secure" in set_cookie_header(r)
    # BANGBAN_SECURE_COOKIES=1: always (TLS ends at a reverse proxy); 0: never
    for value, secure in (("1", True), ("0", False)):
        monkeypatch.setenv("BANGBAN_SECURE_COOKIES", value)
        other = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
        r = other.test_client().post("/api/login", json={"username": "agent1", "password": PASSWORD},
                                     base_url="https://localhost")
        assert ("Secure" in set_cookie_header(r)) is secure
        assert "HttpOnly" in set_cookie_header(r) and "SameSite=Lax" in set_cookie_header(r)


def test_behind_a_trusted_proxy_the_forwarded_address_and_scheme_count(svc, monkeypatch):
    monkeypatch.setenv("BANGBAN_TRUSTED_PROXIES", "1")
    app = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    r = app.test_client().post("/api/login", json={"username": "agent1", "password": PASSWORD},
                               headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
    assert r.status_code == 200 and "Secure" in set_cookie_header(r)
    assert session_rows(svc, "agent1")[-1].address == "203.0.113.9"
    monkeypatch.delenv("BANGBAN_TRUSTED_PROXIES")
    plain = create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    plain.test_client().post("/api/login", json={"username": "agent1", "password": PASSWORD},
                             headers={"X-Forwarded-For": "203.0.113.10"})
    assert session_rows(svc, "agent1")[-1].address == "127.0.0.1"       # not believed without the switch


def test_a_session_ended_in_the_database_is_refused_on_another_server_at_once(app, svc):
    client = app.test_client()
    assert page_login(client, "zb_sthj").status_code == 302
    cookie = cookie_of(client)
    server2 = second_app(svc)
    assert with_cookie(server2, cookie).get("/api/me").json["username"] == "zb_sthj"
    assert with_cookie(server2, cookie).get("/inbox").status_code == 200
    with svc.db.unit_of_work() as uow:       # as the administrator's deactivation does it
        uow.repo.end_sessions(user_row(svc, "zb_sthj").id, wall.now(), "deactivated")
        uow.commit()
    assert_json_error(with_cookie(server2, cookie).get("/api/me"), 401, "请先登录")
    r = with_cookie(server2, cookie).get("/inbox")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert_json_error(with_cookie(app, cookie).get("/api/tasks"), 401)
    # a user made inactive (sessions not ended): out on the next request as well, on either server
    client = app.test_client()
    page_login(client, "agent2")
    cookie = cookie_of(client)
    assert with_cookie(server2, cookie).get("/api/me").status_code == 200
    set_user(svc, "agent2", active=False)
    assert_json_error(with_cookie(server2, cookie).get("/api/me"), 401)
    assert_json_error(with_cookie(app, cookie).get("/api/me"), 401)


@pytest.mark.parametrize("door", ["page", "api"])
def test_logout_ends_the_session_on_the_server_and_the_old_cookie_is_refused(app, svc, door):
    client = app.test_client()
    if door == "page":
        assert page_login(client, "agent1").status_code == 302
        cookie = cookie_of(client)
        inbox = client.get("/inbox")
        r = client.post("/logout", data={"csrf_token": token(inbox.text)})
        assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    else:
        client.post("/api/login", json={"username": "agent1", "password": PASSWORD})
        cookie = cookie_of(client)
        assert client.post("/api/logout").json == {"ok": True}
    [row] = session_rows(svc, "agent1")
    assert row.ended_reason == "logout"
    replay = with_cookie(second_app(svc), cookie)
    assert_json_error(replay.get("/api/me"), 401, "请先登录")
    assert replay.get("/cases").status_code == 302
    assert_json_error(with_cookie(app, cookie).get("/api/me"), 401)


def test_an_idle_session_times_out_with_a_chinese_message(app, svc):
    wall.set(wall.now())
    page_client, api_client = app.test_client(), app.test_client()
    page_login(page_client, "huarui")
    api_client.post("/api/login", json={"username": "huarui", "password": PASSWORD})
    wall.advance(timedelta(minutes=29))
    assert page_client.get("/inbox").status_code == 200 and api_client.get("/api/me").status_code == 200
    wall.advance(timedelta(minutes=30, seconds=5))
    r = page_client.get("/cases")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    login_page = page_client.get(r.headers["Location"])
    assert TIMED_OUT in login_page.text
    assert_json_error(api_client.get("/api/tasks"), 401, TIMED_OUT)
    assert_json_error(api_client.get("/api/tasks"), 401, "请先登录")         # the cookie was cleared
    assert {r.ended_reason for r in session_rows(svc, "huarui")} == {"idle"}


def test_login_throttling_over_http_does_not_tell_whether_the_account_exists(app):
    def attempts(username: str, address: str, n: int):
        client = app.test_client()
        env = {"environ_base": {"REMOTE_ADDR": address}}
        page = [page_login(client, username, "wrong", **env) for _ in range(n - 1)]
        api = client.post("/api/login", json={"username": username, "password": "wrong"}, **env)
        return page, api

    for username, address in (("agent1", "10.0.0.1"), ("no-such-user", "10.0.0.2")):
        pages, api = attempts(username, address, 5)
        assert [r.status_code for r in pages] == [401] * 4 and all(WRONG in r.text for r in pages)
        assert "不存在" not in pages[0].text
        body = assert_json_error(api, 429)
        assert LOCKED.match(body["message"]) and body["error"] == "too_many_attempts"
        assert 840 < int(api.headers["Retry-After"]) <= 900
        # while locked, even the right password (for agent1) is refused, from any address, on both doors
        r = page_login(app.test_client(), username, PASSWORD, environ_base={"REMOTE_ADDR": "10.0.0.3"})
        alert = re.search(r'<div class="error" role="alert">([^<]*)</div>', r.text)
        assert r.status_code == 429 and alert and LOCKED.match(alert.group(1)), r.text
        assert r.headers["Retry-After"]
        r = app.test_client().post("/api/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 429 and LOCKED.match(r.json["message"])
    # per address: 20 failures over different accounts lock the address, including for the right password
    client = app.test_client()
    for n in range(19):
        r = client.post("/api/login", json={"username": f"u{n}", "password": "x"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert r.status_code == 401
    assert client.post("/api/login", json={"username": "u19", "password": "x"},
                       environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 429
    r = client.post("/api/login", json={"username": "agent2", "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert r.status_code == 429
    assert client.post("/api/login", json={"username": "agent2", "password": PASSWORD},
                       environ_base={"REMOTE_ADDR": "10.0.0.10"}).status_code == 200


def test_a_one_time_password_must_be_changed_first_on_pages_and_in_the_api(app, svc):
    set_user(svc, "chief1", must_change_password=True)
    earlier = app.test_client()
    earlier.post("/api/login", json={"username": "chief1", "password": PASSWORD})
    assert earlier.get("/api/me").json["must_change_password"] is True
    # pages: the login goes to the password page, and so does every other page
    client = app.test_client()
    r = page_login(client, "chief1")
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/password")
    page = client.get("/account/password")
    assert page.status_code == 200 and "修改密码" in page.text and "初始密码" in page.text
    for path in ("/", "/inbox", "/cases", "/supervision", "/cases/new?process=bangban_case"):
        r = client.get(path)
        assert r.status_code == 302 and r.headers["Location"].endswith("/account/password"), path
    # API: 403 everywhere but logout, me and the password change
    api = app.test_client()
    login = api.post("/api/login", json={"username": "chief1", "password": PASSWORD})
    assert login.status_code == 200 and login.json["must_change_password"] is True
    for method, path in (("get", "/api/tasks"), ("get", "/api/cases"), ("post", "/api/cases"),
                         ("get", "/api/supervision")):
        r = getattr(api, method)(path, json={} if method == "post" else None)
        assert_json_error(r, 403, "请先修改初始密码")
    assert api.get("/api/me").status_code == 200
    # the policy applies; refusals are Chinese 422s, nothing changes
    for body, message in (({"old_password": PASSWORD, "new_password": "abc", "new_password_again": "abc"}, "8 个字符"),
                          ({"old_password": PASSWORD, "new_password": "qwerty123", "new_password_again": "qwerty123"},
                           "太常见"),
                          ({"old_password": PASSWORD, "new_password": "chief1", "new_password_again": "chief1"}, "8 个字符"),
                          ({"old_password": PASSWORD, "new_password": GOOD_NEW, "new_password_again": "x"}, "不一致"),
                          ({"old_password": PASSWORD, "new_password": 12345678, "new_password_again": 12345678}, "文字"),
                          ({"old_password": PASSWORD, "new_password": GOOD_NEW}, None)):
        r = api.post("/api/account/password", json=body)
        assert_json_error(r, 422, *([message] if message else []))
    assert user_row(svc, "chief1").must_change_password
    page = client.get("/account/password")
    r = client.post("/account/password", data={"csrf_token": token(page.text), "old_password": PASSWORD,
                                               "new_password": "password", "new_password_again": "password"})
    assert r.status_code == 422 and "太常见" in r.text
    # the change: the pages open, the other sessions of the user end, this one stays
    r = client.post("/account/password", data={"csrf_token": token(page.text), "old_password": PASSWORD,
                                               "new_password": GOOD_NEW, "new_password_again": GOOD_NEW})
    assert r.status_code == 302 and r.headers["Location"].endswith("/inbox")
    assert "密码已修改" in client.get("/inbox").text
    assert client.get("/cases").status_code == 200
    assert_json_error(api.get("/api/tasks"), 401)
    assert_json_error(earlier.get("/api/me"), 401)
    assert not user_row(svc, "chief1").must_change_password
    # the API change works the same way
    api = app.test_client()
    assert api.post("/api/login", json={"username": "chief1", "password": GOOD_NEW}).json["must_change_password"] is False
    r = api.post("/api/account/password", json={"old_password": GOOD_NEW, "new_password": "另一个新密码-2027",
                                                "new_password_again": "另一个新密码-2027"})
    assert r.status_code == 200 and r.json == {"ok": True}
    assert api.get("/api/tasks").status_code == 200
    assert_json_error(client.get("/api/me"), 401)


def test_the_password_page_is_for_everyone_logged_in(app):
    assert app.test_client().get("/account/password").status_code == 302
    assert_json_error(app.test_client().post("/api/account/password", json={}), 401)
    client = app.test_client()
    page_login(client, "auditor1")
    page = client.get("/account/password")
    assert page.status_code == 200 and "原密码" in page.text and "再次输入新密码" in page.text
    assert "修改密码" in client.get("/inbox").text
    r = client.post("/account/password", data={"csrf_token": token(page.text), "old_password": "wrong",
                                               "new_password": GOOD_NEW, "new_password_again": GOOD_NEW})
    assert r.status_code == 422 and "原密码不正确" in r.text
    r = client.post("/account/password", data={"old_password": PASSWORD, "new_password": GOOD_NEW,
                                               "new_password_again": GOOD_NEW})
    assert r.status_code == 400                                            # no CSRF token
