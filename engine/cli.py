"""``bangban`` commands that need no web server: init-db, demo, process and user administration."""
from __future__ import annotations

import os
import sys

import click

from . import cli_calendar, cli_digests, cli_files, cli_users, cli_zh, processes
from .config import Settings
from .db import Database, ensure_sqlite_dir, normalize_url
from .errors import BangbanError, ProcessDefinitionError


def open_service(settings: Settings | None = None, audit_problems: list[str] | None = None):
    """The service on the configured database. ``audit_problems`` (for ``audit verify``): a list that receives the
    published versions whose files no longer load, instead of stopping (see ``ServiceBase.open_for_audit``)."""
    from sqlalchemy.exc import SQLAlchemyError

    from .migrate import SchemaNotReady, check_schema
    from .services import Bangban
    settings = settings or Settings.from_env()
    db = Database(settings.database_url)
    try:
        check_schema(db.engine)       # reads only: the service never migrates as the application role
        if audit_problems is not None:
            service, problems = Bangban.open_for_audit(db, processes.read_dir(settings.process_dir))
            audit_problems.extend(problems)
            return service
        return Bangban.open_latest(db, processes.read_dir(settings.process_dir))
    except ProcessDefinitionError as exc:
        db.dispose()
        raise click.ClickException(f"最新发布的流程版本无法载入（{exc.message}），请核查流程文件是否被改动"
                                   "（bangban audit verify --all）") from None
    except SchemaNotReady as exc:
        db.dispose()
        raise click.ClickException(exc.message) from None
    except SQLAlchemyError as exc:
        db.dispose()
        reason = str(getattr(exc, "orig", None) or exc)[:200]
        raise click.ClickException(f"无法打开数据库（是否已运行 bangban init-db？）：{reason}") from None


def require_current_schema(settings: Settings | None = None) -> None:
    """Stop with a Chinese message unless the database is at this program's schema version (``serve`` at start)."""
    from sqlalchemy.exc import SQLAlchemyError

    from .migrate import SchemaNotReady, check_schema
    db = Database((settings or Settings.from_env()).database_url)
    try:
        check_schema(db.engine)
    except SchemaNotReady as exc:
        raise click.ClickException(exc.message) from None
    except SQLAlchemyError as exc:
        raise click.ClickException(f"无法打开数据库：{str(getattr(exc, 'orig', None) or exc)[:200]}") from None
    finally:
        db.dispose()


@click.group(help="bangban：政务服务帮办代办案件服务")
def cli() -> None:
    pass


@cli.command("init-db", help="创建或升级数据库结构（设置了 BANGBAN_MIGRATE_DATABASE_URL 时以该所有者角色迁移，"
                             "设置了 BANGBAN_APP_ROLE 时随后为应用角色授权），并登记 processes/ 中的流程版本。")
def init_db() -> None:
    from .migrate import SchemaNotReady, grant_app_role, upgrade_if_needed
    settings = Settings.from_env()
    url = normalize_url(settings.migration_url)
    ensure_sqlite_dir(url)
    try:
        upgrade_if_needed(url)
        if settings.app_role and not url.startswith("sqlite"):
            grant_app_role(url, settings.app_role)
            click.echo(f"已为应用角色 {settings.app_role} 授予服务所需的权限（事件与单据只能读取和追加）")
    except (SchemaNotReady, ValueError) as exc:
        raise click.ClickException(getattr(exc, "message", str(exc))) from None
    try:
        service = open_service(settings)
    except ProcessDefinitionError as exc:
        click.echo(f"流程文件有误：{exc.message}", err=True)
        for p in exc.details or []:
            click.echo(f"  - {p}", err=True)
        sys.exit(2)
    added = service.ensure_departments()
    click.echo(f"数据库已就绪：{service.db.url.split('@')[-1]}；流程版本 {service.current.hash[:12]}"
               + (f"；按事项目录建立了 {added} 个部门" if added else ""))
    service.db.dispose()


@cli.command("demo", help="载入演示数据：两个申请单位、各角色演示账号、每个部门一名专办员、三件示例办件；"
                          "processes/ 目录与最新版本不同时发布为新版本。")
