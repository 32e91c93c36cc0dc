"""Size-checked stand-ins for the operators, builtins and methods that diagram code reaches in the sandbox.

:mod:`engine.sandbox` compiles ``* ** << + %``, comparisons, f-string fields and tuple displays into calls of the
functions here, offers the builtins below in place of Python's, and hands out the methods of ``METHODS`` through
:func:`guarded_method`. Each estimates what one C call would build or walk and refuses (:class:`SandboxViolation`)
what is over a limit of :mod:`engine.sandbox_guards`, before anything is built (formatting:
:mod:`engine.sandbox_format`).
"""
from __future__ import annotations

import operator
from functools import partial

from .sandbox_format import percent_format
from .sandbox_guards import (
    _SCALARS,
    CONTAINERS,
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_WIDTH,
    MAX_WORK,
    SandboxViolation,
    bounded_list,
    check_items,
    check_pace,
    check_text,
    check_tuple,
    check_width,
    check_work,
    log2,
    paced,
    text_size,
    weight,
)

_SEQ = (str, bytes, list, tuple)


# ---- operators -------------------------------------------------------------------------------------------
def binop(op: str, a, b):
    """``a <op> b`` for the operators that can build huge values, size-checked first."""
    if op == "Add":
        if isinstance(a, _SEQ) and isinstance(b, _SEQ):
            check_items(len(a) + len(b), "加法")
            if type(a) is tuple and type(b) is tuple:
                return check_tuple(a + b)
        return a + b
    if op == "Mult":
        return _mult(a, b)
    if op == "Mod":
        if isinstance(a, (str, bytes)):
            return percent_format(a, b)
        return a % b
    if op == "Pow":
        if isinstance(a, int) and isinstance(b, int) and b > 0 and a.bit_length() * b > MAX_INT_BITS:
            raise SandboxViolation("乘方生成的整数过大")
        return a ** b
    if op == "LShift":
        if isinstance(b, int) and (b > MAX_INT_BITS or (isinstance(a, int) and a.bit_length() + b > MAX_INT_BITS)):
            raise SandboxViolation("移位生成的整数过大")
        return a << b
    raise SandboxViolation(f"不支持的运算 {op}")


