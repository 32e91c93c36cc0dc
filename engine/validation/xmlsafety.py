"""One BPMN file from bytes to a tree: size, UTF-8, no DOCTYPE or entity, well-formed XML, the BPMN 2.0 XSD."""
from __future__ import annotations

import copy
import threading
from typing import Any

from lxml import etree

from .. import processes
from .chinese import xml_syntax_message, xsd_message
from .common import _DTD, BPMN_NS, MAX_XSD_ERRORS, NS, XSD_PATH, Problem, _line_of, _short

# ---- one BPMN file: bytes -> tree --------------------------------------------------------------------------


def _parse_xml(data: bytes) -> Any:
    """Parse bytes already checked for size, UTF-8 and DTD: no DTD, no entities, no network. The encoding is forced to
    UTF-8 whatever the XML declaration says, so a declared UTF-7/UTF-16 cannot hide a DOCTYPE from the byte check."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, encoding="utf-8")
    return etree.ElementTree(etree.fromstring(data, parser))


def _read_bpmn(name: str, data: bytes, out: list[Problem]) -> Any:
    """The hardened tree of a BPMN file, or None (with the reasons in ``out``). Refusals happen before parsing."""
    if not isinstance(data, (bytes, bytearray)):
        out.append(Problem("文件内容不是字节串", name))
        return None
    if len(data) > processes.MAX_BPMN_BYTES:
        out.append(Problem(f"文件大小 {len(data) / 1024 / 1024:.1f} MB，超过 {processes.MAX_BPMN_BYTES // 1024 // 1024} MB "
                           "上限，未做解析", name))
        return None
    refused = False
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        out.append(Problem(f"不是有效的 UTF-8 编码（第 {exc.start} 字节，字节值十六进制 {data[exc.start]:02X}）：请把文件另存为 "
                           "UTF-8", name, _line_of(data, exc.start)))
        refused = True
    dtd = _DTD.search(data)
    if dtd:
        out.append(Problem("含有 DOCTYPE 或实体（ENTITY）声明：为防 XXE 和实体膨胀攻击，拒绝处理，未做任何解析", name,
                           _line_of(data, dtd.start())))
        refused = True
    if refused:
        return None
    try:
        tree = _parse_xml(bytes(data))
    except etree.XMLSyntaxError as exc:
        message, detail = xml_syntax_message(exc.msg or str(exc))
        out.append(Problem(message, name, exc.lineno or None, detail=detail))
        return None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        out.append(Problem("含有 DOCTYPE 声明，拒绝处理", name))
        return None
    if etree.QName(tree.getroot()).namespace != BPMN_NS or etree.QName(tree.getroot()).localname != "definitions":
        out.append(Problem(f"根元素 {_short(tree.getroot().tag)} 不是 BPMN 2.0 的 definitions", name,
                           tree.getroot().sourceline))
        return None
    return tree


_schema_lock = threading.Lock()
_schema: etree.XMLSchema | None = None


def _xsd() -> etree.XMLSchema:
    """The BPMN 2.0 XSD shipped with SpiffWorkflow, loaded once from local files only."""
    global _schema
    with _schema_lock:
        if _schema is None:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
            _schema = etree.XMLSchema(etree.parse(str(XSD_PATH), parser))
        return _schema


def _xsd_text(message: str) -> dict:
    zh, detail = xsd_message(message)
    return {"message": zh, "detail": detail}


def _xsd_problems(name: str, tree: Any) -> list[Problem]:
    """Every BPMN 2.0 XSD error of a file (up to :data:`MAX_XSD_ERRORS`), in Chinese with the original as detail."""
    root = tree.getroot()
    renames = root.xpath(".//bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression", namespaces=NS)
    if renames:   # what SpiffWorkflow's own validator does for bpmn-js files, on a copy
        root = copy.deepcopy(root)
        for expr in root.xpath(".//bpmn:correlationPropertyRetrievalExpression/bpmn:formalExpression", namespaces=NS):
            expr.tag = "{" + BPMN_NS + "}messagePath"
    schema = _xsd()
    if schema.validate(root):
        return []
    errors = list(schema.error_log)
    out = [Problem(**_xsd_text(e.message), file=name, line=e.line or None) for e in errors[:MAX_XSD_ERRORS]]
    if len(errors) > MAX_XSD_ERRORS:
        out.append(Problem(f"另有 {len(errors) - MAX_XSD_ERRORS} 个 XML Schema 错误未列出", name))
    return out


# ---- the processes of a file ---------------------------------------------------------------------------------