def demo() -> None:
    from .demo import DEMO_PASSWORD, load_demo, load_sample_cases
    init_db.callback()
    service = open_service()
    files = processes.read_dir(Settings.from_env().process_dir)
    if processes.content_hash(files) != service.current.hash:
        result = service.publish(None, files, "processes/ 目录更新（bangban demo）", replace_all=True)
        click.echo(f"已把 processes/ 发布为新版本 {result['short']}")
    added = load_demo(service.db, service.current.catalogue)
    cases = load_sample_cases(service)
    service.db.dispose()
    click.echo(f"演示账号已就绪（新增 {added} 个），密码均为 {DEMO_PASSWORD}；示例办件 {cases} 件")


@cli.group(help="流程文件")
def process() -> None:
    pass


@process.command("validate", help="校验流程：目录（整套流程文件）或一个或多个 BPMN 文件；有任何问题时退出码非零。")
@click.argument("paths", nargs=-1)
def validate(paths: tuple[str, ...]) -> None:
    from pathlib import Path

    from .validation import verdict
    from .validation.bounded import validate_bpmn_file, validate_set
    context = processes.read_dir(Settings.from_env().process_dir)
    failed = False
    for raw in paths or (str(Settings.from_env().process_dir),):
        path = Path(raw)
        if path.is_dir():
            problems = validate_set(processes.read_dir(path))
        elif path.is_file():
            problems = validate_bpmn_file(path.name, path.read_bytes(), context)
        else:
            click.echo(f"{raw}：文件不存在")
            failed = True
            continue
        click.echo(f"{raw}：{verdict(problems)}")
        for p in problems:
            click.echo(f"  - {p}")
        failed = failed or bool(problems)
    sys.exit(1 if failed else 0)


@process.command("publish", help="校验并发布 processes/ 目录为新版本：新办件用新版本，在办办件仍用原版本。")
@click.option("--comment", "-m", required=True, help="发布说明")
@click.option("--dir", "directory", default=None, help="流程目录（默认 processes/）")
def publish(comment: str, directory: str | None) -> None:
    from pathlib import Path

    from .errors import InvalidInput
    service = open_service()
    try:
        result = service.publish(None, processes.read_dir(Path(directory) if directory else Settings.from_env().process_dir),
                                 comment, replace_all=True)
    except InvalidInput as exc:
        click.echo(exc.message, err=True)
        for p in exc.details or []:
            where = f"第 {p['line']} 行 " if p.get("line") else ""
            click.echo(f"  - {p.get('file') or ''} {where}{p['message']}", err=True)
        sys.exit(1)
    finally:
        service.db.dispose()
    same = "；内容与已有版本相同，已设为最新" if result["unchanged"] else ""
    click.echo(f"已发布版本 {result['id']}（{result['short']}）{same}")


@process.command("versions", help="列出已发布的流程版本。")
def versions() -> None:
    service = open_service()
    for v in service.process_versions(None):
        cases = "，".join(f"{k}{n}件" for k, n in v["cases"].items()) or "无办件"
        click.echo(f"{'*' if v['latest'] else ' '} {v['id']:>3}  {v['short']}  {v['activated_at']:%Y-%m-%d %H:%M}  "
                   f"{v['author_name']}  {v['comment']}  （{cases}）")
    service.db.dispose()


@process.command("diff", help="两个版本之间的变化（元素级：任务、泳道、连线、表单、定时器、事项目录）。")
@click.argument("old")
@click.argument("new")
def diff(old: str, new: str) -> None:
    service = open_service()
    try:
        for c in service.diff_versions(None, service.resolve_version(old), service.resolve_version(new)):
            click.echo(f"{c['kind_name']} {c['category']} {c['element'] or ''} {c['name'] or ''} {c['detail']}".rstrip())
    finally:
        service.db.dispose()


@cli.group(help="办件")
def case() -> None:
    pass


@case.command("migrate", help="把在办办件迁移到另一个流程版本（已办理或进行中的步骤未变化的才迁移）。")
@click.option("--to", "to_version", required=True, help="目标版本（编号或哈希前缀）")
@click.option("--dry-run", is_flag=True, help="只报告能否迁移，不做更改")
@click.argument("case_nos", nargs=-1)
def migrate_cases(to_version: str, dry_run: bool, case_nos: tuple[str, ...]) -> None:
    service = open_service()
    try:
        target = service.resolve_version(to_version)
        report = service.migrate_cases(target, list(case_nos) or None, dry_run=dry_run)
    finally:
        service.db.dispose()
    moved = 0
    for r in report:
        if r["ok"]:
            moved += 1
            click.echo(f"{r['case_no']}：{'可以迁移' if dry_run else r.get('note') or '已迁移'}")
        else:
            click.echo(f"{r['case_no']}：不能迁移 —— {'；'.join(r['reasons'])}")
    click.echo(f"共 {len(report)} 件，{'可迁移' if dry_run else '已迁移'} {moved} 件")


