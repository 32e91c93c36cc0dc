"""The messages the service sends (termination, extension) must be caught by the process."""
from __future__ import annotations

from typing import Any

from .. import processes
from .common import NS, Problem, _as_dict, _json_line, _q
from .context import _Context

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
