"""What a task's page shows beside its form, as its ``show`` property declares it (``engine.showspec``).

``facts``: (title, value) pairs of the variables it names; ``sections``: the named views — the application, the
items' results, a clock in full, what another task submitted. Every title is the Chinese one a form, the catalogue
or this module gives; dates read as 2026年3月9日; no key, code or repr reaches the page.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import notices, showspec
from .deadlines import ClockState, local_date
from .processes import ProcessSet
from .runtime import CaseRun, TaskInfo
from .workcal import WorkCalendar

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def readable(value) -> str:
    """A shown value as people read it: a date as 2026年3月9日, yes/no in words, a list joined with 、."""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return notices.chinese_date(value)
    if isinstance(value, list | tuple):
        return "、".join(readable(v) for v in value if v not in (None, ""))
    if isinstance(value, dict):
        return "；".join(readable(v) for v in value.values() if v not in (None, ""))
    return str(value)


class Sources:
    """What the views read besides the task: loaded only when a view asks for it."""

    def __init__(self, application: Callable[[], dict], inbox: Callable[[], list], calendar: WorkCalendar,
                 moment: datetime, done_by: Callable[[str], tuple[str | None, datetime | None]] | None = None):
        self.application, self.inbox, self.calendar, self.moment = application, inbox, calendar, moment
        self.done_by = done_by or (lambda task_id: (None, None))   # who completed a task, and when


def build(ps: ProcessSet, run: CaseRun, task: TaskInfo, case, sources: Sources) -> tuple[list, list]:
    """(facts, sections) of a ready task."""
    facts: list[tuple[str, str]] = []
    sections: list[dict] = []
    entries, _ = showspec.parse(task.properties.get("show", ""))
    for entry in entries:
        if entry.kind == "var":
            facts += _variable(ps, entry.name, task.data.get(entry.name))
        elif entry.kind == "application":
            sections.append(_application(ps, case, sources))
        elif entry.kind == "items":
            section = _items(ps, run, sources)
            if section is not None:
                sections.append(section)
        elif entry.kind == "clock":
            key = task.clock_key if not entry.args else run.evaluate(entry.args[0], task.data, "显示时限")
            c = run.clocks.get(str(key)) if key not in (None, "") else None
            if c is not None:
                sections.append(clock_section(c, sources.calendar, sources.moment))
        elif entry.kind == "latest":
            section = _latest(ps, run, task, entry, sources)
            if section is not None:
                sections.append(section)
    return facts, sections


def _variable(ps: ProcessSet, name: str, value: Any) -> list[tuple[str, str]]:
    if value in (None, "", [], {}):
        return []
    item = ps.catalogue.items.get(value.get("code")) if isinstance(value, dict) else None
    if item is not None:
        out = [("服务事项", f"{item['name']}（{ps.catalogue.departments[item['department']]}，"
                          f"时限{item['limit_days']}个工作日）")]
        if item.get("materials"):
            out.append(("申报材料", "、".join(item["materials"])))
        return out
    if isinstance(value, dict):
        return [(ps.field_title(k), readable(v)) for k, v in value.items()
                if v not in (None, "") and ps.field_title(k) != k]
    return [(ps.field_title(name), readable(value))]


def _application(ps: ProcessSet, case, sources: Sources) -> dict:
    from .views import display_fields
    schema = ps.form(ps.process(case.process_id)["start_form"])
    rows = [(f["title"], readable(f["value"])) for f in display_fields(ps, schema, sources.application())]
    return {"kind": "fields", "id": "application", "title": schema.get("title") or "申请表", "rows": rows,
            "link": "application"}


ITEM_COLUMNS = ["服务事项", "责任部门", "办理结果", "批文/证照编号或不予许可理由"]


def _items(ps: ProcessSet, run: CaseRun, sources: Sources) -> dict | None:
    from .views import _items
    items = _items(ps, run, sources.inbox())
    if not items:
        return None
    rows = [[i["name"] or "", i["department_name"] or "", i["state"] or "", i["licence_no"] or i["refusal_reason"] or ""]
            for i in items]
    return {"kind": "table", "id": "items", "title": "各服务事项办理结果", "columns": ITEM_COLUMNS, "rows": rows}


def _day(moment) -> str:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return notices.chinese_date(local_date(moment)) if isinstance(moment, datetime) else notices.chinese_date(moment)


def clock_section(c: ClockState, cal: WorkCalendar, moment: datetime) -> dict:
    """A clock in full: light, deadline, working days used and left (or overdue), pauses, extensions."""
    c = c.copy().compute(cal, moment)
    d = c.describe(cal, moment)
    rows = [("计时状态", f"{d['level_name']}：{d['text']}"),
            ("开始计时", _day(c.started_at)),
            ("办理时限", f"{c.limit_days}个工作日" + (f"，已延长{d['extension_days']}个工作日，共{c.total_days}个工作日"
                                                  if d["extension_days"] else ""))]
    if c.due_date is not None:
        rows.append(("办结期限", notices.chinese_date(c.due_date) + ("（暂定）" if d["provisional"] else "")))
    rows.append(("已用", f"{d['used']}个工作日"))
    if c.stopped_at is None:
        rows.append(("已超期", f"{-d['left']}个工作日") if d["left"] < 0 else ("剩余", f"{d['left']}个工作日"))
    pauses = [f"{_day(p['start'])}起" + (f"至{_day(p['end'])}" if p.get("end") else "（补正中）")
              + (f"，{p['reason']}" if p.get("reason") else "") for p in c.pauses]
    rows.append(("补正暂停", "；".join(pauses) if pauses else "无"))
    extensions = [f"延长{e['days']}个工作日（{_day(e['at'])}批准" + (f"，理由：{e['reason']}" if e.get("reason") else "")
                  + "）" for e in c.extensions]
    rows.append(("延期", "；".join(extensions) if extensions else "无"))
    return {"kind": "fields", "id": "clock", "title": f"办理时限：{c.title}", "rows": rows, "level": c.level}


def _latest(ps: ProcessSet, run: CaseRun, task: TaskInfo, entry: showspec.Entry, sources: Sources) -> dict | None:
    """The last completion of task ``entry.name`` whose ``there`` equals this task's ``here``: its submitted form."""
    there, here = entry.args
    want = run.evaluate(here, task.data, "显示其他任务结果")
    found = None
    for data, props, task_id in run.completed_of(entry.name):
        if run.evaluate(there, data, "显示其他任务结果") == want:
            found = (data, props, task_id)
    if found is None:
        return None
    data, props, task_id = found
    schema = ps.forms.get(props.get("formJsonSchemaFilename", ""), {})
    from .views import display_fields
    rows = [(f["title"], readable(data[f["name"]]) if isinstance(data[f["name"]], str) else f["value"])
            for f in display_fields(ps, schema, data)]
    if not rows:
        return None
    who, when = sources.done_by(task_id)
    head = ([("办理人", who)] if who else []) + ([("办理日期", _day(when))] if when else [])
    return {"kind": "fields", "id": "latest", "title": schema.get("title") or "办理结果", "rows": head + rows}