def _mult(a, b):
    for seq, n in ((a, b), (b, a)):
        if isinstance(n, int) and isinstance(seq, _SEQ):
            n = max(n, 0)
            if len(seq) * n > MAX_ITEMS:
                raise SandboxViolation("乘法生成的序列过大")
            check_items(len(seq) * n, "乘法")
            if n > 1 and type(seq) in (list, tuple) and not CONTAINERS.isdisjoint(map(type, seq)) \
                    and weight(seq, MAX_WORK // n) * n > MAX_WORK:
                raise SandboxViolation("乘法生成的嵌套数据过大（同一个容器被重复引用太多次）")
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise SandboxViolation("乘法生成的整数过大")
    return a * b


_COMPARE = {"Eq": operator.eq, "NotEq": operator.ne, "Lt": operator.lt, "LtE": operator.le, "Gt": operator.gt,
            "GtE": operator.ge, "Is": operator.is_, "IsNot": operator.is_not,
            "In": lambda a, b: a in b, "NotIn": lambda a, b: a not in b}


def compare(op: str, a, b):
    """``a <op> b``: a comparison of containers walks them (``[[0]*10**6]*10**6 == …`` for hours): bounded first."""
    if type(a) in CONTAINERS or type(b) in CONTAINERS:
        if op in ("In", "NotIn"):
            if type(b) in (dict, set, frozenset):
                check_work(a, "in 运算")           # hashing a
            elif type(a) in CONTAINERS:
                check_work(b, "in 运算")           # a compared with every element of b
        elif op not in ("Is", "IsNot") and weight(a) > MAX_WORK and weight(b) > MAX_WORK:
            raise SandboxViolation(f"比较运算涉及的数据过大或嵌套过深（上限约 {MAX_WORK} 个元素）")
    return _COMPARE[op](a, b)


def operand(value):
    """An operand of a chained comparison (``a < b < c``): bounded on its own."""
    check_work(value, "比较运算")
    return value


# ---- methods ---------------------------------------------------------------------------------------------
def _replace(method, s, old, new, count=-1):
    if isinstance(old, (str, bytes)) and isinstance(new, (str, bytes)) and len(new) > len(old):
        found = s.count(old)
        if isinstance(count, int) and count >= 0:
            found = min(found, count)
        check_text(len(s) + found * (len(new) - len(old)), "replace ")
    return method(old, new, count)


def _join(method, sep, iterable):
    items = iterable if type(iterable) in (list, tuple) else bounded_list(iterable, "join ")
    try:
        total = len(sep) * max(len(items) - 1, 0) + sum(map(len, items))
    except TypeError:
        return method(items)              # not strings: join raises its own error
    check_text(total, "join ")
    return method(items)


def _pad(method, s, width, *fill):
    check_width(width, "填充")
    return method(width, *fill)


def _expandtabs(method, s, tabsize=8):
    check_width(tabsize, "expandtabs ")
    if isinstance(tabsize, int):
        check_text(len(s) + s.count("\t" if isinstance(s, str) else b"\t") * max(tabsize, 0), "expandtabs ")
    return method(tabsize)


def _translate(method, s, table):
    if type(s) is str and isinstance(table, dict):
        longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
        check_text(len(s) * max(longest, 1), "translate ")
    return method(table)


def _extend(method, lst, iterable):
    items = iterable if type(iterable) in (list, tuple) else bounded_list(iterable, "extend ")
    check_items(len(lst) + len(items), "extend ")
    return method(items)


def _search(method, seq, value, *args):
    """``index``/``count``/``remove``: ``value`` is compared with every element."""
    if type(value) in CONTAINERS:
        check_work(seq, "查找")
    return method(value, *args)


def _sort(method, lst, *, key=None, reverse=False):
    return method(key=_bounded_key(key, lst), reverse=reverse)


def _fromkeys(method, cls, iterable, value=None):
    keys = bounded_list(iterable, "fromkeys ")
    check_hashes(keys, "fromkeys ")
    if type(value) in CONTAINERS and keys and weight(value, MAX_WORK // len(keys)) * len(keys) > MAX_WORK:
        raise SandboxViolation("fromkeys 生成的数据过大（同一个值被引用太多次）")
    return method(keys, value)


def _copy(method, obj):
    check_items(len(obj), "copy ")
    return method()


def _bulk_hash(method, obj, *iterables, **kwargs):
    """``update``/``union``/``issubset`` ... hash every element of their arguments: bounded together (sets and
    dicts given as they are keep their hashes)."""
    args = []
    for it in iterables:
        if type(it) not in (set, frozenset, dict):
            it = bounded_list(it, "集合运算")
            check_hashes([p[0] for p in it if type(p) in (tuple, list) and p] if type(obj) is dict else it, "集合运算")
        check_items(len(obj) + len(it), "集合运算")
        args.append(it)
    return method(*args, **kwargs)


_SET_BULK = ("update", "union", "intersection", "difference", "symmetric_difference", "issubset", "issuperset",
             "isdisjoint", "intersection_update", "difference_update", "symmetric_difference_update")

METHODS = {
    "replace": ((str, bytes), _replace), "join": ((str, bytes), _join),
    "center": ((str, bytes), _pad), "ljust": ((str, bytes), _pad), "rjust": ((str, bytes), _pad),
    "zfill": ((str, bytes), _pad), "expandtabs": ((str, bytes), _expandtabs), "translate": ((str,), _translate),
    "extend": ((list,), _extend), "index": ((list, tuple), _search), "count": ((list, tuple), _search),
    "remove": ((list,), _search), "sort": ((list,), _sort), "fromkeys": ((dict,), _fromkeys),
    "copy": ((list, dict, set), _copy),
    **{name: ((set,), _bulk_hash) for name in _SET_BULK},
}
METHODS["update"] = ((set, dict), _bulk_hash)


def guarded_method(obj, name: str, value):
    """``obj.name`` as read (``value``), or — for the methods of ``METHODS`` — a stand-in that checks sizes first.
    Reached through the class (``str.replace``) the stand-in takes the object as its first argument."""
    entry = METHODS.get(name)
    if entry is None:
        return value
    types, guard = entry
    owner = STAND_INS.get(obj, obj) if isinstance(obj, type) else None
    if owner is not None:
        if owner not in types:
            return value
        if name == "fromkeys":
            return partial(guard, getattr(owner, name), owner)
        return partial(_unbound, guard, owner, name)
    if type(obj) in types:
        return partial(guard, value, obj)
    return value


def _unbound(guard, owner: type, name: str, obj, *args, **kwargs):
    if not isinstance(obj, owner):
        raise TypeError(f"{owner.__name__}.{name} 需要 {owner.__name__} 类型的对象")
    return guard(getattr(obj, name), obj, *args, **kwargs)


# ---- hashing and sorting -----------------------------------------------------------------------------------
def check_hashes(values, what: str) -> None:
    """Hashing a tuple walks it, and nothing caches the result: the tuples among ``values`` together are bounded."""
    budget = MAX_WORK
    for v in values:
        if type(v) is tuple:
            budget -= weight(v, budget)
            if budget < 0:
                raise SandboxViolation(f"{what}涉及的元组过大或过多（上限约 {MAX_WORK} 个元素）")


def _bounded_key(key, values):
    """Sorting compares keys (or the values themselves) about n·log n times: their total size is bounded."""
    factor = log2(len(values))
    if key is None:
        if not set(map(type, values)) <= _SCALARS:
            check_work(values, "排序或比较", MAX_WORK // factor)
        return None
    budget = [MAX_WORK // factor]

    def checked(x):
        check_pace()
        k = key(x)
        if type(k) in CONTAINERS:
            budget[0] -= weight(k, budget[0])
            if budget[0] < 0:
                raise SandboxViolation(f"排序或比较的键过大（上限约 {MAX_WORK} 个元素）")
        return k
    return checked


# ---- builtins --------------------------------------------------------------------------------------------
def _sorted(iterable, /, *, key=None, reverse=False):
    items = bounded_list(iterable, "sorted ")
    return sorted(items, key=_bounded_key(key, items), reverse=reverse)


def _extreme(fn, what: str):
    def extreme(*args, key=None, **kwargs):
        values = bounded_list(args[0], what) if len(args) == 1 else list(args)
        return fn(values, key=_bounded_key(key, values), **kwargs)
    extreme.__name__ = what
    return extreme


def _sum(iterable, /, start=0):
    if not isinstance(start, (int, float, complex)):
        raise SandboxViolation("sum 只能对数字求和；要拼接列表或字符串，请用循环或推导式"
                               "（如 [x for part in parts for x in part]）或 ''.join(...)")
    return sum(iterable, start)


def _round(number, ndigits=None):
    if isinstance(ndigits, int) and abs(ndigits) > MAX_WIDTH:
        raise SandboxViolation(f"round 的位数 {ndigits} 超过上限 {MAX_WIDTH}")
    return round(number) if ndigits is None else round(number, ndigits)


def _zip(*iterables, **kwargs):
    for it in iterables:
        if type(it) in (list, tuple) and not set(map(type, it)) <= _SCALARS:
            check_work(it, "zip ")
    return zip(*iterables, **kwargs)  # noqa: B905 - the caller chooses strict


def _map(function, *iterables):
    return paced(map(function, *iterables))


def _filter(function, iterable):
    return paced(filter(function, iterable))


def _range(*args):
    r = range(*args)
    if len(r) > MAX_ITEMS:
        raise SandboxViolation(f"range 过大（超过 {MAX_ITEMS} 个元素）")
    check_items(len(r), "range ")
    return r


class _StandIn(type):
    """A builtin type's stand-in: calling it is checked (``_build``), ``isinstance`` and class attributes are the
    real type's (the diagram's code cannot reach ``_real`` or ``_build``: no names starting with ``_``)."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, cls._real)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, cls._real)

    def __call__(cls, *args, **kwargs):
        return cls._build(*args, **kwargs)

    def __getattr__(cls, name):
        return getattr(cls._real, name)


def _stand_in(real: type, build) -> type:
    return _StandIn(real.__name__, (), {"_real": real, "_build": staticmethod(build), "__doc__": real.__doc__})


def _str(*args, **kwargs):
    if len(args) == 1 and not kwargs:
        check_text(text_size(args[0]), "str() ")
    return str(*args, **kwargs)


def _tuple(iterable=()):
    return check_tuple(tuple(bounded_list(iterable, "tuple ")))


def _int(*args, **kwargs):
    value = int(*args, **kwargs)
    if value.bit_length() > MAX_INT_BITS:
        raise SandboxViolation(f"int() 生成的整数过大（超过 {MAX_INT_BITS} 位）")
    return value


def _list(iterable=()):
    return bounded_list(iterable, "list ")


def spread(value):
    """The value of ``*value`` or ``**value`` in a display or a call: copied, so bounded like ``list(value)``."""
    if hasattr(value, "__len__"):
        check_items(len(value), "展开（*）")
    return value


def getitem(obj, key):
    """``obj[key]``; a slice copies: bounded like ``list(...)``."""
    value = obj[key]
    if type(key) is slice and hasattr(value, "__len__"):
        check_items(len(value), "切片")
    return value


def _set(iterable=()):
    items = bounded_list(iterable, "set ")
    check_hashes(items, "set ")
    return set(items)


def _dict(*args, **kwargs):
    if len(args) == 1 and hasattr(args[0], "__len__"):
        check_items(len(args[0]), "dict ")
    if len(args) == 1 and not isinstance(args[0], dict) and not hasattr(args[0], "keys"):
        pairs = bounded_list(args[0], "dict ")
        check_hashes([p[0] for p in pairs if type(p) in (tuple, list) and p], "dict ")
        args = (pairs,)
    return dict(*args, **kwargs)


STAND_INS: dict[type, type] = {}
for _real, _build in ((str, _str), (tuple, _tuple), (int, _int), (list, _list), (set, _set), (dict, _dict)):
    STAND_INS[_stand_in(_real, _build)] = _real

BUILTINS = {real.__name__: stand_in for stand_in, real in STAND_INS.items()}
BUILTINS.update(sorted=_sorted, min=_extreme(min, "min"), max=_extreme(max, "max"), sum=_sum, round=_round,
                zip=_zip, range=_range, map=_map, filter=_filter)
