"""Turn an HTML form post into the JSON a form's schema describes (types only; the engine validates)."""
from __future__ import annotations

import math

from werkzeug.datastructures import MultiDict


def from_html(schema: dict, form: MultiDict) -> dict:
    out: dict = {}
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type")
        if kind == "array":
            values = [v for v in form.getlist(name) if v != ""]
            if values or name in form:
                out[name] = values
            continue
        if kind == "boolean":
            raw = form.get(name)
            if raw is not None:
                out[name] = raw in ("true", "on", "1", "是")
            continue
        raw = form.get(name)
        if raw is None or raw.strip() == "":
            continue
        raw = raw.strip() if kind != "string" or prop.get("x-widget") != "textarea" else raw
        if kind in ("number", "integer"):
            out[name] = _number(raw)
            continue
        out[name] = raw
    # fields the schema does not know are passed on, so the engine can refuse them
    for name in form:
        if name not in out and name not in schema.get("properties", {}) and name not in ("csrf_token", "unit_id"):
            out[name] = form.get(name)
    return out


def _number(raw: str):
    """``5000`` stays an int, ``12.5`` a float; anything else is left as text for the schema to refuse."""
    if raw.isascii():
        try:
            return int(raw)
        except ValueError:
            pass
        try:
            value = float(raw)
        except ValueError:
            return raw
        return value if math.isfinite(value) else raw
    return raw


def parse_int(raw: str | None) -> int | None:
    """A positive decimal number from a URL or form (ASCII digits only), else None."""
    if raw and raw.isascii() and raw.isdigit() and len(raw) <= 15:
        return int(raw)
    return None
