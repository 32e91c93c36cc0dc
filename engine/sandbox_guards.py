"""Size guards of the sandbox: what a single C call of a diagram's code may build or walk.

The line trace of :mod:`engine.sandbox` bounds loops, but it sees nothing inside one C call: ``'%0999999999d' % 0``,
``str([[0]*10**6]*10**6)`` or ``sorted([[0]*10**6]*10**6)`` are one call each and build gigabytes or run for hours.
Every such call the sandbox lets a script reach goes through a guard here that estimates the cost *before* the
call — the length of the string it builds, the elements it walks — and refuses (:class:`SandboxViolation`, with a
Chinese message) what is over a limit. Estimates walk values with a budget and stop as soon as the budget is spent,
so a guard costs at most about its limit, never the size of a (possibly shared, nested) value.

The process's resident memory is checked as well (:func:`check_memory`): by the line trace every few lines, and by
a guard before each large allocation, against the resident size when the run started.
"""
from __future__ import annotations

import math
import os
import threading
import time
from itertools import chain, islice, repeat, takewhile

MAX_ITEMS = 1_000_000        # elements of a sequence built by * + range or list methods
MAX_INT_BITS = 100_000       # bits of an integer built by ** << * or int()
MAX_TEXT = 2_000_000         # characters of a string built by formatting, replace, join, padding, str()
MAX_WIDTH = 10_000           # a width or precision in a format (f-string, %, ljust/center/rjust/zfill, expandtabs)
MAX_WORK = 4_000_000         # elements and characters one call may walk: str() of a container, == < in, sorted,
                             # min, max, hashing a tuple
MAX_DEPTH = 100              # nesting of containers in a value a script builds or keeps
MAX_MEMORY_MB = 256          # growth of the process's resident memory during one run
BIG = 65_536                 # from this many elements/characters a guard checks the memory before building


class SandboxViolation(Exception):
    """A diagram's code did something it may not (or ran too long, or built too much)."""


# ---- memory -----------------------------------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_run = threading.local()      # .rss0: resident bytes when the current run started (None: not measured yet);
                              # .deadline: when the current run times out
_statm: dict[int, int] = {}   # pid -> open descriptor of /proc/self/statm (re-opened after a fork)