@cli.command("worker", help="工作进程：触发到期的 BPMN 定时器（黄牌、红牌），更新时限预警等级；"
                              "发送待发的通知（邮件、短信、武来办），失败的按间隔重试。")
@click.option("--interval", default=5.0, show_default=True, help="两轮之间的秒数")
@click.option("--once", is_flag=True, help="只处理当前到期的，处理完即退出")
def worker(interval: float, once: bool) -> None:
    import logging

    from .worker import run_forever, run_once
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    service = open_service()
    if once:
        click.echo(f"处理了 {run_once(service)} 件办件的到期定时器")
        counts = service.deliver_due()
        click.echo(f"通知：发送 {counts['sent']} 条，待重试 {counts['retry']} 条，失败 {counts['failed']} 条")
        return
    try:
        run_forever(service, interval)
    except KeyboardInterrupt:
        pass
    finally:
        service.db.dispose()


@cli.group(help="审计：核验办件历史的完整性")
def audit() -> None:
    pass


@audit.command("verify", help="核验办件：事件哈希链完整，且仅凭事件和固定的流程版本重放得到相同的状态。")
@click.argument("case_nos", nargs=-1)
@click.option("--all", "all_cases", is_flag=True, help="核验全部办件")
@click.option("--file", "dossier", type=click.Path(dir_okay=False), help="核验导出的办件档案文件（无需数据库）")
@click.option("--digest", "digest_file", type=click.Path(dir_okay=False),
              help="按签名的存证（一份存证或整个存证日志）核验数据库：存证之前的历史未被改写、删除或重新封存")
@click.option("--public-key", "public_key_file", type=click.Path(dir_okay=False),
              help="与 --digest 同用：存证公钥文件（默认由 BANGBAN_DIGEST_KEY 的私钥得出）")
def audit_verify(case_nos: tuple[str, ...], all_cases: bool, dossier: str | None, digest_file: str | None,
                 public_key_file: str | None) -> None:
    import json
    import time
    import zipfile

    from .audit import verify_dossier
    for given in (digest_file, public_key_file, dossier):
        if given is not None and not os.path.isfile(given):
            click.echo(f"文件不存在或不是文件：{given}", err=True)
            sys.exit(2)
    if digest_file:
        cli_digests.verify_digest(open_service, digest_file, public_key_file)
    if dossier and zipfile.is_zipfile(dossier):           # exported --with-files: the dossier and its files
        from .dossier_files import read_zip, uploads
        data, file_problems = read_zip(dossier)
        result = verify_dossier(data) if data is not None else {"ok": False, "case_no": None, "text": file_problems[0]}
        if data is not None and file_problems:
            result = dict(result, ok=False, text=("；".join(file_problems[:5]) if result["ok"]
                                                  else result["text"] + "；" + "；".join(file_problems[:5])))
        click.echo(f"{result['case_no'] or dossier}：{result['text']}"
                   + (f"（含 {len(uploads(data))} 个材料文件）" if data is not None and result["ok"] else ""))
        sys.exit(0 if result["ok"] else 1)
    if dossier:
        try:
            with open(dossier, encoding="utf-8") as fh:
                data = json.load(fh)
        except UnicodeDecodeError:
            click.echo(f"{dossier}：档案文件不是 UTF-8 编码的文本，无法读取")
            sys.exit(1)
        except json.JSONDecodeError as exc:
            click.echo(f"{dossier}：档案文件格式不对，第 {exc.lineno} 行第 {exc.colno} 列无法解析")
            sys.exit(1)
        except OSError as exc:
            click.echo(f"{dossier}：档案文件无法打开（{'没有读取权限' if isinstance(exc, PermissionError) else '读取出错'}）")
            sys.exit(1)
        result = verify_dossier(data)
        click.echo(f"{result['case_no'] or dossier}：{result['text']}")
        sys.exit(0 if result["ok"] else 1)
    version_problems: list[str] = []
    service = open_service(audit_problems=version_problems)
    try:
        numbers = service.audit_case_numbers() if all_cases else list(case_nos)
        if not numbers and not all_cases:
            click.echo("请给出办件编号，或使用 --all", err=True)
            sys.exit(2)
        failed, started = [], time.monotonic()
        with click.progressbar(numbers, label="核验办件", show_pos=True, file=sys.stderr) as bar:
            for no in bar:
                try:
                    result = service.audit_case(no)
                except BangbanError as exc:          # an unknown case number: one line, and on with the rest
                    result = {"case_no": str(no)[:32], "ok": False, "text": exc.message}
                if not result["ok"]:
                    failed.append(result)
        gaps = version_problems + (service.audit_registers() if all_cases else [])
        elapsed = time.monotonic() - started
    finally:
        service.db.dispose()
    for r in failed:
        click.echo(f"不通过 {r['case_no']}：{r['text']}")
    for gap in gaps:
        click.echo(f"不通过 {gap}")
    click.echo(f"共核验 {len(numbers)} 件，通过 {len(numbers) - len(failed)} 件，不通过 {len(failed)} 件"
               + (f"；编号与日历问题 {len(gaps)} 处" if gaps else "") +
               f"；用时 {elapsed:.1f} 秒（{len(numbers) / elapsed if elapsed else 0:.1f} 件/秒）")
    sys.exit(1 if failed or gaps else 0)


