"""Validation of process files before they are deployed: every problem at once, in Chinese, with line numbers.

- :func:`validate_set` checks a whole process set (the shape :func:`engine.processes.read_dir` returns).
- :func:`validate_bpmn_file` checks one BPMN file from anywhere (an upload, another modeler's export) against a
  process set given as context.
- :func:`verdict` sums the problems up: ``可部署`` or ``不可部署：N 个问题``.

What is checked, per BPMN file: size, UTF-8, no DOCTYPE/ENTITY (all refused before any parsing: nothing is ever
resolved, read or fetched; the parser is forced to UTF-8 whatever the file declares), well-formed XML, every BPMN 2.0
XSD error with its line, that SpiffWorkflow can build every runnable process with its subprocesses; then the project's
rules: lanes are roles of the manifest, user tasks name an existing valid form, stages/documents/warning levels are
known, every script, condition, timer, payload and property expression passes :func:`engine.sandbox.check`, every
timer expression evaluates (in the sandbox, against a permissive sample context) to an ISO-8601 value of its kind,
literal service items exist in the catalogue, the messages the service sends are caught by the process. Per set, also
the manifest, catalogue and form checks of :func:`engine.processes.build`, and that function itself as a last net.

Nothing from a diagram is executed outside :mod:`engine.sandbox`; SpiffWorkflow only parses specs here.
"""
from __future__ import annotations

import ast
import copy
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import XSD_PATH as SPIFF_XSD_PATH
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from . import caches, processes, sandbox
from . import forms as form_rules
from .errors import BangbanError

BPMN_NS = processes.BPMN_NS
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
XSD_PATH = Path(SPIFF_XSD_PATH)         # BPMN20.xsd with Semantic.xsd, BPMNDI.xsd, DC.xsd, DI.xsd beside it
MAX_XSD_ERRORS = 200
MAX_TIMER_SECONDS = 5.0                 # all timer evaluations of one validation (each is also bounded by the sandbox)

# spiffworkflow:properties whose values are Python expressions (engine/runtime.py); ``show`` is a list of names.
EXPRESSION_PROPERTIES = frozenset({
    "assignee", "department", "title", "clock", "clock_limit", "clock_title", "clock_department", "clock_pause",
    "clock_pause_reason", "clock_stop", "clock_extend", "clock_extend_days", "clock_extend_reason", "notify",
    "notify_text", "warns_clock", "form_defaults", "clock_stop_all",
})
WARNING_LEVELS = ("yellow", "red")
RESERVED_IDS = ("Start", "End")          # clash with SpiffWorkflow's built-in specs (design.md)

_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_NS_PREFIXES = {"{" + BPMN_NS + "}": "bpmn:", "{http://www.omg.org/spec/BPMN/20100524/DI}": "bpmndi:",
                "{http://www.omg.org/spec/DD/20100524/DC}": "dc:", "{http://www.omg.org/spec/DD/20100524/DI}": "di:",
                "{" + SPIFF_NS + "}": "spiffworkflow:"}
_NOT_TASK_SPECS = frozenset({"process", "lane", "laneSet", "sequenceFlow", "association", "textAnnotation", "dataObject",
                             "dataObjectReference", "dataStoreReference", "property", "ioSpecification"})
_TIMER_KINDS = {"timeDate": "日期时间", "timeDuration": "时长", "timeCycle": "循环周期"}


@dataclass
class Problem:
    """One reason a process file cannot be deployed."""

    message: str
    file: str | None = None
    line: int | None = None
    element: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = self.file or ""
        if self.line:
            where += f" 第 {self.line} 行"
        if self.element:
            where += f"（{self.element}）"
        where = where.strip()
        return f"{where}：{self.message}" if where else self.message


