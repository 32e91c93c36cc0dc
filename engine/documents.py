"""Printed documents: the templates in ``processes/documents/<kind>.html``, rendered in a sandbox, as HTML and PDF.

A process owner edits a document's wording in its template, versioned with the process set like the forms. A
template is a Jinja fragment (a ``<style>`` and one or more ``<article class="paper">``) rendered by
:class:`jinja2.sandbox.SandboxedEnvironment` with autoescaping; it sees only the names of :data:`CONTEXT_NAMES`
and the helpers of :data:`HELPERS`. :func:`template_problems` checks every template of a set parses and uses no
other name (validation and :func:`engine.processes.build`).

An issued document records which template it was issued with (``data.template``: the process version, file and
its SHA-256), so printing it again after the template changed gives the same content; :func:`to_pdf` makes the
A4 PDF (WeasyPrint, the CJK font embedded) from the same HTML. Each page carries a QR code of its public
verification address (``/verify/<number>?h=<short hash>``, :func:`short_hash`)."""
from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from urllib.parse import unquote

from jinja2 import TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from .errors import ProcessDefinitionError

PREFIX = "documents/"
SUFFIX = ".html"
MAX_TEMPLATE_BYTES = 256 * 1024
SHORT_HASH = 12
# the two documents printed from the application itself (no row of their own: numbered with the case number)
APPLICATION_KINDS = ("申请表", "承诺书")
# the names a template may use: the document (kind, number, issued_date), its recorded data, the task's form, the
# application as submitted, the office issuing it, the QR code and the address it encodes
CONTEXT_NAMES = frozenset({"doc", "data", "form", "app", "office", "qr", "verify_url"})
_BLANK_DATE = "____年__月__日"
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def template_file(kind: str) -> str:
    return f"{PREFIX}{kind}{SUFFIX}"


def template_kinds(files: dict[str, bytes]) -> list[str]:
    return sorted(n[len(PREFIX):-len(SUFFIX)] for n in files if n.startswith(PREFIX) and n.endswith(SUFFIX))


def cn_date(value) -> str:
    """A date as printed on paper: 2026年12月1日; ``____年__月__日`` (to fill in by hand) when unknown."""
    if isinstance(value, datetime | date):
        value = value.isoformat()
    m = _ISO.match(value) if isinstance(value, str) else None
    if not m:
        return _BLANK_DATE
    return f"{int(m.group(1))}年{int(m.group(2))}月{int(m.group(3))}日"


def box(checked) -> str:
    """A choice on paper: ☑ ticked, □ not."""
    return "☑" if checked else "□"


def fill(value, width: int = 30) -> Markup:
    """A value on its line (underlined), or an empty line ``width`` millimetres long to fill in by hand."""
    text = "" if value is None or value is False else ("是" if value is True else str(value))
    return Markup('<span class="fill" style="min-width:{}mm">{}</span>').format(int(width), text or Markup("&#8203;"))


HELPERS = {"cn_date": cn_date, "box": box, "fill": fill}


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(autoescape=True, trim_blocks=True, lstrip_blocks=True,
                               finalize=lambda v: "" if v is None else v)     # an empty field prints blank
    env.globals.update(HELPERS)
    env.filters.update(HELPERS)
    return env


_ENV = _environment()


def _source(name: str, data: bytes) -> str:
    if len(data) > MAX_TEMPLATE_BYTES:
        raise ProcessDefinitionError(f"{name}：文件超过 {MAX_TEMPLATE_BYTES // 1024} KB 上限")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProcessDefinitionError(f"{name}：不是有效的 UTF-8 编码（第 {exc.start} 字节）") from exc


def template_problems(files: dict[str, bytes], kinds_used: set[str] | None = None) -> list[str]:
    """Every problem of the set's document templates: each parses, uses only known names; each kind of document
    the diagrams issue (``kinds_used``) and the application's two have a template."""
    return [message for _file, message in template_problems_by_file(files, kinds_used)]


