"""The context a BPMN file is checked against: the manifest, catalogue and forms of its process set."""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any

from .. import caches, processes
from .. import forms as form_rules
from .chinese import exception_detail, explain_exception, json_message
from .common import Problem, _as_dict, _json_line, _line_of
from .schemas import schema_problem

# ---- the context a BPMN file is checked against ----------------------------------------------------------


@dataclass
class _Context:
    """What the project rules need from a process set (any part may be missing)."""

    manifest: dict | None
    catalogue: processes.Catalogue | None
    forms: dict[str, Any]            # form file name (``review.json``) -> parsed JSON
    bad_forms: set[str]              # forms that are not valid (their own problems are reported on them)
    helpers: dict[str, Any]

    @property
    def lanes(self) -> dict:
        return _as_dict((self.manifest or {}).get("lanes"))



def _load_json(name: str, data: bytes, out: list[Problem]) -> Any:
    if len(data) > processes.MAX_JSON_BYTES:
        out.append(Problem(f"文件大小 {len(data)} 字节，超过 {processes.MAX_JSON_BYTES // 1024} KB 上限，未做解析", name))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.append(Problem(f"不是有效的 UTF-8 编码（第 {exc.start} 字节）", name, _line_of(data, exc.start)))
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        out.append(Problem(f"不是有效的 JSON：{json_message(exc)}", name, exc.lineno))
        return None


def _form_problems(name: str, schema: Any, data: bytes) -> list[Problem]:
    """The problems :func:`engine.forms.check_schema` finds, jsonschema's own text told in Chinese with the JSON path
    and the line."""
    out = []
    for text in form_rules.check_schema(schema):
        explained = schema_problem(schema, data) if text.startswith("不是有效的 JSON Schema") else None
        if explained is not None:
            message, detail, line = explained
            out.append(Problem(message, name, line, detail=detail))
        else:
            out.append(Problem(text, name))
    return out


def _helpers(manifest: dict | None, catalogue: processes.Catalogue, forms: dict) -> dict[str, Any]:
    """The helpers a process set's scripts see, taken from a :class:`ProcessSet` so they cannot drift apart."""
    ps = processes.ProcessSet("", {}, manifest or {}, catalogue, forms, {})
    return dict(ps.script_engine.environment.globals)


def _context(files: dict[str, bytes], out: list[Problem] | None) -> _Context:
    """Read the manifest, catalogue and forms of ``files``; their own problems go to ``out`` (when given)."""
    sink: list[Problem] = out if out is not None else []
    manifest = catalogue_raw = None
    if processes.MANIFEST in files:
        manifest = _load_json(processes.MANIFEST, files[processes.MANIFEST], sink)
        if manifest is not None and not isinstance(manifest, dict):
            sink.append(Problem("流程清单须为 JSON 对象", processes.MANIFEST))
            manifest = None
    elif out is not None:
        sink.append(Problem(f"缺少文件 {processes.MANIFEST}（流程清单）"))
    if processes.CATALOGUE in files:
        catalogue_raw = _load_json(processes.CATALOGUE, files[processes.CATALOGUE], sink)
        if catalogue_raw is not None and not isinstance(catalogue_raw, dict):
            sink.append(Problem("事项目录须为 JSON 对象", processes.CATALOGUE))
            catalogue_raw = None
    elif out is not None:
        sink.append(Problem(f"缺少文件 {processes.CATALOGUE}（事项目录）"))
    forms: dict[str, Any] = {}
    bad: set[str] = set()
    for name, data in files.items():
        if name.startswith("forms/") and name.endswith(".json"):
            short = name.removeprefix("forms/")
            before = len(sink)
            schema = _load_json(name, data, sink)
            if schema is not None:
                forms[short] = schema
                sink.extend(_form_problems(name, schema, data))
            if len(sink) > before:
                bad.add(short)
    catalogue = processes.Catalogue(catalogue_raw or {})
    try:
        helpers = _helpers(manifest, catalogue, forms)
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        sink.append(Problem(f"无法准备流程脚本的辅助函数：{explain_exception(exc)}", detail=exception_detail(exc)))
        helpers = {}
    return _Context(manifest, catalogue if catalogue_raw is not None else None, forms, bad, helpers)


_context_cache: dict[str, _Context] = {}
caches.register(_context_cache.clear)
_context_lock = threading.Lock()


def _cached_context(files: dict[str, bytes]) -> _Context:
    """The context of a process set, read once per content (uploads are checked against the same set again and again)."""
    key = processes.content_hash({k: v for k, v in files.items() if not k.endswith(".bpmn")})
    with _context_lock:
        hit = _context_cache.get(key)
    if hit is None:
        hit = _context(files, None)
        with _context_lock:
            if len(_context_cache) >= 8:
                _context_cache.clear()
            _context_cache[key] = hit
    return hit


def _unnamed(text: str) -> str:
    """A catalogue message about an item without a name or department reads 「（未填写）」, never ``None``."""
    return re.sub(r"\bNone\b", "（未填写）", text.replace("「None」", "（未命名）"))


