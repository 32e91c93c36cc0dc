"""Turn an HTML form post into the JSON a form's schema describes (types only; the engine validates)."""
from __future__ import annotations

import json
import math
import re

from werkzeug.datastructures import MultiDict

CONFIRM_FIELD = "confirmed_step"   # the 确定 button of a page's confirmation box (web/templates/_confirm.html)


def from_html(schema: dict, form: MultiDict) -> dict:
    out: dict = {}
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type")
        if kind == "array":
            values = [v for v in form.getlist(name) if v != ""]
            if values or name in form:
                out[name] = values
            continue
        if kind == "boolean":
            raw = form.get(name)
            if raw is not None:
                out[name] = raw in ("true", "on", "1", "是")
            continue
        raw = form.get(name)
        if raw is None or raw.strip() == "":
            continue
        raw = raw.strip() if kind != "string" or prop.get("x-widget") != "textarea" else raw
        if kind in ("number", "integer"):
            out[name] = _number(raw)
            continue
        out[name] = raw
    # fields the schema does not know are passed on, so the engine can refuse them
    for name in form:
        if name not in out and name not in schema.get("properties", {}) and name not in ("csrf_token", "unit_id", CONFIRM_FIELD):
            out[name] = form.get(name)
    return out


def _number(raw: str):
    """``5000`` stays an int, ``12.5`` a float; anything else is left as text for the schema to refuse."""
    if raw.isascii():
        try:
            return int(raw)
        except ValueError:
            pass
        try:
            value = float(raw)
        except ValueError:
            return raw
        return value if math.isfinite(value) else raw
    return raw


def parse_int(raw: str | None) -> int | None:
    """A positive decimal number from a URL or form (ASCII digits only), else None."""
    if raw and raw.isascii() and raw.isdigit() and len(raw) <= 15:
        return int(raw)
    return None


MAX_JSON_DEPTH = 16
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json_body(raw: bytes, allowed: frozenset[str] | None = None) -> dict:
    """A JSON request body as a dict, refusing before it is parsed what would make the parser recurse too deep
    (more than ``MAX_JSON_DEPTH`` nested arrays/objects), then anything that is not a JSON object of valid Unicode
    text (no lone surrogate escapes), then top-level fields outside ``allowed``. Raises ``ValueError`` with a
    Chinese message."""
    depth = 0
    for m in _BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"请求体嵌套超过 {MAX_JSON_DEPTH} 层")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValueError("请求体不是有效的 JSON") from None
    if not isinstance(body, dict):
        raise ValueError("请求体应为 JSON 对象")
    if _has_surrogate(body):
        raise ValueError("请求中含有无效的字符（不成对的 Unicode 代理项），请检查后重新提交")
    if allowed is not None:
        unknown = sorted(k for k in body if k not in allowed)
        if unknown:
            raise ValueError(f"请求中有不允许的字段：{'、'.join(unknown)[:200]}（允许的字段：{'、'.join(sorted(allowed))}）")
    return body


def _has_surrogate(value) -> bool:
    if isinstance(value, str):
        return bool(_SURROGATE.search(value))
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    return False
