"""Read models: a case as the case page and the API show it. Built from rows and the loaded workflow."""
from __future__ import annotations

from typing import Any

from .clock import LOCAL_TZ
from .clock import now as clock_now
from .processes import ProcessSet

EVENT_LABELS = {
    "case_started": "提交申请",
    "task_completed": "办理",
    "task_ended": "待办结束（未办理）",
    "task_reassigned": "改派",
    "document_issued": "出具单据",
    "status_changed": "状态变更",
    "termination_requested": "申请终止",
    "termination_decided": "决定终止",
    "extension_requested": "申请延期",
    "application_withdrawn": "撤回申请",
    "clock_started": "时限开始计算",
    "clock_paused": "时限暂停（补正）",
    "clock_resumed": "时限恢复计算",
    "clock_extended": "延期（已批准）",
    "clock_stopped": "时限结束",
    "timer_fired": "时限预警",
    "migrated": "迁移到新流程版本",
    "state_repaired": "按事件记录修复办件状态",
    "file_uploaded": "上传材料",
    "material_marked": "材料交接登记",
    "message": "消息",
}


def fmt_value(ps: ProcessSet, prop: dict, value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        if prop.get("x-options") == "catalogue_items":
            return "、".join(ps.catalogue.items.get(v, {}).get("name", str(v)) for v in value)
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{k}：{v}" for k, v in value.items())
    return str(value)


def display_fields(ps: ProcessSet, schema: dict, data: dict) -> list[dict]:
    """``[{name, title, value}]`` for the fields of ``schema`` that have a value, in schema order."""
    out = []
    props = schema.get("properties", {})
    for name, prop in props.items():
        if name in data and data[name] not in (None, "", []):
            out.append({"name": name, "title": prop.get("title", name), "value": fmt_value(ps, prop, data[name])})
    return out


def _stage_progress(ps: ProcessSet, case) -> list[dict]:
    stages = ps.stages
    current = stages.index(case.stage) if case.stage in stages else -1
    out = []
    for i, name in enumerate(stages):
        if case.status == "completed":
            state = "done"
        elif i < current:
            state = "done"
        elif i == current:
            state = "stopped" if case.status in ps.manifest.get("final_outcomes", ["terminated", "refused"]) else "current"
        else:
            state = "todo"
        out.append({"name": name, "state": state})
    return out


def _items(ps: ProcessSet, run, inbox, clocks: dict[str, dict] | None = None) -> list[dict]:
    cfg = ps.manifest.get("items", {})
    key = cfg.get("key", "code")
    results = {r.get(key): r for r in run.values(cfg.get("result", "item_result")) if isinstance(r, dict)}
    for r in run.value(cfg.get("results", "item_results")) or []:
        results[r.get(key)] = r
    items = run.value(cfg.get("collection", "items"))
    if not items:
        items = ps.catalogue.items_for(run.value("service_items") or [])
        pending_state = "待分派"
    else:
        pending_state = "办理中"
    ended = run.status() != "active"
    open_by_title: dict[str, list] = {}
    for r in inbox:
        if r.title:
            open_by_title.setdefault(r.title, []).append(r)
    out = []
    for item in items:
        code = item.get(cfg.get("key", "code"))
        result = results.get(code)
        label = item.get(cfg.get("task_title", "name"))
        tasks = open_by_title.get(label, [])
        clock = (clocks or {}).get(str(code))
        if result:
            state = result.get("decision") or "已办结"
        elif tasks:
            state = "、".join(f"{t.name}中" for t in tasks)
        elif ended or (clock or {}).get("level") == "ended":
            state = "未办理"          # the case ended (or the item's handling was stopped) before a decision
        else:
            state = pending_state
        out.append({"code": code, "name": item.get("name"), "department": item.get("department"),
                    "department_name": item.get("department_name") or ps.catalogue.departments.get(item.get("department")),
                    "limit_days": item.get("limit_days"), "state": state,
                    "licence_no": (result or {}).get("licence_no"), "refusal_reason": (result or {}).get("refusal_reason"),
                    "clock": clock})
    return out


def _evaluations(ps: ProcessSet, run, names: dict[str, str]) -> dict | None:
    """The case's evaluations (manifest ``evaluation``): who rates whom, each one's state as the diagram recorded it
    (待评价 / 已评价 / 未评价, the 差评 follow-up, an upheld 申诉), the national five-level equivalent, and the counts —
    未评价 and excluded ratings counted apart, never as ratings."""
    cfg = ps.manifest.get("evaluation")
    if not cfg:
        return None
    evaluations = run.value(cfg.get("list", "evaluations")) or []
    if not evaluations:
        return None
    key = cfg.get("key", "key")
    results = run.latest_by(cfg.get("result", "evaluation_result"), key)
    national, poor = cfg.get("national_levels", {}), set(cfg.get("poor_levels", []))
    rows = []
    for ev in evaluations:
        r = results.get(str(ev.get(key))) or {}
        status = r.get("status") or "待评价"
        rating = r.get("rating")
        rated = ev.get("name") or ""
        if ev.get("rated"):
            rated += f"（{names.get(ev['rated'], ev['rated'])}）"
        rows.append({"key": ev.get(key), "rated": rated, "rater": ev.get("rater_name"), "status": status,
                     "rating": rating, "national_level": national.get(rating) if rating else None,
                     "comments": r.get("comments"), "poor": bool(rating in poor), "followup": r.get("followup"),
                     "excluded": bool(r.get("excluded")), "appeal_decision": r.get("appeal_decision"),
                     "callback": r.get("callback"), "rectification": r.get("rectification"),
                     "confirmation": r.get("confirmation")})
    counted = [r for r in rows if r["status"] == "已评价" and not r["excluded"]]
    counts = {"total": len(rows), "rated": len(counted), "unrated": sum(r["status"] == "未评价" for r in rows),
              "pending": sum(r["status"] == "待评价" for r in rows), "excluded": sum(r["excluded"] for r in rows),
              "poor": sum(r["poor"] for r in counted)}
    return {"rows": rows, "counts": counts, "national_scale": list(cfg.get("national_scale", []))}


def _form_of_event(ps: ProcessSet, e) -> dict | None:
    if e.type == "case_started":
        return ps.form(ps.process(e.payload.get("process", "")).get("start_form", ""))
    if e.type == "task_completed":
        return ps.forms.get(e.payload.get("form_file", ""))
    if e.type in ("termination_requested", "termination_decided", "application_withdrawn"):
        for msg in ps.manifest.get("messages", {}).values():
            if msg["name"] == e.payload.get("message"):
                return ps.forms.get(msg["form"])
    return None


def timeline(ps: ProcessSet, events, names: dict[str, str], role_names: dict[str, str],
             clock_titles: dict[str, str] | None = None) -> list[dict]:
    out = []
    clock_titles = clock_titles or {}
    outcomes = ps.manifest.get("outcomes", {})
    for e in events:
        form = _form_of_event(ps, e)
        fields = display_fields(ps, form, e.payload.get("form", {})) if form else []
        summary = ""
        if e.type == "document_issued":
            summary = f"{e.payload.get('kind')} {e.payload.get('number')}"
        elif e.type == "status_changed":
            before, after = e.payload.get("from"), e.payload.get("to")
            summary = f"{outcomes.get(before, before)} → {outcomes.get(after, after)}"
        elif e.type.startswith("clock_"):
            p = e.payload
            title = clock_titles.get(p.get("clock"), p.get("title") or p.get("clock"))
            summary = title
            if e.type == "clock_started":
                summary += f"，时限{p.get('limit_days')}个工作日"
            elif e.type == "clock_paused":
                summary += f"，原因：{p.get('reason')}"
            elif e.type == "clock_extended":
                summary += f"，延长{p.get('days')}个工作日，理由：{p.get('reason')}"
        elif e.type == "case_started" and isinstance(e.payload.get("facts"), dict):
            summary = "；".join(str(v) for k, v in e.payload["facts"].items() if k.endswith("_note") and v)
        elif e.type == "migrated":
            summary = f"{str(e.payload.get('from', ''))[:12]} → {str(e.payload.get('to', ''))[:12]}"
        elif e.type == "task_reassigned":
            p = e.payload
            summary = f"由{p.get('from_name') or p.get('from') or '岗位内任一人'}改派给{p.get('to_name') or p.get('to')}"
            if p.get("scope") == "lead":
                summary += "，并由其接替本办件的牵头工作"
            summary += f"，原因：{p.get('reason')}"
        elif e.type == "material_marked":
            p = e.payload
            summary = f"{p.get('item_name') or ''}「{p.get('material')}」：{p.get('status_name')}" + \
                (f"，原因：{p.get('reason')}" if p.get("reason") else "")
        elif e.type == "file_uploaded":
            p = e.payload
            summary = f"{p.get('item_name') or ''}「{p.get('material')}」第{p.get('version')}版：{p.get('name')}"
        elif e.type == "timer_fired":
            summary = e.payload.get("timer", "") + (f"：{e.payload['title']}" if e.payload.get("title") else "")
        task_name = e.task_name or ""
        if e.payload.get("title") and not e.type.startswith("clock_") and e.type != "timer_fired":
            task_name += f"（{e.payload['title']}）"
        out.append({"seq": e.seq, "type": e.type, "label": EVENT_LABELS.get(e.type, e.type), "task": task_name,
                    "actor": names.get(e.actor_name or "", e.actor_name) if e.actor_name else "系统",
                    "role": role_names.get(e.role or "", e.role or ""), "at": e.at, "fields": fields, "summary": summary,
                    "hash": e.hash})
    return out


def case_view(service, actor, case, ps: ProcessSet, run, inbox, events, documents, names, actions) -> dict:
    role_names = {code: r["name"] for code, r in ps.manifest["roles"].items()}
    departments = ps.catalogue.departments
    from .access import may_act
    open_tasks = [{"task_id": r.task_id, "name": r.name, "title": r.title, "role": r.role,
                   "role_name": role_names.get(r.role, r.role),
                   "department_name": departments.get(r.department or "", None),
                   "assignee_name": names.get(r.assignee or "", r.assignee) if r.assignee else None,
                   "stage": r.stage, "created_at": r.created_at,
                   "mine": may_act(actor, r.role, r.department, r.assignee, r.unit_id)} for r in inbox]
    header = service._case_header(case, ps)
    header["lead_name"] = names.get(case.lead_user or "", case.lead_user) if case.lead_user else None
    # manifest ``case_details``: variables the diagram records about the whole case (e.g. how it reached 办结)
    header["details"] = [{"name": var, "title": title, "value": fmt_value(ps, {}, run.value(var))}
                         for var, title in ps.manifest.get("case_details", {}).items()
                         if run.value(var) not in (None, "", [])]
    cal, at = service.calendar(), clock_now()
    clocks = {key: c.compute(cal, at).describe(cal, at) for key, c in run.clocks.items()}  # as of now, not of the last save
    return {
        "case": header,
        "stages": _stage_progress(ps, case),
        "items": _items(ps, run, inbox, clocks),
        "clocks": clocks,
        "evaluations": _evaluations(ps, run, names),
        "open_tasks": open_tasks,
        "timeline": timeline(ps, events, names, role_names, {k: c.title for k, c in run.clocks.items()}),
        "documents": [dict(d._mapping) for d in documents],
        "actions": actions,
        "completed_elements": run.completed_elements(),
        "local_tz": str(LOCAL_TZ),
    }
