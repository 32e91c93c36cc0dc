"""English messages of the libraries under validation, told in Chinese for a process owner.

Each helper is pure: it takes the library's text (or exception, or value) and returns Chinese, the original
kept apart as a *detail* where it helps. Python syntax errors are in :mod:`.pysyntax`, SpiffWorkflow's own
messages in :mod:`.spiff`.

- :func:`xsd_message` — one lxml XML Schema error (``Element 'bpmn:task': ...``).
- :func:`xml_syntax_message` — one libxml2 well-formedness error (``Opening and ending tag mismatch ...``).
- :func:`explain_exception` / :func:`exception_detail` — an unexpected exception, never a bare ``TypeError: ...``.
- :func:`value_kind` — what a value is (「函数」「列表（3 项）」), never its repr.
- :func:`one_line` / :func:`clean_detail` — text on one line, without memory addresses.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from ..json_messages import json_message  # noqa: F401 - shared
from ..spiff_messages import clean_detail, exception_detail, exception_kind, one_line  # noqa: F401 - shared
from .common import _short


def _xml_depth_limit() -> int:
    """The configured XML depth (libxml2 stops by itself only at 256, far beyond it: the owner is told ours)."""
    from .limits import limits
    return limits().max_xml_depth

XSD_LEAD = "不符合 BPMN 2.0 XML Schema"
# ---- the XML Schema -------------------------------------------------------------------------------------------

_XSD_HEAD = re.compile(r"^Element '(?P<el>[^']*)'(?:, attribute '(?P<attr>[^']*)')?: (?P<rest>.*)$", re.DOTALL)
_EXPECTED = re.compile(r"\s*Expected is (?P<one>one of )?\( (?P<list>.*?) \)\.?\s*$", re.DOTALL)
_TYPES = {
    "xs:ID": "标识符（xs:ID：须以字母或下划线开头，不含空格和冒号，且在文件内唯一）",
    "xs:IDREF": "标识符引用（xs:IDREF：须是文件中某个元素的 id）",
    "xs:IDREFS": "标识符引用列表（xs:IDREFS）",
    "xs:QName": "限定名（xs:QName，如 tns:Item；前缀须已声明）",
    "xs:NCName": "名称（xs:NCName：不含空格和冒号，不以数字开头）",
    "xs:boolean": "布尔值（xs:boolean：true 或 false）",
    "xs:integer": "整数（xs:integer）",
    "xs:int": "整数（xs:int）",
    "xs:nonNegativeInteger": "非负整数（xs:nonNegativeInteger）",
    "xs:positiveInteger": "正整数（xs:positiveInteger）",
    "xs:decimal": "数值（xs:decimal）",
    "xs:double": "数值（xs:double）",
    "xs:float": "数值（xs:float）",
    "xs:anyURI": "URI（xs:anyURI，不能含空格等字符）",
    "xs:dateTime": "日期时间（xs:dateTime）",
}
_MAX_EXPECTED = 8


def _expected(listed: str, one_of: bool) -> str:
    names = [n.strip() for n in listed.split(",") if n.strip()]
    if len(names) > _MAX_EXPECTED:
        return "、".join(names[:_MAX_EXPECTED]) + f" 等 {len(names)} 种{'之一' if one_of else ''}"
    return "、".join(names) + (" 之一" if one_of and len(names) > 1 else "")


def _where(el: str, attr: str | None) -> str:
    return f"元素 {el} 的属性 {attr}" if attr else f"元素 {el}"


def _value(text: str) -> str:
    text = one_line(text)
    return f"「{text[:60]}{'…' if len(text) > 60 else ''}」" if text else "空值"


def _xsd_content(el: str, rest: str) -> str | None:
    """Messages about an element's children and text."""
    exp = _EXPECTED.search(rest)
    tail = f"，此处应为：{_expected(exp.group('list'), bool(exp.group('one')))}" if exp else ""
    if rest.startswith("This element is not expected"):
        return f"此处不应出现元素 {el}{tail}"
    if rest.startswith("Missing child element(s)"):
        return f"元素 {el} 缺少必需的子元素{tail.replace('此处应为', '应有')}"
    if rest.startswith("Character content other than whitespace is not allowed"):
        return f"元素 {el} 中不能直接写文字（只能包含子元素）"
    if rest.startswith("Character content is not allowed"):
        return f"元素 {el} 应为空，不能有文字内容"
    if rest.startswith("Element content is not allowed"):
        return f"元素 {el} 只能包含文字，不能有子元素"
    if rest.startswith("No matching global element declaration available"):
        return f"元素 {el} 不是 BPMN 2.0 定义的元素，此处不允许未知元素（扩展内容应放在 bpmn:extensionElements 中）"
    if rest.startswith("No matching global declaration available for the validation root"):
        return f"根元素 {el} 不是 BPMN 2.0 定义的元素"
    return None


