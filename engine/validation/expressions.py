"""Expressions: sandbox checks, service items named in them, timer expressions evaluated on a sample context."""
from __future__ import annotations

import ast
import time
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from .. import sandbox
from .chinese import exception_detail, explain_exception, one_line, value_kind
from .common import _TIMER_KINDS, MAX_TIMER_SECONDS

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


def _evaluate_timer(kind: str, source: str, tree: ast.AST, helpers: dict) -> tuple[str, str | None] | None:
    """Evaluate a timer expression in the sandbox against sample data: (why it is wrong, original detail), or None."""
    tracker = _Tracker()
    context = {n: _Sample(tracker) for n in _free_names(tree)
               if n not in helpers and n not in sandbox.ALLOWED_BUILTINS}
    try:
        value = sandbox.evaluate(source, context, helpers)
    except sandbox.SandboxViolation as exc:
        return f"定时器表达式求值被沙箱拒绝：{one_line(exc)}", None
    except Exception as exc:  # noqa: BLE001 - any failure of diagram code is a finding
        return f"定时器表达式无法求值：{explain_exception(exc).removeprefix('程序内部错误：')}", exception_detail(exc)
    if isinstance(value, _Sample):
        return None             # the value comes straight from case data: nothing to judge before a case runs
    if not isinstance(value, str):
        return f"定时器表达式的结果应为 ISO-8601 {_TIMER_KINDS[kind]}字符串（如 {_ISO_EXAMPLE[kind]}），实际是" \
               f"{value_kind(value)}", None
    return _timer_value_problem(kind, value, tracker)


def _timer_value_problem(kind: str, value: str, tracker: _Tracker) -> tuple[str, str | None] | None:
    """Whether the string a timer expression gave is an ISO-8601 value of its kind."""
    try:
        _parse_timer(kind, value)
    except Exception as exc:  # noqa: BLE001 - SpiffWorkflow's parsers raise bare Exception
        if tracker.touched:
            return None         # built from case data: the sample values prove nothing
        reason = str(exc) if isinstance(exc, ValueError) and "timeDate" in str(exc) else "无法解析"
        shown = one_line(value)[:60]
        return f"定时器表达式的结果「{shown}」不是 ISO-8601 {_TIMER_KINDS[kind]}（{reason}；如 {_ISO_EXAMPLE[kind]}）", None
    return None


class _TimerBudget:
    """Wall time left for evaluating timers in one validation (a file of many slow timers must not stall it)."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_TIMER_SECONDS
        self.reported = False

    def exhausted(self) -> bool:
        return time.monotonic() > self.deadline
