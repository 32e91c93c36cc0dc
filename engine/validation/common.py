"""Shared by the checks: namespaces, limits, the Problem record, locating elements and processes."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import XSD_PATH as SPIFF_XSD_PATH

from .. import processes

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
    "notify_text", "warns_clock", "form_defaults", "clock_stop_all", "document_when", "confirm_when",
})
WARNING_LEVELS = ("yellow", "red")
RESERVED_IDS = ("Start", "End")          # clash with SpiffWorkflow's built-in specs (design.md)

_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_NS_PREFIXES = {"{" + BPMN_NS + "}": "bpmn:", "{http://www.omg.org/spec/BPMN/20100524/DI}": "bpmndi:",
                "{http://www.omg.org/spec/DD/20100524/DC}": "dc:", "{http://www.omg.org/spec/DD/20100524/DI}": "di:",
                "{" + SPIFF_NS + "}": "spiffworkflow:", "{http://www.w3.org/2001/XMLSchema-instance}": "xsi:"}
_NOT_TASK_SPECS = frozenset({"process", "lane", "laneSet", "sequenceFlow", "association", "textAnnotation", "dataObject",
                             "dataObjectReference", "dataStoreReference", "property", "ioSpecification"})
_TIMER_KINDS = {"timeDate": "日期时间", "timeDuration": "时长", "timeCycle": "循环周期"}


@dataclass
class Problem:
    """One reason a process file cannot be deployed: a Chinese ``message`` led by Chinese text, and where useful
    the library's original (English) text as ``detail``, for searching or asking for help."""

    message: str
    file: str | None = None
    line: int | None = None
    element: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = self.file or ""
        if self.line:
            where += f" 第 {self.line} 行"
        if self.element:
            where += f"（{self.element}）"
        where = where.strip()
        text = f"{self.message}（原文：{self.detail}）" if self.detail else self.message
        return f"{where}：{text}" if where else text


def verdict(problems: list[Problem]) -> str:
    return f"不可部署：{len(problems)} 个问题" if problems else "可部署"



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



def _label(el) -> str:
    """What to call an element: its name on one line, else its id, else 「（未命名，无 id）」."""
    return " ".join((el.get("name") or "").split()) or (el.get("id") or "").strip() or "（未命名，无 id）"


def _q(local: str) -> str:
    return f"{{{BPMN_NS}}}{local}"


def _short(tag: Any) -> str:
    tag = str(tag)
    for long, short in _NS_PREFIXES.items():
        tag = tag.replace(long, short)
    return tag


def _executable(process) -> bool:
    """Whether a process is marked executable; a missing ``isExecutable`` is false, the BPMN 2.0 default
    (SpiffWorkflow would read it as true, so a modeler's placeholder process would be taken as the real one)."""
    return process.get("isExecutable") == "true"          # exactly what SpiffWorkflow accepts (not "1")


def _drawn_processes(tree) -> list[Any]:
    """The processes of a file that have flow nodes (not the empty placeholders some modelers write)."""
    return [p for p in tree.getroot().iter(_q("process"))
            if any(isinstance(c.tag, str) and etree.QName(c).localname not in _NOT_TASK_SPECS for c in p)]


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
