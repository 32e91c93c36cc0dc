"""The process-file validator: every problem at once, in Chinese, with line numbers; hostile XML refused unparsed."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from lxml import etree

from engine import processes, validation
from engine.validation import Problem, expressions, validate_bpmn_file, validate_set, verdict, xmlsafety

HERE = Path(__file__).resolve().parent
PEERS = HERE / "bpmn_peers"
BPMN = "bangban_case.bpmn"


# ---- helpers -----------------------------------------------------------------------------------------------


def _with(files: dict, name: str, data: bytes | str) -> dict:
    out = dict(files)
    out[name] = data.encode() if isinstance(data, str) else data
    return out


def _edit(files: dict, old: str, new: str, count: int = 1) -> dict:
    text = files[BPMN].decode()
    assert old in text, old
    return _with(files, BPMN, text.replace(old, new, count))


def _line_of(files: dict, needle: str, name: str = BPMN) -> int:
    text = files[name].decode()
    return text[: text.index(needle)].count("\n") + 1


def _text(problems: list[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


def _only(problems: list[Problem], needle: str) -> Problem:
    found = [p for p in problems if needle in p.message]
    assert len(found) == 1, _text(problems)
    return found[0]


@pytest.fixture
def parsed(monkeypatch):
    """Records every byte string that reaches the XML parser (to prove what is refused before parsing)."""
    seen: list[bytes] = []
    real = xmlsafety._parse_xml

    def spy(data: bytes):
        seen.append(data)
        return real(data)

    monkeypatch.setattr(xmlsafety, "_parse_xml", spy)
    return seen


# ---- the shipped set ------------------------------------------------------------------------------------


def test_the_shipped_process_set_has_no_problem(process_files):
    started = time.perf_counter()
    problems = validate_set(process_files)
    took = time.perf_counter() - started
    print(f"\nvalidate_set(processes/)：{verdict(problems)}，{took * 1000:.0f} ms")
    assert problems == [], _text(problems)
    assert verdict(problems) == "可部署"
    processes.build(process_files)          # the validator and the loader agree


def test_the_timer_test_set_and_the_shipped_file_alone_are_deployable(process_files):
    timer_set = processes.read_dir(HERE / "processes_timer")
    assert validate_set(timer_set) == []    # its timer is a case variable: judged only when a case runs
    assert validate_bpmn_file(BPMN, process_files[BPMN], process_files) == []
    alone = validate_bpmn_file(BPMN, process_files[BPMN])
    assert verdict(alone) == "不可部署：1 个问题" and "未提供流程集" in alone[0].message


def test_problem_reads_in_chinese_and_serialises():
    p = Problem("未指定表单", "bangban_case.bpmn", 12, "Task_Review")
    assert str(p) == "bangban_case.bpmn 第 12 行（Task_Review）：未指定表单"
    assert str(Problem("缺少文件 bangban.json")) == "缺少文件 bangban.json"
    assert str(Problem("过大", "catalogue.json")) == "catalogue.json：过大"
    assert p.to_dict() == {"message": "未指定表单", "file": "bangban_case.bpmn", "line": 12, "element": "Task_Review",
                           "detail": None}
    q = Problem("不是有效的 XML：文件为空", "a.bpmn", 1, detail="Document is empty")
    assert str(q) == "a.bpmn 第 1 行：不是有效的 XML：文件为空（原文：Document is empty）"
    assert q.to_dict()["detail"] == "Document is empty"
    assert verdict([]) == "可部署" and verdict([p, p]) == "不可部署：2 个问题"


# ---- hostile XML: refused before parsing, nothing resolved -------------------------------------------------


def _doctype(files: dict, dtd: str, body: str = "&x;") -> bytes:
    text = files[BPMN].decode()
    head, rest = text.split("\n", 1)
    rest = rest.replace("<bpmn:script>items = catalogue_items(service_items)", f"<bpmn:script>{body}", 1)
    return f"{head}\n{dtd}\n{rest}".encode()


def test_xxe_reading_a_local_file_is_refused_and_nothing_is_read(process_files, tmp_path, parsed):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-7f3a9c")
    evil = _doctype(process_files, f'<!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>')
    for problems in (validate_set(_with(process_files, BPMN, evil)), validate_bpmn_file("evil.bpmn", evil, process_files)):
        p = _only(problems, "DOCTYPE")
        assert p.line == 2 and "XXE" in p.message
        dumped = json.dumps([x.to_dict() for x in problems], ensure_ascii=False) + _text(problems)
        assert "TOP-SECRET" not in dumped
    assert evil not in parsed
    # and even the parser behind the refusal would not have read it
    tree = validation._parse_xml(f'<!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]><d>&x;</d>'.encode())
    assert b"TOP-SECRET" not in etree.tostring(tree)


def test_xxe_over_the_network_is_refused_before_parsing(process_files, parsed):
    evil = _doctype(process_files, '<!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:9/evil.dtd">]>')
    problems = validate_bpmn_file("net.bpmn", evil, process_files)
    assert "DOCTYPE" in _only(problems, "DOCTYPE").message
    assert evil not in parsed                    # never handed to a parser: no connection can have been tried
    validate_bpmn_file(BPMN, process_files[BPMN], process_files)
    assert process_files[BPMN] in parsed         # (a good file does reach the parser: the spy works)
    evil2 = _doctype(process_files, '<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">', "x")
    assert "DOCTYPE" in _only(validate_bpmn_file("net2.bpmn", evil2, process_files), "DOCTYPE").message
    assert evil2 not in parsed


def test_billion_laughs_is_refused_fast(process_files, parsed):
    lol = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    evil = _doctype(process_files, f'<!DOCTYPE d [<!ENTITY l0 "lol">{lol}]>', "&l9;")
    started = time.perf_counter()
    problems = validate_set(_with(process_files, BPMN, evil))
    assert time.perf_counter() - started < 2
    assert "实体" in _only(problems, "DOCTYPE").message
    assert evil not in parsed


def test_a_50_mb_file_is_refused_by_size_without_parsing(process_files, parsed):
    big = b'<?xml version="1.0" encoding="UTF-8"?>\n<a>' + b"x" * (50 * 1024 * 1024) + b"</a>"
    started = time.perf_counter()
    problems = validate_bpmn_file("big.bpmn", big, process_files)
    took = time.perf_counter() - started
    assert took < 1, took
    assert "上限" in _only(problems, "上限").message and "未做解析" in problems[0].message
    assert all(len(d) < 1024 * 1024 for d in parsed)
    assert "上限" in _text(validate_set(_with(process_files, BPMN, big)))


def test_latin1_bytes_declared_utf8_are_refused_with_offset_and_line(process_files, parsed):
    data = '<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions>\n  <a>café</a>\n</bpmn:definitions>'.encode("latin-1")
    p = _only(validate_bpmn_file("latin.bpmn", data, process_files), "UTF-8")
    offset = data.index(b"\xe9")
    assert p.line == 3 and f"第 {offset} 字节" in p.message
    assert data not in parsed


def test_not_xml_at_all(process_files):
    p = _only(validate_bpmn_file("junk.bpmn", b"this is not xml\n", process_files), "不是有效的 XML")
    assert p.line == 1
    broken = process_files[BPMN].decode().replace("</bpmn:userTask>", "</bpmn:userTaskX>", 1).encode()
    p = _only(validate_set(_with(process_files, BPMN, broken)), "不是有效的 XML")
    assert p.file == BPMN and p.line and p.line > 50
    assert "根元素" in _text(validate_bpmn_file("page.bpmn", b"<html/>", process_files))


def test_an_encoding_declaration_cannot_hide_a_doctype(process_files):
    """A UTF-7 declaration would turn ``+ADw-!DOCTYPE`` into ``<!DOCTYPE`` inside libxml2; the parser is forced
    to UTF-8, so the text stays text and the file is simply not XML."""
    evil = (b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE d +AFs-+ADw-!ENTITY x SYSTEM '
            b'+ACI-file:///etc/hostname+ACI-+AD4-+AF0-+AD4-<d>+ACY-x+ADs-</d>')
    problems = validate_bpmn_file("u7.bpmn", evil, process_files)
    assert verdict(problems).startswith("不可部署") and "不是有效的 XML" in _text(problems)


# ---- code in the diagram: sandbox rules, with element and line -------------------------------------------


def test_a_script_importing_os_is_rejected(process_files):
    files = _edit(process_files, "<bpmn:script>items = catalogue_items(service_items)",
                  "<bpmn:script>import os\nitems = catalogue_items(service_items)")
    p = _only(validate_set(files), "沙箱")
    assert (p.file, p.element, p.line) == (BPMN, "Script_Items", _line_of(files, "<bpmn:script>import os"))
    assert "import" in p.message and p.message.startswith("脚本")


def test_a_condition_reaching_dunder_class_is_rejected(process_files):
    files = _edit(process_files, ">review_decision == '受理'<", ">review_decision.__class__ == str<")
    p = _only(validate_set(files), "沙箱")
    assert p.element == "Flow_Gw_Accept_Sub_Service" and p.line == _line_of(files, "review_decision.__class__")
    assert "__class__" in p.message and "条件表达式" in p.message


def test_a_timer_expression_calling_open_is_rejected(process_files):
    files = _edit(process_files, ">clock_due(item['code'], 'yellow')<", ">open('/etc/passwd').read()<")
    p = _only(validate_set(files), "沙箱")
    assert p.element == "Timer_Yellow" and p.line == _line_of(files, "open('/etc/passwd')")
    assert "open" in p.message and "timeDate" in p.message


def test_property_expressions_and_payloads_pass_the_sandbox_check(process_files):
    files = _edit(process_files, 'name="assignee" value="chief_officer"', 'name="assignee" value="eval(chief_officer)"')
    files = _with(files, BPMN, files[BPMN].decode().replace(
        "{'reason': termination_request['reason'],", "{'reason': termination_request._reason,", 1))
    problems = validate_set(files)
    assert _only(problems, "属性 assignee").element == "Task_Agreement"
    assert "eval" in _only(problems, "属性 assignee").message
    assert _only(problems, "messagePayload").element == "Throw_Terminate"


def test_a_timer_that_does_not_evaluate_to_a_date_is_rejected(process_files):
    files = _edit(process_files, ">clock_due(item['code'], 'yellow')<", ">'next tuesday'<")
    files = _with(files, BPMN, files[BPMN].decode().replace(">clock_due(item['code'], 'red')<", ">'P3D'<", 1))
    problems = validate_set(files)
    p = _only(problems, "next tuesday")
    assert p.element == "Timer_Yellow" and p.line == _line_of(files, "'next tuesday'") and "ISO-8601" in p.message
    assert "时长" in _only(problems, "「P3D」").message and _only(problems, "「P3D」").element == "Timer_Red"
    files = _edit(process_files, ">clock_due(item['code'], 'yellow')<", ">len(item) + 1<")
    assert "整数" in _only(validate_set(files), "结果应为").message
    files = _edit(process_files, ">clock_due(item['code'], 'yellow')<", ">clock_due<")
    p = _only(validate_set(files), "结果应为")
    assert p.message.endswith("实际是函数") and "0x" not in str(p) and "<" not in str(p)
    files = _edit(process_files, ">clock_due(item['code'], 'yellow')<", ">clock_due(item['code'])<")
    p = _only(validate_set(files), "无法求值")
    assert "类型" in p.message and "TypeError" in p.detail and "TypeError" not in p.message


def test_an_unquoted_iso_timer_gets_a_hint_and_data_driven_timers_pass(process_files):
    files = _edit(process_files, ">clock_due(item['code'], 'yellow')<", ">PT2H<")
    assert "'PT2H'" in _only(validate_set(files), "须加引号").message
    for ok in ("'2030-01-01T09:00:00+08:00'", "'2030-01-01T09:00:00'", "fire_at", "item['due'] or clock_due(item['code'], 'red')",
               "'P' + str(item['limit_days']) + 'D'"):
        files = _edit(process_files, ">clock_due(item['code'], 'yellow')<", f">{ok}<")
        assert validate_set(files) == [], ok


def test_a_script_naming_an_unknown_service_item_is_rejected(process_files):
    files = _edit(process_files, "items = catalogue_items(service_items)", "items = catalogue_items(['hp', 'moon'])")
    p = _only(validate_set(files), "moon")
    assert p.element == "Script_Items" and "事项目录" in p.message
    assert "「hp」" not in _text(validate_set(files))


# ---- the project's rules -------------------------------------------------------------------------------


def test_an_unknown_lane_is_rejected(process_files):
    files = _edit(process_files, 'name="帮办代办综合窗口"', 'name="不存在的岗位"')
    p = _only(validate_set(files), "不存在的岗位")
    assert (p.element, p.line) == ("Lane_Window", _line_of(files, 'name="不存在的岗位"'))


def test_a_user_task_naming_a_missing_form_is_rejected(process_files):
    files = _edit(process_files, 'value="review.json"', 'value="nope.json"')
    p = _only(validate_set(files), "nope.json")
    assert p.element == "Task_Review" and p.line == _line_of(files, 'id="Task_Review"') and "不存在" in p.message


def test_a_form_that_is_not_json_schema_is_rejected(process_files):
    bad = {"type": "object", "properties": {"x": {"type": "strng"}}}
    problems = validate_set(_with(process_files, "forms/review.json", json.dumps(bad)))
    assert "JSON Schema" in _only(problems, "JSON Schema").message and _only(problems, "JSON Schema").file == "forms/review.json"
    assert _only(problems, "不是有效的表单").element == "Task_Review"
    broken = validate_set(_with(process_files, "forms/review.json", '{"type": "object",\n "properties": }'))
    assert _only(broken, "不是有效的 JSON").line == 2
    assert _only(broken, "不是有效的 JSON").message == \
        "不是有效的 JSON：此处应为一个值（文字须加双引号；可能多了逗号或缺少内容）（第 2 行第 16 列）"
    for text, told in (('{"a": 1,}', "最后一项之后多了一个逗号"), ('{"a": 1 "b": 2}', "此处缺少逗号"),
                       ('{"a" 1}', "字段名后缺少冒号"), ('{"a": "x', "文字缺少结尾的双引号"),
                       ('{} {}', "内容结束后还有多余的文字"), ("", "此处应为一个值")):
        message = _only(validate_set(_with(process_files, "forms/review.json", text)), "不是有效的 JSON").message
        assert told in message and not re.search(r"[A-Za-z]{4,}", message.replace("JSON", "")), (text, message)


def test_a_message_the_service_sends_must_be_caught(process_files):
    manifest = json.loads(process_files["bangban.json"])
    manifest["messages"]["hurry"] = {"name": "催办申请", "label": "催办", "form": "termination_request.json",
                                     "roles": ["applicant"]}
    p = _only(validate_set(_with(process_files, "bangban.json", json.dumps(manifest, ensure_ascii=False))), "催办申请")
    assert p.file == BPMN and p.element == "bangban_case" and "没有捕获事件" in p.message
    # the boundary event catching 终止 removed: that message is no longer caught
    files = _edit(process_files, 'messageRef="Message_Terminate">\n        <bpmn:extensionElements>',
                  'messageRef="Message_Escalate">\n        <bpmn:extensionElements>')
    assert "「终止」" in _only(validate_set(files), "没有捕获事件").message


def test_manifest_catalogue_and_build_checks_are_included(process_files):
    manifest = json.loads(process_files["bangban.json"])
    manifest["lanes"]["新泳道"] = "ghost"
    manifest["processes"]["bangban_case"]["start_form"] = "missing.json"
    manifest["processes"]["other_case"] = {"start_form": "application.json"}
    catalogue = json.loads(process_files["catalogue.json"])
    catalogue["items"][0]["department"] = "nowhere"
    files = _with(_with(process_files, "bangban.json", json.dumps(manifest, ensure_ascii=False)), "catalogue.json",
                  json.dumps(catalogue, ensure_ascii=False))
    files = _edit(files, 'name="stage" value="代办受理" />\n          <spiffworkflow:property name="record_actor"',
                  'name="stage" value="无此阶段" />\n          <spiffworkflow:property name="record_actor"')
    text = _text(validate_set(files))
    for needle in ("角色 ghost 未定义", "missing.json", "other_case 在 BPMN 文件中不存在", "nowhere", "「无此阶段」"):
        assert needle in text, needle
    assert "缺少文件 catalogue.json" in _text(validate_set({k: v for k, v in process_files.items() if k != "catalogue.json"}))


def test_every_xsd_error_is_reported_with_its_line(process_files):
    files = process_files
    for task in ("Task_Review", "Task_Dispatch", "Task_Deliver"):
        files = _edit(files, f'id="{task}"', f'id="{task}" bogus="1"')
    problems = [p for p in validate_set(files) if "XML Schema" in p.message]
    assert sorted(p.line for p in problems) == sorted(_line_of(files, f'id="{t}" bogus') for t in
                                                      ("Task_Review", "Task_Dispatch", "Task_Deliver"))


def test_a_spiffworkflow_failure_inside_an_embedded_subprocess_is_found(process_files):
    files = _edit(process_files, "<bpmn:outgoing>Flow_Task_Handle_Gw_Handle</bpmn:outgoing>",
                  "<bpmn:outgoing>Flow_Task_Handle_Gw_Handle</bpmn:outgoing>\n"
                  "          <bpmn:outgoing>Flow_Extra</bpmn:outgoing>")
    files = _edit(files, '<bpmn:sequenceFlow id="Flow_Item_Start_Gw_HandleMerge"',
                  '<bpmn:sequenceFlow id="Flow_Extra" sourceRef="Task_Handle" targetRef="Item_End" />\n'
                  '        <bpmn:sequenceFlow id="Flow_Item_Start_Gw_HandleMerge"')
    p = _only(validate_set(files), "SpiffWorkflow")
    assert p.element == "Task_Handle" and p.line == _line_of(files, 'id="Task_Handle"') and "多条流出" in p.message


def test_reserved_ids_and_interrupting_event_subprocesses_are_reported(process_files):
    files = _edit(process_files, 'isInterrupting="false">\n        <bpmn:outgoing>Flow_Escalation', '>\n'
                  '        <bpmn:outgoing>Flow_Escalation')
    assert _only(validate_set(files), "中断型").element == "Escalation_Start"
    files = _edit(process_files, 'id="Yellow_End"', 'id="End"')
    files = _with(files, BPMN, files[BPMN].decode().replace('targetRef="Yellow_End"', 'targetRef="End"'))
    assert "Start/End" in _text(validate_set(files))


def test_several_problems_in_one_set_are_reported_together_with_lines(process_files):
    files = _edit(process_files, 'name="帮办代办综合窗口"', 'name="不存在的岗位"')
    files = _with(files, BPMN, files[BPMN].decode()
                  .replace('value="review.json"', 'value="nope.json"', 1)
                  .replace("items = catalogue_items(service_items)", "import os\nitems = catalogue_items(['moon'])", 1)
                  .replace(">review_decision == '受理'<", ">review_decision.__class__<", 1)
                  .replace(">clock_due(item['code'], 'red')<", ">'soon'<", 1))
    files = _with(files, "forms/collect.json", "{not json")
    files = _with(files, "second.bpmn", _doctype(process_files, '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'))
    problems = validate_set(files)
    print("\n" + verdict(problems) + "\n" + _text(problems))
    expected = {"不存在的岗位": "Lane_Window", "nope.json": "Task_Review", "import": "Script_Items", "moon": "Script_Items",
                "__class__": "Flow_Gw_Accept_Sub_Service", "「soon」": "Timer_Red"}
    for needle, element in expected.items():
        hits = [p for p in problems if needle in p.message]
        assert hits and all(p.element == element and p.file == BPMN and p.line for p in hits), needle
    assert _only(problems, "不是有效的 JSON").file == "forms/collect.json"
    assert _only(problems, "DOCTYPE").file == "second.bpmn"
    assert len(problems) >= 8 and verdict(problems) == f"不可部署：{len(problems)} 个问题"


# ---- never a traceback ----------------------------------------------------------------------------------


def test_an_unexpected_failure_becomes_a_problem(process_files, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("意外")

    monkeypatch.setattr(validation, "_xsd_problems", boom)
    problems = validate_bpmn_file(BPMN, process_files[BPMN], process_files)
    assert [p.message for p in problems] == ["无法解析：程序内部错误"]
    assert problems[0].detail == "RuntimeError: 意外"
    monkeypatch.setattr(validation, "_context", boom)
    monkeypatch.setattr(validation, "_cached_context", boom)
    assert validate_bpmn_file("x.bpmn", b"<x/>", process_files)[0].message.startswith("无法解析：")
    assert validate_set(process_files)[0].message.startswith("无法解析：")
    assert validate_bpmn_file("empty.bpmn", b"", None)


# ---- files from other modelers -----------------------------------------------------------------------------

PEER_FILES = sorted(PEERS.glob("miwg/*/*.bpmn"))
EXPECTED = {
    "genmymodel-0.47_C.1.0-export.bpmn": "UTF-8",
    "ibm-process-designer-8.0.1_A.3.0-export.bpmn": "不是有效的 XML",
    "bonita-7.2.3_A.4.0-export.bpmn": "XML Schema",
    "modelio-3.5_A.1.0-export.bpmn": "targetNamespace",
    "bic-cloud-design-6.2.0_C.2.0-export.bpmn": "没有 isExecutable 属性（按 BPMN 2.0 规范缺省为 false）",
    "camunda-modeler-18.6.1_C.9.1-export.bpmn": "定时器",
    "C.9.1.bpmn": "须加引号",
    "C.4.0.bpmn": "数据存储",
}


def test_the_peer_files_are_all_here_with_their_licence():
    assert len(PEER_FILES) == 27
    assert "Creative Commons Attribution 3.0" in (PEERS / "miwg" / "LICENSE.txt").read_text()
    assert "bpmn-miwg/bpmn-miwg-test-suite" in (PEERS / "README.md").read_text()


@pytest.mark.parametrize("path", PEER_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_peer_file_gets_a_verdict(path, process_files):
    problems = validate_bpmn_file(path.name, path.read_bytes(), process_files)
    result = verdict(problems)
    print(f"\n{path.parent.name}/{path.name}：{result}")
    for p in problems:
        print(f"  - {p}")
    assert all(isinstance(p, Problem) and p.message for p in problems)
    assert "Traceback" not in _text(problems) and "无法解析" not in _text(problems)
    if result != "可部署":
        assert len(problems) >= 1
    assert any(p.line for p in problems) or all(p.file == path.name for p in problems)
    if path.name in EXPECTED:
        assert EXPECTED[path.name] in _text(problems)


def test_slow_timers_cannot_stall_the_validator(process_files, monkeypatch):
    endless = "[x for x in range(999999) for y in range(999999)] and clock_due(item['code'], 'red')"
    files = _edit(process_files, ">clock_due(item['code'], 'yellow')<", f">{endless}<")
    started = time.perf_counter()
    p = _only(validate_set(files), "沙箱")
    assert time.perf_counter() - started < 3 and p.element == "Timer_Yellow" and "超时" in p.message
    monkeypatch.setattr(expressions, "MAX_TIMER_SECONDS", 0)      # the budget of all timers of one validation
    p = _only(validate_set(process_files), "未求值")
    assert p.element == "Timer_Yellow" and len(validate_set(process_files)) == 1


def test_a_manifest_that_would_lock_out_every_process_owner_is_refused():
    import json as _json

    from engine import processes as _processes
    from engine.validation import validate_set as _validate_set
    files = _processes.read_dir(HERE.parent / "processes")
    manifest = _json.loads(files["bangban.json"])
    for role in manifest["roles"].values():
        role["permissions"] = [p for p in role.get("permissions", []) if p != "process_publish"]
    files["bangban.json"] = _json.dumps(manifest, ensure_ascii=False).encode()
    assert any("process_publish" in p.message for p in _validate_set(files))
