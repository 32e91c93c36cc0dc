"""Task forms: JSON Schema files from ``processes/forms``, validated and filled generically.

Extensions a form may use (all optional):
- ``x-options``: where the choices of a field come from: ``catalogue_items`` (service items) or
  ``users:<role>`` (active users holding a role). They are turned into a plain ``enum`` before validation.
- ``x-widget``: a hint for the renderer (``textarea``, ``radio``, ``select``, ``checkboxes``).
- ``x-sections``: groups of fields with a heading.
- ``x-case-var``: the field's value is also kept as a case-level variable (see ``runtime``).
- ``x-document`` (form level): what the document the task issues names besides its fields: ``rated`` (``lead``: the
  case's lead officer; ``title``: the task's title; else the text itself) and ``date_field`` (the case variable holding
  the date the service was completed); the signer is always the logged-in actor.
- ``x-files`` (form level): the task's page shows the case's materials (issue 17) with their files, to upload and
  preview: ``item`` (the service item in the task's ``item`` variable) or ``case`` (every item of the case); after an
  application whose form has it, the applicant is taken to the case's materials to attach them.
- ``x-files-extra`` (form level): files a task adds to each service item besides the catalogue's required materials
  (e.g. the department's 批文/证照扫描件 at 部门办理); listed with the item's materials, never counted as missing.
- ``x-materials-complete`` (form level, with ``x-files``): the task cannot be completed while a required material of
  the items it shows is neither uploaded, nor received on paper, nor marked not applicable with a reason (材料交接).
- ``x-date`` (on a ``format: date`` field): ``not_past`` (today or later, e.g. a 补正 deadline) or ``not_future``
  (today or earlier), today by the service clock in China's time zone.
"""
from __future__ import annotations

import copy
import json
import math
import re
import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from . import caches
from .clock import service_today
from .errors import InvalidInput, TooLarge

MAX_FORM_FIELDS = 200
MAX_FORM_BYTES = 64 * 1024    # a form's data as UTF-8 JSON: Chinese and Latin text count alike, by bytes
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TYPE_NAMES = {"string": "文本", "number": "数字", "integer": "整数", "boolean": "是/否", "array": "列表", "object": "对象"}
_DATE_RULES = {"not_past": "不能早于今天", "not_future": "不能晚于今天"}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_FORMAT_NAMES = {"date": "日期（YYYY-MM-DD）", "date-time": "日期时间", "email": "电子邮箱"}

OptionsProvider = Callable[[str], list[dict] | None]
"""Given an ``x-options`` source, return ``[{"value": ..., "label": ..., "group": ...}]`` (None: leave it)."""


def check_schema(schema: Any) -> list[str]:
    """Problems that make a form file unusable (empty when it is fine)."""
    problems: list[str] = []
    if not isinstance(schema, dict):
        return ["表单不是 JSON 对象"]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        problems.append(f"不是有效的 JSON Schema：{exc.message}")
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        problems.append("表单的根须为 type=object 并带 properties")
    elif len(schema["properties"]) > MAX_FORM_FIELDS:
        problems.append(f"表单字段超过 {MAX_FORM_FIELDS} 个")
    doc = schema.get("x-document")
    if doc is not None and (not isinstance(doc, dict) or set(doc) - {"rated", "date_field"}
                            or not all(isinstance(v, str) and v for v in doc.values())):
        problems.append("x-document 应为对象，只含 rated（lead、title 或被评价对象名称）与 date_field（完成日期字段）两项文字")
    extra = schema.get("x-files-extra")
    if extra is not None and (not isinstance(extra, list) or not all(isinstance(x, str) and 0 < len(x) <= 100
                                                                      for x in extra)):
        problems.append("x-files-extra 应为材料名称的列表（每项 1–100 个字）")
    if schema.get("x-files") not in (None, "item", "case"):
        problems.append("x-files 取值应为 item（待办所办的服务事项的材料）或 case（办件全部服务事项的材料）")
    for name, prop in (schema.get("properties") or {}).items() if isinstance(schema.get("properties"), dict) else ():
        rule = prop.get("x-date") if isinstance(prop, dict) else None
        if rule is not None and (rule not in _DATE_RULES or prop.get("format") != "date"):
            problems.append(f"字段「{prop.get('title') or name}」的 x-date 只能用于 format 为 date 的字段，取值为 "
                            "not_past（不早于今天）或 not_future（不晚于今天）")
    return problems


def resolve(schema: dict, options: OptionsProvider) -> dict:
    """A copy of ``schema`` whose ``x-options`` fields carry their choices (``enum`` and ``x-choices``); a source
    for which ``options`` gives None is left as it is."""
    out = copy.deepcopy(schema)
    for prop in (out.get("properties") or {}).values():
        source = prop.get("x-options") if isinstance(prop, dict) else None
        if not source:
            continue
        choices = options(source)
        if choices is None:
            continue
        prop["x-choices"] = choices
        values = [c["value"] for c in choices]
        if prop.get("type") == "array":
            prop.setdefault("items", {})["enum"] = values
        else:
            prop["enum"] = values
    return out


def has_directory_options(schema: dict) -> bool:
    """Whether some field's choices come from the user directory (and so may change at any time)."""
    return any(str(p.get("x-options", "")).startswith("users:") for p in schema.get("properties", {}).values())


_validators: dict[int, tuple[dict, Draft202012Validator]] = {}
caches.register(_validators.clear)


def _validator(schema: dict) -> Draft202012Validator:
    hit = _validators.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    if len(_validators) > 1000:
        _validators.clear()
    _validators[id(schema)] = (schema, validator)
    return validator


