"""What is sent about a case, as the process owners define it in ``processes/notifications.json``.

A template is bound to an event kind of a step and (except ``status_changed``) to a BPMN element:

- ``task_ready``: a user task became ready in the step (``to: ["task"]`` is who may act on it);
- ``task_completed``: a user task was completed; ``when`` may require values of the submitted form;
- ``document_issued``: a task issued its numbered document;
- ``reached``: an engine element (an end event, a boundary or throw event) was passed;
- ``timer_fired``: a timer event fired;
- ``status_changed``: the case's status changed; ``when: {"to": …}``.

Texts are Chinese with ``{name}`` variables: named fields only, never attribute access, indexing or format specs.
The names an event offers: the case's (``case_no``, ``title``, ``unit_name``), the task's (``task_name``,
``task_title``, ``task_label``), ``date`` (the step's local date), the fields of the submitted form, the values the
task or element had in its data (a dictionary one level down as ``name_key``, e.g. ``item_name``), the document
(``document_kind``, ``document_number``), the task's deadline (``due_date``, ``due_clause``) and, for a status,
``status_label``. Unknown names are refused when the process set is validated (:func:`problems`).

Recipients: ``applicant`` (every handler of the case's unit), ``task`` (who may act on the ready task), ``lead``
(the case's lead officer), ``role:<role>``, ``dept:{variable}``, ``user:{variable}``.

:func:`for_step` matches one step's events against the templates and returns notification rows with a deterministic
idempotency key (case, event sequence, template, recipient): the same step written twice yields the same keys, and the
outbox writes a key once.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime

FILE = "notifications.json"
KINDS = {"task_ready": "待办出现", "task_completed": "待办办理完成", "document_issued": "出具单据",
         "reached": "流程到达", "timer_fired": "定时器触发", "status_changed": "办件状态改变"}
_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BRACES = re.compile(r"[{}]")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
COMMON_VARS = {"case_no", "title", "unit_name", "date", "task_name", "task_title", "task_label"}
KIND_VARS = {"task_ready": {"due_date", "due_clause"},
             "task_completed": {"document_kind", "document_number"},
             "document_issued": {"document_kind", "document_number"},
             "reached": set(), "timer_fired": {"timer_title"},
             "status_changed": {"status_label"}}
DATA_KINDS = {"task_ready", "task_completed", "reached"}     # events that carry the task's or element's data
MAX_TEMPLATES = 200


@dataclass(frozen=True)
class Template:
    id: str
    on: str
    elements: tuple[str, ...]
    to: tuple[str, ...]
    subject: str
    text: str
    when: dict = field(default_factory=dict)


# ---- reading and checking -------------------------------------------------------------------------------------------
def parse(files: dict[str, bytes]) -> tuple[list[Template], list[str]]:
    """The templates of a process set and the problems of their shape (Chinese, naming the template)."""
    raw = files.get(FILE)
    if raw is None:
        return [], []
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [], [f"{FILE} 不是有效的 UTF-8 JSON：{getattr(exc, 'msg', '编码错误')}"]
    items = doc.get("templates") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return [], [f"{FILE} 应为含 templates 列表的对象"]
    if len(items) > MAX_TEMPLATES:
        return [], [f"{FILE} 的通知模板超过 {MAX_TEMPLATES} 个"]
    out, problems, seen = [], [], set()
    for i, t in enumerate(items, 1):
        tid = t.get("id") if isinstance(t, dict) else None
        label = f"通知模板「{tid}」" if isinstance(tid, str) and tid else f"第 {i} 个通知模板"
        if not isinstance(t, dict):
            problems.append(f"{label} 应为对象")
            continue
        bad = []
        if not isinstance(tid, str) or not re.fullmatch(r"[A-Za-z0-9_\-]{1,60}", tid):
            bad.append("缺少编号（id，字母、数字、下划线，最长 60）")
        elif tid in seen:
            bad.append("编号重复")
        if t.get("on") not in KINDS:
            bad.append(f"事件类型（on）应为 {'、'.join(KINDS)} 之一")
        elements = t.get("element")
        elements = [elements] if isinstance(elements, str) else elements
        if t.get("on") == "status_changed":
            elements = elements or []
        if not isinstance(elements, list) or not all(isinstance(e, str) and e for e in elements) \
                or (t.get("on") != "status_changed" and not elements):
            bad.append("未指定所绑定的流程元素（element）")
            elements = []
        to = t.get("to")
        if not isinstance(to, list) or not to or not all(isinstance(r, str) and r for r in to):
            bad.append("未指定通知对象（to）")
            to = []
        for key in ("subject", "text"):
            if not isinstance(t.get(key), str) or not t[key].strip() or len(t[key]) > (100 if key == "subject" else 500):
                bad.append(f"{'标题' if key == 'subject' else '正文'}为空或过长")
        when = t.get("when", {})
        if not isinstance(when, dict) or not all(isinstance(v, (str, list)) for v in when.values()):
            bad.append("条件（when）应为“字段: 值或值的列表”")
            when = {}
        unknown = set(t) - {"id", "on", "element", "to", "subject", "text", "when", "note"}
        if unknown:
            bad.append(f"有未知的键：{'、'.join(sorted(unknown))}")
        if bad:
            problems.extend(f"{FILE}：{label}{b}" for b in bad)
            continue
        seen.add(tid)
        out.append(Template(tid, t["on"], tuple(elements), tuple(to), t["subject"], t["text"],
                            {k: tuple(v) if isinstance(v, list) else (v,) for k, v in when.items()}))
    return out, problems


def names_in(text: str) -> tuple[list[str], bool]:
    """The variables a text uses, and whether its braces are all ``{name}`` (no ``{a.b}``, ``{a[0]}``, ``{a:>3}``)."""
    names = _NAME.findall(text)
    rest = _NAME.sub("", text)
    return names, not _BRACES.search(rest)


@dataclass
class ElementInfo:
    """What validation knows of a BPMN element a template may be bound to."""
    kind: str               # "userTask", "endEvent", "boundaryEvent", ...
    name: str
    form_fields: dict = field(default_factory=dict)     # field: its enum (or None)
    document: str | None = None
    timer: bool = False


def problems(templates: list[Template], elements: dict[str, ElementInfo], data_names: set[str], roles: set[str],
             outcomes: set[str]) -> list[str]:
    """Whether each template fits the process set: known elements of the right kind, known variables and recipients,
    conditions on fields of the form (and values it offers). Chinese, naming the template."""
    out = []
    for t in templates:
        label = f"通知模板「{t.id}」"
        known = COMMON_VARS | KIND_VARS[t.on]
        for eid in t.elements:
            el = elements.get(eid)
            if el is None:
                out.append(f"{label}绑定的流程元素 {eid} 不存在")
                continue
            user = el.kind == "userTask"
            if t.on in ("task_ready", "task_completed", "document_issued") and not user:
                out.append(f"{label}的事件类型「{KINDS[t.on]}」只能绑定用户任务，{eid}（{el.name}）不是")
            elif t.on == "document_issued" and not el.document:
                out.append(f"{label}绑定的任务 {eid}（{el.name}）不出具单据")
            elif t.on == "reached" and user:
                out.append(f"{label}的事件类型「流程到达」不能绑定用户任务 {eid}（{el.name}），请用“待办办理完成”")
            elif t.on == "timer_fired" and not el.timer:
                out.append(f"{label}绑定的元素 {eid}（{el.name}）不是定时器事件")
            if t.on == "task_completed":
                known = known | set(el.form_fields)
        if t.on in DATA_KINDS:
            known = known | data_names
        for text in (t.subject, t.text):
            names, clean = names_in(text)
            if not clean:
                out.append(f"{label}的文字中只能用 {{变量名}} 引用变量，不能有其他花括号、属性、下标或格式")
            for n in names:
                if not _known(n, known, data_names if t.on in DATA_KINDS else set()):
                    out.append(f"{label}引用了未知的变量 {{{n}}}")
        for r in t.to:
            out.extend(f"{label}{p}" for p in _recipient_problems(r, t.on, known, data_names, roles))
        for fld, values in t.when.items():
            if t.on == "status_changed":
                if fld != "to":
                    out.append(f"{label}的条件只能是 to（变为的状态）")
                else:
                    out.extend(f"{label}的条件中状态 {v} 不存在" for v in values if v not in outcomes)
                continue
            if t.on != "task_completed":
                out.append(f"{label}的条件（when）只能用于“待办办理完成”或“办件状态改变”")
                break
            for eid in t.elements:
                el = elements.get(eid)
                if el is None or el.kind != "userTask":
                    continue
                if fld not in el.form_fields:
                    out.append(f"{label}的条件字段 {fld} 不在任务 {eid}（{el.name}）的表单中")
                elif el.form_fields[fld] is not None:
                    out.extend(f"{label}的条件值「{v}」不是字段 {fld} 的可选值" for v in values
                               if v not in el.form_fields[fld])
    return out


def _known(name: str, known: set[str], data_names: set[str]) -> bool:
    if name in known:
        return True
    return any(name.startswith(root + "_") and len(name) > len(root) + 1 for root in data_names)


def _recipient_problems(r: str, on: str, known: set[str], data_names: set[str], roles: set[str]) -> list[str]:
    if r in ("applicant", "lead"):
        return []
    if r == "task":
        return [] if on == "task_ready" else ["的通知对象 task（待办的办理人）只能用于“待办出现”"]
    kind, _, value = r.partition(":")
    if kind == "role":
        return [] if value in roles else [f"的通知对象角色 {value} 不存在"]
    if kind in ("dept", "user"):
        m = re.fullmatch(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", value)
        if m is None:
            return [f"的通知对象 {r} 应写作 {kind}:{{变量名}}"]
        if not _known(m.group(1), known, data_names if on in DATA_KINDS else set()):
            return [f"的通知对象引用了未知的变量 {{{m.group(1)}}}"]
        return []
    return [f"的通知对象 {r} 无法识别（可用 applicant、task、lead、role:角色、dept:{{变量}}、user:{{变量}}）"]


# ---- formatting -----------------------------------------------------------------------------------------------------
def chinese_date(value) -> str:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return f"{value.year}年{value.month}月{value.day}日"
    m = _ISO_DATE.match(str(value))
    return f"{int(m[1])}年{int(m[2])}月{int(m[3])}日" if m else str(value)


def _scalar(value) -> str | None:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (str, date)):
        return chinese_date(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return "、".join(str(v) for v in value)
    return None


def flatten(data: dict | None) -> dict[str, str]:
    """A task's data as named text values: scalars as they are, a dictionary's scalars one level down as ``name_key``;
    nothing else (no objects, no deeper access)."""
    out: dict[str, str] = {}
    for k, v in (data or {}).items():
        if not isinstance(k, str):
            continue
        s = _scalar(v)
        if s is not None:
            out[k] = s
        elif isinstance(v, dict):
            for kk, vv in v.items():
                ss = _scalar(vv) if isinstance(kk, str) else None
                if ss is not None:
                    out[f"{k}_{kk}"] = ss
    return out


def render(text: str, values: dict[str, str]) -> str:
    """``{name}`` replaced by its value (unknown: empty); nothing else is interpreted."""
    return _NAME.sub(lambda m: values.get(m.group(1), ""), text)


# ---- matching a step ------------------------------------------------------------------------------------------------
@dataclass
class StepEvent:
    """One thing that happened in a step, as the templates see it."""
    kind: str
    seq: int
    element: str | None
    values: dict[str, str]
    task_id: str | None = None
    audience: str | None = None      # for task_ready: who may act (a recipient)
    form: dict = field(default_factory=dict)
    to_status: str | None = None


def idem_key(case_no: str, seq: int, template_id: str, recipient: str, task_id: str | None = None) -> str:
    body = f"{case_no}\n{seq}\n{template_id}\n{recipient}\n{task_id or ''}"
    return "tpl:" + hashlib.sha256(body.encode("utf-8")).hexdigest()[:48]


def for_step(templates: list[Template], events: list[StepEvent], case_no: str, case_id: int, unit_id: int,
             lead: str | None, at: datetime) -> list[dict]:
    """The notification rows of a step's events (for ``repo.add_notifications``)."""
    rows, seen = [], set()
    for ev in events:
        for t in templates:
            if t.on != ev.kind or (t.elements and ev.element not in t.elements):
                continue
            if not _when(t, ev):
                continue
            for spec in t.to:
                for recipient in _recipients(spec, ev, unit_id, lead):
                    key = idem_key(case_no, ev.seq, t.id, recipient, ev.task_id)
                    if key in seen:
                        continue
                    seen.add(key)
                    link = f"/tasks/{ev.task_id}" if ev.kind == "task_ready" and ev.task_id else f"/cases/{case_no}"
                    rows.append({"recipient": recipient, "case_id": case_id, "kind": t.on,
                                 "subject": render(t.subject, ev.values)[:100], "text": render(t.text, ev.values)[:500],
                                 "link": link, "idem_key": key, "created_at": at})
    return rows


def _when(t: Template, ev: StepEvent) -> bool:
    for fld, values in t.when.items():
        got = ev.to_status if t.on == "status_changed" else ev.form.get(fld)
        if got not in values:
            return False
    return True


def _recipients(spec: str, ev: StepEvent, unit_id: int, lead: str | None) -> list[str]:
    if spec == "applicant":
        return [f"unit:{unit_id}"]
    if spec == "lead":
        return [f"user:{lead}"] if lead else []
    if spec == "task":
        return [ev.audience] if ev.audience else []
    kind, _, value = spec.partition(":")
    if kind == "role":
        return [spec]
    resolved = render(value, ev.values).strip()
    return [f"{kind}:{resolved}"] if resolved else []