def _xsd_value(el: str, attr: str | None, rest: str) -> str | None:
    """Messages about an attribute's or element's value."""
    where = f"{_where(el, attr)} 的值" if attr else f"元素 {el} 的内容"
    m = re.match(r"The attribute '([^']*)' is not allowed", rest)
    if m:
        return f"元素 {el} 不允许有属性 {m.group(1)}"
    m = re.match(r"The attribute '([^']*)' is required but missing", rest)
    if m:
        return f"元素 {el} 缺少必需的属性 {m.group(1)}"
    m = re.match(r"'(.*)' is not a valid value of the (?:local )?(?:atomic|list|union) type(?: '([^']*)')?", rest, re.DOTALL)
    if m:
        kind = _TYPES.get(m.group(2) or "", f"{m.group(2)} 类型的值" if m.group(2) else "所要求类型的值")
        return f"{where}{_value(m.group(1))}不是合法的{kind}"
    m = re.match(r"\[facet 'enumeration'\] The value '(.*)' is not an element of the set \{(.*)\}", rest, re.DOTALL)
    if m:
        allowed = "、".join(v.strip().strip("'") for v in m.group(2).split(","))
        return f"{where}{_value(m.group(1))}不在允许的取值中（可取：{allowed}）"
    m = re.match(r"\[facet '(\w+)'\]", rest)
    if m:
        return f"{where}不满足 XML Schema 的 {m.group(1)} 约束"
    m = re.match(r"The QName value '([^']*)' has no corresponding namespace declaration in scope", rest)
    if m:
        prefix = m.group(1).split(":")[0] if ":" in m.group(1) else ""
        missing = f"前缀「{prefix}」没有声明（缺少 xmlns:{prefix}）" if prefix else "没有声明默认命名空间"
        return f"{where}{_value(m.group(1))}的命名空间{missing}"
    return None


def _xsd_keys(el: str, rest: str) -> str | None:
    """Identity constraints: duplicate keys, references to nothing."""
    m = re.match(r"Duplicate key-sequence \[(.*)\] in (?:unique|key) identity-constraint '([^']*)'", rest, re.DOTALL)
    if m:
        return f"元素 {el} 的键值 {one_line(m.group(1))} 重复（约束 {m.group(2)} 要求唯一）"
    m = re.match(r"No match found for key-sequence \[(.*)\] of keyref '([^']*)'", rest, re.DOTALL)
    if m:
        return f"元素 {el} 引用的 {one_line(m.group(1))} 找不到对应的定义（约束 {m.group(2)}）"
    return None


def xsd_message(message: str) -> tuple[str, str]:
    """One lxml XML Schema error → (Chinese message led by 「不符合 BPMN 2.0 XML Schema」, the original shortened)."""
    original = clean_detail(_short(message).strip())
    head = _XSD_HEAD.match(original)
    zh = None
    if head:
        el, attr, rest = head.group("el"), head.group("attr"), head.group("rest")
        zh = _xsd_content(el, rest) or _xsd_value(el, attr, rest) or _xsd_keys(el, rest)
        zh = zh or f"{_where(el, attr)} 不符合要求"
    return (f"{XSD_LEAD}：{zh}" if zh else XSD_LEAD), original


# ---- XML well-formedness -----------------------------------------------------------------------------------------

