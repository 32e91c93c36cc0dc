"""Formatting in the sandbox: f-string fields and ``%`` on ``str`` and ``bytes``, widths, precisions and the size
of what ``%s``/``!r`` print checked before anything is built (``f'{0:>999999999}'`` and ``'%0999999999d' % 0``
each build a gigabyte in one C call). Limits: :mod:`engine.sandbox_guards`."""
from __future__ import annotations

from .sandbox_guards import CONTAINERS, check_text, check_width, text_size


def format_field(value, conversion: int, spec: str) -> str:
    """One ``{value!conversion:spec}`` field of an f-string."""
    if conversion in (ord("r"), ord("s"), ord("a")) or (not spec and type(value) in CONTAINERS):
        check_text(text_size(value), "f-string ")
        value = {ord("r"): repr, ord("a"): ascii}.get(conversion, str)(value)
    if spec:
        _check_spec(spec)
    return format(value, spec)


def _check_spec(spec: str) -> None:
    """Widths and precisions in a format spec (``>999999999``, ``.999999999f``): every run of digits counts."""
    run = ""
    for ch in spec + " ":
        if ch.isdecimal():          # what Python reads as a digit of a width (Unicode decimals too, not ²)
            run += ch
        elif run:
            check_width(int(run) if len(run) <= 18 else 10 ** 18)
            run = ""


def percent_format(fmt, args):
    """``fmt % args`` for ``str`` and ``bytes``: each conversion's width, precision and (for %s %r %a %b) the size
    of its value estimated first, mirroring how CPython reads the format (``%(key)s``, ``*`` widths)."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    positional = args if isinstance(args, tuple) else (args,)
    total, index, i, n = len(text), 0, 0, len(text)

    def next_arg():
        nonlocal index
        value = positional[index]
        index += 1
        return value

    try:
        while (i := text.find("%", i)) >= 0:
            i += 1
            key = None
            if i < n and text[i] == "(":
                depth, j = 1, i + 1
                while j < n and depth:
                    depth += (text[j] == "(") - (text[j] == ")")
                    j += 1
                key, i = text[i + 1:j - 1], j
            while i < n and text[i] in "-+ #0":
                i += 1
            width, i = _number(text, i, next_arg)
            precision = 0
            if i < n and text[i] == ".":
                precision, i = _number(text, i + 1, next_arg)
            while i < n and text[i] in "hlL":
                i += 1
            conv = text[i] if i < n else ""
            i += 1
            if conv == "%":
                continue
            check_width(width, "% 格式")
            check_width(precision, "% 格式")
            value = args[key.encode("latin-1") if isinstance(fmt, bytes) else key] if key is not None else next_arg()
            size = text_size(value) if conv in "rsab" else 24
            total += max(width if isinstance(width, int) else 0, precision if isinstance(precision, int) else 0, size)
            check_text(total, "% 格式化")
    except (IndexError, KeyError, TypeError, ValueError, UnicodeError):
        pass                              # the real operation raises its own error at the same conversion
    return fmt % args


def _number(text: str, i: int, next_arg):
    """A width or precision at ``text[i]``: ``*`` (taken from the arguments) or digits; and where it ends."""
    if i < len(text) and text[i] == "*":
        return next_arg(), i + 1
    j = i
    while j < len(text) and text[j].isdigit():
        j += 1
    return (int(text[i:j]) if j > i else 0), j
