"""``bangban`` commands that need no web server: init-db, demo, process and user administration."""
from __future__ import annotations

import sys

import click

from . import processes
from .config import Settings
from .db import Database, normalize_url
from .errors import ProcessDefinitionError


def open_service(settings: Settings | None = None):
    from .services import Bangban
    settings = settings or Settings.from_env()
    db = Database(settings.database_url)
    return Bangban.open(db, processes.read_dir(settings.process_dir))


@click.group(help="bangban：政务服务帮办代办案件服务")
def cli() -> None:
    pass


@cli.command("init-db", help="创建或升级数据库结构，并登记 processes/ 中的流程版本。")
def init_db() -> None:
    from .migrate import upgrade
    settings = Settings.from_env()
    upgrade(normalize_url(settings.database_url))
    try:
        service = open_service(settings)
    except ProcessDefinitionError as exc:
        click.echo(f"流程文件有误：{exc.message}", err=True)
        for p in exc.details or []:
            click.echo(f"  - {p}", err=True)
        sys.exit(2)
    click.echo(f"数据库已就绪：{service.db.url.split('@')[-1]}；流程版本 {service.current.hash[:12]}")
    service.db.dispose()


@cli.command("demo", help="载入演示数据：两个申请单位、各角色演示账号、每个部门一名专办员。")
def demo() -> None:
    from .demo import DEMO_PASSWORD, load_demo, load_sample_cases
    init_db.callback()
    service = open_service()
    added = load_demo(service.db, service.current.catalogue)
    cases = load_sample_cases(service)
    service.db.dispose()
    click.echo(f"演示账号已就绪（新增 {added} 个），密码均为 {DEMO_PASSWORD}；示例办件 {cases} 件")


@cli.group(help="流程文件")
def process() -> None:
    pass


@process.command("validate", help="校验 BPMN 流程目录或文件。")
@click.argument("path", required=False)
def validate(path: str | None) -> None:
    from pathlib import Path
    target = Path(path) if path else Settings.from_env().process_dir
    try:
        ps = processes.build(processes.read_dir(target))
    except ProcessDefinitionError as exc:
        click.echo(f"不可部署：{exc.message}")
        for p in exc.details or []:
            click.echo(f"  - {p}")
        sys.exit(1)
    click.echo(f"可部署：{', '.join(ps.specs)}（版本 {ps.hash[:12]}）")


def main() -> None:
    cli()
