"""Structural limits of a BPMN file, checked on the parsed tree before SpiffWorkflow sees it.

SpiffWorkflow's parser is recursive and quadratic in the number of flow nodes of a process: a chain of ~500 tasks
ends in ``RecursionError`` after minutes of CPU, 20,000 tasks take 85 s. Each limit below is refused with a Chinese
message naming the numbers, and a file over any of them gets no further checks (nothing slow runs on it).

The defaults leave a wide margin over what 帮办代办 needs (the real diagram has about 60 flow nodes, two levels of
subprocess, three processes per file); each can be changed with an environment variable of the same name in capitals
prefixed ``BANGBAN_`` (``BANGBAN_MAX_FLOW_NODES=600``), read when the limits are first used in a process.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from ..config import ints_from_env
from .common import BPMN_NS, Problem, _q

# Flow nodes of BPMN 2.0 (tasks, events, gateways, subprocesses, call activities).
FLOW_NODES = frozenset({
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask", "businessRuleTask",
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "implicitThrowEvent",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway",
    "subProcess", "transaction", "adHocSubProcess", "callActivity",
})
SUBPROCESSES = frozenset({"subProcess", "transaction", "adHocSubProcess"})


@dataclass(frozen=True)
class Limits:
    """Structural limits of one BPMN file."""

    max_flow_nodes: int = 300          # per process, counting the nodes inside its subprocesses (a chain of ~480
                                       # tasks exhausts Python's default recursion limit in SpiffWorkflow's parser)
    max_sequence_flows: int = 900      # per process, likewise
    max_subprocess_depth: int = 8      # subprocesses inside subprocesses, and call activities calling further ones
    max_processes: int = 30            # process elements per file
    max_xml_depth: int = 64            # element nesting of the whole XML document

    @classmethod
    def from_env(cls) -> "Limits":
        return ints_from_env(cls, "BANGBAN_")


_limits: Limits | None = None


def limits() -> Limits:
    """The limits of this process (from the environment, read once)."""
    global _limits
    if _limits is None:
        _limits = Limits.from_env()
    return _limits


def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) and etree.QName(el).namespace == BPMN_NS else ""


def _xml_depth(root, stop: int) -> tuple[int, Any]:
    """The nesting depth of the document (counted up to ``stop`` + 1: the walk ends as soon as it is exceeded), with
    the deepest element found."""
    deepest, where = 0, root
    stack = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if depth > deepest:
            deepest, where = depth, el
            if deepest > stop:
                break
        stack.extend((child, depth + 1) for child in el if isinstance(child.tag, str))
    return deepest, where


def _subprocess_depth(el, depth: int = 0) -> tuple[int, Any]:
    """How deep subprocesses nest below ``el`` (iteratively; the XML depth limit bounds the walk)."""
    deepest, where = depth, el
    stack = [(child, depth) for child in el]
    while stack:
        node, d = stack.pop()
        if _local(node) in SUBPROCESSES:
            d += 1
            if d > deepest:
                deepest, where = d, node
        stack.extend((child, d) for child in node)
    return deepest, where


def _name(el) -> str:
    return " ".join((el.get("name") or el.get("id") or "（未命名）").split())[:60]


def structure_problems(name: str, tree: Any, lim: Limits | None = None) -> list[Problem]:
    """Every limit one file breaks; empty when the file may go on to the slower checks."""
    lim = lim or limits()
    root = tree.getroot()
    depth, deepest = _xml_depth(root, lim.max_xml_depth)
    if depth > lim.max_xml_depth:
        return [Problem(f"XML 元素嵌套超过 {lim.max_xml_depth} 层上限，未做进一步检查（上限可请系统管理员调整）",
                        name, deepest.sourceline)]
    out: list[Problem] = []
    procs = list(root.iter(_q("process")))
    if len(procs) > lim.max_processes:
        out.append(Problem(f"文件中有 {len(procs)} 个流程（process），超过 {lim.max_processes} 个上限"
                           "（上限可请系统管理员调整）", name, procs[lim.max_processes].sourceline))
        return out
    for process in procs:
        nodes = flows = 0
        for el in process.iter():
            local = _local(el)
            nodes += local in FLOW_NODES
            flows += local == "sequenceFlow"
        label = f"流程「{_name(process)}」"
        if nodes > lim.max_flow_nodes:
            out.append(Problem(f"{label}有 {nodes} 个流程节点（任务、事件、网关、子流程），超过 {lim.max_flow_nodes} 个上限；"
                               "请拆分为子流程或调用活动（上限可请系统管理员调整）", name, process.sourceline,
                               process.get("id")))
        if flows > lim.max_sequence_flows:
            out.append(Problem(f"{label}有 {flows} 条顺序流，超过 {lim.max_sequence_flows} 条上限"
                               "（上限可请系统管理员调整）", name, process.sourceline, process.get("id")))
        sub_depth, where = _subprocess_depth(process)
        if sub_depth > lim.max_subprocess_depth:
            out.append(Problem(f"{label}的子流程嵌套 {sub_depth} 层，超过 {lim.max_subprocess_depth} 层上限"
                               "（上限可请系统管理员调整）", name, where.sourceline, where.get("id")))
    return out


def call_problems(trees: dict[str, Any], report: set[str], lim: Limits | None = None) -> list[Problem]:
    """Call activities across the files: no process may call itself (directly or through others), and a chain of
    calls, counted together with the subprocesses nested inside each process, stays within the nesting limit."""
    lim = lim or limits()
    every: dict[str, tuple[str, Any]] = {}
    for file, tree in trees.items():
        for p in tree.getroot().iter(_q("process")):
            if p.get("id"):
                every.setdefault(p.get("id"), (file, p))
    calls = {pid: [c for c in p.iter(_q("callActivity")) if c.get("calledElement") in every]
             for pid, (_f, p) in every.items()}
    own_depth = {pid: _subprocess_depth(p)[0] for pid, (_f, p) in every.items()}
    out: list[Problem] = []
    depth: dict[str, int] = {}

    def visit(pid: str, path: list[str]) -> int:
        if pid in depth:
            return depth[pid]
        deepest = own_depth[pid]
        for call in calls[pid]:
            target = call.get("calledElement")
            file = every[pid][0]
            if target in path or target == pid:
                if file in report:
                    cycle = " → ".join([*path[path.index(target):], target]) if target in path else f"{pid} → {pid}"
                    out.append(Problem(f"调用活动形成循环：{cycle}，办件会无限展开", file, call.sourceline, call.get("id")))
                continue
            deepest = max(deepest, 1 + visit(target, [*path, target]))
        depth[pid] = deepest
        return deepest

    for pid, (file, process) in every.items():
        found = visit(pid, [pid])
        if file in report and found > lim.max_subprocess_depth:
            out.append(Problem(f"流程「{_name(process)}」经调用活动与子流程嵌套 {found} 层，"
                               f"超过 {lim.max_subprocess_depth} 层上限（上限可请系统管理员调整）",
                               file, process.sourceline, pid))
    unique: list[Problem] = []
    for p in out:
        if p not in unique:
            unique.append(p)
    return unique
