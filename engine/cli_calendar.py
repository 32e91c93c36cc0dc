"""``bangban calendar``: the working-day calendar from the command line (add-workdays, between, import)."""
from __future__ import annotations

import sys

import click

_open_service = None     # engine.cli.open_service, given by register()


def register(cli, open_service) -> None:
    global _open_service
    _open_service = open_service
    cli.add_command(calendar)


@click.group(help="工作日历：法定节假日与调休上班日")
def calendar() -> None:
    pass


def _parse_day(value: str):
    from datetime import date
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"日期应为 YYYY-MM-DD：{value}") from None


def _calendar():
    service = _open_service()
    try:
        return service.calendar()
    finally:
        service.db.dispose()


@calendar.command("add-workdays", help="DATE 之后第 N 个工作日（受理当日不计；休息日收件从下一工作日起算）。")
@click.argument("day")
@click.argument("n", type=int)
def add_workdays(day: str, n: int) -> None:
    try:
        result = _calendar().add_workdays(_parse_day(day), n)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(f"{result.value.isoformat()}{'（暂定：涉及尚未录入放假安排的年份）' if result.provisional else ''}")


@calendar.command("between", help="DATE1（不计）到 DATE2（计）之间的工作日数。")
@click.argument("day1")
@click.argument("day2")
def between(day1: str, day2: str) -> None:
    result = _calendar().workdays_between(_parse_day(day1), _parse_day(day2))
    click.echo(f"{result.value}{'（暂定：涉及尚未录入放假安排的年份）' if result.provisional else ''}")


@calendar.command("import", help="导入放假安排文件（CSV：date,kind,name），文件中的年份整体替换，并重算受影响的时限。")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_file(path: str) -> None:
    from .errors import InvalidInput
    service = _open_service()
    try:
        with open(path, encoding="utf-8-sig") as fh:
            result = service.import_calendar(None, fh.read())
    except UnicodeDecodeError:
        click.echo("文件不是 UTF-8 编码的文本", err=True)
        sys.exit(2)
    except InvalidInput as exc:
        click.echo(exc.message, err=True)
        sys.exit(2)
    finally:
        service.db.dispose()
    click.echo(f"已导入 {', '.join(map(str, result['years']))} 年；重新计算了 {result['recomputed_cases']} 件办件的时限")
