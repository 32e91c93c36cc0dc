"""The history of a case holds under every write path the database offers, and the service runs as a role that can
only read and append it.

SQLite: UPDATE, DELETE, ``REPLACE INTO``, ``INSERT OR REPLACE`` and ``INSERT … ON CONFLICT DO UPDATE`` of an event,
a document or a published process version are refused by triggers, while the service's own inserts go through (a
whole case). PostgreSQL: migrations run as an owner role; the application role gets ``bangban db grant``'s
privileges, runs a whole case, and every bypass — UPDATE, DELETE, TRUNCATE, DISABLE/DROP TRIGGER, DROP TABLE,
replacing the trigger function, an UPSERT, ``session_replication_role`` — is refused to it.
"""
from __future__ import annotations

import re
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from engine import caches
from engine.cli import cli, open_service
from engine.db import Database, normalize_url
from engine.demo import load_demo
from engine.migrate import APPEND_ONLY, alembic_config, grant_statements, head_revision
from engine.services import Bangban
from tests import helpers as h
from tests.conftest import FAST_HASH, PG_URL

pg_only = pytest.mark.skipif(not PG_URL, reason="PostgreSQL only (BANGBAN_TEST_DATABASE_URL)")
EVENT_COLUMNS = "id, case_id, seq, type, at, actor_id, actor_name, role, task_id, element_id, task_name, payload, prev_hash, hash"
DOC_COLUMNS = "id, case_id, kind, number, issued_at, issued_by, task_id, title, data"
REFUSED = r"append-only|immutable|permission denied|must be owner|must be superuser|denied to set parameter"


@pytest.fixture(autouse=True)
def _frozen():
    h.freeze_clock()


def whole_case(svc: Bangban) -> str:
    """A case from application to the last rating, through the service: every kind of event and document inserted."""
    no = h.start(svc)
    h.accept_and_commission(svc, no)
    h.dispatch(svc, no, ["hp", "gd"])
    h.approve_items(svc, no, ["hp", "gd"])
    h.collect_and_deliver(svc, no)
    h.complete(svc, "huarui", "签收办结单", case_no=no, **h.receipt())
    h.complete(svc, "huarui", "评价代办服务", case_no=no, **h.rating("非常满意"))
    h.rate_departments(svc, no)
    assert h.case_row(svc, no).status == "completed"
    return no


def history(conn) -> list:
    """Everything the bypasses try to change."""
    return [conn.execute(text(f"SELECT * FROM {t} ORDER BY id")).all() for t in ("events", "documents", "process_versions")]


def bypasses(dialect: str) -> list[str]:
    """Each statement rewrites or removes history; ``:c`` is a case id, ``:e`` an event id, ``:d`` a document id."""
    forged_event = f"SELECT {EVENT_COLUMNS.replace('type,', chr(39) + 'forged' + chr(39) + ',', 1)} FROM events WHERE id = :e"
    new_id_event = forged_event.replace("SELECT id,", "SELECT id + 100000,", 1)
    forged_doc = f"SELECT {DOC_COLUMNS.replace('title,', chr(39) + 'forged' + chr(39) + ',', 1)} FROM documents WHERE id = :d"
    out = [
        "UPDATE events SET type = 'forged' WHERE case_id = :c",
        "DELETE FROM events WHERE case_id = :c",
        f"INSERT INTO events ({EVENT_COLUMNS}) {forged_event} ON CONFLICT (id) DO UPDATE SET type = 'forged'",
        f"INSERT INTO events ({EVENT_COLUMNS}) {new_id_event} ON CONFLICT (case_id, seq) DO UPDATE SET type = 'forged'",
        "UPDATE documents SET title = 'forged' WHERE case_id = :c",
        "DELETE FROM documents WHERE case_id = :c",
        f"INSERT INTO documents ({DOC_COLUMNS}) {forged_doc} ON CONFLICT (id) DO UPDATE SET title = 'forged'",
        "UPDATE process_versions SET files = '{}'",
        "UPDATE process_versions SET hash = 'forged'",
        "DELETE FROM process_versions",
    ]
    if dialect == "sqlite":
        out += [
            f"REPLACE INTO events ({EVENT_COLUMNS}) {forged_event}",
            f"INSERT OR REPLACE INTO events ({EVENT_COLUMNS}) {forged_event}",
            f"INSERT OR REPLACE INTO events ({EVENT_COLUMNS}) {new_id_event}",   # same (case_id, seq), new id
            f"REPLACE INTO documents ({DOC_COLUMNS}) {forged_doc}",
            f"INSERT OR REPLACE INTO documents ({DOC_COLUMNS}) "
            f"{forged_doc.replace('SELECT id,', 'SELECT id + 100000,', 1)}",                # same (kind, number)
            "INSERT OR REPLACE INTO process_versions SELECT id, hash, '{}', author, comment, created_at, activated_at "
            "FROM process_versions",
            "UPDATE OR REPLACE events SET seq = seq + 1 WHERE case_id = :c",
        ]
    else:
        out += ["TRUNCATE events CASCADE", "TRUNCATE documents", "TRUNCATE process_versions CASCADE"]
    return out


