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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import documents as document_templates
from .. import processes
from ..errors import BangbanError
from . import progress
from .chinese import exception_detail, explain_exception
from .common import EXPRESSION_PROPERTIES, Problem, _as_dict, _runnable_processes, verdict
from .context import _cached_context, _Context, _context, _manifest_problems
from .expressions import _TimerBudget
from .limits import call_problems, structure_problems
from .messages import _message_problems
from .notices import notice_problems
from .rules import _FileChecker
from .spiff import _spiff_build
from .xmlsafety import _parse_xml, _read_bpmn, _xsd_problems

__all__ = ["EXPRESSION_PROPERTIES", "Problem", "validate_bpmn_file", "validate_set", "verdict", "_parse_xml"]

# ---- the public entry points -----------------------------------------------------------------------------


@contextmanager
def _guard(out: list[Problem], file: str | None = None) -> Iterator[None]:
    """Turn an unexpected failure of one check into a problem, so the other checks still run."""
    try:
        yield
    except BangbanError as exc:
        out.append(Problem(f"无法解析：{exc.message}", file))
    except MemoryError:
        raise                   # the bounded worker reports it for the step it was on (engine.validation.worker)
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        out.append(Problem(f"无法解析：{explain_exception(exc)}", file, detail=exception_detail(exc)))


def _order(problems: list[Problem], files: list[str]) -> list[Problem]:
    """The problems without repeats, by file and line. Linear in their number: a set within the structural limits
    may have tens of thousands (a task without a form each), and the bounded worker would spend its CPU time here."""
    progress.at("整理问题列表")
    rank = {name: i for i, name in enumerate(files)}
    unique = list({(p.message, p.file, p.line, p.element, p.detail): p for p in problems}.values())
    return sorted(unique, key=lambda p: (p.file is not None, rank.get(p.file or "", len(rank)), p.line or 0))


def _within_limits(trees: dict[str, Any], report: set[str], out: list[Problem]) -> None:
    """Drop from ``trees`` the files over a structural limit (:mod:`.limits`): they get no slower check; nor does any
    file of a set whose call activities loop or nest too deep."""
    for name, tree in list(trees.items()):
        progress.at("检查文件结构", name)
        broken = structure_problems(name, tree)
        if name in report:
            out.extend(broken)
        if broken:
            del trees[name]
    calls = call_problems(trees, report)
    out.extend(calls)
    if calls:
        trees.clear()


def _check_trees(trees: dict[str, Any], report: set[str], ctx: _Context | None, wanted: set[str],
                 out: list[Problem]) -> dict[str, tuple[str, Any]]:
    _within_limits(trees, report, out)
    runnable = _runnable_processes(trees, wanted)
    budget = _TimerBudget()
    for name in trees:
        if name in report:
            progress.at("按 BPMN 2.0 XML Schema 检查", name)
            with _guard(out, name):
                out.extend(_xsd_problems(name, trees[name]))
            progress.at("检查流程规则", name)
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
        with _guard(out):
            out.extend(Problem(m, f) for f, m in document_templates.template_problems_by_file(files))
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
            with _guard(out, "notifications.json"):
                out.extend(notice_problems(ctx, files, trees))
        if not out:
            progress.at("加载整套流程")
            with _guard(out):
                _final_build(files, out)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        out.append(Problem(f"无法解析：{explain_exception(exc)}", detail=exception_detail(exc)))
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
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        out.append(Problem(f"无法解析：{explain_exception(exc)}", name, detail=exception_detail(exc)))
    return _order(out, [name])
