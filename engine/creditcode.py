"""统一社会信用代码 (GB 32100-2015): 18 characters; each failure gets its own Chinese message.

Structure: position 1 the registration authority (登记管理部门代码), 2 the kind of organisation (机构类别代码),
3-8 the administrative division of the registering office (GB/T 2260, digits), 9-17 the subject code (主体标识码,
the old organisation code), 18 the check character. Charset: the digits and the capital letters except I, O, Z, S, V
(31 characters, valued 0-30 in this order). Check: 31 - (Σ value_i × weight_i mod 31), 31 → 0.

Input is never silently converted: lowercase letters and full-width characters are refused with what to type instead.
"""
from __future__ import annotations

import unicodedata

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18
FORBIDDEN = "IOZSV"
# 登记管理部门代码 of GB 32100-2015 (1 机构编制, 2 外交, 3 司法行政, 4 文化, 5 民政, 6 旅游, 7 宗教, 8 工会, 9 市场监管,
# A 中央军委改革和编制办公室, N 农业, Y 其他)
AUTHORITIES = set("123456789ANY")
_VALUE = {ch: i for i, ch in enumerate(CHARSET)}


class CreditCodeError(ValueError):
    """The code is not valid: ``message`` says why, in Chinese."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def check_character(first17: str) -> str:
    """The check character (position 18) for the first 17 characters (which must be of the charset)."""
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def _is_fullwidth(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("F", "W") or "\uff01" <= ch <= "\uff5e" or ch == "\u3000"


def validate(code: object) -> str:
    """The code, if valid; else :class:`CreditCodeError` with the reason (the first failure found, in the order a
    person would fix them: full-width, lowercase, other characters, length, forbidden letters, structure, check)."""
    if not isinstance(code, str):
        raise CreditCodeError("统一社会信用代码应为文本")
    text = code.strip()
    if not text:
        raise CreditCodeError("请填写统一社会信用代码")
    if len(text) > 64:
        raise CreditCodeError(f"统一社会信用代码应为 {LENGTH} 位，现为 {len(text)} 位")
    wide = [ch for ch in text if _is_fullwidth(ch)]
    if wide:
        raise CreditCodeError(f"统一社会信用代码含有全角字符「{''.join(dict.fromkeys(wide))}」，请使用半角字符")
    lower = [ch for ch in text if "a" <= ch <= "z"]
    if lower:
        raise CreditCodeError(f"统一社会信用代码含有小写字母「{''.join(dict.fromkeys(lower))}」，请使用大写字母")
    other = [ch for ch in text if not ("0" <= ch <= "9" or "A" <= ch <= "Z")]
    if other:
        shown = "".join(dict.fromkeys(ch if ch.isprintable() and not ch.isspace() else "空白或控制字符" for ch in other))
        raise CreditCodeError(f"统一社会信用代码只能由数字和大写字母组成，不能含有「{shown}」")
    if len(text) != LENGTH:
        raise CreditCodeError(f"统一社会信用代码应为 {LENGTH} 位，现为 {len(text)} 位")
    bad = [ch for ch in text if ch in FORBIDDEN]
    if bad:
        raise CreditCodeError(f"统一社会信用代码不使用字母 I、O、Z、S、V，代码中含有「{''.join(dict.fromkeys(bad))}」")
    if text[0] not in AUTHORITIES:
        raise CreditCodeError(f"统一社会信用代码第 1 位（登记管理部门代码）不能是「{text[0]}」")
    if not text[2:8].isdigit():
        raise CreditCodeError("统一社会信用代码第 3 至 8 位（登记管理机关行政区划码）应为数字")
    expected = check_character(text[:17])
    if text[17] != expected:
        raise CreditCodeError(f"统一社会信用代码校验位不正确：第 18 位应为「{expected}」，现为「{text[17]}」，请核对代码")
    return text


def with_check(first17: str) -> str:
    """The full code for 17 characters (demo data, tests)."""
    return first17 + check_character(first17)