def ids(conn, case_id: int) -> dict:
    return {"c": case_id,
            "e": conn.execute(text("SELECT min(id) FROM events WHERE case_id = :c"), {"c": case_id}).scalar(),
            "d": conn.execute(text("SELECT min(id) FROM documents WHERE case_id = :c"), {"c": case_id}).scalar()}


def refused(engine, statements: str | tuple[str, ...], params: dict) -> str:
    """Run the statement(s) in one transaction; it must fail. Returns the database's message."""
    with pytest.raises(DBAPIError) as info:
        with engine.begin() as conn:
            for statement in (statements,) if isinstance(statements, str) else statements:
                conn.execute(text(statement), {k: v for k, v in params.items() if f":{k}" in statement})
    return str(info.value.orig)


def test_every_way_to_rewrite_history_is_refused_and_the_service_still_appends(svc):
    no = whole_case(svc)
    case_id = h.case_row(svc, no).id
    engine = svc.db.engine
    with engine.connect() as conn:
        before, params = history(conn), ids(conn, case_id)
    assert params["e"] and params["d"]
    for statement in bypasses(engine.dialect.name):
        message = refused(engine, statement, params)
        assert ("append-only" in message or "immutable" in message), (statement, message)
    with engine.connect() as conn:
        assert history(conn) == before
    h.assert_verified(svc, no)
    # the legitimate path after all that: another whole case, on the same tables
    h.assert_verified(svc, whole_case(svc))


def test_the_triggers_are_in_place_at_head(db):
    """A later migration that rebuilds one of these tables (SQLite batch mode) would drop its triggers: this fails."""
    with db.engine.connect() as conn:
        if db.is_sqlite:
            found = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())
            expected = {f"{t}_no_{w}" for t in ("events", "documents") for w in ("update", "delete", "replace")}
            expected |= {f"process_versions_no_{w}" for w in ("update", "delete", "replace")}
        else:
            found = set(conn.execute(text(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O' "
                "AND tgrelid::regclass::text IN ('events', 'documents', 'process_versions')")).scalars())
            expected = {"events_append_only", "events_no_truncate", "documents_append_only", "documents_no_truncate",
                        "process_versions_immutable", "process_versions_no_truncate"}
    assert expected <= found, expected - found


