"""Why a condition, script or expression does not compile, in Chinese, with the line and the offending text.

:func:`engine.sandbox.check` returns RestrictedPython's text, e.g. ``Line 1: SyntaxError: invalid syntax at
statement: 'x ==='`` (several joined by 「；」). :func:`explain_check` turns each into a Chinese message and keeps
the English core as a detail; the policy messages the sandbox already words in Chinese pass through.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Callable

from .chinese import clean_detail, one_line

_LINE = re.compile(r"^Line (?P<line>\d+|None): (?P<body>.*)$", re.DOTALL)
_ERROR = re.compile(r"^(?P<kind>SyntaxError|IndentationError|TabError): (?P<text>.*?)(?: at statement: (?P<stmt>.*))?$",
                    re.DOTALL)
_TARGETS = {"function call": "函数调用", "literal": "常量", "expression": "表达式", "comparison": "比较",
            "attribute": "属性", "subscript": "下标", "conditional expression": "条件表达式", "True": "True",
            "False": "False", "lambda": "lambda", "f-string expression": "f-string", "await expression": "await",
            "named expression": "赋值表达式", "keyword": "关键字", "ellipsis": "省略号", "tuple": "元组",
            "list": "列表", "set display": "集合", "dict literal": "字典", "generator expression": "生成器表达式"}
_EQUALS_HINT = "（比较是否相等须写 ==，单个 = 是赋值）"
Rule = tuple[str, Callable[[re.Match], str]]
_SYNTAX: tuple[Rule, ...] = (
    (r"invalid syntax\. Perhaps you forgot a comma\?", lambda m: "语法无效，可能少了逗号"),
    (r"invalid syntax\. Maybe you meant '==' or ':=' instead of '='\?", lambda m: f"语法无效{_EQUALS_HINT}"),
    (r"expression cannot contain assignment", lambda m: f"表达式中不能赋值{_EQUALS_HINT}"),
    (r"cannot assign to (.+?)(?: here)?(?:\. Maybe you meant '==' instead of '='\?)?$",
     lambda m: f"不能给{_TARGETS.get(m[1], m[1])}赋值{_EQUALS_HINT}"),
    (r"cannot delete (.+)$", lambda m: f"不能删除{_TARGETS.get(m[1], m[1])}"),
    (r"invalid syntax", lambda m: "语法无效"),
    (r"'(.)' was never closed", lambda m: f"括号「{m[1]}」没有闭合"),
    (r"unmatched '(.)'", lambda m: f"多了一个「{m[1]}」，没有与之配对的左括号"),
    (r"closing parenthesis '(.)' does not match opening parenthesis '(.)'",
     lambda m: f"右括号「{m[1]}」与左括号「{m[2]}」不配对"),
    (r"unterminated triple-quoted string literal", lambda m: "三引号字符串没有结束"),
    (r"(?:unterminated string literal|EOL while scanning string literal)", lambda m: "字符串缺少结尾的引号"),
    (r"unexpected indent", lambda m: "多了缩进（这一行不应缩进）"),
    (r"unindent does not match any outer indentation level", lambda m: "缩进与上面各行对不齐"),
    (r"expected an indented block(?: after '?(\w+)'? statement on line (\d+))?",
     lambda m: f"{m[1]} 语句（第 {m[2]} 行）之后缺少缩进的语句块" if m[1] else "缺少缩进的语句块"),
    (r"inconsistent use of tabs and spaces", lambda m: "缩进混用了制表符和空格"),
    (r"expected ':'", lambda m: "缺少冒号「:」"),
    (r"invalid character '(.)' \((U\+[0-9A-F]+)\)", lambda m: f"含有不允许的字符「{m[1]}」（{m[2]}）{_punct_hint(m[1])}"),
    (r"invalid non-printable character (U\+[0-9A-F]+)", lambda m: f"含有不可见的字符 {m[1]}（常见于从网页或文档复制的空格）"),
    (r"(?:unexpected EOF while parsing|incomplete input)", lambda m: "表达式不完整（意外结束）"),
    (r"invalid decimal literal", lambda m: "数字写法无效（数字后面紧跟了字母，或变量名以数字开头）"),
    (r"invalid (?:hexadecimal|octal|binary|imaginary) literal", lambda m: "数字写法无效"),
    (r"leading zeros in decimal integer literals are not permitted", lambda m: "整数不能以 0 开头"),
    (r"unexpected character after line continuation character", lambda m: "续行符「\\」后面不能再有字符"),
    (r"f-string", lambda m: "f-string（格式化字符串）写法有误"),
    (r"Missing parentheses in call to '(\w+)'", lambda m: f"调用 {m[1]} 缺少括号"),
    (r"'(\w+)' outside (function|loop)", lambda m: f"{m[1]} 只能写在{'函数' if m[2] == 'function' else '循环'}中"),
    (r"positional argument follows keyword argument", lambda m: "位置参数不能写在关键字参数之后"),
    (r"keyword argument repeated: (\w+)", lambda m: f"关键字参数 {m[1]} 重复"),
    (r"iterable unpacking cannot be used in comprehension", lambda m: "推导式中不能使用 * 解包"),
    (r"expected 'except' or 'finally' block", lambda m: "try 后面缺少 except 或 finally"),
    (r"(?:invalid|bad) escape sequence", lambda m: "字符串中的反斜杠转义无效"),
    (r"too many (?:statically )?nested", lambda m: "嵌套层数过多"),
)
_POLICY: tuple[Rule, ...] = (
    (r"\"([^\"]+)\" is an invalid (?:variable|attribute) name because it starts with \"_\"",
     lambda m: f"「{m[1]}」以下划线开头，不允许使用"),
    (r"\"([^\"]+)\" is an invalid (?:variable|attribute) name because it ends with \"__roles__\"",
     lambda m: f"「{m[1]}」以 __roles__ 结尾，不允许使用"),
    (r"\"([^\"]+)\" 是以下划线开头的(属性|名字)，不允许(?:访问|使用)", lambda m: f"「{m[1]}」以下划线开头，不允许使用"),
    (r"\"([^\"]+)\" is a reserved name", lambda m: f"「{m[1]}」是保留名字，不允许使用"),
    (r"\"([^\"]+)\" is a restricted name", lambda m: f"「{m[1]}」是受限名字，不允许使用"),
    (r"(Exec|Eval) calls are not allowed", lambda m: f"不允许调用 {m[1].lower()}"),
    (r"Augmented assignment of attributes is not allowed", lambda m: "不允许对属性使用 +=、-= 等复合赋值，请写成普通赋值"),
    (r"Augmented assignment of object items and slices is not allowed",
     lambda m: "不允许对下标或切片使用 +=、-= 等复合赋值，请写成普通赋值"),
    (r"Unpacking in comprehensions is not allowed", lambda m: "推导式中不允许解包"),
    (r"\"\*\" imports are not allowed|Lazy import statements are not allowed", lambda m: "不允许导入模块（import）"),
    (r"The keyword argument \"metaclass\" is not allowed", lambda m: "不允许使用 metaclass"),
    (r"(\w+) statements are not allowed", lambda m: f"不允许使用{_STATEMENTS.get(m[1], ' ' + m[1] + ' ')}语句"),
    (r"(\w+) statement is not known to RestrictedPython", lambda m: f"不支持 {m[1]} 语句"),
)
_STATEMENTS = {"AnnAssign": "带类型注解的赋值（如 a: b = c）", "AsyncFunctionDef": "异步函数", "AsyncFor": "异步 for ",
               "AsyncWith": "异步 with ", "Await": " await ", "TryStar": " try/except* ", "Match": " match ",
               "TypeAlias": " type ", "Nonlocal": " nonlocal "}
_FULLWIDTH = "，。：；（）【】“”‘’！？、《》＝＋－"


def _punct_hint(char: str) -> str:
    return "，中文标点须改成英文标点" if char in _FULLWIDTH else ""


def _statement(raw: str | None) -> str:
    """The offending statement RestrictedPython quotes (a Python repr), as plain one-line text."""
    if not raw:
        return ""
    try:
        text = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        text = raw.strip().strip("'\"")
    return one_line(text)[:80] if isinstance(text, str) else ""


def _lone_equals(statement: str) -> bool:
    return re.search(r"(?<![=!<>:+\-*/%&|^])=(?!=)", statement) is not None


def _first(rules: tuple[Rule, ...], text: str) -> str | None:
    for pattern, zh in rules:
        m = re.search(pattern, text)
        if m:
            return zh(m)
    return None


def _explain_one(part: str) -> tuple[str, str | None]:
    """One ``Line N: ...`` part of :func:`engine.sandbox.check`'s text → (Chinese, English detail or None)."""
    head = _LINE.match(part.strip())
    line, body = (head.group("line"), head.group("body")) if head else (None, part.strip())
    at = f"第 {line} 行" if line and line != "None" else ""
    error = _ERROR.match(body)
    if error:
        text, stmt = error.group("text").strip(), _statement(error.group("stmt"))
        zh = _first(_SYNTAX, text) or "语法错误"
        if zh == "语法无效" and _lone_equals(stmt):
            zh += _EQUALS_HINT
        where = f"「{stmt}」" if stmt else ""
        lead = f"{at}语法错误" if at else "语法错误"
        return f"{lead}：{zh}{'；出错处：' + where if where else ''}", clean_detail(f"{error.group('kind')}: {text}")
    zh = _first(_POLICY, body.rstrip("."))
    if zh:
        return (f"{at}：{zh}" if at else zh), (None if _has_cjk(body) else clean_detail(body))
    if _has_cjk(body):
        return (f"{at}：{body.rstrip('.')}" if at else body.rstrip(".")), None
    return (f"{at}：不允许的写法" if at else "不允许的写法"), clean_detail(body)


def _has_cjk(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def explain_check(text: str) -> tuple[str, str | None]:
    """One string of :func:`engine.sandbox.check` (several errors joined by 「；」) → (Chinese, English detail)."""
    text = text.removeprefix("语法错误：")
    parts = [p for p in re.split(r"；(?=Line \w+: )", text) if p.strip()]
    explained = [_explain_one(p) for p in parts] or [("不允许的写法", None)]
    unique = list(dict.fromkeys(zh for zh, _ in explained))
    details = [d for _, d in explained if d]
    return "；".join(unique), ("；".join(dict.fromkeys(details)) or None)