def verdict(problems: list[Problem]) -> str:
    return f"不可部署：{len(problems)} 个问题" if problems else "可部署"


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


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _as_list(value) -> list:
    return value if isinstance(value, list) else []


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _json_line(data: bytes | None, needle: str) -> int | None:
    if not data:
        return None
    at = data.find(json.dumps(needle, ensure_ascii=False).encode())
    if at < 0:
        at = data.find(json.dumps(needle).encode())
    return _line_of(data, at) if at >= 0 else None


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
        out.append(Problem(f"不是有效的 JSON：{exc.msg}（第 {exc.colno} 列）", name, exc.lineno))
        return None


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
                for p in form_rules.check_schema(schema):
                    sink.append(Problem(p, name))
            if len(sink) > before:
                bad.add(short)
    catalogue = processes.Catalogue(catalogue_raw or {})
    try:
        helpers = _helpers(manifest, catalogue, forms)
    except Exception as exc:  # noqa: BLE001 - reported, never raised
        sink.append(Problem(f"无法准备流程脚本的辅助函数：{type(exc).__name__}: {exc}"))
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
    for key, msg in _as_dict(m.get("messages")).items():
        msg = _as_dict(msg)
        if msg.get("form") not in ctx.forms and msg.get("form") not in ctx.bad_forms:
            out.append(Problem(f"消息 {key} 的表单 {msg.get('form')} 不存在", processes.MANIFEST, _json_line(raw, key)))
        if not msg.get("name"):
            out.append(Problem(f"消息 {key} 没有 BPMN 消息名（name）", processes.MANIFEST, _json_line(raw, key)))
    if ctx.catalogue is not None:
        try:
            for p in ctx.catalogue.problems():
                out.append(Problem(p.removeprefix("目录："), processes.CATALOGUE))
        except Exception as exc:  # noqa: BLE001 - a malformed catalogue is a problem, not a crash
            out.append(Problem(f"事项目录格式有误：{type(exc).__name__}: {exc}", processes.CATALOGUE))
    return out


# ---- one BPMN file: bytes -> tree --------------------------------------------------------------------------


