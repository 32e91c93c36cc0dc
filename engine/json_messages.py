"""JSON syntax errors told in Chinese (the json module's messages are English: ``Expecting value``); no imports from
the rest of the engine, so that loading a process set and validating one can both use it."""
from __future__ import annotations

_JSON_MESSAGES = (
    ("Expecting value", "此处应为一个值（文字须加双引号；可能多了逗号或缺少内容）"),
    ("Expecting property name enclosed in double quotes", "此处应为加双引号的字段名（可能多了逗号）"),
    ("Expecting ',' delimiter", "此处缺少逗号"),
    ("Expecting ':' delimiter", "字段名后缺少冒号"),
    ("Illegal trailing comma", "最后一项之后多了一个逗号"),
    ("Extra data", "内容结束后还有多余的文字"),
    ("Unterminated string", "文字缺少结尾的双引号"),
    ("Invalid control character", "文字中有不允许的控制字符（如未转义的换行）"),
    ("Invalid \\uXXXX escape", "无效的 \\u 转义"),
    ("Invalid \\escape", "无效的反斜杠转义"),
)


def json_message(exc: Exception) -> str:
    """A :class:`json.JSONDecodeError` told in Chinese, with its line and column (never ``Expecting value``)."""
    msg = getattr(exc, "msg", "") or ""
    doc, pos = getattr(exc, "doc", None), getattr(exc, "pos", None)
    if isinstance(doc, str) and isinstance(pos, int) and doc[pos:pos + 1] in ("}", "]") and doc[:pos].rstrip().endswith(","):
        msg = "Illegal trailing comma"      # Python before 3.13 says "Expecting property name…" / "Expecting value" here
    text = next((zh for en, zh in _JSON_MESSAGES if msg.startswith(en)), "格式有误")
    line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
    return f"{text}（第 {line} 行第 {col} 列）" if line else text
