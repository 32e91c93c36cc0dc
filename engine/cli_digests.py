"""``bangban audit keygen / digest / proof`` and ``audit verify --digest``: anchored digests on the command line.

Registered on the ``audit`` group by :mod:`engine.cli` (``register``), so this module never imports it back.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .config import Settings
from .digests import DigestError, describe, load_private_key, load_public_key


def _public_key(public_key_file: str | None):
    """The key that checks heads: ``--public-key`` (a public or private key file), else the configured private key."""
    settings = Settings.from_env()
    if public_key_file:
        return load_public_key(public_key_file)
    if settings.digest_key is None:
        raise DigestError("请用 --public-key 给出存证公钥文件，或设置 BANGBAN_DIGEST_KEY")
    return load_private_key(settings.digest_key).public_key()


def _fail(message: str, code: int = 2):
    click.echo(message, err=True)
    sys.exit(code)


def verify_digest(open_service, digest_file: str, public_key_file: str | None) -> None:
    """``bangban audit verify --digest FILE``: exit 0 only if every head verifies and the database is consistent."""
    from .digests import read_heads
    try:
        key = _public_key(public_key_file)
        heads = read_heads(digest_file)
    except DigestError as exc:
        _fail(exc.message)
    from sqlalchemy.exc import SQLAlchemyError

    from .errors import BangbanError
    service = open_service()
    try:
        result = service.verify_digests(heads, key)
    except (BangbanError, SQLAlchemyError) as exc:     # e.g. the digest tables dropped
        cause = exc.__cause__ or exc
        click.echo(f"不通过 库中存证记录无法读取（存证表被删除或损坏？）：{str(getattr(cause, 'orig', None) or cause)[:200]}")
        sys.exit(1)
    finally:
        service.db.dispose()
    for line in result["notes"]:
        click.echo(line)
    for line in result["failures"]:
        click.echo(f"不通过 {line}")
    verdict = "通过" if result["ok"] else "不通过"
    click.echo(f"存证核验{verdict}：{len(heads)} 份存证，库中 {result['leaves']} 条存证记录（当前根 {result['root'][:16]}…），"
               f"核对了存证范围内 {result['anchored']} 条记录、{result['cases']} 件办件；问题 {len(result['failures'])} 处")
    sys.exit(0 if result["ok"] else 1)


def register(audit: click.Group, open_service) -> None:
    @audit.command("keygen", help="生成存证签名密钥（Ed25519）：私钥写入给出的文件（权限 0600，不覆盖已有文件），公钥写入"
                                  "同名加 .pub 的文件并打印。把 BANGBAN_DIGEST_KEY 设为私钥文件；公钥另存于本机之外，用于核验。")
    @click.argument("path", type=click.Path(dir_okay=False))
    def audit_keygen(path: str) -> None:
        from .digests import generate_key
        try:
            public, kid = generate_key(Path(path))
        except (DigestError, OSError) as exc:
            _fail(getattr(exc, "message", None) or f"无法写入密钥文件 {path}：{exc}")
        click.echo(f"已生成存证签名密钥 {kid}：私钥 {path}（请设 BANGBAN_DIGEST_KEY={path}），公钥 {path}.pub", err=True)
        click.echo(public, nl=False)

    @audit.command("digest", help="生成一份存证：把每件办件事件链的最新哈希记入只追加的默克尔树，用存证密钥签名树根，"
                                  "存入数据库、追加到存证日志，并把签名的存证打印到标准输出（可另行保存到本机之外）。")
    @click.option("--log", "log_file", type=click.Path(dir_okay=False), default=None,
                  help="存证日志文件（默认 BANGBAN_DIGEST_LOG 或 var/digests.jsonl）")
    @click.option("--key", "key_file", type=click.Path(dir_okay=False), default=None,
                  help="签名私钥文件（默认 BANGBAN_DIGEST_KEY）")
    def audit_digest(log_file: str | None, key_file: str | None) -> None:
        import time
        settings = Settings.from_env()
        key_path = key_file or settings.digest_key
        if key_path is None:
            _fail("未配置存证签名密钥：请设置 BANGBAN_DIGEST_KEY（可用 bangban audit keygen 文件 生成）")
        try:
            key = load_private_key(key_path)
        except DigestError as exc:
            _fail(exc.message)
        service = open_service()
        started = time.monotonic()
        try:
            result = service.take_digest(key, Path(log_file) if log_file else settings.digest_log)
        except DigestError as exc:
            _fail(exc.message, 1)
        finally:
            service.db.dispose()
        for w in result["warnings"]:
            click.echo(f"注意 {w}", err=True)
        head = result["head"]
        click.echo(f"已生成{describe(head)}：本次新增 {result['new_leaves']} 条，根 {head['root'][:16]}…，密钥 {head['key']}；"
                   f"已追加到 {log_file or settings.digest_log}；用时 {time.monotonic() - started:.2f} 秒", err=True)
        click.echo(result["line"])

    @audit.command("proof", help="办件的包含证明：它在最近一次存证中的最新记录、位置、审计路径和签名的存证，并当场核验。")
    @click.argument("case_no")
    @click.option("--public-key", "public_key_file", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="存证公钥文件（默认由 BANGBAN_DIGEST_KEY 的私钥得出；都没有时不核验签名）")
    def audit_proof(case_no: str, public_key_file: str | None) -> None:
        from .errors import NotFound
        key = None
        try:
            if public_key_file or Settings.from_env().digest_key:
                key = _public_key(public_key_file)
        except DigestError as exc:
            _fail(exc.message)
        service = open_service()
        try:
            result = service.case_proof(case_no, key)
        except NotFound as exc:
            _fail(exc.message, 1)
        finally:
            service.db.dispose()
        if "index" in result:
            click.echo(f"办件 {result['case_no']}：事件 #{result['seq']}（哈希 {result['head_hash']}）")
            click.echo(f"存证编号 {result['reference']}：第 {result['index']} 条记录，{describe(result['head'])}")
            click.echo("审计路径（自叶向根）：")
            for p in result["path"]:
                click.echo(f"  {p}")
            click.echo("签名的存证：")
            click.echo(json.dumps(result["head"], ensure_ascii=False))
        click.echo(("" if result["ok"] else "不通过 ") + result["text"] + ("" if key else "（未给公钥，未核验签名）"))
        sys.exit(0 if result["ok"] else 1)
