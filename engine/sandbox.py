"""Restricted execution of the Python a process owner writes in a diagram (scripts, conditions, expressions).

- Compiled with RestrictedPython: no names or attributes starting with ``_`` (no dunder access), attribute reads
  through a guard, no ``exec``/``eval``/``open``/``__import__`` — only the builtins in ``ALLOWED_BUILTINS`` and the
  helpers the process set offers (``catalogue_items``, ``clock_due`` ...).
- ``import`` statements and calls of forbidden builtins are refused when the diagram is validated.
- Bounded: every run has a line budget, a wall-time limit (both checked by a trace function on every line of the
  diagram's code) and a memory ceiling (the process's resident size, checked every few lines and before large
  allocations). What one C call can build or walk — ``* ** << + %``, f-string fields, comparisons, tuple displays,
  ``str() sum() sorted() min() max() round() int() tuple() set() dict() zip() range()`` and the string and list
  methods that grow values — goes through the size guards of :mod:`engine.sandbox_calls` and
  :mod:`engine.sandbox_guards`, which refuse before building.
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

from . import caches, sandbox_calls, sandbox_format
from .sandbox_guards import (  # noqa: F401 - the limits are part of this module's interface
    MAX_DEPTH,
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_MEMORY_MB,
    MAX_TEXT,
    MAX_WIDTH,
    MAX_WORK,
    SandboxViolation,
    begin_run,
    check_kept,
    check_memory,
    end_run,
)

MAX_LINES = 200_000          # line events per run
MAX_SECONDS = 1.0            # wall time per run
MEMORY_EVERY = 16            # lines between two checks of the process's memory
FILENAME = "<流程脚本>"

FORBIDDEN_NAMES = frozenset({
    "open", "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr", "setattr", "delattr",
    "input", "breakpoint", "exit", "quit", "help", "memoryview", "type", "object", "super", "classmethod",
    "staticmethod", "property", "dir", "id", "hash", "print",
})


ALLOWED_BUILTINS: dict[str, Any] = {
    name: __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    for name in ("abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "int", "isinstance",
                 "len", "list", "map", "max", "min", "reversed", "round", "set", "sorted", "str", "sum", "tuple",
                 "zip", "True", "False", "None", "KeyError", "ValueError", "IndexError", "TypeError")
}
ALLOWED_BUILTINS.update(sandbox_calls.BUILTINS)
_binop = sandbox_calls.binop


def _call(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=list(args), keywords=[])


class _Transformer(RestrictingNodeTransformer):
    """RestrictedPython's rules, plus: no imports, no forbidden builtins, no ``*args`` parameters; size-checked
    ``* ** << + %``, comparisons, f-string fields and tuple displays (calls of :mod:`engine.sandbox_calls`)."""

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
        if op in ("Add", "Mult", "Pow", "LShift", "Mod"):
            call = _call("_binop_", ast.Constant(op), node.left, node.right)
            return ast.fix_missing_locations(ast.copy_location(call, node))
        return node

    def visit_Compare(self, node):
        node = self.node_contents_visit(node)
        ops = [type(op).__name__ for op in node.ops]
        operands = [node.left, *node.comparators]
        if all(op in ("Is", "IsNot") for op in ops) or all(isinstance(x, ast.Constant) for x in operands):
            return node
        if len(ops) == 1:
            call = _call("_compare_", ast.Constant(ops[0]), node.left, node.comparators[0])
            return ast.fix_missing_locations(ast.copy_location(call, node))
        wrapped = [x if isinstance(x, ast.Constant) else ast.copy_location(_call("_operand_", x), x) for x in operands]
        node.left, node.comparators = wrapped[0], wrapped[1:]
        return ast.fix_missing_locations(node)

    def visit_FormattedValue(self, node):
        """``{value!c:spec}`` becomes ``{_format_(value, c, spec)}``: widths checked, str()/repr() bounded."""
        node = self.node_contents_visit(node)
        spec = node.format_spec if node.format_spec is not None else ast.Constant("")
        call = _call("_format_", node.value, ast.Constant(node.conversion), spec)
        new = ast.FormattedValue(value=ast.copy_location(call, node.value), conversion=-1, format_spec=None)
        return ast.fix_missing_locations(ast.copy_location(new, node))

    def visit_Tuple(self, node):
        """A tuple may be hashed, and hashing walks it: built tuples are bounded in size and nesting."""
        node = super().visit_Tuple(node)
        if isinstance(node.ctx, ast.Load) and not all(isinstance(e, ast.Constant) for e in node.elts):
            return ast.fix_missing_locations(ast.copy_location(_call("_tuple_", node), node))
        return node

    def visit_Starred(self, node):
        """``*value`` in a display or a call copies ``value``: bounded (``[*L, *L, ...]`` on one line)."""
        node = super().visit_Starred(node)
        if isinstance(node.ctx, ast.Load):
            node.value = ast.fix_missing_locations(ast.copy_location(_call("_spread_", node.value), node.value))
        return node

    def visit_keyword(self, node):
        """``**value`` in a call copies ``value`` into the keyword arguments: bounded like ``*value``."""
        node = super().visit_keyword(node)
        if node.arg is None:
            node.value = ast.fix_missing_locations(ast.copy_location(_call("_spread_", node.value), node.value))
        return node

    def visit_Dict(self, node):
        node = super().visit_Dict(node)
        node.values = [ast.fix_missing_locations(ast.copy_location(_call("_spread_", v), v)) if k is None else v
                       for k, v in zip(node.keys, node.values, strict=True)]
        return node

    def visit_Set(self, node):
        """A set display hashes its elements: ``{*L}`` is bounded like ``set(L)``."""
        node = super().visit_Set(node)
        if any(isinstance(e, ast.Starred) for e in node.elts):
            return ast.fix_missing_locations(ast.copy_location(_call("set", ast.List(elts=node.elts, ctx=ast.Load())),
                                                               node))
        return node

    def _no_varargs(self, node):
        if node.args.vararg is not None:
            self.error(node, f"不允许使用 *{node.args.vararg.arg} 形式的参数")

    def visit_Lambda(self, node):
        self._no_varargs(node)
        return super().visit_Lambda(node)

    def visit_FunctionDef(self, node):
        self._no_varargs(node)
        return super().visit_FunctionDef(node)

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
    return compile_restricted(source, filename=FILENAME, mode=mode, policy=_Transformer)


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
DENIED_ATTRIBUTES = frozenset({"format", "format_map", "mro", "from_bytes"})   # attribute escapes, unbounded ints


def _guarded_getattr(obj, name, default=_MISSING):
    """Attribute reads: RestrictedPython's guard; no ``str.format`` (it reads attributes itself) or
    ``int.from_bytes``; size-checked stand-ins for the methods that grow values (``replace``, ``join``, ``ljust``
    ...); and a missing attribute is an error (not a silent None)."""
    if name in DENIED_ATTRIBUTES:
        raise SandboxViolation(f"不允许使用 {name}")
    value = safer_getattr(obj, name, _MISSING)
    if value is _MISSING:
        if default is not _MISSING:
            return default
        raise AttributeError(f"{type(obj).__name__} 没有属性 {name}")
    return sandbox_calls.guarded_method(obj, name, value)


def _globals(extra: dict) -> dict:
    g = {"__builtins__": ALLOWED_BUILTINS, "_getattr_": _guarded_getattr, "_getitem_": sandbox_calls.getitem,
         "_getiter_": iter, "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
         "_unpack_sequence_": guarded_unpack_sequence, "_write_": lambda o: o, "_binop_": _binop,
         "_inplacevar_": _inplacevar, "_compare_": sandbox_calls.compare, "_operand_": sandbox_calls.operand,
         "_format_": sandbox_format.format_field, "_tuple_": sandbox_calls.check_tuple,
         "_spread_": sandbox_calls.spread, "_apply_": _apply}
    g.update(extra)
    return g


def _apply(function, *args, **kwargs):
    """A call with ``*args`` or ``**kwargs`` (RestrictedPython compiles ``f(*a, **k)`` into ``_apply_(f, *a, **k)``);
    what is spread was bounded by ``_spread_``; keyword names starting with ``_`` are refused like such names."""
    if any(name.startswith("_") for name in kwargs):
        raise SandboxViolation("不允许使用以下划线开头的参数名")
    return function(*args, **kwargs)


def _inplacevar(op: str, a, b):
    ops = {"+=": lambda: _binop("Add", a, b), "-=": lambda: a - b, "/=": lambda: a / b, "//=": lambda: a // b,
           "%=": lambda: _binop("Mod", a, b), "|=": lambda: a | b, "&=": lambda: a & b, "^=": lambda: a ^ b,
           ">>=": lambda: a >> b}
    if op not in ops:
        raise SandboxViolation(f"不支持的运算 {op}")
    return ops[op]()


class _Budget:
    """The trace function of a run: on every line of the diagram's code (other frames are not traced) it counts
    the line and checks the wall time; every ``MEMORY_EVERY`` lines, the process's memory."""

    def __init__(self):
        self.lines = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def __call__(self, frame, event, arg):
        if event == "call":
            return self if frame.f_code.co_filename == FILENAME else None
        if event == "line":
            self.lines += 1
            if self.lines > MAX_LINES or time.monotonic() > self.deadline:
                raise SandboxViolation("流程脚本运行超时（可能是死循环）")
            if self.lines % MEMORY_EVERY == 0:
                check_memory()
        return self


