"""Schema migrations with Alembic (``migrations/``), run programmatically by ``bangban init-db``; database roles.

Two roles on PostgreSQL: an *owner* role runs the migrations (``BANGBAN_MIGRATE_DATABASE_URL``) and so owns the
tables, triggers and trigger functions; the *application* role (``DATABASE_URL``, used by ``serve`` and ``worker``)
gets only what the service needs (:func:`grant_statements`): it may add to the history tables but not change,
delete, truncate or alter them, nor disable, drop or replace their triggers. The service checks the schema version
when it starts (:func:`check_schema`) and never migrates as the application role.
"""
from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from .config import ROOT

if TYPE_CHECKING:
    from alembic.config import Config

# What the application role may do to each table (PostgreSQL); any other table of the schema gets FULL.
FULL = "SELECT, INSERT, UPDATE, DELETE"
APPEND_ONLY = ("events", "documents", "digest_leaves", "digests", "calendar_changes")  # SELECT, INSERT: history
COLUMN_UPDATES = {"process_versions": ("activated_at",)}       # SELECT, INSERT, UPDATE of these columns only
READ_ONLY = ("alembic_version",)                               # SELECT: the service checks the schema version
ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class SchemaNotReady(Exception):
    """The database's schema is missing, behind or ahead of this program: ``message`` says what to do (Chinese)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def alembic_config(url: str) -> "Config":
    from alembic.config import Config  # imported when migrating only: importing Alembic logs its plug-ins
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    from alembic import command
    command.upgrade(alembic_config(url), "head")


@cache
def revisions() -> dict[str, tuple[str, ...]]:
    """Every revision of ``migrations/versions`` and those it revises, read from the files without Alembic."""
    import ast
    out: dict[str, tuple[str, ...]] = {}
    for path in (ROOT / "migrations" / "versions").glob("*.py"):
        values = {t.id: node.value for node in ast.parse(path.read_text(encoding="utf-8")).body
                  if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
        if "revision" in values:
            down = ast.literal_eval(values["down_revision"]) if "down_revision" in values else None
            out[ast.literal_eval(values["revision"])] = (down,) if isinstance(down, str) else tuple(down or ())
    return out


def head_revision() -> str:
    """The revision no other revises (the merged history has one)."""
    revised = {r for downs in revisions().values() for r in downs}
    return ",".join(sorted(r for r in revisions() if r not in revised))


def current_revision(conn: Connection) -> str | None:
    """The database's revision, read directly (an Alembic context would log its set-up in every worker start)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    heads = sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    return ",".join(heads) or None


def plain_engine(url: str) -> Engine:
    from .db import normalize_url
    return create_engine(normalize_url(url), poolclass=NullPool)


