"""The command line speaks Chinese: click's own words and the usage placeholders, in help and in errors."""
from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from engine import cli_zh
from web.cli import cli

ENGLISH = re.compile(r"\b(Usage|Options|Commands|Error|Missing|Show|Try|help for|TEXT|INTEGER|FILE|PATH|OPTIONS|"
                     r"COMMAND|ARGS|not a valid|No such|Invalid|argument|option)\b")


@pytest.fixture(scope="module")
def runner():
    cli_zh.localize(cli)
    return CliRunner()


def _all_commands(group: click.Group, prefix: list[str]):
    for name, cmd in sorted(group.commands.items()):
        yield [*prefix, name]
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, [*prefix, name])


def test_every_help_page_is_chinese(runner):
    pages = [[], *list(_all_commands(cli, []))]
    assert len(pages) > 30
    for args in pages:
        out = runner.invoke(cli, [*args, "--help"]).output
        assert "用法：" in out and "显示本帮助并退出" in out, (args, out)
        leftover = [m for m in ENGLISH.findall(out) if m not in ("help",)]
        assert leftover == [], (args, leftover, out)


@pytest.mark.parametrize(("args", "words"), [
    (["calendar", "add-workdays"], "缺少参数 '日期'"),
    (["nosuch"], "没有命令 'nosuch'"),
    (["serve", "--port", "abc"], "'abc' 不是有效的数字"),
    (["calendar", "add-workdays", "2026-12-01", "3", "4"], "多余的参数"),
    (["audit", "verify", "--nosuch"], "没有选项"),
])
def test_misuse_is_told_in_chinese(runner, args, words):
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert words in result.output and "错误：" in result.output, result.output
    assert ENGLISH.findall(result.output) == [], result.output
