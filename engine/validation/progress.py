"""Where a validation is: the step and element being checked, for the bounded worker to blame when a limit kills it.

The checks call :func:`at` before each step that may be slow (the XSD of a file, building a process with
SpiffWorkflow, evaluating a timer expression). In the web process nothing listens and a call costs a function call; in
the validation worker (:mod:`engine.validation.worker`) a listener writes each step to the pipe the web process reads,
so when the worker is killed for CPU time, memory or wall time, the problem names the element it was working on.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    what: str                      # in Chinese: 「构建流程 Process_1」, 「计算定时器表达式」
    file: str | None = None
    line: int | None = None
    element: str | None = None


_listener: Callable[[Step], None] | None = None


def listen(listener: Callable[[Step], None] | None) -> None:
    global _listener
    _listener = listener


def at(what: str, file: str | None = None, el=None, element: str | None = None) -> None:
    """Announce the next step (``el``: the lxml element it concerns, for its line and id)."""
    if _listener is None:
        return
    line = getattr(el, "sourceline", None) if el is not None else None
    if el is not None and element is None:
        element = el.get("id")
    _listener(Step(what, file, line if isinstance(line, int) else None, element))