def test_the_application_role_privileges_are_exactly_these():
    sql = grant_statements("s", ["events", "documents", "process_versions", "cases", "alembic_version"], "app")
    assert sql == [
        'REVOKE ALL ON ALL TABLES IN SCHEMA "s" FROM "app"',
        'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "s" FROM "app"',
        'REVOKE CREATE ON SCHEMA "s" FROM "app"',
        'GRANT USAGE ON SCHEMA "s" TO "app"',
        'GRANT SELECT ON "s"."alembic_version" TO "app"',
        'GRANT SELECT, INSERT, UPDATE, DELETE ON "s"."cases" TO "app"',
        'GRANT SELECT, INSERT ON "s"."documents" TO "app"',
        'GRANT SELECT, INSERT ON "s"."events" TO "app"',
        'GRANT SELECT, INSERT ON "s"."process_versions" TO "app"',
        'GRANT UPDATE (activated_at) ON "s"."process_versions" TO "app"',
        'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "s" TO "app"',
    ]
    assert APPEND_ONLY == ("events", "documents", "digest_leaves", "digests", "calendar_changes")
    with pytest.raises(ValueError, match="角色名不合法"):
        grant_statements("s", ["events"], 'app"; DROP TABLE events; --')


def test_the_service_does_not_start_on_a_schema_it_would_have_to_migrate(db_url, monkeypatch):
    from alembic import command
    monkeypatch.setenv("DATABASE_URL", db_url)
    with pytest.raises(Exception, match="尚未建立"):
        open_service()
    command.upgrade(alembic_config(normalize_url(db_url)), "20261130_0004")
    with pytest.raises(Exception, match=f"本程序需要 {head_revision()}"):
        open_service()
    import web.cli  # noqa: F401  (adds ``serve`` to the command group)
    for command_line in (["worker", "--once"], ["serve", "--no-worker"]):
        result = CliRunner().invoke(cli, command_line)
        assert result.exit_code == 1 and "本程序需要" in result.output and "init-db" in result.output, result.output
    assert CliRunner().invoke(cli, ["init-db"]).exit_code == 0
    status = CliRunner().invoke(cli, ["db", "status"])
    assert status.exit_code == 0 and "（最新）" in status.output, status.output
    open_service().db.dispose()


