"""The ``show`` property of a user task: what its page shows beside the form, declared in the diagram.

A comma-separated list; each entry is either

* a variable name (``item``, ``correction_request``): its value in the task's data, with the title a form gives it
  (a service item with its department, time limit and materials; a dict field by field);
* a named view, written as a call:

  - ``application()`` — the application form as submitted, every field with its title (as the print view);
  - ``items()`` — the case's service items with department, decision and licence number or reason;
  - ``clock()`` / ``clock(expression)`` — a statutory clock in full (deadline, days used and left or overdue,
    pauses, extensions): the task's own, or the one whose key the expression gives (``clock(escalation['code'])``);
  - ``latest(Task_Id, there, here)`` — what was submitted the last time task ``Task_Id`` was done, if the
    expression ``there`` (in that task's data) equals ``here`` (in this task's data), e.g. the 督办 of this item:
    ``latest(Task_Supervise, escalation['code'], item['code'])``.

The engine (``engine.usecases.tasks``) reads it, validation (``engine.validation.rules``) checks it; arguments are
expressions run in the sandbox like every other property expression. Parsing only reads the syntax tree.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache

# name: (fewest, most arguments, how it is written in messages)
VIEWS: dict[str, tuple[int, int, str]] = {
    "application": (0, 0, "application()"),
    "items": (0, 0, "items()"),
    "clock": (0, 1, "clock() 或 clock(时限表达式)"),
    "latest": (3, 3, "latest(任务编号, 该任务中的表达式, 本任务中的表达式)"),
}
MAX_LENGTH = 2000


@dataclass(frozen=True)
class Entry:
    kind: str                     # "var", or the name of a view
    name: str = ""                # the variable, or for ``latest`` the task id
    args: tuple[str, ...] = ()    # expression sources (for ``latest``: there, here)


def views_text() -> str:
    return "、".join(v[2] for v in VIEWS.values())


@lru_cache(maxsize=512)
def parse(text: str) -> tuple[tuple[Entry, ...], tuple[str, ...]]:
    """The entries of a ``show`` value and the problems (Chinese) of the ones that are neither a name nor a view."""
    source = (text or "").strip().strip(",").strip()
    if not source:
        return (), ()
    if len(source) > MAX_LENGTH:
        return (), (f"属性 show 太长（至多 {MAX_LENGTH} 个字符）",)
    try:
        tree = ast.parse(f"({source},)", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return (), (f"属性 show 应为逗号分隔的变量名或视图（{views_text()}），「{source[:80]}」无法解析",)
    wrapped = f"({source},)"
    body = tree.body
    elements = body.elts if isinstance(body, ast.Tuple) else [body]
    entries: list[Entry] = []
    problems: list[str] = []
    for node in elements:
        segment = (ast.get_source_segment(wrapped, node) or "").strip()
        if isinstance(node, ast.Name):
            if node.id in VIEWS:
                problems.append(f"属性 show 中的视图 {node.id} 须写成 {VIEWS[node.id][2]}（带括号）")
            else:
                entries.append(Entry("var", node.id))
            continue
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)) or node.keywords:
            problems.append(f"属性 show 中的「{segment[:80]}」既不是变量名，也不是视图（{views_text()}）")
            continue
        view = node.func.id
        if view not in VIEWS:
            problems.append(f"属性 show 中的视图「{view}」不存在，可用：{views_text()}")
            continue
        low, high, written = VIEWS[view]
        if not low <= len(node.args) <= high or any(isinstance(a, ast.Starred) for a in node.args):
            problems.append(f"属性 show 中的视图 {view} 的参数不对，应写成 {written}")
            continue
        args = tuple((ast.get_source_segment(wrapped, a) or "").strip() for a in node.args)
        if view == "latest":
            if not isinstance(node.args[0], ast.Name):
                problems.append(f"属性 show 中 latest 的第一个参数应为用户任务的编号（如 Task_Supervise），"
                                f"「{args[0][:80]}」不是")
                continue
            entries.append(Entry(view, args[0], args[1:]))
        else:
            entries.append(Entry(view, "", args))
    return tuple(entries), tuple(problems)


def variables(text: str) -> list[str]:
    """The variable names a ``show`` value lists (not its views)."""
    return [e.name for e in parse(text)[0] if e.kind == "var"]
