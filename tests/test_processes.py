"""Process files: loaded with hardened XML parsing, checked, pinned per case by content hash."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import processes
from engine.errors import ProcessDefinitionError
from engine.services import Bangban
from tests.conftest import actor
from tests.test_concurrency import APPLICATION


def test_the_shipped_process_set_builds(process_files):
    ps = processes.build(process_files)
    assert list(ps.specs) == ["bangban_case"]
    assert len(ps.catalogue.items) == 21
    assert set(ps.manifest["lanes"]) == {"申请单位", "全科代办员", "项目首席服务员", "部门业务专办员", "帮办代办综合窗口",
                                         "县行政审批和政务信息管理局"}
    application = ps.forms["application.json"]["properties"]
    for field in ("unit_name", "postcode", "unit_address", "leader_name", "leader_phone", "handler_name", "handler_phone",
                  "project_name", "project_code", "total_investment", "construction_scale", "construction_address",
                  "fund_source", "land_nature", "key_project", "commission_scope", "construction_started",
                  "service_items", "remarks", "declaration"):
        assert field in application, field


def _with(files: dict, name: str, data: bytes) -> dict:
    out = dict(files)
    out[name] = data
    return out


def _problems(files) -> str:
    with pytest.raises(ProcessDefinitionError) as info:
        processes.build(files)
    return info.value.message + "\n" + "\n".join(info.value.details or [])


XXE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D">
  <bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="S" name="&x;"/></bpmn:process>
</bpmn:definitions>"""


def test_doctype_and_entities_are_refused(process_files):
    text = _problems(_with(process_files, "evil.bpmn", XXE))
    assert "DOCTYPE" in text
    assert "root:" not in text


def test_not_utf8_not_xml_and_too_big_are_refused(process_files):
    assert "UTF-8" in _problems(_with(process_files, "latin.bpmn", "<a>caf\xe9</a>".encode("latin-1")))
    assert "不是有效的 XML" in _problems(_with(process_files, "junk.bpmn", b"this is not xml"))
    big = b"<a>" + b" " * (processes.MAX_BPMN_BYTES + 1) + b"</a>"
    assert "上限" in _problems(_with(process_files, "big.bpmn", big))


def test_unknown_lane_and_missing_form_are_reported_together(process_files):
    bpmn = process_files["bangban_case.bpmn"].decode()
    bpmn = bpmn.replace('name="帮办代办综合窗口"', 'name="不存在的岗位"', 1)
    bpmn = bpmn.replace('value="review.json"', 'value="nope.json"')
    text = _problems(_with(process_files, "bangban_case.bpmn", bpmn.encode()))
    assert "不存在的岗位" in text


def test_catalogue_item_with_unknown_department_is_refused(process_files):
    cat = json.loads(process_files["catalogue.json"])
    cat["items"][0]["department"] = "nowhere"
    assert "nowhere" in _problems(_with(process_files, "catalogue.json", json.dumps(cat).encode()))


def test_running_cases_stay_on_their_version(db, process_files):
    from engine.demo import load_demo
    from tests.conftest import FAST_HASH
    old = Bangban.open(db, process_files)
    load_demo(db, old.current.catalogue, hash_method=FAST_HASH)
    old_case = old.start_case(actor(old, "huarui"), "bangban_case", APPLICATION)

    renamed = process_files["bangban_case.bpmn"].replace("受理审核".encode(), "受理初审".encode())
    new = Bangban.open(db, _with(process_files, "bangban_case.bpmn", renamed))
    assert new.current.hash != old.current.hash
    new_case = new.start_case(actor(new, "huarui"), "bangban_case", APPLICATION)

    names = {t["case_no"]: t["name"] for t in new.inbox(actor(new, "agent1"))}
    assert names[old_case.case_no] == "受理审核"
    assert names[new_case.case_no] == "受理初审"
    # the old case still completes on its own version through the new service
    task = next(t for t in new.inbox(actor(new, "agent1")) if t["case_no"] == old_case.case_no)
    new.complete_task(actor(new, "agent1"), task["task_id"],
                      {"review_decision": "不予受理", "refusal_explanation": "不属于服务事项"})
    assert new.get_case(actor(new, "agent1"), old_case.case_no)["case"]["status"] == "refused"


def test_each_element_of_the_diagram_is_drawn_inside_the_lane_it_belongs_to():
    """bpmn-js (the process owner's modeler) reassigns a flow node to the lane its shape's centre lies in whenever the
    lanes are updated: a node listed in one lane but drawn in another would change lanes at the next edit."""
    from lxml import etree
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
          "dc": "http://www.omg.org/spec/DD/20100524/DC"}
    tree = etree.parse(str(Path(__file__).resolve().parent.parent / "processes" / "bangban_case.bpmn"))
    bounds = {s.get("bpmnElement"): s.find("dc:Bounds", ns) for s in tree.iterfind(".//bpmndi:BPMNShape", ns)}

    def span(element_id: str) -> tuple[float, float]:
        b = bounds[element_id]
        return float(b.get("y")), float(b.get("y")) + float(b.get("height"))

    wrong = []
    for lane in tree.iterfind(".//bpmn:lane", ns):
        top, bottom = span(lane.get("id"))
        for ref in lane.iterfind("bpmn:flowNodeRef", ns):
            y0, y1 = span(ref.text)
            if not top <= (y0 + y1) / 2 <= bottom:
                wrong.append(f"{ref.text} ({lane.get('name')})")
    # and every task, event and gateway is in some lane (boundary events go with their task, subprocesses span lanes)
    listed = {r.text for r in tree.iterfind(".//bpmn:flowNodeRef", ns)}
    for kind in ("userTask", "scriptTask", "startEvent", "endEvent", "intermediateThrowEvent", "intermediateCatchEvent",
                 "exclusiveGateway", "parallelGateway", "inclusiveGateway"):
        wrong += [f"{el.get('id')}（不在任何泳道）" for el in tree.iterfind(f".//bpmn:{kind}", ns) if el.get("id") not in listed]
    assert not wrong, wrong