def _parse_xml(data: bytes) -> Any:
    """Parse bytes already checked for size, UTF-8 and DTD: no DTD, no entities, no network. The encoding is forced to
    UTF-8 whatever the XML declaration says, so a declared UTF-7/UTF-16 cannot hide a DOCTYPE from the byte check."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, encoding="utf-8")
    return etree.ElementTree(etree.fromstring(data, parser))


def _read_bpmn(name: str, data: bytes, out: list[Problem]) -> Any:
    """The hardened tree of a BPMN file, or None (with the reasons in ``out``). Refusals happen before parsing."""
    if not isinstance(data, (bytes, bytearray)):
        out.append(Problem("文件内容不是字节串", name))
        return None
    if len(data) > processes.MAX_BPMN_BYTES:
        out.append(Problem(f"文件大小 {len(data) / 1024 / 1024:.1f} MB，超过 {processes.MAX_BPMN_BYTES // 1024 // 1024} MB "
                           "上限，未做解析", name))
        return None
    refused = False
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        out.append(Problem(f"不是有效的 UTF-8 编码（第 {exc.start} 字节：0x{data[exc.start]:02X}）", name,
                           _line_of(data, exc.start)))
        refused = True
    dtd = _DTD.search(data)
    if dtd:
        out.append(Problem("含有 DOCTYPE 或实体（ENTITY）声明：为防 XXE 和实体膨胀攻击，拒绝处理，未做任何解析", name,
                           _line_of(data, dtd.start())))
        refused = True
    if refused:
        return None
    try:
        tree = _parse_xml(bytes(data))
    except etree.XMLSyntaxError as exc:
        out.append(Problem(f"不是有效的 XML：{exc.msg}", name, exc.lineno or None))
        return None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        out.append(Problem("含有 DOCTYPE 声明，拒绝处理", name))
        return None
    if etree.QName(tree.getroot()).namespace != BPMN_NS or etree.QName(tree.getroot()).localname != "definitions":
        out.append(Problem(f"根元素 {_short(tree.getroot().tag)} 不是 BPMN 2.0 的 definitions", name,
                           tree.getroot().sourceline))
        return None
    return tree


def _label(el) -> str:
    return " ".join((el.get("name") or el.get("id") or "").split())


def _q(local: str) -> str:
    return f"{{{BPMN_NS}}}{local}"


def _short(tag: Any) -> str:
    tag = str(tag)
    for long, short in _NS_PREFIXES.items():
        tag = tag.replace(long, short)
    return tag


_schema_lock = threading.Lock()
_schema: etree.XMLSchema | None = None


def _xsd() -> etree.XMLSchema:
    """The BPMN 2.0 XSD shipped with SpiffWorkflow, loaded once from local files only."""
    global _schema
    with _schema_lock:
        if _schema is None:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
            _schema = etree.XMLSchema(etree.parse(str(XSD_PATH), parser))
        return _schema


def _xsd_problems(name: str, tree: Any) -> list[Problem]:
    root = tree.getroot()
    renames = root.xpath(".//bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression", namespaces=NS)
    if renames:   # what SpiffWorkflow's own validator does for bpmn-js files, on a copy
        root = copy.deepcopy(root)
        for expr in root.xpath(".//bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression", namespaces=NS):
            expr.tag = "{" + BPMN_NS + "}messagePath"
    schema = _xsd()
    if schema.validate(root):
        return []
    errors = list(schema.error_log)
    out = [Problem(f"不符合 BPMN 2.0 XML Schema：{_short(e.message)}", name, e.line or None) for e in errors[:MAX_XSD_ERRORS]]
    if len(errors) > MAX_XSD_ERRORS:
        out.append(Problem(f"另有 {len(errors) - MAX_XSD_ERRORS} 个 XML Schema 错误未列出", name))
    return out


# ---- the processes of a file ---------------------------------------------------------------------------------


def _executable(process) -> bool:
    return process.get("isExecutable", "true") == "true"     # SpiffWorkflow's reading of a missing attribute


def _runnable_processes(trees: dict[str, Any], wanted: set[str]) -> dict[str, tuple[str, Any]]:
    """``{process id: (file, element)}`` of the processes that can run: executable, listed in the manifest
    (``wanted``), or called from one of those."""
    every: dict[str, tuple[str, Any]] = {}
    for name, tree in trees.items():
        for p in tree.getroot().iter(_q("process")):
            if p.get("id"):
                every.setdefault(p.get("id"), (name, p))
    todo = [pid for pid, (_n, p) in every.items() if _executable(p) or pid in wanted]
    out: dict[str, tuple[str, Any]] = {}
    while todo:
        pid = todo.pop()
        if pid in out or pid not in every:
            continue
        out[pid] = every[pid]
        for call in every[pid][1].iter(_q("callActivity")):
            if call.get("calledElement"):
                todo.append(call.get("calledElement"))
    return out


def _owner(el) -> Any:
    """The flow element (task, event, flow, gateway) an expression belongs to: the nearest ancestor with an id
    that is not an event definition, loop characteristic or extension."""
    node = el
    while node is not None:
        local = etree.QName(node).localname if isinstance(node.tag, str) else ""
        if node.get("id") and not local.endswith(("EventDefinition", "LoopCharacteristics")) \
                and etree.QName(node).namespace == BPMN_NS:
            return node
        node = node.getparent()
    return el


def _properties(el) -> list[Any]:
    return el.xpath("./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", namespaces=NS)


# ---- expressions: sandbox check, service items, timers --------------------------------------------------


class _Tracker:
    """Whether a sample value was turned into a concrete string or number during an evaluation."""

    def __init__(self) -> None:
        self.touched = False


class _Sample:
    """A value of unknown case data: answers any subscript, attribute or call with itself."""

    __slots__ = ("_tracker",)

    def __init__(self, tracker: _Tracker):
        object.__setattr__(self, "_tracker", tracker)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key):
        return self

    def __call__(self, *args, **kwargs):
        return self

    def _concrete(self, value):
        self._tracker.touched = True
        return value

    def __str__(self) -> str:
        return self._concrete("1")

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return self._concrete("1")

    def __int__(self) -> int:
        return self._concrete(1)

    __index__ = __int__

    def __float__(self) -> float:
        return self._concrete(1.0)

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._concrete(1)

    def __iter__(self):
        self._tracker.touched = True
        return iter((self,))

    def __contains__(self, item) -> bool:
        return True

    def __hash__(self) -> int:
        return 1

    def __eq__(self, other) -> bool:
        return True

    def __ne__(self, other) -> bool:
        return False

    def __lt__(self, other) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def _same(self, *args):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _same
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = _same
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = __lshift__ = __rlshift__ = _same
    __rshift__ = __rrshift__ = __invert__ = _same


def _free_names(tree: ast.AST) -> set[str]:
    loads, stores = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else stores).add(node.id)
        elif isinstance(node, ast.arg):
            stores.add(node.arg)
    return loads - stores


def _items_named(tree: ast.AST) -> list[str]:
    """Service item codes written as literals in ``catalogue_items(...)`` calls."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "catalogue_items" \
                and node.args:
            arg = node.args[0]
            values = arg.elts if isinstance(arg, (ast.List, ast.Tuple, ast.Set)) else [arg]
            for v in values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    found.append(v.value)
    return found


def _looks_iso(text: str) -> bool:
    """Whether an unquoted timer expression is an ISO-8601 literal (which Python would read as names or fail on)."""
    if not text or text[0] in "'\"" or not any(c.isdigit() for c in text) or not (text[0] in "PR" or text[0].isdigit()):
        return False
    for parse in (TimerEventDefinition.parse_time_or_duration, TimerEventDefinition.parse_iso_recurring_interval):
        try:
            parse(text)
            return True
        except Exception:  # noqa: BLE001, S112 - SpiffWorkflow's parsers raise bare Exception
            continue
    return False


