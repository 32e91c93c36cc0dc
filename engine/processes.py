"""Process sets: the files in ``processes/`` (BPMN, forms, catalogue, manifest) loaded, checked and cached.

A process set is identified by the SHA-256 of its files. Every case is pinned to the hash it started on;
the parsed specs of a hash are built once per process and kept in memory.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from lxml import etree

from . import caches, notices
from . import documents as document_templates
from . import forms as form_rules
from . import spiff_runtime as rt
from .deadlines import clock_due
from .errors import ProcessDefinitionError
from .spiff_messages import spiff_text

MANIFEST = "bangban.json"
CATALOGUE = "catalogue.json"
MAX_BPMN_BYTES = 2 * 1024 * 1024
MAX_JSON_BYTES = 512 * 1024
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {"bpmn": BPMN_NS}
_DTD_PATTERN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def read_dir(path: Path) -> dict[str, bytes]:
    """The files of a process set, keyed by their path relative to ``path`` (``forms/x.json``, ``documents/x.html``)."""
    path = Path(path)
    files: dict[str, bytes] = {}
    for p in (sorted(path.glob("*.bpmn")) + sorted(path.glob("*.json")) + sorted((path / "forms").glob("*.json"))
              + sorted((path / "documents").glob("*.html"))):
        files[p.relative_to(path).as_posix()] = p.read_bytes()
    return files


def content_hash(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + str(len(files[name])).encode() + b"\0" + files[name])
    return h.hexdigest()


def parse_xml(data: bytes, filename: str) -> Any:
    """Parse untrusted BPMN bytes: no DTD, no entities, no network, bounded size."""
    if len(data) > MAX_BPMN_BYTES:
        raise ProcessDefinitionError(f"{filename}：文件超过 {MAX_BPMN_BYTES // 1024 // 1024} MB 上限")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProcessDefinitionError(f"{filename}：不是有效的 UTF-8 编码（第 {exc.start} 字节）") from exc
    if _DTD_PATTERN.search(data):
        raise ProcessDefinitionError(f"{filename}：不允许包含 DOCTYPE 或实体声明（可能是 XXE 攻击），未做任何解析")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_comments=False, encoding="utf-8")  # never another declared encoding
    try:
        tree = etree.ElementTree(etree.fromstring(data, parser))
    except etree.XMLSyntaxError as exc:
        raise ProcessDefinitionError(f"{filename}：不是有效的 XML（第 {exc.lineno} 行）：{exc.msg}") from exc
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise ProcessDefinitionError(f"{filename}：不允许包含 DOCTYPE 或实体声明")
    return tree


@dataclass
class Catalogue:
    """Service items with their departments and time limits (``processes/catalogue.json``)."""

    raw: dict

    @cached_property
    def departments(self) -> dict[str, str]:
        return {d["code"]: d["name"] for d in self.raw.get("departments", [])}

    @cached_property
    def items(self) -> dict[str, dict]:
        return {i["code"]: i for i in self.raw.get("items", [])}

    def problems(self) -> list[str]:
        out = []
        for item in self.raw.get("items", []):
            if item.get("department") not in self.departments:
                out.append(f"目录：事项「{item.get('name')}」的责任部门 {item.get('department')} 不存在")
            if not isinstance(item.get("limit_days"), (int, float)) or item["limit_days"] <= 0:
                out.append(f"目录：事项「{item.get('name')}」的办理时限须为正数")
        return out

    def items_for(self, codes: list[str]) -> list[dict]:
        """The service items of ``codes`` as plain dicts, in catalogue order (a helper scripts may call)."""
        wanted = set(codes or [])
        return [
            {"code": c, "name": i["name"], "category": i["category"], "department": i["department"],
             "department_name": self.departments[i["department"]], "limit_days": i["limit_days"]}
            for c, i in self.items.items() if c in wanted
        ]

    @staticmethod
    def departments_of(results: list[dict]) -> list[dict]:
        """The distinct departments of a list of item results, in order (a helper scripts may call)."""
        seen: dict[str, dict] = {}
        for r in results or []:
            seen.setdefault(r["department"], {"code": r["department"], "name": r["department_name"]})
        return list(seen.values())

    def options(self) -> list[dict]:
        return [{"value": c, "label": i["name"], "group": i["category"],
                 "hint": f"{self.departments[i['department']]}，{i['limit_days']}个工作日"} for c, i in self.items.items()]


@dataclass
class ProcessSet:
    hash: str
    files: dict[str, bytes]
    manifest: dict
    catalogue: Catalogue
    forms: dict[str, dict]
    specs: dict[str, tuple[Any, dict]] = field(repr=False)

    @cached_property
    def script_engine(self):
        return rt.make_script_engine({
            "catalogue_items": self.catalogue.items_for,
            "departments_of": self.catalogue.departments_of,
            "clock_due": clock_due,
        })

    @cached_property
    def notice_templates(self) -> list:
        """The message templates of ``notifications.json`` (:mod:`engine.notices`); none if the set has no such file."""
        return notices.parse(self.files)[0]

    @cached_property
    def notice_bindings(self) -> frozenset:
        """(event kind, element) pairs some template is bound to; (``status_changed``, None) for status templates."""
        return frozenset((t.on, e) for t in self.notice_templates for e in (t.elements or (None,)))

    def role_of_lane(self, lane: str | None) -> str | None:
        return self.manifest["lanes"].get(lane) if lane else None

    def form(self, name: str) -> dict:
        try:
            return self.forms[name]
        except KeyError:
            raise ProcessDefinitionError(f"流程定义引用了不存在的表单 {name}") from None

    def process(self, process_id: str) -> dict:
        try:
            return self.manifest["processes"][process_id]
        except KeyError:
            raise ProcessDefinitionError(f"流程清单中没有流程 {process_id}") from None

    @property
    def stages(self) -> list[str]:
        return self.manifest.get("stages", [])

    @cached_property
    def _field_titles(self) -> dict[str, str]:
        titles: dict[str, str] = {}
        for schema in self.forms.values():
            for name, prop in schema.get("properties", {}).items():
                titles.setdefault(name, prop.get("title", name))
        facts = self.manifest.get("case_facts")
        for name, title in (facts.get("titles") or {} if isinstance(facts, dict) else {}).items():
            titles.setdefault(name, str(title))        # the facts a case takes from the registers
        return titles

    @cached_property
    def fact_names(self) -> tuple[str, ...]:
        """The case facts the service records at submission (manifest ``case_facts.titles``)."""
        facts = self.manifest.get("case_facts")
        titles = facts.get("titles") if isinstance(facts, dict) else None
        return tuple(titles) if isinstance(titles, dict) else ()

    @cached_property
    def _element_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for spec, subs in self.specs.values():
            for s in [spec, *subs.values()]:
                for ts in s.task_specs.values():
                    if getattr(ts, "bpmn_id", None) and getattr(ts, "bpmn_name", None):
                        names.setdefault(ts.bpmn_id, ts.bpmn_name)
        return names

    def element_name(self, element_id: str | None) -> str:
        """What the diagram calls an element (its id only when it has no name)."""
        return self._element_names.get(element_id or "", element_id or "")

    def field_title(self, name: str) -> str:
        """The title a form gives to a field name (the name itself if no form has it)."""
        return self._field_titles.get(name, name)

    @cached_property
    def case_var_fields(self) -> set[str]:
        """Form fields marked ``x-case-var``: kept at case level once submitted."""
        out = set()
        for schema in self.forms.values():
            for name, prop in schema.get("properties", {}).items():
                if prop.get("x-case-var"):
                    out.add(name)
        return out

    @cached_property
    def uses_clocks(self) -> bool:
        """Whether some element of the process set has a clock or timer (else clocks are never read or written)."""
        for spec, subs in self.specs.values():
            for s in [spec, *subs.values()]:
                for ts in s.task_specs.values():
                    props = rt.properties_of(ts)
                    if rt.is_timer(ts) or any(k.startswith("clock") for k in props):
                        return True
        return False

    @cached_property
    def task_forms(self) -> list[str]:
        """The forms of the user tasks of every process of the set (sorted)."""
        found = set()
        for spec, subs in self.specs.values():
            for s in [spec, *subs.values()]:
                for ts in s.task_specs.values():
                    form = rt.properties_of(ts).get("formJsonSchemaFilename") if getattr(ts, "manual", False) else None
                    if form in self.forms:
                        found.add(form)
        return sorted(found)

    @cached_property
    def actor_vars(self) -> set[str]:
        """Variables that ``record_actor`` properties fill: they exist (as None) from the start of a case."""
        out = set()
        for spec, subs in self.specs.values():
            for s in [spec, *subs.values()]:
                for ts in s.task_specs.values():
                    var = rt.properties_of(ts).get("record_actor")
                    if var:
                        out.add(var)
        return out


    @cached_property
    def assignee_roles(self) -> dict[str, set[str]]:
        """For each variable an ``assignee`` expression names: the roles of the lanes of those user tasks (who takes
        over a case variable by a 改派 of the case's lead must be able to do those tasks)."""
        out: dict[str, set[str]] = {}
        for spec, subs in self.specs.values():
            for s in [spec, *subs.values()]:
                for ts in s.task_specs.values():
                    expression = rt.properties_of(ts).get("assignee") if getattr(ts, "manual", False) else None
                    role = self.role_of_lane(getattr(ts, "lane", None))
                    for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression or ""):
                        if role:
                            out.setdefault(name, set()).add(role)
        return out