@lru_cache(maxsize=4096)
def _may_loop(source: str, mode: str) -> bool:
    """Scripts may loop; an expression only through a comprehension, a generator or a lambda. Expressions that
    cannot loop run without the (costly) line-counting trace: each of their steps is bounded already."""
    if mode == "exec":
        return True
    tree = ast.parse(source, mode="eval")
    return any(isinstance(n, (ast.comprehension, ast.Lambda, ast.GeneratorExp)) for n in ast.walk(tree))


def _run(code, g: dict, mode: str, source: str = ""):
    """Run compiled code; a ``MemoryError`` (an address-space limit reached) is reported as a violation."""
    traced = mode == "exec" or _may_loop(source, mode)
    account = begin_run(time.monotonic() + MAX_SECONDS)
    previous = sys.gettrace()
    if traced:
        sys.settrace(_Budget())
    try:
        if mode == "eval":
            return eval(code, g)  # noqa: S307 - restricted code object
        exec(code, g)  # noqa: S102 - restricted code object
        return None
    except MemoryError:
        raise SandboxViolation("流程脚本占用内存超过服务器允许的上限") from None
    finally:
        if traced:
            sys.settrace(previous)
        end_run(account)


def _code(source: str, mode: str):
    problems = check(source, mode)
    if problems:
        raise SandboxViolation("；".join(problems))
    return _compile(source, mode)


def evaluate(source: str, context: dict, helpers: dict) -> Any:
    """The value of an expression (a condition, a property, a timer); bounded like a script's values."""
    g = _globals(helpers)
    g.update(context)
    value = _run(_code(source, "eval"), g, "eval", source)
    check_kept("表达式的结果", value)
    return value


def execute(source: str, context: dict, helpers: dict) -> None:
    """Run a script; names it assigns end up in ``context``."""
    g = _globals(helpers)
    g.update(context)
    before = dict(g)
    _run(_code(source, "exec"), g, "exec")
    for name, value in g.items():
        if name in context or name not in before:
            if not name.startswith("_") and name not in helpers and name != "__builtins__" and not callable(value):
                if before.get(name, _MISSING) is not value:
                    check_kept(name, value)
                context[name] = value


caches.register(_compile.cache_clear)
caches.register(_may_loop.cache_clear)
