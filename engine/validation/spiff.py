"""Whether SpiffWorkflow can build each runnable process (with its subprocesses), its messages explained."""
from __future__ import annotations

import re
from typing import Any

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from .common import Problem

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