def template_problems_by_file(files: dict[str, bytes], kinds_used: set[str] | None = None) -> list[tuple[str, str]]:
    """:func:`template_problems` with the file each problem is in."""
    problems: list[tuple[str, str]] = []
    for name in sorted(files):
        if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
            continue
        try:
            ast = _ENV.parse(_source(name, files[name]))
        except ProcessDefinitionError as exc:
            problems.append((name, exc.message))
            continue
        except TemplateSyntaxError as exc:
            problems.append((name, f"{name} 第 {exc.lineno} 行：单据模板语法有误：{exc.message}"))
            continue
        unknown = sorted(meta.find_undeclared_variables(ast) - CONTEXT_NAMES - set(HELPERS))
        if unknown:
            problems.append((name, f"{name}：单据模板使用了未知的变量 {'、'.join(unknown)}"
                                   f"（可用：{'、'.join(sorted(CONTEXT_NAMES | set(HELPERS)))}）"))
    if kinds_used is not None and any(n.startswith(PREFIX) for n in files):
        have = set(template_kinds(files))
        for kind in sorted(set(kinds_used) | set(APPLICATION_KINDS)):
            if kind not in have:
                problems.append((template_file(kind), f"缺少单据「{kind}」的模板 {template_file(kind)}"))
    return problems


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def short_hash(digest: str) -> str:
    """The part of a document's content hash printed in its verification address."""
    return digest[:SHORT_HASH]


def qr_svg(url: str) -> Markup:
    import segno
    return Markup(segno.make(url, error="m").svg_inline(scale=2, border=1, omitsize=True))


def render(template: bytes, name: str, doc: dict, data: dict, office: str, verify_url: str | None) -> str:
    """The document's HTML fragment from a template's bytes and what was recorded when it was issued."""
    try:
        tpl = _ENV.from_string(_source(name, template))
    except TemplateSyntaxError as exc:
        raise ProcessDefinitionError(f"{name} 第 {exc.lineno} 行：单据模板语法有误：{exc.message}") from exc
    context = {"doc": doc, "data": data, "form": data.get("form") or {}, "app": data.get("application") or {},
               # as people read and type it: no scheme, the number in its own characters
               "office": office, "verify_url": re.sub(r"^https?://", "", unquote(verify_url)) if verify_url else None,
               "qr": qr_svg(verify_url) if verify_url else ""}
    try:
        body = tpl.render(context)
    except SecurityError as exc:
        raise ProcessDefinitionError(f"{name}：单据模板无法生成：使用了沙箱不允许的操作") from exc
    except Exception as exc:  # noqa: BLE001 - a template's error is the process owner's, shown in Chinese
        raise ProcessDefinitionError(f"{name}：单据模板无法生成：模板运行出错（请检查其中的表达式）") from exc
    return f'<div class="doc-sheet">\n{body}\n</div>'


# The page and the base look of every document (the template adds its own rules)
PAGE_CSS = """
@page { size: A4; margin: 15mm 18mm 15mm 18mm; }
.doc-sheet { font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", sans-serif; font-size: 11pt;
  line-height: 1.75; color: #000; }
.doc-sheet .paper { position: relative; break-inside: avoid; }
.doc-sheet .paper + .paper { break-before: page; }
.doc-sheet .paper.half + .paper.half { break-before: auto; }
.doc-sheet h1 { text-align: center; font-size: 17pt; margin: 0 0 3mm; letter-spacing: 1px; }
.doc-sheet .no { text-align: right; margin: 0 0 2mm; }
.doc-sheet .center { text-align: center; }
.doc-sheet .right { text-align: right; }
.doc-sheet p { margin: 1.5mm 0; }
.doc-sheet .indent { text-indent: 2em; }
.doc-sheet .fill { display: inline-block; border-bottom: 1px solid #000; text-align: center; text-indent: 0;
  padding: 0 1mm; line-height: 1.3; }
.doc-sheet table.grid { width: 100%; border-collapse: collapse; table-layout: fixed; }
.doc-sheet table.grid td { border: 1px solid #000; padding: 1.2mm 2mm; vertical-align: middle; word-break: break-all; }
.doc-sheet table.grid td.label { text-align: center; }
.doc-sheet table.grid td.section { text-align: center; font-weight: bold; }
.doc-sheet .signs { display: flex; justify-content: space-between; margin-top: 6mm; }
.doc-sheet .signs > div { width: 48%; }
.doc-sheet .cut { text-align: center; color: #000; margin: 6mm 0; letter-spacing: 2px; white-space: nowrap;
  overflow: hidden; }
.doc-sheet .verify { display: flex; align-items: center; gap: 3mm; font-size: 7.5pt; margin-top: 4mm; }
.doc-sheet .verify svg { width: 20mm; height: 20mm; }
.doc-sheet .note { font-size: 9.5pt; }
"""


def html_page(fragment: str, title: str) -> str:
    """A whole HTML page around a document's fragment (what the PDF is made from)."""
    from markupsafe import escape
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{PAGE_CSS}</style></head><body>{fragment}</body></html>")


def to_pdf(fragment: str, title: str) -> bytes:
    """The A4 PDF of a document (WeasyPrint; fonts embedded, text extractable)."""
    import weasyprint
    return weasyprint.HTML(string=html_page(fragment, title)).write_pdf()
