"""How a failure of a diagram's code becomes the error of the step that ran it.

SpiffWorkflow wraps whatever a script or condition raised in its own exception; the cause stays in the chain.
A :class:`~engine.sandbox.SandboxViolation` (too long, too much memory, too large a value) or a ``MemoryError``
(an address-space limit reached) is the diagram's fault, not the server's and not the user's: the step is refused
with :class:`ScriptRefused` — a 4xx with a Chinese message naming the element — the case's transaction rolls back
and the process owners are notified (the use cases do both for every :class:`ProcessDefinitionError`).
"""
from __future__ import annotations

from .errors import BangbanError, ProcessDefinitionError
from .sandbox import SandboxViolation
from .spiff_messages import exception_detail, exception_kind, spiff_text

MEMORY_MESSAGE = "流程脚本占用内存超过服务器允许的上限"


class ScriptRefused(ProcessDefinitionError):
    """A diagram's code broke a bound of the sandbox; the case is left as it was and the process owners are told."""

    status = 422
    code = "process_script_refused"


def limit_behind(exc: BaseException | None) -> BaseException | None:
    """The sandbox violation or ``MemoryError`` in ``exc``'s chain of causes, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (SandboxViolation, MemoryError)):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _element(exc: BaseException) -> str:
    """「元素「名称」：」 for the task whose code failed, when SpiffWorkflow says which one."""
    spec = getattr(getattr(exc, "task", None), "task_spec", None)
    name = getattr(spec, "bpmn_name", None) or getattr(spec, "bpmn_id", None)
    return f"元素「{' '.join(str(name).split())}」：" if name else ""


def _code_failure(exc: BaseException | None) -> BaseException | None:
    """What the diagram's code itself raised (``NameError``, ``KeyError`` ...) under SpiffWorkflow's wrapping; None
    when the failure is SpiffWorkflow's own."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if not type(exc).__module__.startswith("SpiffWorkflow") and not isinstance(exc, BangbanError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def step_error(prefix: str, exc: BaseException) -> ProcessDefinitionError:
    """The error of a step whose diagram code raised ``exc``: ``prefix`` followed by what went wrong, in Chinese;
    the original text is kept as ``original`` (for the process owners' notification, not for the user)."""
    limit = limit_behind(exc)
    if limit is None:
        failure = _code_failure(exc)
        if failure is not None:
            message, original = f"代码出错：{exception_kind(failure) or '运行时异常'}", exception_detail(failure)
        else:
            message, original, _ = spiff_text(str(exc.args[0]) if exc.args else str(exc))
        error = ProcessDefinitionError(f"{prefix}{_element(exc)}{message}")
        error.original = original
        return error
    reason = str(limit) if isinstance(limit, SandboxViolation) else MEMORY_MESSAGE
    return ScriptRefused(f"{prefix}{_element(exc)}{reason}")
