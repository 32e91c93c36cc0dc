"""The served OpenAPI 3.1 description: ``static/openapi.json`` completed with the current process version's forms.

The static file describes every route of the JSON API; what depends on the published process version is filled in
here, once per version: each form of ``processes/forms`` becomes ``components/schemas/form_<name>`` (JSON Schema
2020-12 as written, with the service items of the catalogue as its choices), and the request bodies of starting a
case, completing a task and sending a message refer to them; the message keys and process ids become enums.
"""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from flask import Response

from engine import forms
from engine.processes import ProcessSet

BASE = Path(__file__).resolve().parent / "static" / "openapi.json"
_NAME = re.compile(r"[^A-Za-z0-9_.-]")

_served: dict[str, bytes] = {}
_lock = threading.Lock()


def response(service) -> Response:
    """``GET /api/openapi.json``."""
    return Response(served(service.current), mimetype="application/json")


def served(ps: ProcessSet) -> bytes:
    """The description for a process version, serialized (built once per version)."""
    body = _served.get(ps.hash)
    if body is None:
        body = json.dumps(describe(ps), ensure_ascii=False, indent=1).encode("utf-8")
        with _lock:
            if len(_served) > 20:
                _served.clear()
            _served[ps.hash] = body
    return body


def base() -> dict:
    return json.loads(BASE.read_text(encoding="utf-8"))


def form_schema_name(form_file: str) -> str:
    """``termination_request.json`` -> ``form_termination_request`` (a valid component name)."""
    return "form_" + _NAME.sub("_", form_file.removesuffix(".json"))


def describe(ps: ProcessSet) -> dict:
    doc = base()
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, form in sorted(ps.forms.items()):
        schemas[form_schema_name(name)] = _with_catalogue(ps, form)
    manifest = ps.manifest
    processes = manifest.get("processes", {})
    messages = manifest.get("messages", {})
    start_forms = [p["start_form"] for p in processes.values() if p.get("start_form") in ps.forms]
    case_messages = {k: m for k, m in messages.items() if not m.get("from_task") and m.get("form") in ps.forms}
    all_messages = {k: m for k, m in messages.items() if m.get("form") in ps.forms}

    schemas["ApplicationData"] = _choice(start_forms, schemas["ApplicationData"])
    schemas["TaskFormData"] = _choice(ps.task_forms, schemas["TaskFormData"])
    schemas["CaseMessageData"] = _choice([m["form"] for m in case_messages.values()], schemas["CaseMessageData"],
                                         _message_note(case_messages))
    schemas["TaskMessageData"] = _choice([m["form"] for m in all_messages.values()], schemas["TaskMessageData"],
                                         _message_note(all_messages))

    paths = doc.get("paths", {})
    _enum_param(paths.get("/api/cases/{case_no}/messages/{key}", {}), "key", list(case_messages))
    _enum_param(paths.get("/api/tasks/{task_id}/messages/{key}", {}), "key", list(all_messages))
    _enum_param(paths.get("/api/processes/{process_id}/start-form", {}), "process_id", list(processes))
    start = paths.get("/api/cases", {}).get("post", {})
    process_prop = (start.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
                    .get("properties", {}).get("process"))
    if process_prop is not None and processes:
        process_prop["enum"] = list(processes)
        process_prop["default"] = next(iter(processes))
    doc["info"]["x-process-version"] = ps.hash[:12]
    return doc


def _with_catalogue(ps: ProcessSet, form: dict) -> dict:
    """The form as written, with the catalogue's service items as the choices of ``x-options: catalogue_items``
    fields (choices from the user directory, ``users:<role>``, are listed only in a task's own schema)."""
    return forms.resolve(form, lambda source: ps.catalogue.options() if source == "catalogue_items" else None)


def _choice(form_files: list[str], placeholder: dict, note: str = "") -> dict:
    refs = [{"$ref": f"#/components/schemas/{form_schema_name(f)}"} for f in dict.fromkeys(form_files)]
    description = placeholder.get("description", "") + note
    if not refs:
        return placeholder
    if len(refs) == 1:
        return {**refs[0], "description": description}
    return {"anyOf": refs, "description": description}


def _message_note(messages: dict) -> str:
    if not messages:
        return ""
    return "。按 key：" + "；".join(f"{k}（{m.get('label', m.get('name', k))}）用 {form_schema_name(m['form'])}"
                                   for k, m in messages.items())


def _enum_param(path_item: dict, name: str, values: list[str]) -> None:
    if not values:
        return
    for operation in path_item.values():
        for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
            if param.get("name") == name and param.get("in") == "path":
                param["schema"] = dict(param.get("schema", {}), enum=values)