# ---- PostgreSQL: an owner role migrates, the application role runs the service ------------------------------------
@pytest.fixture
def roles():
    """A fresh schema owned by a new owner role, a new application role with nothing yet, and their URLs."""
    suffix = uuid.uuid4().hex[:10]
    owner, app, schema = f"bb_owner_{suffix}", f"bb_app_{suffix}", f"r_{suffix}"
    admin = create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE ROLE {owner} LOGIN"))
        c.execute(text(f"CREATE ROLE {app} LOGIN"))
        c.execute(text(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}"))

    def url(role: str) -> str:
        base = make_url(PG_URL).set(username=role, query={"options": f"-csearch_path={schema}"})
        return base.render_as_string(hide_password=False)

    yield {"owner": owner, "app": app, "schema": schema, "owner_url": url(owner), "app_url": url(app)}
    caches.clear_all()
    with admin.connect() as c:
        c.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename IN ('{owner}', '{app}')"))
        c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        for role in (app, owner):
            c.execute(text(f"DROP OWNED BY {role}"))
            c.execute(text(f"DROP ROLE {role}"))
    admin.dispose()


def pg_bypasses() -> list[str | tuple[str, ...]]:
    """What a role that owned the tables could do, beyond the statements the triggers already refuse."""
    return [
        "ALTER TABLE events DISABLE TRIGGER USER",
        "ALTER TABLE events DISABLE TRIGGER events_append_only",
        "ALTER TABLE documents DISABLE TRIGGER ALL",
        "DROP TRIGGER events_append_only ON events",
        "DROP TRIGGER events_no_truncate ON events",
        "DROP TRIGGER documents_append_only ON documents",
        "DROP TABLE events CASCADE",
        "DROP TABLE documents",
        "ALTER TABLE events RENAME TO events_old",
        "ALTER TABLE events OWNER TO CURRENT_USER",
        "ALTER TABLE events ADD COLUMN note text",
        "CREATE OR REPLACE FUNCTION bangban_events_append_only() RETURNS trigger AS $$ BEGIN RETURN NEW; END; $$ "
        "LANGUAGE plpgsql",
        "CREATE OR REPLACE FUNCTION bangban_refuse() RETURNS trigger AS $$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql",
        "DROP FUNCTION bangban_events_append_only() CASCADE",
        "CREATE TRIGGER events_bypass BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION bangban_refuse('x')",
        "CREATE TABLE events_copy (id int)",
        "SET session_replication_role = replica",
        ("GRANT UPDATE ON events TO CURRENT_USER", "UPDATE events SET type = 'forged'"),   # the GRANT only warns
    ]


@pg_only
def test_the_application_role_runs_a_whole_case_and_can_only_append_history(roles, process_files, monkeypatch):
    runner = CliRunner()
    monkeypatch.setenv("DATABASE_URL", roles["app_url"])
    # the application role alone cannot create the schema: a Chinese line, no traceback
    refused_init = runner.invoke(cli, ["init-db"])
    assert refused_init.exit_code != 0 and "所有者角色" in refused_init.output, refused_init.output
    # the owner migrates and grants; the service then registers the process version as the application role
    monkeypatch.setenv("BANGBAN_MIGRATE_DATABASE_URL", roles["owner_url"])
    monkeypatch.setenv("BANGBAN_APP_ROLE", roles["app"])
    result = runner.invoke(cli, ["init-db"])
    assert result.exit_code == 0 and f"已为应用角色 {roles['app']} 授予" in result.output, result.output
    status = runner.invoke(cli, ["db", "status"])
    assert status.exit_code == 0 and "只能读取和追加事件与单据" in status.output, status.output
    grant = runner.invoke(cli, ["db", "grant", "--app-role", roles["owner"]])
    assert grant.exit_code == 2 and "不能是迁移所用的所有者角色" in grant.output, grant.output

    db = Database(roles["app_url"])
    try:
        with db.engine.connect() as conn:
            who, owner = conn.execute(text("SELECT current_user, pg_get_userbyid(relowner) FROM pg_class "
                                           "WHERE oid = 'events'::regclass")).one()
        assert (who, owner) == (roles["app"], roles["owner"])
        svc = Bangban.open_latest(db, process_files)
        load_demo(db, svc.current.catalogue, hash_method=FAST_HASH)
        no = whole_case(svc)
        case_id = h.case_row(svc, no).id
        with db.engine.connect() as conn:
            before, params = history(conn), ids(conn, case_id)
        messages = {}
        for statement in bypasses("postgresql") + pg_bypasses():
            messages[statement] = refused(db.engine, statement, params)
        odd = {s: m for s, m in messages.items() if not re.search(REFUSED, m)}
        assert odd == {}, odd
        # privileges, not just triggers, stop the application role
        assert "permission denied" in messages["UPDATE events SET type = 'forged' WHERE case_id = :c"]
        assert "permission denied" in messages["TRUNCATE events CASCADE"]
        with db.engine.connect() as conn:
            assert history(conn) == before
        h.assert_verified(svc, no)
        h.assert_verified(svc, whole_case(svc))          # and the service goes on appending
    finally:
        db.dispose()


@pg_only
def test_a_role_that_owns_the_tables_is_reported(roles, monkeypatch):
    """``db status`` as a deployment check: migrating and serving as one role is named as too powerful."""
    monkeypatch.setenv("DATABASE_URL", roles["owner_url"])
    monkeypatch.setenv("BANGBAN_MIGRATE_DATABASE_URL", roles["owner_url"])
    assert CliRunner().invoke(cli, ["init-db"]).exit_code == 0
    status = CliRunner().invoke(cli, ["db", "status", "--app-role", roles["owner"]])
    assert status.exit_code == 1 and "拥有" in status.output and "权限过大" in status.output, status.output


@pytest.mark.skipif(bool(PG_URL), reason="SQLite only")
def test_grant_on_sqlite_says_there_are_no_roles(db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("BANGBAN_MIGRATE_DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["db", "grant", "--app-role", "app"])
    assert result.exit_code == 2 and "SQLite 没有数据库角色" in result.output



def test_the_head_the_service_checks_is_alembics():
    from alembic.script import ScriptDirectory
    assert head_revision() == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
