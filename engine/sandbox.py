"""Restricted execution of the Python a process owner writes in a diagram (scripts, conditions, expressions).

- Compiled with RestrictedPython: no names or attributes starting with ``_`` (no dunder access), attribute reads
  through a guard, no ``exec``/``eval``/``open``/``__import__`` — only the builtins in ``ALLOWED_BUILTINS`` and the
  helpers the process set offers (``catalogue_items``, ``clock_due`` ...).
- ``import`` statements and calls of forbidden builtins are refused when the diagram is validated.
- Bounded: every run has an instruction budget and a wall-time limit (a trace function counts lines), and the
  operators that can build huge values (``*``, ``**``, ``<<``) and ``range`` check the size of what they make.
A script that breaks a bound raises :class:`SandboxViolation`; the case's transaction is rolled back, the error is
reported to the process owner, and the service and other cases go on.
"""
from __future__ import annotations

import ast
import sys
import time
from functools import lru_cache
from typing import Any

from RestrictedPython import RestrictingNodeTransformer, compile_restricted
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)

from . import caches

MAX_LINES = 200_000          # line events per run
MAX_SECONDS = 1.0            # wall time per run
MAX_ITEMS = 1_000_000        # elements of a sequence built by * or range
MAX_INT_BITS = 100_000       # bits of an integer built by ** or <<

FORBIDDEN_NAMES = frozenset({
    "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr", "setattr", "delattr",
    "input", "breakpoint", "exit", "quit", "help", "memoryview", "type", "object", "super", "classmethod",
    "staticmethod", "property", "dir", "id", "hash", "print",
})


class SandboxViolation(Exception):
    """A diagram's code did something it may not (or ran too long, or built too much)."""


def _guarded_range(*args):
    r = range(*args)
    if len(r) > MAX_ITEMS:
        raise SandboxViolation(f"range 过大（超过 {MAX_ITEMS} 个元素）")
    return r


ALLOWED_BUILTINS: dict[str, Any] = {
    name: __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    for name in ("abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "int", "isinstance",
                 "len", "list", "map", "max", "min", "reversed", "round", "set", "sorted", "str", "sum", "tuple",
                 "zip", "True", "False", "None", "KeyError", "ValueError", "IndexError", "TypeError")
}
ALLOWED_BUILTINS["range"] = _guarded_range


def _size(value) -> int:
    try:
        return len(value)
    except TypeError:
        return 1


def _binop(op: str, a, b):
    if op == "Add":
        if isinstance(a, (str, bytes, list, tuple)) and isinstance(b, (str, bytes, list, tuple)) \
                and _size(a) + _size(b) > MAX_ITEMS:
            raise SandboxViolation("加法生成的序列过大")
        return a + b
    if op == "Mult":
        for seq, n in ((a, b), (b, a)):
            if isinstance(n, int) and isinstance(seq, (str, bytes, list, tuple)) and _size(seq) * max(n, 0) > MAX_ITEMS:
                raise SandboxViolation("乘法生成的序列过大")
        if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise SandboxViolation("乘法生成的整数过大")
        return a * b
    if op == "Pow":
        if isinstance(a, int) and isinstance(b, int) and b > 0 and a.bit_length() * b > MAX_INT_BITS:
            raise SandboxViolation("乘方生成的整数过大")
        return a ** b
    if op == "LShift":
        if isinstance(b, int) and (b > MAX_INT_BITS or (isinstance(a, int) and a.bit_length() + b > MAX_INT_BITS)):
            raise SandboxViolation("移位生成的整数过大")
        return a << b
    raise SandboxViolation(f"不支持的运算 {op}")


class _Transformer(RestrictingNodeTransformer):
    """RestrictedPython's rules, plus: no imports, no forbidden builtins, size-checked ``* ** <<``."""

    def visit_Import(self, node):
        self.error(node, "不允许导入模块（import）")
        return node

    visit_ImportFrom = visit_Import

    def visit_Name(self, node):
        if node.id in FORBIDDEN_NAMES:
            self.error(node, f"不允许使用 {node.id}")
        return super().visit_Name(node)

    def visit_BinOp(self, node):
        node = self.node_contents_visit(node)
        op = type(node.op).__name__
        if op in ("Add", "Mult", "Pow", "LShift"):
            call = ast.Call(func=ast.Name(id="_binop_", ctx=ast.Load()), args=[ast.Constant(op), node.left, node.right],
                            keywords=[])
            return ast.fix_missing_locations(ast.copy_location(call, node))
        return node

    def visit_AugAssign(self, node):
        if type(node.op).__name__ in ("Mult", "Pow", "LShift"):
            self.error(node, "不允许使用 *=、**=、<<=，请写成普通赋值")
        return super().visit_AugAssign(node)