_XML_SYNTAX = (
    (r"Opening and ending tag mismatch: ([^\s,]+) line (\d+) and ([^\s,]+)",
     lambda m: f"开始标签 {m[1]}（第 {m[2]} 行）与结束标签 {m[3]} 不匹配"),
    (r"Premature end of data in tag (\S+) line (\d+)",
     lambda m: f"文件不完整：标签 {m[1]}（第 {m[2]} 行起）还没有结束，文件就结束了"),
    (r"Premature end of data", lambda m: "文件不完整：还有标签没有结束，文件就结束了"),
    (r"EndTag: '</' not found", lambda m: "文件不完整：缺少结束标签"),
    (r"Excessive depth in document: (\d+)", lambda m: f"XML 元素嵌套超过 {_xml_depth_limit()} 层上限，拒绝处理"),
    (r"StartTag: invalid element name", lambda m: "「<」后面不是合法的元素名（文字中的 < 须写成 &lt;）"),
    (r"attributes construct error", lambda m: "属性写法有误（应为 名称=\"值\"）"),
    (r"xmlParseEntityRef: no name", lambda m: "「&」后面缺少实体名（文字中的 & 须写成 &amp;）"),
    (r"EntityRef: expecting ';'", lambda m: "实体引用缺少结尾的分号（文字中的 & 须写成 &amp;）"),
    (r"Entity '([^']*)' not defined", lambda m: f"实体 &{m[1]}; 没有定义（XML 只认识 &lt; &gt; &amp; &quot; &apos;）"),
    (r"Extra content at the end of the document", lambda m: "根元素结束之后还有多余的内容"),
    (r"Document is empty", lambda m: "文件为空"),
    (r"Start tag expected, '<' not found", lambda m: "找不到开始标签：文件内容不是 XML"),
    (r"Couldn't find end of Start Tag (\S+)", lambda m: f"标签 {m[1]} 的开始标签没有结束（缺少 >）"),
    (r"Specification mandates value for attribute (\S+)", lambda m: f"属性 {m[1]} 缺少值"),
    (r"AttValue: \" or ' expected", lambda m: "属性值须用引号括起"),
    (r"Attribute (\S+) redefined", lambda m: f"属性 {m[1]} 重复出现"),
    (r"Namespace prefix (\S+) (?:for (\S+) )?on (\S+) is not defined",
     lambda m: f"元素 {m[3]} 使用的命名空间前缀 {m[1]} 没有声明（缺少 xmlns:{m[1]}）"),
    (r"xmlns(?::(\S+))?: '([^']*)' is not a valid URI",
     lambda m: f"命名空间{' ' + m[1] + ' ' if m[1] else ''}的 URI「{m[2]}」不是合法的 URI"),
    (r"Unescaped '<' not allowed in attributes values", lambda m: "属性值中的 < 须写成 &lt;"),
    (r"(?:PCDATA invalid Char value|Char 0x[0-9A-Fa-f]+ out of allowed range|invalid character)",
     lambda m: "含有 XML 不允许的控制字符"),
    (r"(?:Input is not proper UTF-8|Document labelled UTF-16 but has UTF-8 content)", lambda m: "编码有误：不是有效的 UTF-8"),
    (r"(?:XML declaration allowed only at the start|XML_?DECL)", lambda m: "XML 声明（<?xml …?>）只能出现在文件开头"),
    (r"Comment not terminated", lambda m: "注释没有结束（缺少 -->）"),
    (r"CData section not finished", lambda m: "CDATA 段没有结束（缺少 ]]>）"),
    (r"(?:expected '>'|Specification mandates value)", lambda m: "标签缺少结尾的 >"),
)


def xml_syntax_message(message: str) -> tuple[str, str]:
    """One libxml2 well-formedness error → (Chinese message led by 「不是有效的 XML」, the original)."""
    original = clean_detail(message.strip())
    for pattern, zh in _XML_SYNTAX:
        m = re.search(pattern, original)
        if m:
            return f"不是有效的 XML：{zh(m)}", original
    return "不是有效的 XML（文件格式有误）", original


# ---- exceptions and values -------------------------------------------------------------------------------------

def explain_exception(exc: BaseException) -> str:
    """An unexpected exception in Chinese (its kind, not its English text): 「程序内部错误：值的类型不对」."""
    return f"程序内部错误：{exception_kind(exc)}" if exception_kind(exc) else "程序内部错误"


def value_kind(value: Any) -> str:
    """What a value is, in Chinese, with its size or a short preview where that helps; never a repr."""
    if callable(value) and not isinstance(value, type):
        return "函数"
    if value is None:
        return "空值"
    if isinstance(value, str):
        return f"字符串 {_value(value)}"
    if isinstance(value, bool):
        return f"布尔值（{'是' if value else '否'}）"
    if isinstance(value, (int, float)):
        return f"{'整数' if isinstance(value, int) else '小数'} {str(value)[:30]}"
    if isinstance(value, datetime):
        return "日期时间对象（须先转成 ISO-8601 字符串）"
    if isinstance(value, date):
        return "日期对象（须先转成 ISO-8601 字符串）"
    if isinstance(value, timedelta):
        return "时长对象（须先转成 ISO-8601 字符串）"
    sized = ((list, "列表"), (tuple, "元组"), (dict, "字典"), ((set, frozenset), "集合"), ((bytes, bytearray), "字节串"))
    for kind, name in sized:
        if isinstance(value, kind):
            return f"{name}（{len(value)} 项）"
    return "其他类型的对象"