def schema_state(engine: Engine) -> tuple[str | None, str]:
    """(the database's revision, this program's head)."""
    with engine.connect() as conn:
        return current_revision(conn), head_revision()


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaNotReady` unless the database is at this program's head revision. Reads only: a service
    running as the application role starts without trying to migrate."""
    current, head = schema_state(engine)
    if current == head:
        return
    known = set(revisions())
    if current is None:
        raise SchemaNotReady("数据库尚未建立（没有结构版本记录）：请先运行 bangban init-db")
    if current not in known:
        raise SchemaNotReady(f"数据库结构版本 {current} 比本程序新（本程序最高 {head}）：请先升级本程序")
    raise SchemaNotReady(f"数据库结构版本为 {current}，本程序需要 {head}：请先以数据库所有者身份运行 bangban init-db"
                         f"（BANGBAN_MIGRATE_DATABASE_URL 指定所有者角色）；服务进程不修改数据库结构")


def upgrade_if_needed(url: str) -> bool:
    """Migrate to head unless already there (so a role that may not create tables can run ``init-db`` on a current
    schema); True if migrations ran. A refused change raises :class:`SchemaNotReady`."""
    from sqlalchemy.exc import DBAPIError
    engine = plain_engine(url)
    try:
        current, head = schema_state(engine)
    except DBAPIError as exc:
        raise SchemaNotReady(f"无法读取数据库结构版本：{str(exc.orig or exc).splitlines()[0][:200]}") from None
    finally:
        engine.dispose()
    if current == head:
        return False
    try:
        upgrade(url)
    except DBAPIError as exc:
        raise SchemaNotReady(f"无法升级数据库结构（{current or '空库'} → {head}）：{str(exc.orig or exc).splitlines()[0][:200]}；"
                             "迁移须以表的所有者角色运行（BANGBAN_MIGRATE_DATABASE_URL）") from None
    return True


def quote_role(role: str) -> str:
    if not ROLE_NAME.match(role or ""):
        raise ValueError(f"角色名不合法：{role!r}（字母或下划线开头，只含字母、数字、下划线，最长 63 个字符）")
    return f'"{role}"'


def grant_statements(schema: str, tables: list[str], role: str) -> list[str]:
    """The SQL that gives ``role`` exactly the service's privileges on ``tables`` of ``schema`` (and takes away
    any other it had there): run by the owner after every migration."""
    r, s = quote_role(role), f'"{schema}"'
    out = [f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}", f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}",
           f"REVOKE CREATE ON SCHEMA {s} FROM {r}", f"GRANT USAGE ON SCHEMA {s} TO {r}"]
    for table in sorted(tables):
        t = f'{s}."{table}"'
        if table in APPEND_ONLY:
            out.append(f"GRANT SELECT, INSERT ON {t} TO {r}")
        elif table in COLUMN_UPDATES:
            out.append(f"GRANT SELECT, INSERT ON {t} TO {r}")
            out.append(f"GRANT UPDATE ({', '.join(COLUMN_UPDATES[table])}) ON {t} TO {r}")
        elif table in READ_ONLY:
            out.append(f"GRANT SELECT ON {t} TO {r}")
        else:
            out.append(f"GRANT {FULL} ON {t} TO {r}")
    out.append(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {r}")
    return out


def grant_app_role(url: str, role: str) -> list[str]:
    """As the owner (``url``): give the application role its privileges on the current schema; returns the SQL
    run. Refuses a role that owns the tables or is a superuser (triggers would not bind it)."""
    quote_role(role)
    engine = plain_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            raise SchemaNotReady("SQLite 没有数据库角色：只需保护数据库文件的读写权限")
        with engine.begin() as conn:
            me, schema = conn.execute(text("SELECT current_user, current_schema()")).one()
            found = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
            if found is None:
                raise SchemaNotReady(f"角色 {role} 不存在：请先 CREATE ROLE {role} LOGIN PASSWORD '…'")
            if role == me or found.rolsuper:
                raise SchemaNotReady(f"应用角色 {role} 不能是迁移所用的所有者角色或超级用户：它能关闭或删除约束触发器")
            tables = list(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}).scalars())
            statements = grant_statements(schema, tables, role)
            for sql in statements:
                conn.execute(text(sql))
        return statements
    finally:
        engine.dispose()


def app_role_problems(url: str, role: str) -> list[str]:
    """What the application role could do beyond the service's needs on the history tables (empty when none)."""
    engine = plain_engine(url)
    problems: list[str] = []
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            for table in (*APPEND_ONLY, *COLUMN_UPDATES):
                name = f'"{schema}"."{table}"'
                owner = conn.execute(text("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                                     {"t": name}).scalar_one()
                if conn.execute(text("SELECT pg_has_role(:r, :o, 'USAGE')"), {"r": role, "o": owner}).scalar():
                    problems.append(f"{role} 拥有（或属于所有者角色）表 {table}，可关闭或删除其触发器")
                for privilege in ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER", "REFERENCES"):   # table-wide
                    granted = text("SELECT has_table_privilege(:r, :t, :p)")
                    if conn.execute(granted, {"r": role, "t": name, "p": privilege}).scalar():
                        problems.append(f"{role} 对表 {table} 有 {privilege} 权限")
            if conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
                problems.append(f"{role} 是超级用户")
    finally:
        engine.dispose()
    return problems