def _manifest_problems(ctx: _Context, files: dict[str, bytes]) -> list[Problem]:
    """The manifest and catalogue checks of :func:`engine.processes.build` (plus the shape of the manifest)."""
    out: list[Problem] = []
    m, raw = ctx.manifest, files.get(processes.MANIFEST)
    if m is None:
        return out
    for key in ("processes", "roles", "lanes", "messages"):
        if key in m and not isinstance(m[key], dict):
            out.append(Problem(f"「{key}」须为 JSON 对象", processes.MANIFEST, _json_line(raw, key)))
    if not _as_dict(m.get("processes")):
        out.append(Problem("清单中没有任何可启动的流程（processes）", processes.MANIFEST))
    roles = _as_dict(m.get("roles"))
    if roles and not any("process_publish" in (_as_dict(r).get("permissions") or []) for r in roles.values()):
        out.append(Problem("没有任何角色有发布流程的权限（process_publish）：发布后将无人能再修改流程",
                           processes.MANIFEST, _json_line(raw, "roles")))
    for lane, role in ctx.lanes.items():
        if role not in roles:
            out.append(Problem(f"泳道「{lane}」对应的角色 {role} 未定义", processes.MANIFEST, _json_line(raw, lane)))
    for pid, proc in _as_dict(m.get("processes")).items():
        form = _as_dict(proc).get("start_form")
        if form not in ctx.forms and form not in ctx.bad_forms:
            out.append(Problem(f"流程 {pid} 的申请表单 {form} 不存在", processes.MANIFEST, _json_line(raw, pid)))
        out.extend(_intake_problems(pid, _as_dict(proc), ctx.forms.get(form) if isinstance(form, str) else None, raw))
    for key, msg in _as_dict(m.get("messages")).items():
        msg = _as_dict(msg)
        if msg.get("form") not in ctx.forms and msg.get("form") not in ctx.bad_forms:
            out.append(Problem(f"消息 {key} 的表单 {msg.get('form')} 不存在", processes.MANIFEST, _json_line(raw, key)))
        if not msg.get("name"):
            out.append(Problem(f"消息 {key} 没有 BPMN 消息名（name）", processes.MANIFEST, _json_line(raw, key)))
        confirm = msg.get("confirm")
        if confirm is not None and not (isinstance(confirm, str) and re.search(r"[\u4e00-\u9fff]", confirm)
                                        and len(confirm) <= 200):
            out.append(Problem(f"消息 {key} 的 confirm 应为中文的确认提示（至多 200 个字符），写明提交后的后果",
                               processes.MANIFEST, _json_line(raw, key)))
    if ctx.catalogue is not None:
        try:
            for p in ctx.catalogue.problems():
                out.append(Problem(_unnamed(p.removeprefix("目录：")), processes.CATALOGUE))
        except Exception as exc:  # noqa: BLE001 - a malformed catalogue is a problem, not a crash
            out.append(Problem(f"事项目录格式有误：{explain_exception(exc)}", processes.CATALOGUE, detail=exception_detail(exc)))
    return out


# What the unit record offers to an application's fields (``unit_fields``: form field → attribute of the unit).
UNIT_ATTRIBUTES = ("name", "credit_code", "legal_representative", "address", "postcode", "leader_name", "leader_phone",
                   "contact_name", "contact_phone")


def _intake_problems(pid: str, proc: dict, form: dict | None, raw: bytes | None) -> list[Problem]:
    """``unit_fields`` and ``duplicate_check`` of a process name fields of its start form (and unit attributes)."""
    out: list[Problem] = []
    fields = set(_as_dict((form or {}).get("properties"))) if isinstance(form, dict) else None
    where = (processes.MANIFEST, _json_line(raw, pid))
    if "unit_fields" in proc:
        mapping = proc["unit_fields"]
        if not isinstance(mapping, dict):
            out.append(Problem(f"流程 {pid} 的 unit_fields 须为 JSON 对象（申请表字段 → 单位信息）", *where))
            mapping = {}
        for field, attr in mapping.items():
            if fields is not None and field not in fields:
                out.append(Problem(f"流程 {pid} 的 unit_fields 中的字段 {field} 不在申请表中", *where))
            if attr not in UNIT_ATTRIBUTES:
                out.append(Problem(f"流程 {pid} 的 unit_fields 中的单位信息 {attr} 不存在，可用："
                                   + "、".join(UNIT_ATTRIBUTES), *where))
    if "duplicate_check" in proc:
        check = proc["duplicate_check"]
        if not isinstance(check, dict) or not isinstance(check.get("key"), str) \
                or not isinstance(check.get("variable"), str):
            out.append(Problem(f"流程 {pid} 的 duplicate_check 须为 JSON 对象，含 key（比对的字段）与 variable（提示写入的变量）",
                               *where))
        else:
            for name in (check["key"], check.get("overlap")):
                if name is not None and fields is not None and name not in fields:
                    out.append(Problem(f"流程 {pid} 的 duplicate_check 中的字段 {name} 不在申请表中", *where))
            if fields is not None and check["variable"] in fields:
                out.append(Problem(f"流程 {pid} 的 duplicate_check 的变量 {check['variable']} 与申请表字段同名", *where))
    return out
