"""Whether SpiffWorkflow can build each runnable process (with its subprocesses), its messages explained."""
from __future__ import annotations

from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser

from ..spiff_messages import _DEFINITION_KINDS, one_line
from ..spiff_messages import spiff_text as _spiff_text
from . import progress
from .chinese import exception_detail
from .common import NS, Problem, _label, _owner

# ---- SpiffWorkflow ---------------------------------------------------------------------------------------


def _internal_node(exc: BaseException) -> Any:
    """The BPMN element SpiffWorkflow was reading when it failed inside (the deepest frame with one at hand)."""
    found, tb = None, exc.__traceback__
    while tb is not None:
        frame_locals = tb.tb_frame.f_locals
        candidates = [v for k, v in frame_locals.items() if k.endswith(("_event", "node"))]
        candidates.append(getattr(frame_locals.get("self"), "node", None))
        for value in candidates:
            if isinstance(value, etree._Element) and isinstance(value.tag, str):
                found = value
                break
        tb = tb.tb_next
    return found


def _internal_problem(exc: BaseException) -> tuple[str, str, Any]:
    """A failure inside SpiffWorkflow (a bug, not a validation message): what it could not read, never a bare
    ``TypeError: …``."""
    node = _internal_node(exc)
    if node is None:
        return "读取流程时 SpiffWorkflow 内部出错，无法判断是哪个元素", exception_detail(exc), None
    kind = etree.QName(node).localname
    base = kind.removesuffix("EventDefinition")
    what = _DEFINITION_KINDS.get(base.lower())
    gloss = f"读取元素 bpmn:{kind} 时 SpiffWorkflow 内部出错，无法读懂这个元素"
    if what and "raise_validation_exception" in str(exc):
        ref = one_line(node.get(f"{base}Ref") or "")
        ref = f"「{ref}」" if ref else ""
        gloss = f"事件引用的{what}{ref}在文件中找不到定义（{base}Ref 须是文件中某个 bpmn:{base} 的 id）"
    return gloss, exception_detail(exc), node


def _located(node: Any) -> tuple[str | None, int | None]:
    """The flow element a node belongs to (its id, for the modeler to show) and the node's own line."""
    return _owner(node).get("id"), node.sourceline


def _wrapped_internal(exc: Exception) -> BaseException | None:
    """The internal failure SpiffWorkflow's TaskParser wrapped as ``ValidationException("%r" % ex)``, if that is what
    ``exc`` is."""
    inner = exc.__context__
    if isinstance(exc, ValidationException) and inner is not None and not isinstance(inner, ValidationException) \
            and exc.args and str(exc.args[0]) == repr(inner):
        return inner
    return None


def _spiff_problem(exc: Exception, pid: str | None, name: str | None, trees: dict[str, Any]) -> Problem:
    """One SpiffWorkflow failure as a problem: Chinese message, SpiffWorkflow's text as detail, element and line."""
    file, line, element = name, None, None
    if isinstance(exc, ValidationException):
        file = exc.file_name or name
        line = exc.line_number if isinstance(exc.line_number, int) and exc.line_number > 0 else None
        element = exc.id or None
    inner = _wrapped_internal(exc) if isinstance(exc, ValidationException) else exc
    if inner is None:
        message, detail, dumped = _spiff_text(str(exc.args[0]) if exc.args else str(exc))
        element = element or dumped
    else:
        message, detail, node = _internal_problem(inner)
        if node is not None:
            element, line = _located(node)
    if line is None and element and file in trees:
        found = trees[file].getroot().xpath("//*[@id=$id]", id=element)
        line = found[0].sourceline if found else None
    where = _process_label(pid, trees.get(file)) if pid else "文件"
    return Problem(f"{where}无法由 SpiffWorkflow 构建：{message}", file, line, element, detail)


def _process_label(pid: str, tree: Any) -> str:
    """「流程「name」」 (by id when unnamed)."""
    found = tree.getroot().xpath("//bpmn:process[@id=$id]", namespaces=NS, id=pid) if tree is not None else []
    return f"流程「{_label(found[0]) if found else pid}」"


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
        progress.at(f"由 SpiffWorkflow 构建流程 {pid}", name, _process)
        try:
            parser.get_spec(pid)
            parser.get_subprocess_specs(pid)
        except Exception as exc:  # noqa: BLE001 - SpiffWorkflow's failures become problems
            out.append(_spiff_problem(exc, pid, name, trees))
