"""What changed between two process versions, element by element, in words a process owner reads."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from lxml import etree

from .errors import ProcessDefinitionError
from .processes import parse_xml

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
CATEGORY = {
    "userTask": "任务", "scriptTask": "任务", "serviceTask": "任务", "manualTask": "任务", "task": "任务",
    "sendTask": "任务", "receiveTask": "任务", "businessRuleTask": "任务", "callActivity": "任务",
    "subProcess": "子流程", "lane": "泳道", "sequenceFlow": "连线",
    "exclusiveGateway": "网关", "parallelGateway": "网关", "inclusiveGateway": "网关", "eventBasedGateway": "网关",
    "startEvent": "事件", "endEvent": "事件", "intermediateCatchEvent": "事件", "intermediateThrowEvent": "事件",
    "boundaryEvent": "事件", "message": "消息",
}
KIND = {"added": "新增", "removed": "删除", "changed": "修改"}


@dataclass
class Change:
    kind: str          # added / removed / changed
    category: str      # 任务 / 泳道 / 连线 / 表单 / 定时器 / 事项目录 / 流程清单 ...
    file: str
    element: str | None
    name: str | None
    detail: str = ""

    def to_dict(self) -> dict:
        return dict(asdict(self), kind_name=KIND[self.kind])


def _local(el) -> str:
    return etree.QName(el).localname


def _elements(name: str, data: bytes) -> dict[str, dict]:
    """Every element with an id: its kind, name, lane, properties, and what defines its behaviour."""
    tree = parse_xml(data, name)
    lanes = {}
    for ref in tree.iter(f"{{{BPMN}}}flowNodeRef"):
        lanes[(ref.text or "").strip()] = ref.getparent().get("name")
    out: dict[str, dict] = {}
    for el in tree.iter():
        if not isinstance(el.tag, str) or etree.QName(el).namespace != BPMN or el.get("id") is None:
            continue
        kind = _local(el)
        if kind in ("definitions", "process", "collaboration", "participant", "laneSet", "messageEventDefinition",
                    "timerEventDefinition", "multiInstanceLoopCharacteristics"):
            continue
        info: dict = {"kind": kind, "name": el.get("name"), "lane": lanes.get(el.get("id"))}
        props = {p.get("name"): p.get("value")
                 for p in el.findall(f"{{{BPMN}}}extensionElements/{{{SPIFF}}}properties/{{{SPIFF}}}property")}
        if props:
            info["properties"] = props
        timer = el.find(f"{{{BPMN}}}timerEventDefinition")
        if timer is not None:
            info["timer"] = " ".join((c.text or "").strip() for c in timer)
            info["category"] = "定时器"
        if kind == "sequenceFlow":
            cond = el.find(f"{{{BPMN}}}conditionExpression")
            info.update(source=el.get("sourceRef"), target=el.get("targetRef"),
                        condition=(cond.text or "").strip() if cond is not None else None)
        script = el.find(f"{{{BPMN}}}script")
        if script is not None:
            info["script"] = script.text or ""
        if el.get("attachedToRef"):
            info["attached_to"] = el.get("attachedToRef")
        info.setdefault("category", CATEGORY.get(kind, "元素"))
        out[el.get("id")] = info
    return out


_LABELS = {"name": "名称", "lane": "泳道", "kind": "类型", "properties": "属性", "timer": "定时表达式",
           "source": "起点", "target": "终点", "condition": "条件", "script": "脚本", "attached_to": "附着于"}


def _describe_change(a: dict, b: dict) -> str:
    parts = []
    for key in sorted(set(a) | set(b)):
        if key == "category" or a.get(key) == b.get(key):
            continue
        if key == "properties":
            pa, pb = a.get(key) or {}, b.get(key) or {}
            for p in sorted(set(pa) | set(pb)):
                if pa.get(p) != pb.get(p):
                    parts.append(f"属性 {p}：{pa.get(p, '（无）')} → {pb.get(p, '（无）')}")
        else:
            parts.append(f"{_LABELS.get(key, key)}：{a.get(key) or '（无）'} → {b.get(key) or '（无）'}")
    return "；".join(parts)


def _diff_bpmn(name: str, old: bytes | None, new: bytes | None) -> list[Change]:
    ea = _elements(name, old) if old is not None else {}
    eb = _elements(name, new) if new is not None else {}
    out = []
    for eid in sorted(set(ea) | set(eb), key=lambda i: (eb.get(i) or ea.get(i))["category"]):
        a, b = ea.get(eid), eb.get(eid)
        if a is None:
            out.append(Change("added", b["category"], name, eid, b.get("name"), _summary(b)))
        elif b is None:
            out.append(Change("removed", a["category"], name, eid, a.get("name"), _summary(a)))
        elif a != b:
            out.append(Change("changed", b["category"], name, eid, b.get("name") or a.get("name"), _describe_change(a, b)))
    return out


def _summary(info: dict) -> str:
    parts = []
    if info.get("lane"):
        parts.append(f"泳道：{info['lane']}")
    if info.get("kind") == "sequenceFlow":
        parts.append(f"{info.get('source')} → {info.get('target')}")
    if info.get("timer"):
        parts.append(f"定时：{info['timer']}")
    if (info.get("properties") or {}).get("formJsonSchemaFilename"):
        parts.append(f"表单：{info['properties']['formJsonSchemaFilename']}")
    return "；".join(parts)


def _json(data: bytes | None) -> dict:
    if data is None:
        return {}
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}


def _diff_form(name: str, old: bytes | None, new: bytes | None) -> list[Change]:
    title = (_json(new) or _json(old)).get("title")
    if old is None:
        return [Change("added", "表单", name, None, title)]
    if new is None:
        return [Change("removed", "表单", name, None, title)]
    a, b = _json(old), _json(new)
    out = []
    pa, pb = a.get("properties", {}), b.get("properties", {})
    for field in sorted(set(pa) | set(pb)):
        if field not in pa:
            out.append(Change("added", "表单字段", name, field, pb[field].get("title")))
        elif field not in pb:
            out.append(Change("removed", "表单字段", name, field, pa[field].get("title")))
        elif pa[field] != pb[field]:
            keys = sorted(k for k in set(pa[field]) | set(pb[field]) if pa[field].get(k) != pb[field].get(k))
            out.append(Change("changed", "表单字段", name, field, pb[field].get("title"), "变化：" + "、".join(keys)))
    rest_a = {k: v for k, v in a.items() if k != "properties"}
    rest_b = {k: v for k, v in b.items() if k != "properties"}
    if rest_a != rest_b:
        keys = sorted(k for k in set(rest_a) | set(rest_b) if rest_a.get(k) != rest_b.get(k))
        out.append(Change("changed", "表单", name, None, title, "变化：" + "、".join(keys)))
    return out


def _diff_catalogue(name: str, old: bytes | None, new: bytes | None) -> list[Change]:
    a, b = _json(old), _json(new)
    out = []
    for section, label, key in (("items", "服务事项", "code"), ("departments", "责任部门", "code")):
        ia = {x.get(key): x for x in a.get(section, [])}
        ib = {x.get(key): x for x in b.get(section, [])}
        for code in sorted(set(ia) | set(ib)):
            x, y = ia.get(code), ib.get(code)
            if x is None:
                out.append(Change("added", label, name, code, y.get("name")))
            elif y is None:
                out.append(Change("removed", label, name, code, x.get("name")))
            elif x != y:
                detail = "；".join(f"{k}：{x.get(k)} → {y.get(k)}" for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k))
                out.append(Change("changed", label, name, code, y.get("name"), detail))
    return out


def _diff_manifest(name: str, old: bytes | None, new: bytes | None) -> list[Change]:
    a, b = _json(old), _json(new)
    return [Change("changed", "流程清单", name, key, None, "已修改")
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def diff_files(old: dict[str, bytes], new: dict[str, bytes]) -> list[dict]:
    """Changes from ``old`` to ``new`` (two process sets), as dicts for pages and the API."""
    changes: list[Change] = []
    try:
        for name in sorted(set(old) | set(new)):
            a, b = old.get(name), new.get(name)
            if a == b:
                continue
            if name.endswith(".bpmn"):
                changes += _diff_bpmn(name, a, b)
            elif name.startswith("forms/"):
                changes += _diff_form(name, a, b)
            elif name == "catalogue.json":
                changes += _diff_catalogue(name, a, b)
            elif name.startswith("documents/"):
                kind = "added" if a is None else "removed" if b is None else "changed"
                changes.append(Change(kind, "单据模板", name, None, name.removeprefix("documents/").removesuffix(".html"),
                                      KIND[kind]))
            else:
                changes += _diff_manifest(name, a, b)
    except ProcessDefinitionError as exc:
        changes.append(Change("changed", "文件", "", None, None, exc.message))
    return [c.to_dict() for c in changes]