def _parse_timer(kind: str, value: str) -> Any:
    if kind == "timeDate":
        parsed = TimerEventDefinition.parse_time_or_duration(value)
        if not isinstance(parsed, datetime):
            raise ValueError("timeDate 需要日期时间，得到的是时长")
        return parsed
    if kind == "timeDuration":
        return TimerEventDefinition.parse_iso_duration(value)
    return TimerEventDefinition.parse_iso_recurring_interval(value)


_ISO_EXAMPLE = {"timeDate": "'2025-01-01T09:00:00+08:00'", "timeDuration": "'P3D'", "timeCycle": "'R3/PT1H'"}


def _evaluate_timer(kind: str, source: str, tree: ast.AST, helpers: dict) -> str | None:
    """Evaluate a timer expression in the sandbox against sample data; the reason it is wrong, or None."""
    tracker = _Tracker()
    context = {n: _Sample(tracker) for n in _free_names(tree)
               if n not in helpers and n not in sandbox.ALLOWED_BUILTINS}
    try:
        value = sandbox.evaluate(source, context, helpers)
    except sandbox.SandboxViolation as exc:
        return f"定时器表达式求值被沙箱拒绝：{exc}"
    except Exception as exc:  # noqa: BLE001 - any failure of diagram code is a finding
        return f"定时器表达式无法求值：{type(exc).__name__}: {exc}"
    if isinstance(value, _Sample):
        return None             # the value comes straight from case data: nothing to judge before a case runs
    if not isinstance(value, str):
        return f"定时器表达式的结果应为 ISO-8601 {_TIMER_KINDS[kind]}字符串（如 {_ISO_EXAMPLE[kind]}），实际是 " \
               f"{type(value).__name__}：{str(value)[:60]}"
    try:
        _parse_timer(kind, value)
    except Exception as exc:  # noqa: BLE001 - SpiffWorkflow's parsers raise bare Exception
        if tracker.touched:
            return None         # built from case data: the sample values prove nothing
        detail = str(exc) if isinstance(exc, ValueError) and "timeDate" in str(exc) else "无法解析"
        return f"定时器表达式的结果「{value[:60]}」不是 ISO-8601 {_TIMER_KINDS[kind]}（{detail}；如 {_ISO_EXAMPLE[kind]}）"
    return None


