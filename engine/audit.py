"""Audit: is a case's history intact, and does it explain the case as it is?

- ``check_chain``: every event's hash covers its content and the previous hash; sequence numbers run without gaps.
- ``replay``: rebuild the case from its pinned process version and its events alone — task completions matched to
  tasks by element id and multi-instance title (never by SpiffWorkflow's random task ids), messages delivered and
  timers fired at their recorded times — checking each step against what the log says followed it, then the end
  state against the stored one. The first divergence is reported: event, task, field.
Nothing here touches the database: callers pass rows (or a dossier's dicts).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from . import spiff_runtime as rt
from .audit_divergence import FIELD_LABELS, Divergence, _say, _show  # noqa: F401 - part of this module's interface
from .calhistory import CalendarHistory, as_history, due_date_divergence
from .clock import clock
from .deadlines import ClockState
from .errors import BangbanError
from .events import canonical, event_hash_matches
from .processes import ProcessSet
from .runtime import CaseRun
from .workcal import WorkCalendar

INPUT_TYPES = {"case_started", "task_completed", "migrated", "timer_fired", "task_reassigned"}


def _get(e, name):
    return e[name] if isinstance(e, dict) else getattr(e, name)


def _aware(at) -> datetime:
    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def check_chain(case_no: str, events: list) -> Divergence | None:
    """The first event whose hash, link or sequence number is wrong (a change, a deletion, a swap)."""
    prev = ""
    for i, e in enumerate(events, start=1):
        seq = _get(e, "seq")
        if seq != i:
            return Divergence(i, None, f"事件序号不连续：应为 {i}，实为 {seq}（事件被删除或插入）")
        if _get(e, "prev_hash") != prev:
            return Divergence(seq, _get(e, "type"), "事件的前一哈希与上一条事件不符（事件被删除、插入或调换）")
        if event_hash_matches(prev, case_no, e, _aware(_get(e, "at"))) is None:
            return Divergence(seq, _get(e, "type"), "事件内容与其哈希不符（事件被修改）")
        prev = _get(e, "hash")
    return None


# ---- the normalised state compared between the stored and the replayed case ------------------------------------------
def normalized(run: CaseRun) -> dict:
    """The case without random task ids and wall-clock stamps: each task by its place in the tree."""
    tasks = []

    def walk(task, path: str) -> None:
        spec = task.task_spec
        tasks.append({"path": path, "spec": spec.name, "name": spec.bpmn_name, "state": task.state,
                      "data": json.loads(json.dumps(task.data, sort_keys=True, default=str))})
        sub = run.wf.subprocesses.get(task.id)
        if sub is not None:
            walk(sub.task_tree, path + "/" + spec.name)
        for i, child in enumerate(task.children):
            walk(child, f"{path}.{i}")

    walk(run.wf.task_tree, "0")
    clocks = {k: {"limit": c.limit_days, "started_at": c.started_at.isoformat(), "pauses": c.pauses,
                  "extensions": [{kk: vv for kk, vv in x.items()} for x in c.extensions],
                  "stopped_at": c.stopped_at.isoformat() if c.stopped_at else None, "warned": sorted(c.warned),
                  "stop_reason": c.stop_reason}
              for k, c in sorted(run.clocks.items())}
    return {"tasks": tasks, "case_vars": json.loads(json.dumps(run.case_vars, sort_keys=True, default=str)),
            "clocks": clocks, "status": run.status()}


def compare(stored: dict, replayed: dict) -> Divergence | None:
    if stored["status"] != replayed["status"]:
        return Divergence(None, None, "办件状态不同", field="status", expected=stored["status"], actual=replayed["status"])
    for key in sorted(set(stored["case_vars"]) | set(replayed["case_vars"])):
        if stored["case_vars"].get(key) != replayed["case_vars"].get(key):
            return Divergence(None, None, "办件变量不同", field=key, expected=stored["case_vars"].get(key),
                              actual=replayed["case_vars"].get(key))
    a, b = stored["tasks"], replayed["tasks"]
    for x, y in zip(a, b, strict=False):
        task = x.get("name") or x["spec"]
        if (x["spec"], x["path"]) != (y["spec"], y["path"]):
            return Divergence(None, None, "流程走向不同", task=task, expected=x["spec"], actual=y["spec"])
        if x["state"] != y["state"]:
            return Divergence(None, None, "任务状态不同", task=task, field="state",
                              expected=rt.state_name(x["state"]), actual=rt.state_name(y["state"]))
        for key in sorted(set(x["data"]) | set(y["data"])):
            if x["data"].get(key) != y["data"].get(key):
                return Divergence(None, None, "任务数据不同", task=task, field=key, expected=x["data"].get(key),
                                  actual=y["data"].get(key))
    if len(a) != len(b):
        return Divergence(None, None, "任务数量不同", expected=len(a), actual=len(b))
    if stored["clocks"] != replayed["clocks"]:
        key = next(k for k in sorted(set(stored["clocks"]) | set(replayed["clocks"]))
                   if stored["clocks"].get(k) != replayed["clocks"].get(k))
        mine, theirs = stored["clocks"].get(key), replayed["clocks"].get(key)
        if mine is None or theirs is None:
            return Divergence(None, None, "时限记录不同：" + ("多出一项时限" if theirs is None else "缺少一项时限"),
                              task=key)
        part = next(k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k))
        return Divergence(None, None, "时限记录不同", task=key, field=part, expected=mine.get(part),
                          actual=theirs.get(part))
    return None


def name_things(divergence: Divergence | None, ps: ProcessSet | None, clocks: dict | None = None) -> Divergence | None:
    """Put Chinese names on what a divergence names by code: a form field by its title in the process's forms, a
    clock by its title (``clocks``: key -> ClockState)."""
    if divergence is None:
        return None
    if divergence.field and divergence.field not in FIELD_LABELS and ps is not None:
        name = divergence.field.removeprefix("changes.")
        for schema in ps.forms.values():
            title = schema.get("properties", {}).get(name, {}).get("title") if isinstance(schema, dict) else None
            if title:
                divergence.field_label = title
                break
    if clocks and divergence.task in clocks and getattr(clocks[divergence.task], "title", None):
        divergence.task_label = f"{clocks[divergence.task].title}时限"
    return divergence


# ---- replay -----------------------------------------------------------------------------------------------------------
@dataclass
class Step:
    """What an auditor sees at one event of a replay."""

    seq: int
    completed: list[str]
    current: list[list[str]]
    data: dict


def _accepted_corrections(events: list) -> dict[tuple[int, str], str]:
    """What ``state_repaired`` events declared wrong in earlier events: ``{(seq, field): canonical [recorded,
    replayed]}``. A step's recorded outcome that a later repair corrected (the live run had lost data, the replay
    had not) is accepted by replay exactly as the repair recorded it, and nothing else is."""
    accepted: dict[tuple[int, str], str] = {}
    for e in events:
        if _get(e, "type") != "state_repaired":
            continue
        for c in _get(e, "payload").get("corrected") or []:
            if isinstance(c, dict) and isinstance(c.get("seq"), int) and c["seq"] < _get(e, "seq"):
                accepted[(c["seq"], str(c.get("field")))] = canonical([c.get("recorded"), c.get("replayed")])
    return accepted


def _mismatch(seq: int, field: str, recorded, replayed, accepted: dict, corrections: list | None) -> bool:
    """Whether a step's recorded outcome differs from the replay in a way that counts as a divergence: not when a
    later repair corrected exactly this; in repair mode (``corrections`` given) it is collected instead."""
    recorded, replayed = json.loads(canonical(recorded)), json.loads(canonical(replayed))
    if accepted.get((seq, field)) == canonical([recorded, replayed]):
        return False
    if corrections is not None:
        corrections.append({"seq": seq, "field": field, "recorded": recorded, "replayed": replayed})
        return False
    return True


def replay(events: list, version_of: Callable[[str], ProcessSet], calendar: WorkCalendar,
           on_step: Callable[[int, CaseRun], None] | None = None, stop_at: int | None = None,
           corrections: list | None = None,
           authority: Callable[[object, object], Divergence | None] | None = None) -> tuple[CaseRun | None, Divergence | None]:
    """Rebuild a case from its events; returns the rebuilt run and the first divergence (or None).

    ``corrections`` (repair mode): a list that receives every step whose recorded outcome (the tasks open after it,
    the data a task had before it was done) differs from the replay, instead of stopping there; a step the replay
    cannot take at all is still a divergence. ``authority`` (see :class:`engine.audit_records.AuthorityCheck`) is asked
    about each completed task, with the task as the replay has it ready."""
    run: CaseRun | None = None
    last_tick = None
    accepted = _accepted_corrections(events)
    calendars = as_history(calendar).follow()   # each step with the calendar in force then (engine.calhistory)
    for e in events:
        seq, type_, payload = _get(e, "seq"), _get(e, "type"), _get(e, "payload")
        if stop_at is not None and seq > stop_at:
            break
        at = _aware(_get(e, "at"))
        try:
            with clock.at(at):
                if run is not None:
                    calendars.advance(run, at)
                    calendars.step()
                if type_ == "case_started":
                    ps = version_of(payload["version"])
                    run = CaseRun.start(ps, payload["process"], payload["form"],
                                        calendars.start(at) if ps.uses_clocks else None, payload.get("facts"))
                elif run is None:
                    return None, Divergence(seq, type_, "办件的第一条事件不是提交申请")
                elif type_ == "task_completed":
                    div = _replay_completion(run, e, seq, accepted, corrections, authority)
                    if div is not None:
                        return run, div
                elif type_ == "task_reassigned":
                    div = _replay_reassignment(run, e, seq, authority)
                    if div is not None:
                        return run, div
                elif "message" in payload and "payload" in payload:
                    run.send(payload["message"], payload["payload"])
                elif type_ == "migrated":
                    blockers = run.migrate_to(version_of(payload["to"]))
                    if blockers:
                        return run, Divergence(seq, type_, "重放时无法迁移：" + "；".join(blockers))
                elif type_ == "timer_fired" and last_tick != at:
                    run.tick()
                    last_tick = at
                if type_ != "timer_fired":
                    last_tick = None
        except BangbanError as exc:
            return run, Divergence(seq, type_, f"重放出错：{exc.message}", task=_get(e, "task_name"))
        if run is not None and "ready_after" in payload:
            got = sorted([t.element_id, t.title or ""] for t in run.ready_tasks())
            if got != payload["ready_after"] and _mismatch(seq, "ready_after", payload["ready_after"], got, accepted,
                                                           corrections):
                return run, Divergence(seq, type_, "此步之后的待办与记录不同", task=_get(e, "task_name"),
                                       field="ready_after", expected=task_list(run.ps, payload["ready_after"]),
                                       actual=task_list(run.ps, got))
        if on_step is not None and run is not None:
            on_step(seq, run)
    if run is not None and stop_at is None:
        try:
            calendars.advance(run, None)     # the changes after the last step, as the live service applied them
        except BangbanError as exc:
            return run, Divergence(None, None, f"按日历变更重算时限时出错：{exc.message}")
        run.calendar_choices = calendars.choices()
    return run, None


def task_list(ps: ProcessSet, pairs) -> str:
    """Open tasks as a reader names them: 「部门办理（环评）、补正材料」, 「（无）」 for none (never element ids)."""
    names = []
    for pair in pairs if isinstance(pairs, list) else []:
        element, title = (list(pair) + ["", ""])[:2] if isinstance(pair, list | tuple) else (pair, "")
        name = ps.element_name(str(element)) if element else "（未知待办）"
        names.append(f"{name}（{title}）" if title else name)
    return "、".join(names) or "（无）"


def _replay_completion(run: CaseRun, e, seq: int, accepted: dict, corrections: list | None,
                       authority: Callable[[object, object], Divergence | None] | None) -> Divergence | None:
    payload = _get(e, "payload")
    element, title = _get(e, "element_id"), payload.get("title")
    task = next((t for t in run.ready_tasks() if t.element_id == element and (t.title or None) == (title or None)), None)
    if task is None:
        return Divergence(seq, "task_completed", "重放时找不到这项待办", task=_get(e, "task_name"),
                          field="element", expected=task_list(run.ps, [[element, title or ""]]),
                          actual=task_list(run.ps, [[t.element_id, t.title or ""] for t in run.ready_tasks()]))
    if authority is not None:
        refused = authority(e, task)
        if refused is not None:
            return refused
    for field, (old, _new) in (payload.get("changes") or {}).items():
        have = json.loads(json.dumps(task.data.get(field), default=str))
        if have != old and _mismatch(seq, f"changes.{field}", old, have, accepted, corrections):
            return Divergence(seq, "task_completed", "办理前的数据与记录不同", task=task.name, field=field,
                              expected=old, actual=have)
    run.complete(task, _get(e, "actor_name") or "", payload.get("form") or {})
    return None


def _replay_reassignment(run: CaseRun, e, seq: int,
                         authority: Callable[[object, object], Divergence | None] | None) -> Divergence | None:
    """A 改派 (``engine.usecases.reassign``): the same open task, held by the same person as recorded, goes to the
    recorded new person (and with ``scope`` ``lead`` the same case variables name them)."""
    payload = _get(e, "payload") or {}
    element, title = _get(e, "element_id"), payload.get("title")
    task = next((t for t in run.ready_tasks() if t.element_id == element and (t.title or None) == (title or None)), None)
    if task is None:
        return Divergence(seq, "task_reassigned", "重放时找不到被改派的待办", task=_get(e, "task_name"),
                          field="element", expected=[element, title],
                          actual=sorted([t.element_id, t.title or ""] for t in run.ready_tasks()))
    if (payload.get("from") or None) != task.assignee:
        return Divergence(seq, "task_reassigned", "改派前的办理人与重放不同", task=task.name, field="from",
                          expected=payload.get("from"), actual=task.assignee)
    check = getattr(authority, "reassignment", None)
    if check is not None:
        refused = check(e, task)
        if refused is not None:
            return refused
    if not isinstance(payload.get("to"), str) or not payload["to"]:
        return Divergence(seq, "task_reassigned", "改派记录没有新办理人", task=task.name, field="to")
    replaced = run.reassign(task, payload["to"], payload.get("scope") == "lead")
    if replaced != list(payload.get("variables") or []):
        return Divergence(seq, "task_reassigned", "改派替换的办件变量与重放不同", task=task.name, field="variables",
                          expected=payload.get("variables"), actual=replaced)
    return None


def due_date_check(stored: CaseRun, replayed: CaseRun) -> Divergence | None:
    """A clock's stored due date against the replay's, with the calendar of the case's last step (or a later one a
    worker round may have used: ``engine.calhistory``)."""
    found = due_date_divergence(stored, replayed)
    if found is None:
        return None
    key, have, mine = found
    return Divergence(None, None, "时限的办结期限与重放不同", task=key, field="due_date",
                      expected=have.isoformat() if have else None, actual=mine.isoformat() if mine else None)


def stored_run(ps: ProcessSet, process_id: str, state: str, case_vars: dict, clock_rows: list,
               calendar: WorkCalendar) -> CaseRun:
    clocks = {(_get(r, "key")): ClockState.from_row(r) if not isinstance(r, dict) else _clock_from_dict(r)
              for r in clock_rows}
    return CaseRun.load(ps, process_id, state, case_vars, clocks, calendar)


def _clock_from_dict(d: dict) -> ClockState:
    def t(v):
        return _aware(v) if v else None
    return ClockState(key=d["key"], title=d["title"], department=d.get("department"), limit_days=d["limit_days"],
                      started_at=t(d["started_at"]), pauses=list(d.get("pauses") or []),
                      extensions=list(d.get("extensions") or []), stopped_at=t(d.get("stopped_at")),
                      warned=list(d.get("warned") or []), stop_reason=d.get("stop_reason"),
                      due_date=date.fromisoformat(str(d["due_date"])[:10]) if d.get("due_date") else None)


def calendar_from_rows(rows: dict) -> WorkCalendar:
    from datetime import date

    from .workcal import YearData
    complete = {int(r["year"]): bool(r["complete"]) for r in rows.get("years", [])}
    days: dict[int, dict] = {y: {} for y in complete}
    names: dict[int, dict] = {y: {} for y in complete}
    for d in rows.get("days", []):
        day = date.fromisoformat(str(d["day"])[:10])
        days.setdefault(day.year, {})[day] = d["kind"]
        names.setdefault(day.year, {})[day] = d.get("name") or ""
    return WorkCalendar({y: YearData(complete.get(y, False), ds, names.get(y, {})) for y, ds in days.items()})


def verify_dossier(dossier: dict) -> dict:
    """Check an exported dossier on any machine: its chain, and a replay from its own process versions. A malformed
    dossier is a failed check with a Chinese reason, never an exception."""
    if not isinstance(dossier, dict) or dossier.get("format") != "bangban-dossier/1":
        return {"ok": False, "text": "不是 bangban 办件档案文件", "case_no": None}
    case = dossier.get("case") if isinstance(dossier.get("case"), dict) else {}
    try:
        return _verify_dossier(dossier)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        missing = f"缺少「{exc.args[0]}」" if isinstance(exc, KeyError) and exc.args else "内容格式不对"
        return {"ok": False, "case_no": case.get("case_no") if isinstance(case.get("case_no"), str) else None,
                "text": f"档案文件不完整或已损坏：{missing}"}


def _verify_dossier(dossier: dict) -> dict:
    from . import processes
    case = dossier["case"]
    events = dossier["events"]
    if not events:
        return {"case_no": case["case_no"], "ok": False, "events": 0, "divergence": None,
                "text": "档案中没有任何事件记录（事件被删除）"}
    divergence = check_chain(case["case_no"], events)
    if divergence is None and events and case.get("last_hash") != events[-1]["hash"]:
        divergence = Divergence(events[-1]["seq"], events[-1]["type"], "办件记录的最后哈希与事件链不符（事件被删除）")
    if divergence is None:
        built: dict[str, ProcessSet] = {}

        def version_of(version_hash: str) -> ProcessSet:
            if version_hash not in built:
                files = dossier["versions"].get(version_hash)
                if files is None:
                    raise KeyError(version_hash)
                built[version_hash] = processes.load({k: v.encode("utf-8") for k, v in files.items()})
            return built[version_hash]

        calendar = calendar_from_rows(dossier.get("calendar") or {})
        try:
            if isinstance(dossier.get("calendar_history"), list):  # the calendar of each step (older dossiers: today's)
                calendar = CalendarHistory(dossier["calendar_history"])
            ps = version_of(dossier["version"])
            stored = stored_run(ps, case["process_id"], case["state"], case["case_vars"], dossier.get("clocks", []),
                                as_history(calendar).current)
            replayed, divergence = replay(events, version_of, calendar)
            if divergence is None and replayed is not None:
                divergence = compare(normalized(stored), normalized(replayed)) or due_date_check(stored, replayed)
            divergence = name_things(divergence, ps, stored.clocks)
        except BangbanError as exc:
            divergence = Divergence(None, None, f"档案不完整或已损坏：{exc.message}")
        except KeyError:
            divergence = Divergence(None, None, "档案不完整：缺少办件所用的流程版本")
    return {"case_no": case["case_no"], "ok": divergence is None, "events": len(events),
            "divergence": divergence.to_dict() if divergence else None, "text": str(divergence) if divergence else "完整"}
