"""A form file that is not a valid JSON Schema, told in Chinese with the JSON path and the line of the file.

jsonschema says ``'objekt' is not valid under any of the given schemas``; :func:`schema_problem` says
「properties.a.type 的值「objekt」不是允许的取值（type 可取 string、number、…）」 and finds the line.
"""
from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from .chinese import clean_detail, one_line

_JSON_TYPES = {"string": "字符串", "number": "数字", "integer": "整数", "boolean": "布尔值", "array": "数组（列表）",
               "object": "对象", "null": "null"}
_SIMPLE_TYPES = "string、number、integer、boolean、array、object、null"


def json_path(path: list[Any]) -> str:
    """``['fields', 2, 'type']`` → ``fields[2].type`` (the root is 「根」)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "根"


def json_path_line(data: bytes | None, path: list[Any]) -> int | None:
    """The line of the last key of ``path`` in the JSON text, found key after key (an approximation: it does not
    parse, it follows the keys in order); None when not found."""
    if not data:
        return None
    at, found = 0, None
    for part in path:
        if isinstance(part, int):
            continue
        for needle in (json.dumps(part, ensure_ascii=False).encode(), json.dumps(part).encode()):
            hit = data.find(needle + b":", at)
            hit = hit if hit >= 0 else data.find(needle, at)
            if hit >= 0:
                at, found = hit, hit
                break
    return data.count(b"\n", 0, found) + 1 if found is not None else None


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    text = one_line(text)
    return f"「{text[:60]}{'…' if len(text) > 60 else ''}」"


def _explain(error) -> str:
    """One jsonschema meta-schema error in Chinese (without the path)."""
    kind, expected, value = error.validator, error.validator_value, error.instance
    key = error.absolute_path[-1] if error.absolute_path else None
    if kind in ("anyOf", "oneOf") and key == "type":
        return f"的值{_value(value)}不是合法的类型（可取：{_SIMPLE_TYPES}）"
    if kind in ("anyOf", "oneOf", "allOf"):
        return f"的值{_value(value)}不符合 JSON Schema 对这个位置的任何一种写法"
    if kind == "type":
        names = expected if isinstance(expected, list) else [expected]
        return f"应为{'或'.join(_JSON_TYPES.get(n, str(n)) for n in names)}，实际是{_value(value)}"
    if kind in ("minimum", "exclusiveMinimum"):
        return f"的值{_value(value)}过小（不能小于{'等于' if kind == 'exclusiveMinimum' else ''} {expected}）"
    if kind in ("maximum", "exclusiveMaximum"):
        return f"的值{_value(value)}过大（不能大于{'等于' if kind == 'exclusiveMaximum' else ''} {expected}）"
    if kind == "enum":
        return f"的值{_value(value)}不是允许的取值"
    if kind == "format" and expected == "regex":
        return f"的值{_value(value)}不是有效的正则表达式"
    if kind == "uniqueItems":
        return "中有重复的项"
    if kind == "minItems":
        return f"至少要有 {expected} 项"
    if kind == "required":
        return f"缺少必需的键（{'、'.join(map(str, expected))}）"
    return "不符合 JSON Schema 的写法"


def schema_problem(schema: Any, data: bytes | None = None) -> tuple[str, str, int | None] | None:
    """Why ``schema`` is not a valid JSON Schema (draft 2020-12): (Chinese, jsonschema's text, line), or None."""
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    error = best_match(meta.iter_errors(schema))
    if error is None:
        return None
    path = list(error.absolute_path)
    message = f"不是有效的 JSON Schema：{json_path(path)} {_explain(error)}"
    return message, clean_detail(error.message), json_path_line(data, path)