def resident_bytes() -> int:
    """The process's resident set size, from ``/proc/self/statm`` (0 where there is no /proc)."""
    pid = os.getpid()
    fd = _statm.get(pid)
    try:
        if fd is None:
            fd = _statm[pid] = os.open("/proc/self/statm", os.O_RDONLY)
        return int(os.pread(fd, 64, 0).split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def begin_run(deadline: float) -> object:
    """Start the memory account of a run that times out at ``deadline`` (``time.monotonic``). The memory baseline
    is read at the first check — the first large allocation (guards check before building) or a line of a loop —
    so the many tiny runs (a condition, a one-line script) never read it. Returns what :func:`end_run` restores."""
    previous = (getattr(_run, "rss0", None), getattr(_run, "deadline", None))
    _run.rss0, _run.deadline = None, deadline
    return previous


def end_run(previous) -> None:
    _run.rss0, _run.deadline = previous


def check_pace() -> None:
    """Inside one C call that calls back into Python (``map``, ``filter``, a sort key, ``list()`` of an iterator):
    the wall time and the memory, which the line trace cannot see there."""
    deadline = getattr(_run, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise SandboxViolation("流程脚本运行超时（可能是死循环）")
    check_memory()


def check_memory() -> None:
    """Refuse to go on when the process grew by more than ``MAX_MEMORY_MB`` since the run started."""
    rss0 = getattr(_run, "rss0", None)
    if rss0 is None:
        _run.rss0 = resident_bytes()
        return
    if rss0 and resident_bytes() - rss0 > MAX_MEMORY_MB * 1024 * 1024:
        raise SandboxViolation(f"流程脚本占用内存超过 {MAX_MEMORY_MB} MB 上限")


def check_text(length: int, what: str) -> None:
    """A string of about ``length`` characters is about to be built."""
    if length > MAX_TEXT:
        raise SandboxViolation(f"{what}生成的字符串过长（约 {length} 个字符，上限 {MAX_TEXT}）")
    if length >= BIG:
        check_memory()


def paced(iterator):
    """``map``/``filter`` checked every ``PACE`` elements: a C function applied to a million references to one big
    string (``all(map(str.upper, L))``) is one C call for the trace; here time and memory are checked as it goes.
    The iteration stays in C (no Python frame per element, which the trace would be called for)."""
    return chain.from_iterable(takewhile(bool, map(_next_chunk, repeat(iterator))))


PACE = 64


def _next_chunk(iterator) -> list:
    check_pace()
    return list(islice(iterator, PACE))


def check_items(count: int, what: str) -> None:
    """A sequence of ``count`` elements is about to be built."""
    if count > MAX_ITEMS:
        raise SandboxViolation(f"{what}生成的序列过大（{count} 个元素，上限 {MAX_ITEMS}）")
    if count >= BIG:
        check_memory()


def check_width(value, what: str = "格式") -> None:
    if isinstance(value, int) and value > MAX_WIDTH:
        raise SandboxViolation(f"{what}的宽度或精度 {value} 超过上限 {MAX_WIDTH}")


# ---- walking values with a budget --------------------------------------------------------------------------
_SCALARS = frozenset({int, float, bool, type(None), complex})
_SEQUENCES = (list, tuple, set, frozenset)
CONTAINERS = frozenset({list, tuple, set, frozenset, dict})


_END = object()
_WALKED = frozenset({list, tuple, set, frozenset, dict})
_TEXT = frozenset({str, bytes})
_NOTHING = iter(())


def weight(value, limit: int = MAX_WORK) -> int:
    """About how many elements and characters a full walk of ``value`` visits — what ``str()``, ``==`` or a sort
    of it costs, each shared reference counted again — or something over ``limit`` as soon as the walk passes it;
    nesting deeper than ``MAX_DEPTH`` is refused (hashing such a tuple overflows the C stack). The walk's own cost
    is bounded by ``limit``: a container's length is counted before its elements are looked at, and its elements
    are taken one by one."""
    flat = _flat_weight(value)
    if flat is not None:
        return flat
    total = _own_weight(value)
    stack = [_nested(value)]
    flat: dict[int, int] = {}      # id -> weight of the containers seen with nothing nested (shared ones recur)
    while stack and total <= limit:
        v = next(stack[-1], _END)
        if v is _END:
            stack.pop()
            continue
        if id(v) in flat:
            total += flat[id(v)]
            continue
        own = _own_weight(v)
        total += own
        if total <= limit and type(v) in _WALKED:
            if len(stack) >= MAX_DEPTH:
                raise SandboxViolation(f"数据嵌套超过 {MAX_DEPTH} 层")
            nested = _nested(v)
            if nested is _NOTHING:
                flat[id(v)] = own
            else:
                stack.append(nested)
    return total




_FLAT = _SCALARS | _TEXT


def _flat_weight(v) -> int | None:
    """The weight of a scalar, a string, or a container of scalars and strings (most values: a form's fields, a
    catalogue item) without a walk; None for a container with containers inside."""
    t = type(v)
    if t in _TEXT:
        return len(v) + 2
    if t not in _WALKED:
        return 2
    parts = (v.values(), v) if t is dict else (v,)
    total = len(v) + 2
    for part in parts:
        if len(v) > 64:                                   # large: type checks in C
            if not _FLAT.issuperset(map(type, part)):
                return None
            total += sum(len(x) + 2 for x in part if type(x) in _TEXT)
            continue
        for x in part:
            tx = type(x)
            if tx in _TEXT:
                total += len(x) + 2
            elif tx not in _SCALARS:
                return None
    return total


def _own_weight(v) -> int:
    """The part of ``v``'s weight that needs no walk: its length, and the characters of a flat list of strings."""
    t = type(v)
    if t in _TEXT:
        return len(v) + 2
    if t not in _WALKED:
        return 2
    if t is not dict and set(map(type, v)) <= _TEXT:
        return len(v) + 2 + sum(map(len, v))
    return len(v) + 2


def _nested(v):
    """The elements of ``v`` that :func:`weight` has to look at (not scalars, not the strings already counted)."""
    t = type(v)
    if t is dict:
        return (x for kv in v.items() for x in kv if type(x) not in _SCALARS)
    if t not in _WALKED:
        return _NOTHING
    types = set(map(type, v))
    if types <= _SCALARS or types <= _TEXT:
        return _NOTHING
    return (x for x in v if type(x) not in _SCALARS)


def check_work(value, what: str, limit: int = MAX_WORK) -> None:
    """Refuse a call that would walk ``value`` (a container) in full when that is over ``limit``."""
    if type(value) in CONTAINERS and weight(value, limit) > limit:
        raise SandboxViolation(f"{what}涉及的数据过大或嵌套过深（上限约 {limit} 个元素）")


def check_kept(name: str, value) -> None:
    """A value a script leaves in the case's data is stored and serialized: bounded in size and nesting."""
    if type(value) in CONTAINERS and weight(value, MAX_WORK) > MAX_WORK:
        raise SandboxViolation(f"流程脚本生成的变量 {name} 过大或嵌套过深（上限约 {MAX_WORK} 个元素、{MAX_DEPTH} 层）")


def check_tuple(value: tuple) -> tuple:
    """A tuple may be hashed (a dict key, a set element, ``in``): its nested size is bounded when it is built."""
    if not set(map(type, value)) <= _SCALARS:
        check_work(value, "元组")
    return value


def bounded_list(iterable, what: str) -> list:
    """``list(iterable)`` taking at most ``MAX_ITEMS`` elements from an iterator (a builtin collection, whose length
    is known, in one go)."""
    if isinstance(iterable, (list, tuple, range, str, bytes, dict, set, frozenset)):
        check_items(len(iterable), what)
        return list(iterable)
    out: list = []
    iterator = iter(iterable)
    while chunk := list(islice(iterator, 1024)):     # in C, a chunk at a time
        out += chunk
        if len(out) > MAX_ITEMS:
            raise SandboxViolation(f"{what}的元素过多（上限 {MAX_ITEMS}）")
        check_pace()
    check_items(len(out), what)
    return out


def text_size(value) -> int:
    """About how many characters ``str(value)`` has (bounded walk for containers)."""
    t = type(value)
    if t is str:
        return len(value)
    if t is bytes:
        return 4 * len(value) + 3
    if t in CONTAINERS:
        return weight(value, MAX_TEXT)
    return 24


def log2(n: int) -> int:
    return max(1, math.ceil(math.log2(n + 1)))