@audit.command("repair", help="按事件记录修复办件：事件链完整、仅存储的状态或待办与重放不符的办件，以重放结果重建其状态、"
                                "待办、时限与定时器，并记入“状态修复”事件；事件链不完整的拒绝修复并说明原因。")
@click.argument("case_nos", nargs=-1)
@click.option("--all", "all_cases", is_flag=True, help="检查全部办件，修复核验不通过的")
@click.option("--dry-run", is_flag=True, help="只报告哪些办件可以修复，不做更改")
@click.option("--reason", default="按事件记录重放修复（多进程部署下多实例结果未合并造成的状态不一致）", show_default=True,
              help="修复原因，记入办件事件")
def audit_repair(case_nos: tuple[str, ...], all_cases: bool, dry_run: bool, reason: str) -> None:
    import getpass
    service = open_service()
    counts = {"repaired": 0, "would_repair": 0, "intact": 0, "refused": 0, "missing": 0}
    try:
        numbers = service.audit_case_numbers() if all_cases else list(case_nos)
        if not numbers:
            click.echo("请给出办件编号，或使用 --all", err=True)
            sys.exit(2)
        by = f"{getpass.getuser()}（命令行）"
        for no in numbers:
            if all_cases and service.audit_case(no)["ok"]:
                counts["intact"] += 1
                continue
            result = service.repair_case(no, dry_run=dry_run, by=by, reason=reason)
            counts[result["result"]] += 1
            click.echo(f"{result['case_no'] or no}：{result['text']}")
    finally:
        service.db.dispose()
    done = f"可修复 {counts['would_repair']} 件（未做更改）" if dry_run else f"已修复 {counts['repaired']} 件"
    click.echo(f"共检查 {len(numbers)} 件：{done}，完整 {counts['intact']} 件，不能修复 {counts['refused']} 件，"
               f"不存在 {counts['missing']} 件")
    sys.exit(1 if counts["refused"] or counts["missing"] else 0)


@audit.command("export", help="导出办件档案（事件、数据、单据、流程版本）为一个 JSON 文件，可在别处用 verify --file 核验。")
@click.argument("case_no")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False))
@click.option("--with-files", is_flag=True,
              help="连同材料文件导出为一个压缩包（dossier.json 与 files/<哈希>），verify --file 逐个核对")
def audit_export(case_no: str, output: str, with_files: bool) -> None:
    import json
    service = open_service()
    try:
        data = service.export_dossier(None, case_no)
    finally:
        service.db.dispose()
    if with_files:
        from .dossier_files import write_zip
        try:
            count = write_zip(data, service.file_store, output)
        except ValueError as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        click.echo(f"已导出 {case_no} 到 {output}（{len(data['events'])} 条事件，{count} 个材料文件）")
        return
    with open(output, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False)
    click.echo(f"已导出 {case_no} 到 {output}（{len(data['events'])} 条事件）")


def _add_db_commands() -> None:
    from .cli_db import db
    cli.add_command(db)


_add_db_commands()
cli_digests.register(audit, open_service)
cli_users.register(cli, open_service)
cli_calendar.register(cli, open_service)
cli_files.register(cli, open_service)


cli_zh.install()


def main() -> None:
    cli_zh.localize(cli)
    cli()
