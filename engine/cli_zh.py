"""The command line in Chinese: click's own words (Usage, Options, Error: Missing argument …) and the placeholders of
the usage lines ([OPTIONS], COMMAND, DAY …), so that an operator reads no English when a command is misused.

click (8.x) passes every text of its own through ``gettext``/``ngettext`` imported into each of its modules; this
module replaces those two names there with a lookup in the table below (a text not in it is shown as click has it).
:func:`localize` then gives every command of a group Chinese placeholders.
"""
from __future__ import annotations

import importlib

import click

TEXTS = {
    "Usage:": "用法：",
    "Options": "选项",
    "Commands": "命令",
    "Show this message and exit.": "显示本帮助并退出。",
    "Show the version and exit.": "显示版本并退出。",
    "Error: {message}": "错误：{message}",
    "Try '{command} {option}' for help.": "用 “{command} {option}” 查看帮助。",
    "Missing argument": "缺少参数",
    "Missing option": "缺少选项",
    "Missing parameter": "缺少参数",
    "Missing parameter: {param_name}": "缺少参数：{param_name}",
    "Missing {param_type}": "缺少{param_type}",
    "Missing command.": "缺少命令。",
    "No such command {name!r}.": "没有命令 {name!r}。",
    "No such option {name!r}.": "没有选项 {name!r}。",
    "No such option: {name}": "没有选项：{name}",
    "Invalid value for {param_hint}: {message}": "{param_hint} 的值不正确：{message}",
    "Invalid value: {message}": "值不正确：{message}",
    "Option {name!r} does not take a value.": "选项 {name!r} 不带值。",
    "Argument {name!r} takes {nargs} values.": "参数 {name!r} 需要 {nargs} 个值。",
    "{value!r} is not a valid {number_type}.": "{value!r} 不是有效的数字。",
    "{value} is not in the range {range}.": "{value} 不在 {range} 范围内。",
    "{value!r} is not a valid UUID.": "{value!r} 不是有效的编号。",
    "{name} {filename!r} does not exist.": "{name} {filename!r} 不存在。",
    "{name} {filename!r} is a directory.": "{name} {filename!r} 是目录。",
    "{name} {filename!r} is a file.": "{name} {filename!r} 是文件。",
    "{name} {filename!r} is not readable.": "{name} {filename!r} 不可读。",
    "{name} {filename!r} is not writable.": "{name} {filename!r} 不可写。",
    "{name} {filename!r} is not executable.": "{name} {filename!r} 不可执行。",
    "Could not open file {filename!r}: {message}": "无法打开文件 {filename!r}：{message}",
    "Choose from:\n\t{choices}": "可选：\n\t{choices}",
    "default: {default}": "默认：{default}",
    "env var: {var}": "环境变量：{var}",
    "required": "必填",
    "(dynamic)": "（动态）",
    "deprecated": "已弃用",
    "file": "文件",
    "path": "路径",
    "directory": "目录",
    "Aborted!": "已中止！",
    "Repeat for confirmation": "再输入一次以确认",
    "Error: The two entered values do not match.": "错误：两次输入不一致。",
    "Error: invalid input": "错误：输入不正确",
    "Do you want to continue?": "是否继续？",
    "Press any key to continue...": "按任意键继续……",
    "Value must be an iterable.": "值必须是一组值。",
    "unknown error": "未知错误",
}

PLURALS = {
    "Got unexpected extra argument ({args})": "多余的参数（{args}）",
    "Did you mean {possibility}?": "是否想输入 {possibility}？",
    "Option {name!r} requires an argument.": "选项 {name!r} 需要一个值。",
    "Takes {nargs} values but 1 was given.": "需要 {nargs} 个值，只给了 {len} 个。",
}

# the placeholders of the usage lines: argument names of this project's commands
METAVARS = {"case_no": "办件编号", "case_nos": "办件编号…", "code": "代码", "day": "日期", "day1": "日期1",
            "day2": "日期2", "kind": "种类", "login": "登录名", "n": "天数", "name": "名称", "new": "新版本",
            "old": "旧版本", "path": "文件", "paths": "路径…"}

_MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "types", "termui", "utils")


def _gettext(text: str) -> str:
    return TEXTS.get(text, text)


def _ngettext(singular: str, plural: str, n: int) -> str:
    if singular in PLURALS:
        return PLURALS[singular]
    return singular if n == 1 else plural


def install() -> None:
    """Put the table in place of gettext/ngettext in click's modules (idempotent)."""
    for name in _MODULES:
        module = importlib.import_module(f"click.{name}")
        if hasattr(module, "_"):
            module._ = _gettext
        if hasattr(module, "ngettext"):
            module.ngettext = _ngettext


def _type_metavar(param: click.Parameter) -> str | None:
    t = param.type
    if isinstance(t, click.Path):
        return "目录" if not t.file_okay else ("文件" if not t.dir_okay else "路径")
    if isinstance(t, click.types.IntParamType):
        return "整数"
    if isinstance(t, click.types.FloatParamType):
        return "数字"
    if isinstance(t, click.Choice):
        return None                      # click shows the choices themselves
    return "文本"


def localize(command: click.Command) -> None:
    """Chinese placeholders for ``command`` and every command below it: [选项], 命令 [参数]…, argument names, and the
    kind of value an option takes (文本, 整数, 文件 …) instead of TEXT, INTEGER, FILE."""
    command.options_metavar = "[选项]"
    for param in command.params:
        if param.metavar is not None:
            continue
        if isinstance(param, click.Argument):
            param.metavar = METAVARS.get(param.name or "") or _type_metavar(param)
        elif isinstance(param, click.Option) and not param.is_flag and not param.count:
            param.metavar = _type_metavar(param)
    if isinstance(command, click.Group):
        command.subcommand_metavar = "命令 [参数]…"
        for sub in command.commands.values():
            localize(sub)