def field_title(schema: dict, name: str) -> str:
    return schema.get("properties", {}).get(name, {}).get("title", name)


def _message(error, schema: dict) -> tuple[str, str]:
    path = [p for p in error.absolute_path]
    field = str(path[0]) if path else ""
    v = error.validator
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        field = missing
        return field, f"「{field_title(schema, missing)}」为必填项"
    if v == "additionalProperties":
        extras = sorted(set(error.instance) - set(schema.get("properties", {})))
        return ",".join(extras), f"表单中有不允许的字段：{'、'.join(extras)}"
    title = field_title(schema, field) if field else "表单"
    val = error.validator_value
    if v == "type":
        names = val if isinstance(val, list) else [val]
        return field, f"「{title}」应为{'或'.join(_TYPE_NAMES.get(n, n) for n in names)}"
    if v == "maxLength":
        return field, f"「{title}」不能超过 {val} 个字"
    if v == "minLength":
        return field, f"「{title}」不能少于 {val} 个字"
    if v == "pattern":
        return field, f"「{title}」格式不正确"
    if v == "format":
        return field, f"「{title}」应为{_FORMAT_NAMES.get(val, val)}"
    if v == "enum":
        return field, f"「{title}」的取值不在可选范围内"
    if v == "const":
        return field, f"请确认「{title}」"
    if v == "minimum":
        return field, f"「{title}」不能小于 {val}"
    if v == "maximum":
        return field, f"「{title}」不能大于 {val}"
    if v == "minItems":
        return field, f"「{title}」至少选择 {val} 项"
    if v == "maxItems":
        return field, f"「{title}」最多选择 {val} 项"
    if v == "uniqueItems":
        return field, f"「{title}」有重复的选项"
    return field, f"「{title}」填写有误"


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: Any, depth: int = 0) -> Any:
    """Submitted data with every text valid Unicode in NFC (the form stored and hashed is the composed one).
    A lone surrogate (possible in JSON as an escape, never valid text) is refused, in keys as in values."""
    if depth > 32:
        raise InvalidInput("提交的内容嵌套层数过多")
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise InvalidInput("提交的文本中含有无效的字符（不成对的 Unicode 代理项），请检查后重新输入")
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [clean_text(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {clean_text(k, depth + 1): clean_text(v, depth + 1) for k, v in value.items()}
    return value


_CONTROL_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_ANY = re.compile(r"[\x00-\x1f\x7f]")


def plain_text(value: Any, what: str, limit: int, multiline: bool = False) -> str:
    """A short text a user typed outside a form (a calendar day's name, a publication comment): valid Unicode in
    NFC, no control characters (line breaks only where ``multiline``), at most ``limit`` characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{what}应为文本")
    value = clean_text(value).strip()
    if (_CONTROL_LINES if multiline else _CONTROL_ANY).search(value):
        raise InvalidInput(f"{what}含有不允许的控制字符")
    if len(value) > limit:
        raise InvalidInput(f"{what}不能超过 {limit} 个字")
    return value


def _date_rules(schema: dict, cleaned: dict, problems: dict[str, str]) -> None:
    """``x-date``: a date that may not lie before (``not_past``) or after (``not_future``) today."""
    today = None
    for name, prop in schema.get("properties", {}).items():
        rule = prop.get("x-date") if isinstance(prop, dict) else None
        value = cleaned.get(name)
        if rule not in _DATE_RULES or name in problems or not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
            continue
        try:
            day = date.fromisoformat(value)
        except ValueError:
            continue
        today = today or service_today()
        if (rule == "not_past" and day < today) or (rule == "not_future" and day > today):
            problems[name] = (f"「{field_title(schema, name)}」{_DATE_RULES[rule]}"
                              f"（今天是{today.year}年{today.month}月{today.day}日）")


def validate(schema: dict, data: Any) -> dict:
    """Validate submitted data against a resolved schema.

    Returns the data with every declared field present (``None`` where not given), so that gateway
    conditions and scripts can always name a field. Raises :class:`InvalidInput` listing every problem.
    """
    if not isinstance(data, dict):
        raise InvalidInput("提交的内容应为表单对象")
    data = clean_text(data)
    size = len(json.dumps(data, ensure_ascii=False, default=str).encode("utf-8"))
    if size > MAX_FORM_BYTES:
        raise TooLarge(f"表单内容过大（{size // 1024} KB），上限为 {MAX_FORM_BYTES // 1024} KB")
    # Empty strings from HTML forms mean "not given".
    cleaned = {k: v for k, v in data.items() if not (isinstance(v, str) and v.strip() == "")}
    validator = _validator(schema)
    problems: dict[str, str] = {}
    for name, value in cleaned.items():
        if isinstance(value, float) and not math.isfinite(value):
            problems[name] = f"「{field_title(schema, name)}」应为有效数字"
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and _CONTROL.search(t) for t in texts):
            problems[name] = f"「{field_title(schema, name)}」含有不允许的控制字符"
    for err in sorted(validator.iter_errors(cleaned), key=lambda e: list(e.absolute_path)):
        if err.validator in ("if", "allOf", "then"):
            continue
        field, msg = _message(err, schema)
        problems.setdefault(field or "_form", msg)
    _date_rules(schema, cleaned, problems)
    if problems:
        raise InvalidInput("表单填写有误：" + "；".join(problems.values()), details=problems)
    out = {name: None for name in schema.get("properties", {})}
    out.update(cleaned)
    return out