class _TimerBudget:
    """Wall time left for evaluating timers in one validation (a file of many slow timers must not stall it)."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_TIMER_SECONDS
        self.reported = False

    def exhausted(self) -> bool:
        return time.monotonic() > self.deadline


# ---- the rules of one file ---------------------------------------------------------------------------------


class _FileChecker:
    """The project rules for the runnable processes of one BPMN file."""

    def __init__(self, name: str, tree: Any, ctx: _Context | None, runnable: dict[str, tuple[str, Any]],
                 out: list[Problem], budget: _TimerBudget):
        self.name, self.tree, self.ctx, self.out, self.budget = name, tree, ctx, out, budget
        self.processes = [p for (f, p) in runnable.values() if f == name]

    def problem(self, message: str, el: Any = None) -> None:
        owner = _owner(el) if el is not None else None
        self.out.append(Problem(message, self.name, el.sourceline if el is not None else None,
                                owner.get("id") if owner is not None else None))

    def run(self) -> None:
        if not self.processes:
            self.problem("文件中没有可执行的流程（isExecutable=\"true\"），无法部署")
            return
        for process in self.processes:
            self.lanes(process)
            self.elements(process)
            self.expressions(process)
        self.correlations()

    # lanes, user tasks, properties
    def lanes(self, process) -> None:
        lanes = process.xpath(".//bpmn:lane", namespaces=NS)
        if not lanes:
            self.problem(f"流程 {process.get('id')} 没有泳道：无法确定由哪个角色办理，不能部署", process)
        if self.ctx is None or self.ctx.manifest is None:
            return
        for lane in lanes:
            if lane.get("name") not in self.ctx.lanes:
                known = "、".join(self.ctx.lanes) or "（清单中没有泳道）"
                self.problem(f"泳道「{lane.get('name')}」不是清单中的已知角色（已知：{known}）", lane)

    def elements(self, process) -> None:
        lane_of: dict[str, str | None] = {}
        for ref in process.xpath(".//bpmn:lane/bpmn:flowNodeRef", namespaces=NS):
            if ref.text:
                lane_of[ref.text.strip()] = ref.getparent().get("name")
        for el in process.iter():
            if not isinstance(el.tag, str) or etree.QName(el).namespace != BPMN_NS:
                continue
            local = etree.QName(el).localname
            if el.get("id") in RESERVED_IDS and local not in _NOT_TASK_SPECS:
                self.problem(f"元素 id「{el.get('id')}」与 SpiffWorkflow 内置的 Start/End 冲突，会使流程解析出错，请改名", el)
            if local in ("userTask", "manualTask"):
                self.user_task(el, lane_of)
            if local == "startEvent" and el.getparent().get("triggeredByEvent") == "true" \
                    and el.get("isInterrupting", "true") == "true":
                self.problem("事件子流程的开始事件是中断型（isInterrupting 缺省为 true），SpiffWorkflow 3.2.0 不会中断主流程："
                             "请设 isInterrupting=\"false\"，或改用子流程上的中断型边界事件", el)
            props = _properties(el)
            for prop in props:
                self.property(el, prop)

    def user_task(self, task, lane_of: dict) -> None:
        label = f"任务「{_label(task)}」"
        lane = lane_of.get(task.get("id") or "")
        if lane is None and lane_of:
            self.problem(f"{label}不在任何泳道中：无法确定由哪个角色办理", task)
        form = next((p.get("value") for p in _properties(task) if p.get("name") == "formJsonSchemaFilename"), None)
        if not form:
            self.problem(f"{label}未指定表单（spiffworkflow:property formJsonSchemaFilename）", task)
        elif self.ctx is not None:
            if form in self.ctx.bad_forms:
                self.problem(f"{label}引用的表单 {form} 不是有效的表单（见 forms/{form} 的问题）", task)
            elif form not in self.ctx.forms:
                self.problem(f"{label}引用的表单 {form} 不存在（应在 forms/{form}）", task)

    def property(self, el, prop) -> None:
        name, value = prop.get("name"), prop.get("value")
        if value is None or not value.strip():
            return
        manifest = self.ctx.manifest if self.ctx is not None else None
        if name in EXPRESSION_PROPERTIES:
            self.code(value, "eval", prop, f"属性 {name} 的表达式")
        elif name == "show":
            bad = [n for n in (s.strip() for s in value.split(",")) if n and not n.isidentifier()]
            if bad:
                self.problem(f"属性 show 应为逗号分隔的变量名，「{'、'.join(bad)}」不是变量名", prop)
        elif name == "stage" and manifest is not None and value not in _as_list(manifest.get("stages")):
            self.problem(f"阶段「{value}」不在清单的阶段列表中", prop)
        elif name == "document" and manifest is not None and value not in _as_dict(manifest.get("numbers")):
            self.problem(f"单据「{value}」在清单的编号规则（numbers）中没有定义", prop)
        elif name == "warning_level" and value not in WARNING_LEVELS:
            self.problem(f"预警级别「{value}」应为 yellow 或 red", prop)
        elif name == "ends_tasks":
            root = prop.getroottree()
            missing = [i for i in (v.strip() for v in value.split(",")) if i and not root.xpath(
                "//bpmn:userTask[@id=$id]", namespaces=NS, id=i)]
            if missing:
                self.problem(f"属性 ends_tasks 列出的「{'、'.join(missing)}」不是本文件中的用户任务", prop)

    # scripts and expressions
    def expressions(self, process) -> None:
        x = process.xpath
        for el in x(".//bpmn:scriptTask/bpmn:script", namespaces=NS):
            self.code(el.text or "", "exec", el, "脚本")
        for el in x(".//spiffworkflow:preScript | .//spiffworkflow:postScript", namespaces=NS):
            self.code(el.text or "", "exec", el, "前置/后置脚本")
        for el in x(".//bpmn:conditionExpression | .//bpmn:conditionalEventDefinition/bpmn:condition", namespaces=NS):
            self.code(el.text or "", "eval", el, "条件表达式", required=True)
        for el in x(".//bpmn:loopCardinality | .//bpmn:completionCondition | .//bpmn:loopCondition", namespaces=NS):
            self.code(el.text or "", "eval", el, "多实例/循环表达式")
        for el in x(".//spiffworkflow:messagePayload", namespaces=NS):
            self.code(el.text or "", "eval", el, "消息内容表达式（messagePayload）")
        for el in x(".//spiffworkflow:serviceTaskOperator/spiffworkflow:parameter[@value]", namespaces=NS):
            self.code(el.get("value"), "eval", el, f"服务任务参数 {el.get('id')} 的表达式")
        for el in x(".//bpmn:timerEventDefinition/*", namespaces=NS):
            kind = etree.QName(el).localname
            if kind in _TIMER_KINDS:
                self.timer(kind, el)
        for definition in x(".//bpmn:timerEventDefinition", namespaces=NS):
            if not any(etree.QName(c).localname in _TIMER_KINDS for c in definition if isinstance(c.tag, str)):
                self.problem("定时器没有 timeDate、timeDuration 或 timeCycle 表达式", definition)

    def correlations(self) -> None:
        for el in self.tree.getroot().xpath(".//bpmn:correlationPropertyRetrievalExpression/*", namespaces=NS):
            self.code(el.text or "", "eval", el, "消息关联表达式")

    def code(self, source: str, mode: str, el, what: str, required: bool = False) -> ast.AST | None:
        """Check one piece of diagram code in the sandbox's compiler; report literal service items it names."""
        if not source.strip():
            if required:
                self.problem(f"{what}为空", el)
            return None
        problems = sandbox.check(source, mode)
        for p in problems:
            self.problem(f"{what}未通过沙箱检查：{p.rstrip('.')}", el)
        try:
            tree = ast.parse(source, mode=mode)
        except (SyntaxError, ValueError):
            return None
        catalogue = self.ctx.catalogue if self.ctx is not None else None
        if catalogue is not None:
            for code in _items_named(tree):
                if code not in catalogue.items:
                    self.problem(f"{what}引用的服务事项「{code}」不在事项目录中", el)
        return None if problems else tree

    def timer(self, kind: str, el) -> None:
        source = (el.text or "").strip()
        what = f"定时器表达式（{kind}）"
        if not source:
            self.problem(f"{what}为空", el)
            return
        if _looks_iso(source):
            self.problem(f"{what}按 Python 表达式求值：ISO-8601 值 {source} 须加引号，写成 '{source}'", el)
            return
        tree = self.code(source, "eval", el, what)
        if tree is None:
            return
        if self.budget.exhausted():
            if not self.budget.reported:
                self.budget.reported = True
                self.problem(f"定时器表达式求值总耗时超过 {MAX_TIMER_SECONDS:g} 秒，从这里起的定时器未求值", el)
            return
        reason = _evaluate_timer(kind, source, tree, self.ctx.helpers if self.ctx is not None else {})
        if reason:
            self.problem(reason, el)


