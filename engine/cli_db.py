"""``bangban db``: the schema version and the database roles (owner for migrations, application role for the service)."""
from __future__ import annotations

import sys

import click

from .config import Settings
from .db import normalize_url


def _where(url: str) -> str:
    return url.split("@")[-1]


@click.group(help="数据库：结构版本与数据库角色（所有者角色迁移，应用角色运行服务）")
def db() -> None:
    pass


@db.command("status", help="显示数据库结构版本是否为本程序所需；给出 --app-role 时检查该应用角色是否只能读取和追加事件与单据。")
@click.option("--app-role", default=None, help="要检查的应用角色（PostgreSQL）；默认 BANGBAN_APP_ROLE")
def status(app_role: str | None) -> None:
    from sqlalchemy import text

    from .migrate import app_role_problems, plain_engine, schema_state
    settings = Settings.from_env()
    failed = False
    urls = (("服务（DATABASE_URL）", settings.database_url),
            ("迁移（BANGBAN_MIGRATE_DATABASE_URL）", settings.migrate_database_url))
    for label, url in urls:
        if not url:
            continue
        engine = plain_engine(url)
        try:
            current, head = schema_state(engine)
            user = ""
            if engine.dialect.name == "postgresql":
                with engine.connect() as conn:
                    user = "，角色 " + conn.execute(text("SELECT current_user")).scalar_one()
        finally:
            engine.dispose()
        state = "最新" if current == head else f"需要迁移到 {head}"
        failed = failed or current != head
        click.echo(f"{label}：{_where(normalize_url(url))}{user}；结构版本 {current or '无'}（{state}）")
    role = app_role or settings.app_role
    if role and not normalize_url(settings.migration_url).startswith("sqlite"):
        problems = app_role_problems(settings.migration_url, role)
        for p in problems:
            click.echo(f"  - {p}")
        click.echo(f"应用角色 {role}：{'权限过大' if problems else '只能读取和追加事件与单据，不拥有表、触发器和函数'}")
        failed = failed or bool(problems)
    sys.exit(1 if failed else 0)


@db.command("grant", help="以所有者角色（BANGBAN_MIGRATE_DATABASE_URL，未设置时 DATABASE_URL）为应用角色授予服务所需的权限："
                          "普通表读写，事件与单据只能读取和追加，流程版本只能追加和重新启用；"
                          "每次迁移后再运行一次（init-db 在设置了 BANGBAN_APP_ROLE 时自动运行）。")
@click.option("--app-role", required=True, help="运行 serve / worker 的 PostgreSQL 角色")
@click.option("--dry-run", is_flag=True, help="只显示将执行的 SQL")
def grant(app_role: str, dry_run: bool) -> None:
    from sqlalchemy import text

    from .migrate import SchemaNotReady, app_role_problems, grant_app_role, grant_statements, plain_engine
    url = Settings.from_env().migration_url
    try:
        if dry_run:
            engine = plain_engine(url)
            try:
                if engine.dialect.name != "postgresql":
                    raise SchemaNotReady("SQLite 没有数据库角色：只需保护数据库文件的读写权限")
                with engine.connect() as conn:
                    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
                    tables = list(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                                               {"s": schema}).scalars())
            finally:
                engine.dispose()
            for sql in grant_statements(schema, tables, app_role):
                click.echo(sql + ";")
            return
        statements = grant_app_role(url, app_role)
    except (SchemaNotReady, ValueError) as exc:
        click.echo(getattr(exc, "message", str(exc)), err=True)
        sys.exit(2)
    for sql in statements:
        click.echo(sql + ";")
    problems = app_role_problems(url, app_role)
    for p in problems:
        click.echo(f"  - {p}", err=True)
    click.echo(f"已授权应用角色 {app_role}：{'仍然权限过大' if problems else '事件与单据只能读取和追加'}")
    sys.exit(1 if problems else 0)