def _message(errors) -> str:
    text = "；".join(str(e) for e in errors)
    return text.replace("is an invalid attribute name because it starts with \"_\"", "是以下划线开头的属性，不允许访问") \
               .replace("is an invalid variable name because it starts with \"_\"", "是以下划线开头的名字，不允许使用")


@lru_cache(maxsize=4096)
def _compile(source: str, mode: str):
    return compile_restricted(source, filename="<流程脚本>", mode=mode, policy=_Transformer)


def check(source: str, mode: str) -> list[str]:
    """Problems that make ``source`` unacceptable (``mode``: ``eval`` for expressions, ``exec`` for scripts)."""
    try:
        _compile(source, mode)
    except SyntaxError as exc:
        detail = exc.args[0] if exc.args else str(exc)
        if isinstance(detail, (tuple, list)):
            return [_message(detail)]
        return [f"语法错误：{detail}"]
    return []


_MISSING = object()
DENIED_ATTRIBUTES = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "format", "format_map", "mro"})


def _guarded_getattr(obj, name, default=_MISSING):
    """Attribute reads: RestrictedPython's guard, no padding/formatting methods that build huge strings, and a
    missing attribute is an error (not a silent None)."""
    if name in DENIED_ATTRIBUTES:
        raise SandboxViolation(f"不允许使用 {name}")
    value = safer_getattr(obj, name, _MISSING)
    if value is _MISSING:
        if default is not _MISSING:
            return default
        raise AttributeError(f"{type(obj).__name__} 没有属性 {name}")
    return value


def _globals(extra: dict) -> dict:
    g = {"__builtins__": ALLOWED_BUILTINS, "_getattr_": _guarded_getattr, "_getitem_": lambda o, k: o[k],
         "_getiter_": iter, "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
         "_unpack_sequence_": guarded_unpack_sequence, "_write_": lambda o: o, "_binop_": _binop,
         "_inplacevar_": _inplacevar}
    g.update(extra)
    return g


def _inplacevar(op: str, a, b):
    ops = {"+=": lambda: _binop("Add", a, b), "-=": lambda: a - b, "/=": lambda: a / b, "//=": lambda: a // b,
           "%=": lambda: a % b, "|=": lambda: a | b, "&=": lambda: a & b, "^=": lambda: a ^ b, ">>=": lambda: a >> b}
    if op not in ops:
        raise SandboxViolation(f"不支持的运算 {op}")
    return ops[op]()


class _Budget:
    """A trace function that stops a run after too many lines or too much time."""

    def __init__(self):
        self.lines = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def __call__(self, frame, event, arg):
        if event == "line":
            self.lines += 1
            if self.lines > MAX_LINES or (self.lines % 1000 == 0 and time.monotonic() > self.deadline):
                raise SandboxViolation("流程脚本运行超时（可能是死循环）")
        return self


@lru_cache(maxsize=4096)
def _may_loop(source: str, mode: str) -> bool:
    """Scripts may loop; an expression only through a comprehension, a generator or a lambda. Expressions that
    cannot loop run without the (costly) line-counting trace: each of their steps is bounded already."""
    if mode == "exec":
        return True
    tree = ast.parse(source, mode="eval")
    return any(isinstance(n, (ast.comprehension, ast.Lambda, ast.GeneratorExp)) for n in ast.walk(tree))


def _run(code, g: dict, locals_: dict | None, mode: str, source: str = ""):
    if mode == "eval" and not _may_loop(source, mode):
        return eval(code, g, locals_)  # noqa: S307 - restricted code object
    previous = sys.gettrace()
    sys.settrace(_Budget())
    try:
        if mode == "eval":
            return eval(code, g, locals_)  # noqa: S307 - restricted code object
        exec(code, g, locals_)  # noqa: S102 - restricted code object
        return None
    finally:
        sys.settrace(previous)


def _code(source: str, mode: str):
    problems = check(source, mode)
    if problems:
        raise SandboxViolation("；".join(problems))
    return _compile(source, mode)


def evaluate(source: str, context: dict, helpers: dict) -> Any:
    g = _globals(helpers)
    g.update(context)
    return _run(_code(source, "eval"), g, None, "eval", source)


def execute(source: str, context: dict, helpers: dict) -> None:
    """Run a script; names it assigns end up in ``context``."""
    g = _globals(helpers)
    g.update(context)
    before = set(g)
    _run(_code(source, "exec"), g, None, "exec")
    for name, value in g.items():
        if name in context or name not in before:
            if not name.startswith("_") and name not in helpers and name != "__builtins__" and not callable(value):
                context[name] = value


caches.register(_compile.cache_clear)
caches.register(_may_loop.cache_clear)