# ---- SpiffWorkflow ---------------------------------------------------------------------------------------


_SPIFF_HINTS = (
    ("has no implementation", "数据存储（dataStore）没有实现，本服务不支持"),
    ("A Service Task must have an operator", "服务任务缺少 spiffworkflow:serviceTaskOperator，本服务不执行服务任务"),
    ("Multiple outgoing flows are not supported", "任务有多条流出顺序流，SpiffWorkflow 不支持：请在任务后加网关"),
    ("Unknown Time Specification", "定时器没有可识别的时间定义（timeDate、timeDuration 或 timeCycle）"),
    ("Unsupported Catch Event", "不支持的捕获事件（没有事件定义，或事件类型不受支持）"),
    ("must specify a cardinality or a loop input", "多实例任务须指定 loopCardinality 或 loopDataInputRef"),
    ("Cannot resolve data", "数据关联引用了找不到的数据对象"),
    ("No start event found", "流程没有开始事件"),
    ("was not found", "找不到被调用的流程（callActivity 的 calledElement）"),
    ("Duplicate process ID", "流程 id 重复"),
    ("is not executable", "流程未标记为可执行"),
    ("no support implemented for this task type", "不支持的任务类型"),
    ("with missing condition", "条件事件缺少条件"),
    ("Must contain an End event", "子流程须有结束事件"),
    ("Cancel Events may only be used with transactions", "取消事件只能用于事务子流程"),
    ("loopMaximum or loopCondition", "循环任务须指定 loopMaximum 或 loopCondition"),
)
_REPR_WRAPPED = re.compile(r"^\w+\((['\"])(.*?)(?:: %r)?\1, b(['\"]).*\3\)$", re.DOTALL)
_ELEMENT_REPR = re.compile(r"<Element \{[^}]*\}(\w+) at 0x[0-9a-f]+>")
_ID_IN_XML = re.compile(r"\bid=\"([^\"]+)\"")


def _spiff_text(message: str) -> tuple[str, str | None]:
    """SpiffWorkflow's English message made readable (no XML dumps or memory addresses), with a Chinese gloss;
    and the element id buried in a dumped node, if any."""
    element = None
    wrapped = _REPR_WRAPPED.match(message.strip())
    if wrapped:
        found = _ID_IN_XML.search(message)
        element = found.group(1) if found else None
        message = wrapped.group(2)
    message = " ".join(_ELEMENT_REPR.sub(lambda m: "bpmn:" + m.group(1), message).split()).rstrip(".").strip()
    for needle, gloss in _SPIFF_HINTS:
        if needle in message:
            return f"{gloss}（{message}）", element
    return message, element