def _load_json(files: dict[str, bytes], name: str, problems: list[str]) -> Any:
    data = files.get(name)
    if data is None:
        problems.append(f"缺少文件 {name}")
        return None
    if len(data) > MAX_JSON_BYTES:
        problems.append(f"{name}：文件过大")
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        problems.append(f"{name}：不是有效的 UTF-8 编码（第 {exc.start} 字节）")
        return None
    except json.JSONDecodeError as exc:
        from .json_messages import json_message
        problems.append(f"{name}：不是有效的 JSON：{json_message(exc)}")
        return None


def build(files: dict[str, bytes], published: bool = False) -> ProcessSet:
    """Load and check a process set; raise :class:`ProcessDefinitionError` listing every problem found.

    ``published``: the files of a stored version, fully validated when they were published — the forms' JSON
    Schema meta-check (the slowest part of loading, and what a freshly started process pays per version) is
    not repeated; everything the engine needs to run them is still built and checked."""
    problems: list[str] = []
    manifest = _load_json(files, MANIFEST, problems)
    catalogue_raw = _load_json(files, CATALOGUE, problems)
    forms: dict[str, dict] = {}
    for name in files:
        if name.startswith("forms/") and name.endswith(".json"):
            schema = _load_json(files, name, problems)
            if schema is not None:
                for p in ([] if published else form_rules.check_schema(schema)):
                    problems.append(f"{name}：{p}")
                forms[name.removeprefix("forms/")] = schema
    trees = {}
    for name in files:
        if name.endswith(".bpmn"):
            try:
                trees[name] = parse_xml(files[name], name)
            except ProcessDefinitionError as exc:
                problems.append(exc.message)
    problems += notices.parse(files)[1]
    if problems or manifest is None or catalogue_raw is None:
        raise ProcessDefinitionError("流程文件有误", details=problems)
    catalogue = Catalogue(catalogue_raw)
    problems += catalogue.problems()
    roles = manifest.get("roles", {})
    for lane, role in manifest.get("lanes", {}).items():
        if role not in roles:
            problems.append(f"{MANIFEST}：泳道「{lane}」对应的角色 {role} 未定义")
    process_ids = list(manifest.get("processes", {}))
    for pid, proc in manifest.get("processes", {}).items():
        if proc.get("start_form") not in forms:
            problems.append(f"{MANIFEST}：流程 {pid} 的申请表单 {proc.get('start_form')} 不存在")
    for name, tree in trees.items():
        for lane in tree.xpath("//bpmn:lane", namespaces=NS):
            if lane.get("name") not in manifest.get("lanes", {}):
                problems.append(f"{name} 第 {lane.sourceline} 行：泳道「{lane.get('name')}」不是已知的角色")
    if problems:
        raise ProcessDefinitionError("流程文件有误", details=problems)
    try:
        specs = rt.build_specs(trees, process_ids)
    except rt.BpmnBuildError as exc:
        where = f"（{exc.filename or ''} 第 {exc.line} 行）" if exc.line else ""
        chinese, original, _element = spiff_text(exc.message)
        raise ProcessDefinitionError("流程文件有误", details=[
            f"流程无法由 SpiffWorkflow 构建{where}：{chinese}（原文：{original}）"]) from exc
    documents_issued: set[str] = set()
    for pid, (spec, subs) in specs.items():
        for s in [spec, *subs.values()]:
            for ts in s.task_specs.values():
                if not getattr(ts, "manual", False):
                    continue
                props = rt.properties_of(ts)
                label = f"{pid} 的任务「{ts.bpmn_name or ts.bpmn_id}」"
                form = props.get("formJsonSchemaFilename")
                if not form:
                    problems.append(f"{label} 未指定表单（formJsonSchemaFilename）")
                elif form not in forms:
                    problems.append(f"{label} 引用的表单 {form} 不存在")
                if ts.lane not in manifest.get("lanes", {}):
                    problems.append(f"{label} 不在已知角色的泳道中")
                if props.get("document"):
                    documents_issued.add(props["document"])
                stage = props.get("stage")
                if stage and stage not in manifest.get("stages", []):
                    problems.append(f"{label} 的阶段「{stage}」不在清单的阶段列表中")
    for key, msg in manifest.get("messages", {}).items():
        if msg.get("form") not in forms:
            problems.append(f"{MANIFEST}：消息 {key} 的表单 {msg.get('form')} 不存在")
    if not published:       # a stored version was checked when published (older ones have no templates)
        problems += document_templates.template_problems(files, documents_issued)
    if problems:
        raise ProcessDefinitionError("流程文件有误", details=problems)
    return ProcessSet(content_hash(files), files, manifest, catalogue, forms, specs)


_cache: dict[str, ProcessSet] = {}
_lock = threading.Lock()
caches.register(_cache.clear)


def get_cached(version_hash: str) -> ProcessSet | None:
    return _cache.get(version_hash)


def load(files: dict[str, bytes], published: bool = False) -> ProcessSet:
    """Build a process set once per content hash (``published``: see :func:`build`)."""
    h = content_hash(files)
    cached = _cache.get(h)
    if cached is not None:
        return cached
    with _lock:
        if h not in _cache:
            _cache[h] = build(files, published)
        return _cache[h]
