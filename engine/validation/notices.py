"""The message templates of ``notifications.json`` (:mod:`engine.notices`) must fit the process set: elements that
exist and are of the right kind, variables the event offers, known recipients, conditions on fields of the form."""
from __future__ import annotations

from typing import Any

from lxml import etree

from .. import notices, showspec
from .common import BPMN_NS, NS, Problem, _as_dict, _properties
from .context import _Context

_TIMER_HOSTS = ("boundaryEvent", "intermediateCatchEvent", "startEvent")


def _elements(trees: dict[str, Any], ctx: _Context) -> tuple[dict[str, notices.ElementInfo], set[str]]:
    """Every BPMN element with an id (what a template may be bound to) and the names task data may carry."""
    elements: dict[str, notices.ElementInfo] = {}
    names: set[str] = set()
    for form in ctx.forms.values():
        names.update(_as_dict(_as_dict(form).get("properties")))
    for tree in trees.values():
        for el in tree.getroot().iter():
            if not isinstance(el.tag, str) or etree.QName(el).namespace != BPMN_NS or not el.get("id"):
                continue
            local = etree.QName(el).localname
            props = {p.get("name"): p.get("value") or "" for p in _properties(el)}
            info = notices.ElementInfo(local, el.get("name") or el.get("id"), document=props.get("document"),
                                       timer=local in _TIMER_HOSTS and bool(el.xpath("./bpmn:timerEventDefinition",
                                                                                     namespaces=NS)))
            if local == "userTask":
                schema = _as_dict(ctx.forms.get(props.get("formJsonSchemaFilename") or ""))
                info.form_fields = {k: (v.get("enum") if isinstance(v, dict) else None)
                                    for k, v in _as_dict(schema.get("properties")).items()}
            elements[el.get("id")] = info
            for key in ("record_actor", "form_key"):
                if props.get(key):
                    names.add(props[key])
            names.update(showspec.variables(props.get("show", "")))
        for item in tree.getroot().xpath("//bpmn:inputDataItem/@name | //bpmn:outputDataItem/@name", namespaces=NS):
            names.add(str(item))
        for var in tree.getroot().xpath("//spiffworkflow:messageVariable/text()", namespaces=NS):
            names.add(str(var).strip())
    lead_vars = (ctx.manifest or {}).get("lead_vars")
    names.update(str(v) for v in (lead_vars if isinstance(lead_vars, list) else []))
    return elements, {n for n in names if n.isidentifier()}


def notice_problems(ctx: _Context, files: dict[str, bytes], trees: dict[str, Any]) -> list[Problem]:
    templates, shape = notices.parse(files)
    out = [Problem(p.removeprefix(notices.FILE + "："), notices.FILE) for p in shape]
    if not templates or ctx.manifest is None:
        return out
    elements, names = _elements(trees, ctx)
    manifest = ctx.manifest
    roles = set(_as_dict(manifest.get("roles")))
    outcomes = set(_as_dict(manifest.get("outcomes"))) | {"active"}
    out.extend(Problem(p, notices.FILE) for p in notices.problems(templates, elements, names, roles, outcomes))
    return out
