"""The form validator never fails on its input: for every form of ``processes/forms``, any JSON value either validates
(a dict comes back, every declared field present) or is refused with a Chinese message by a ``BangbanError`` of
status 422 (invalid) or 413 (too large) — never another exception, which the web layer would turn into a 500."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import forms, processes
from engine.errors import BangbanError
from tests.conftest import ROOT
from tests.helpers import options_provider
from tests.webclient import chinese

PS = processes.load(processes.read_dir(ROOT / "processes"))
USERS = {"chief": ["chief1", "chief2"], "agent": ["agent1", "agent2"]}
FORMS = sorted(PS.forms)
SETTINGS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))

# Text of any code point: lone surrogates (a JSON "\ud800" escape gives one), control characters, NUL, RTL marks.
ANY_CHAR = st.characters(exclude_categories=())
TEXT = st.text(ANY_CHAR, max_size=40) | st.sampled_from(["", " ", "\x00", "\ud800", "a\udfffb", "\u202e", "é", "e\u0301"])
LONG_TEXT = st.sampled_from([1000, 20_000, 70_000]).flatmap(lambda n: st.sampled_from(["x" * n, "字" * n, "😀" * n]))
NUMBERS = (st.integers(min_value=-(10**4299), max_value=10**4299) | st.integers(-3, 100)
           | st.floats(allow_nan=True, allow_infinity=True))
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(TEXT, children, max_size=4), max_leaves=12)


def resolved(name: str) -> dict:
    return forms.resolve(PS.form(name), options_provider(PS, USERS))


def field_values(schema: dict, name: str):
    """Values of the kind a field expects (its enum, its choices, the right type) or anything at all."""
    prop = schema["properties"][name]
    choices = prop.get("enum") or (prop.get("items") or {}).get("enum")
    plausible = [JSON, TEXT]
    if choices:
        plausible.append(st.sampled_from(choices))
        plausible.append(st.lists(st.sampled_from(choices), max_size=6))
    if prop.get("type") == "boolean":
        plausible.append(st.booleans())
    if prop.get("type") in ("integer", "number"):
        plausible.append(NUMBERS)
    if prop.get("format") == "date":
        plausible.append(st.dates().map(str) | st.sampled_from(["2026-02-30", "2026-13-01", "０２０２６-01-01", "2026-1-1"]))
    plausible.append(LONG_TEXT)
    return st.one_of(plausible)


def form_like(schema: dict):
    """Dicts made mostly of the form's own fields (so validation gets past the field names), some unknown ones."""
    names = list(schema["properties"])
    known = st.fixed_dictionaries({}, optional={n: field_values(schema, n) for n in names})
    return st.tuples(known, st.dictionaries(TEXT, JSON, max_size=2) | st.just({})).map(lambda kv: {**kv[1], **kv[0]})


def check(schema: dict, data) -> None:
    try:
        out = forms.validate(schema, data)
    except BangbanError as exc:
        assert exc.status in (413, 422), (exc.status, exc.message)
        assert chinese(exc.message), exc.message
        json.dumps(exc.to_dict(), ensure_ascii=False).encode("utf-8")   # the error body can be sent
        return
    assert isinstance(out, dict)
    assert set(schema["properties"]) <= set(out)
    # what was accepted can be stored: valid UTF-8 JSON within the form limit, no non-finite number
    stored = json.dumps(out, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert len(stored) <= getattr(forms, "MAX_FORM_BYTES", 64 * 1024) + 1024 * len(schema["properties"])
    for value in out.values():
        assert not (isinstance(value, float) and not math.isfinite(value))


@pytest.mark.parametrize("name", FORMS)
def test_any_json_value_is_validated_or_refused_in_chinese(name):
    schema = resolved(name)

    @SETTINGS
    @given(data=JSON)
    def run(data):
        check(schema, data)

    run()


@pytest.mark.parametrize("name", FORMS)
def test_any_data_shaped_like_the_form_is_validated_or_refused_in_chinese(name):
    schema = resolved(name)

    @SETTINGS
    @given(data=form_like(schema))
    def run(data):
        check(schema, data)

    run()


def test_the_forms_are_all_here():
    assert {"application.json", "termination_request.json", "termination_decision.json", "extension_request.json",
            "handle_item.json", "deliver.json"} <= set(FORMS)