def _spiff_problem(exc: Exception, pid: str | None, name: str | None, trees: dict[str, Any]) -> Problem:
    file, line, element = name, None, None
    if isinstance(exc, ValidationException):
        raw = str(exc.args[0]) if exc.args else str(exc)
        file = exc.file_name or name
        line = exc.line_number if isinstance(exc.line_number, int) and exc.line_number > 0 else None
        element = exc.id or None
    else:
        raw = f"{type(exc).__name__}: {exc}"
    message, dumped = _spiff_text(raw)
    element = element or dumped
    if line is None and element and file in trees:
        found = trees[file].getroot().xpath("//*[@id=$id]", id=element)
        line = found[0].sourceline if found else None
    where = f"流程 {pid}" if pid else "文件"
    return Problem(f"SpiffWorkflow 无法构建{where}：{message}", file, line, element)


def _spiff_build(trees: dict[str, Any], report: set[str], runnable: dict[str, tuple[str, Any]],
                 out: list[Problem]) -> None:
    """Build every runnable process of the files in ``report`` and their subprocesses (embedded ones are parsed
    lazily: ``get_subprocess_specs`` makes SpiffWorkflow parse them too)."""
    parser = SpiffBpmnParser()
    added: set[str] = set()
    for name, tree in trees.items():
        try:
            parser.add_bpmn_xml(tree, filename=name)
            added.add(name)
        except Exception as exc:  # noqa: BLE001 - SpiffWorkflow's failures become problems
            if name in report:
                out.append(_spiff_problem(exc, None, name, trees))
    for pid, (name, _process) in runnable.items():
        if name not in report or name not in added:
            continue
        try:
            parser.get_spec(pid)
            parser.get_subprocess_specs(pid)
        except Exception as exc:  # noqa: BLE001 - SpiffWorkflow's failures become problems
            out.append(_spiff_problem(exc, pid, name, trees))


# ---- messages the service sends -------------------------------------------------------------------------


def _caught_messages(process, trees: dict[str, Any], runnable: dict[str, tuple[str, Any]]) -> set[str]:
    names: dict[str, str] = {}
    for tree in trees.values():
        for msg in tree.getroot().iter(_q("message")):
            if msg.get("id"):
                names[msg.get("id")] = msg.get("name") or msg.get("id")
    caught: set[str] = set()
    seen: set[str] = set()
    todo = [process]
    while todo:
        p = todo.pop()
        if p.get("id") in seen:
            continue
        seen.add(p.get("id"))
        refs = p.xpath(
            ".//bpmn:boundaryEvent/bpmn:messageEventDefinition/@messageRef"
            " | .//bpmn:intermediateCatchEvent/bpmn:messageEventDefinition/@messageRef"
            " | .//bpmn:subProcess[@triggeredByEvent='true']/bpmn:startEvent/bpmn:messageEventDefinition/@messageRef"
            " | .//bpmn:receiveTask/@messageRef", namespaces=NS)
        caught.update(names.get(str(r), str(r)) for r in refs)
        for call in p.iter(_q("callActivity")):
            target = runnable.get(call.get("calledElement") or "")
            if target is not None:
                todo.append(target[1])
    return caught


def _message_problems(ctx: _Context, files: dict[str, bytes], trees: dict[str, Any],
                      runnable: dict[str, tuple[str, Any]], only_files: set[str] | None) -> list[Problem]:
    out: list[Problem] = []
    manifest = ctx.manifest or {}
    for pid in _as_dict(manifest.get("processes")):
        found = runnable.get(pid)
        if found is None:
            if only_files is None:
                out.append(Problem(f"清单中的流程 {pid} 在 BPMN 文件中不存在", processes.MANIFEST,
                                   _json_line(files.get(processes.MANIFEST), pid)))
            continue
        if only_files is not None and found[0] not in only_files:
            continue
        caught = _caught_messages(found[1], trees, runnable)
        for key, msg in _as_dict(manifest.get("messages")).items():
            name = _as_dict(msg).get("name")
            if name and name not in caught:
                out.append(Problem(f"服务会发出的消息「{name}」（{key}）在流程 {pid} 中没有捕获事件接收（边界事件、中间捕获事件"
                                   "或事件子流程的开始事件）", found[0], found[1].sourceline, pid))
    return out


# ---- the public entry points -----------------------------------------------------------------------------


