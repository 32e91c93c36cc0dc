"""``bangban files``: the store of uploaded case files (``gc``: remove files no case references)."""
from __future__ import annotations

import click

_open_service = None     # engine.cli.open_service, given by register()


def register(cli, open_service) -> None:
    global _open_service
    _open_service = open_service
    cli.add_command(files)


@click.group(help="材料文件存储（BANGBAN_FILES_DIR，默认 var/files）")
def files() -> None:
    pass


@files.command("gc", help="删除没有任何办件材料记录引用的文件（以及中断上传留下的临时文件），只删超过宽限期的。")
@click.option("--dry-run", is_flag=True, help="只列出将删除的文件，不删除")
@click.option("--grace-hours", default=24, show_default=True, type=click.IntRange(1, 24 * 365),
              help="宽限期（小时）：比这更新的文件不删（上传先写文件、后写记录）")
def gc(dry_run: bool, grace_hours: int) -> None:
    service = _open_service()
    try:
        removed = service.files_gc(dry_run=dry_run, grace_seconds=grace_hours * 3600)
    finally:
        service.db.dispose()
    for name in removed:
        click.echo(("将删除：" if dry_run else "已删除：") + name)
    click.echo(f"共{'将删除' if dry_run else '删除'} {len(removed)} 个文件（存储目录：{service.file_store.root}）")