@contextmanager
def _guard(out: list[Problem], file: str | None = None) -> Iterator[None]:
    """Turn an unexpected failure of one check into a problem, so the other checks still run."""
    try:
        yield
    except BangbanError as exc:
        out.append(Problem(f"无法解析：{exc.message}", file))
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        out.append(Problem(f"无法解析：{type(exc).__name__}: {exc}", file))


def _order(problems: list[Problem], files: list[str]) -> list[Problem]:
    rank = {name: i for i, name in enumerate(files)}
    unique: list[Problem] = []
    for p in problems:
        if p not in unique:
            unique.append(p)
    return sorted(unique, key=lambda p: (p.file is not None, rank.get(p.file or "", len(rank)), p.line or 0))


def _check_trees(trees: dict[str, Any], report: set[str], ctx: _Context | None, wanted: set[str],
                 out: list[Problem]) -> dict[str, tuple[str, Any]]:
    runnable = _runnable_processes(trees, wanted)
    budget = _TimerBudget()
    for name in trees:
        if name in report:
            with _guard(out, name):
                out.extend(_xsd_problems(name, trees[name]))
            with _guard(out, name):
                _FileChecker(name, trees[name], ctx, runnable, out, budget).run()
    with _guard(out):
        _spiff_build(trees, report, runnable, out)
    return runnable


def validate_set(files: dict[str, bytes]) -> list[Problem]:
    """Every problem of a complete process set (``bangban.json``, ``catalogue.json``, ``forms/*.json``, ``*.bpmn``)."""
    out: list[Problem] = []
    try:
        ctx = _context(files, out)
        with _guard(out, processes.MANIFEST):
            out.extend(_manifest_problems(ctx, files))
        trees: dict[str, Any] = {}
        bpmn_names = [n for n in files if n.endswith(".bpmn")]
        if not bpmn_names:
            out.append(Problem("流程集中没有 BPMN 文件"))
        for name in bpmn_names:
            with _guard(out, name):
                tree = _read_bpmn(name, files[name], out)
                if tree is not None:
                    trees[name] = tree
        wanted = set(_as_dict((ctx.manifest or {}).get("processes")))
        runnable = _check_trees(trees, set(trees), ctx, wanted, out)
        if len(trees) == len(bpmn_names):
            with _guard(out):
                out.extend(_message_problems(ctx, files, trees, runnable, None))
        if not out:
            with _guard(out):
                _final_build(files, out)
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        out.append(Problem(f"无法解析：{type(exc).__name__}: {exc}"))
    return _order(out, list(files))


def _final_build(files: dict[str, bytes], out: list[Problem]) -> None:
    """What :func:`engine.processes.build` finds beyond the checks above (a net for rules added there later)."""
    try:
        processes.build(files)
    except BangbanError as exc:
        details = exc.details if isinstance(exc.details, list) else [exc.message]
        out.extend(Problem(f"加载流程集失败：{d}") for d in details)


def validate_bpmn_file(name: str, data: bytes, context: dict[str, bytes] | None = None) -> list[Problem]:
    """Every problem of one BPMN file, checked against the process set ``context`` (manifest, catalogue, forms and
    the BPMN files it may call). Never raises: an unexpected failure is reported as ``无法解析：…``."""
    out: list[Problem] = []
    try:
        ctx = None
        if context is not None:
            ctx = _cached_context(context)
            if ctx.manifest is None:
                out.append(Problem(f"所给流程集缺少有效的 {processes.MANIFEST}，无法核对泳道与表单，不能确认可部署", name))
        else:
            out.append(Problem("未提供流程集（清单、表单、事项目录），无法核对泳道、表单与事项，不能确认可部署", name))
        tree = None
        with _guard(out, name):
            tree = _read_bpmn(name, data, out)
        if tree is not None:
            trees: dict[str, Any] = {}
            for other, other_data in (context or {}).items():
                if other.endswith(".bpmn") and other != name:
                    quiet: list[Problem] = []
                    other_tree = _read_bpmn(other, other_data, quiet)
                    if other_tree is not None:
                        trees[other] = other_tree
            trees[name] = tree
            wanted = set(_as_dict((ctx.manifest or {}).get("processes"))) if ctx is not None else set()
            runnable = _check_trees(trees, {name}, ctx, wanted, out)
            if ctx is not None and ctx.manifest is not None:
                with _guard(out, name):
                    out.extend(_message_problems(ctx, context or {}, trees, runnable, {name}))
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        out.append(Problem(f"无法解析：{type(exc).__name__}: {exc}", name))
    return _order(out, [name])
