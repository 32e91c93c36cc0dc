"""Every validation message reads in Chinese: the peer files table-driven, and each translation on its own."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine import processes, sandbox
from engine.validation import Problem, validate_bpmn_file
from engine.validation.chinese import (
    clean_detail,
    exception_detail,
    explain_exception,
    one_line,
    value_kind,
    xml_syntax_message,
    xsd_message,
)
from engine.validation.common import _executable
from engine.validation.pysyntax import explain_check
from engine.validation.schemas import json_path, json_path_line, schema_problem
from engine.validation.spiff import _spiff_text

HERE = Path(__file__).parent
PEER_FILES = sorted((HERE / "bpmn_peers").glob("miwg/*/*.bpmn"))
CONTEXT = processes.read_dir(HERE.parent / "processes")

_CJK = re.compile(r"[\u4e00-\u9fff]")
_QUOTED = re.compile(r"「[^「」]*」|（[^（）]*）|\([^()]*\)|'[^']*'|\"[^\"]*\"")
_ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'-]*(?:[ ,]+[A-Za-z][A-Za-z'-]*){2,}")


def english_only(text: str) -> list[str]:
    """Why ``text`` is not a Chinese problem line (empty when it is): it must be led by Chinese, keep English to
    quotes, parentheses and single words (element ids, attribute names), and show no address, None, repr or newline."""
    why = []
    first = next((c for c in text if c.isalpha()), "")
    if not (_CJK.match(first) or text.startswith("「")):
        why.append("not led by Chinese")
    bare = text
    for _ in range(3):
        bare = _QUOTED.sub("", bare)
    if _ENGLISH_RUN.search(bare):
        why.append(f"English outside quotes: {_ENGLISH_RUN.search(bare).group(0)!r}")
    if re.search(r"0x[0-9a-fA-F]{4,}", text):
        why.append("memory address")
    if re.search(r"\bNone\b", text):
        why.append("None")
    if re.search(r"<[A-Za-z][^<>]*>", text):
        why.append("Python repr")
    if "\n" in text:
        why.append("newline")
    return why


def _line_faults(p: Problem) -> list[str]:
    faults = english_only(p.message)
    whole = str(p)
    faults += [w for w in english_only(whole) if w not in ("not led by Chinese",) and not w.startswith("English")]
    if p.detail is not None and ("\n" in p.detail or re.search(r"0x[0-9a-fA-F]{6,}", p.detail)):
        faults.append("detail not clean")
    return faults


@pytest.mark.parametrize("with_context", [True, False], ids=["with-context", "alone"])
@pytest.mark.parametrize("path", PEER_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_problem_line_of_every_peer_file_is_chinese(path, with_context):
    problems = validate_bpmn_file(path.name, path.read_bytes(), CONTEXT if with_context else None)
    assert problems
    bad = {str(p): _line_faults(p) for p in problems if _line_faults(p)}
    assert not bad, "\n".join(f"{k}  ← {v}" for k, v in bad.items())


# distinctive messages the added peer files must produce (in Chinese)
PEER_EXPECTED = {
    "trisotech-workflow-modeler-12.6.3_C.1.0-roundtrip.bpmn": "事件引用的消息",
    "yaoqiang-4.0_A.2.1-export.bpmn": "排他网关的流出顺序流没有条件",
    "cardanit-4.9.1_C.3.0-roundtrip.bpmn": "子流程须有且只有一个开始事件",
    "camunda-eclipse-plugin-3.0.0_B.2.0-roundtrip.bpmn": "数据存储缺少名称",
    "sap-signavio-19.9.0_C.8.1-roundtrip.bpmn": "没有名称：无法对应清单中的角色",
    "omnitracker-12.3_A.2.0-export.bpmn": "不是 BPMN 2.0 定义的元素",
    "aris-10.2025.07_C.9.2-roundtrip.bpmn": "缺少 calledElement",
    "bic-cloud-design-6.2.0_C.2.0-export.bpmn": "没有 isExecutable 属性",
}


@pytest.mark.parametrize("name", sorted(PEER_EXPECTED))
def test_the_added_peer_files_draw_their_messages(name):
    path = next(p for p in PEER_FILES if p.name == name)
    problems = validate_bpmn_file(name, path.read_bytes(), CONTEXT)
    hits = [p for p in problems if PEER_EXPECTED[name] in p.message]
    assert hits, "\n".join(map(str, problems))
    assert all(p.line or p.file == name for p in hits)


def test_the_internal_spiffworkflow_failure_names_the_element():
    path = next(p for p in PEER_FILES if p.name.startswith("trisotech"))
    hit = next(p for p in validate_bpmn_file(path.name, path.read_bytes(), None) if "事件引用的消息" in p.message)
    assert "TypeError" in hit.detail and "TypeError" not in hit.message and hit.element and hit.line


# ---- the XML Schema ------------------------------------------------------------------------------------------

XSD_CASES = [
    ("Element 'bpmn:outgoing': This element is not expected. Expected is ( bpmn:eventDefinitionRef ).",
     "此处不应出现元素 bpmn:outgoing，此处应为：bpmn:eventDefinitionRef"),
    ("Element '{http://www.omg.org/spec/BPMN/20100524/MODEL}ioSpecification': Missing child element(s). Expected is one "
     "of ( {http://www.omg.org/spec/BPMN/20100524/MODEL}dataInput, {http://www.omg.org/spec/BPMN/20100524/MODEL}inputSet ).",
     "元素 bpmn:ioSpecification 缺少必需的子元素，应有：bpmn:dataInput、bpmn:inputSet 之一"),
    ("Element 'bpmn:process', attribute 'foo': The attribute 'foo' is not allowed.", "元素 bpmn:process 不允许有属性 foo"),
    ("Element 'bpmn:linkEventDefinition': The attribute 'name' is required but missing.",
     "元素 bpmn:linkEventDefinition 缺少必需的属性 name"),
    ("Element 'bpmn:task', attribute 'id': '1a' is not a valid value of the atomic type 'xs:ID'.",
     "元素 bpmn:task 的属性 id 的值「1a」不是合法的标识符（xs:ID"),
    ("Element 'bpmn:process', attribute 'isExecutable': 'yes' is not a valid value of the atomic type 'xs:boolean'.",
     "不是合法的布尔值（xs:boolean：true 或 false）"),
    ("Element 'bpmn:task', attribute 'startQuantity': 'x' is not a valid value of the atomic type 'xs:integer'.",
     "不是合法的整数"),
    ("Element 'bpmn:import', attribute 'importType': 'a b' is not a valid value of the atomic type 'xs:anyURI'.",
     "不是合法的URI"),
    ("Element 'bpmn:callActivity', attribute 'calledElement': '6a' is not a valid value of the atomic type 'xs:QName'.",
     "不是合法的限定名"),
    ("Element 'bpmn:exclusiveGateway', attribute 'gatewayDirection': [facet 'enumeration'] The value 'Up' is not an "
     "element of the set {'Unspecified', 'Converging'}.", "的值「Up」不在允许的取值中（可取：Unspecified、Converging）"),
    ("Element 'bpmn:process': Character content other than whitespace is not allowed because the content type is "
     "'element-only'.", "元素 bpmn:process 中不能直接写文字"),
    ("Element 'bpmn:x': Duplicate key-sequence ['a'] in unique identity-constraint 'k'.", "键值 'a' 重复"),
    ("Element 'bpmn:x': No match found for key-sequence ['a'] of keyref 'r'.", "找不到对应的定义"),
    ("Element 'bpmn:itemDefinition', attribute 'structureRef': The QName value 'feel:string' has no corresponding "
     "namespace declaration in scope.", "前缀「feel」没有声明（缺少 xmlns:feel）"),
    ("Element '{urn:x}foo': No matching global element declaration available, but demanded by the strict wildcard.",
     "元素 {urn:x}foo 不是 BPMN 2.0 定义的元素"),
    ("Element 'bpmn:task': Something new.", "元素 bpmn:task 不符合要求"),
    ("Something else entirely.", "不符合 BPMN 2.0 XML Schema"),
]


@pytest.mark.parametrize(("english", "chinese"), XSD_CASES)
def test_xsd_messages_are_told_in_chinese(english, chinese):
    message, detail = xsd_message(english)
    assert message.startswith("不符合 BPMN 2.0 XML Schema") and chinese in message, message
    assert detail and "{http://www.omg.org" not in detail and not english_only(message)


XML_CASES = [
    ("Opening and ending tag mismatch: task line 5 and process, line 7, column 12",
     "开始标签 task（第 5 行）与结束标签 process 不匹配"),
    ("Premature end of data in tag definitions line 2, line 9, column 1", "文件不完整"),
    ("Excessive depth in document: 256 use XML_PARSE_HUGE option, line 260, column 3", "嵌套超过 64 层"),
    ("StartTag: invalid element name, line 3, column 2", "不是合法的元素名"),
    ("attributes construct error, line 3, column 20", "属性写法有误"),
    ("xmlParseEntityRef: no name, line 4, column 9", "&amp;"),
    ("Extra content at the end of the document, line 9, column 1", "多余的内容"),
    ("Document is empty, line 1, column 1", "文件为空"),
    ("Start tag expected, '<' not found, line 1, column 1", "不是 XML"),
    ("Namespace prefix bpmn on task is not defined, line 3, column 20", "前缀 bpmn 没有声明"),
    ("Entity 'nbsp' not defined, line 3, column 20", "实体 &nbsp; 没有定义"),
    ("something libxml2 says one day", "不是有效的 XML"),
]


@pytest.mark.parametrize(("english", "chinese"), XML_CASES)
def test_xml_syntax_errors_are_told_in_chinese(english, chinese):
    message, detail = xml_syntax_message(english)
    assert message.startswith("不是有效的 XML") and chinese in message and detail == english
    assert not english_only(message)


def test_an_xml_syntax_error_in_a_file_keeps_the_original_as_detail():
    p = validate_bpmn_file("a.bpmn", b"<definitions><process></definitions>", None)[-1]
    assert "不匹配" in p.message and "mismatch" in p.detail and p.line == 1


# ---- Python syntax in conditions and scripts -----------------------------------------------------------------

SYNTAX_CASES = [
    ("x ===", "eval", "第 1 行语法错误：语法无效；出错处：「x ===」"),
    ("approved = 'yes'", "eval", "比较是否相等须写 =="),
    ("f(", "eval", "括号「(」没有闭合"),
    ("x)", "eval", "多了一个「)」"),
    ("'abc", "eval", "字符串缺少结尾的引号"),
    ("  x = 1", "exec", "多了缩进"),
    ("if x\n  y = 1", "exec", "缺少冒号"),
    ("x ＝ 1", "eval", "中文标点须改成英文标点"),
    ("f() = 1", "exec", "不能给函数调用赋值"),
    ("1abc", "eval", "数字写法无效"),
    ("[a b] = 1", "exec", "可能少了逗号"),
    ("x.a += 1", "exec", "不允许对属性使用 +=、-= 等复合赋值"),
    ("x[1] += 1", "exec", "不允许对下标或切片"),
    ("a: b = 1", "exec", "带类型注解的赋值"),
    ("_x", "eval", "「_x」以下划线开头"),
    ("x.__class__", "eval", "「__class__」以下划线开头"),
    ("x.ab__roles__", "eval", "以 __roles__ 结尾"),
    ("exec('1')", "exec", "不允许调用 exec"),
    ("def f():\nreturn 1", "exec", "缩进的语句块"),
]


@pytest.mark.parametrize(("source", "mode", "chinese"), SYNTAX_CASES)
def test_condition_and_script_errors_are_told_in_chinese(source, mode, chinese):
    texts = sandbox.check(source, mode)
    assert texts
    message, _detail = explain_check(texts[0])
    assert chinese in message, message
    assert not english_only(message), message


def test_a_syntax_error_keeps_the_english_as_detail():
    message, detail = explain_check(sandbox.check("x ===", "eval")[0])
    assert detail == "SyntaxError: invalid syntax" and "statement" not in message


# ---- SpiffWorkflow, exceptions, values, JSON Schema ------------------------------------------------------------

SPIFF_CASES = [
    ("Non-default exclusive outgoing sequence flow without condition", "排他网关的流出顺序流没有条件"),
    ("Exactly one start event is required in a SubWorkflow Task; found 0.", "子流程须有且只有一个开始事件（现有 0 个）"),
    ("Data Store name is missing from bpmn xml", "数据存储缺少名称"),
    ("Data Store with name Archive has no implementation", "数据存储「Archive」没有实现"),
    ("Data Store with name  has no implementation", "数据存储（未命名）没有实现"),
    ("The process 'Sub' was not found. Did you mean one of the following: a, b?", "找不到被调用的流程「Sub」"),
    ('No "calledElement" attribute for Call Activity.', "缺少 calledElement 属性"),
    ("Process p1 is not executable.", "流程 p1 未标记为可执行"),
    ("Signal identifier is missing from bpmn xml", "信号 定义缺少 id"),
    ("Something SpiffWorkflow says one day", "这里的写法 SpiffWorkflow 不接受"),
]


@pytest.mark.parametrize(("english", "chinese"), SPIFF_CASES)
def test_spiffworkflow_messages_are_told_in_chinese(english, chinese):
    message, detail, _element = _spiff_text(english)
    assert chinese in message and detail == english.rstrip(".").replace("  ", " ")
    assert not english_only(message)


def test_exceptions_and_values_are_described_not_printed():
    def clock_due():
        return None
    assert explain_exception(TypeError("x")) == "程序内部错误：值的类型不对"
    assert explain_exception(NameError("name 'q' is not defined", name="q")).endswith("未定义的名字「q」")
    assert explain_exception(RecursionError()).startswith("程序内部错误：嵌套或链条过深")
    assert exception_detail(ValueError(f"bad {clock_due!r}")) == "ValueError: bad clock_due"
    assert value_kind(clock_due) == "函数" and value_kind([1, 2, 3]) == "列表（3 项）" and value_kind(None) == "空值"
    assert value_kind({"a": 1}) == "字典（1 项）" and value_kind(2) == "整数 2" and value_kind(True) == "布尔值（是）"
    assert "0x" not in clean_detail(repr(object())) and one_line("HR\n Department ") == "HR Department"


def test_a_form_that_is_not_json_schema_is_told_with_its_path_and_line():
    data = b'{\n  "type": "object",\n  "properties": {\n    "a": {"type": "objekt"}\n  }\n}\n'
    import json
    message, detail, line = schema_problem(json.loads(data), data)
    assert message == "不是有效的 JSON Schema：properties.a.type 的值「objekt」不是合法的类型（可取：string、number、integer、" \
                      "boolean、array、object、null）"
    assert "not valid under any of the given schemas" in detail and line == 4
    assert json_path(["fields", 2, "type"]) == "fields[2].type" and json_path([]) == "根"
    assert json_path_line(data, ["properties", "a"]) == 4 and json_path_line(data, ["nope"]) is None
    assert schema_problem({"type": "object"}) is None


# ---- executable means executable ------------------------------------------------------------------------------

def _bpmn(processes_xml: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/'
            f'MODEL" id="d" targetNamespace="urn:t">\n{processes_xml}\n</bpmn:definitions>\n').encode()


def test_a_missing_isexecutable_is_false_and_the_drawn_processes_are_named():
    from lxml import etree
    assert not _executable(etree.fromstring('<process/>')) and _executable(etree.fromstring('<process isExecutable="true"/>'))
    data = _bpmn('<bpmn:process id="Placeholder"/>\n'
                 '<bpmn:process id="Real" name="审批\n流程" isExecutable="false"><bpmn:startEvent id="S"/></bpmn:process>\n'
                 '<bpmn:process id="Other"><bpmn:task id="T"/></bpmn:process>')
    problems = validate_bpmn_file("x.bpmn", data, CONTEXT)
    texts = [p.message for p in problems]
    assert any(t.startswith("流程「审批 流程」标记为 isExecutable=\"false\"") for t in texts), texts
    assert any(t.startswith("流程「Other」没有 isExecutable 属性（按 BPMN 2.0 规范缺省为 false）") for t in texts), texts
    assert not any("Placeholder" in t for t in texts) and all(not english_only(t) for t in texts)
    empty = validate_bpmn_file("y.bpmn", _bpmn('<bpmn:process id="P"/>'), CONTEXT)
    assert any("没有画任何流程" in p.message for p in empty)


def test_the_shipped_processes_are_all_marked_executable():
    from lxml import etree
    for name, data in CONTEXT.items():
        if name.endswith(".bpmn"):
            for p in etree.fromstring(data).iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}process"):
                assert p.get("isExecutable") == "true", (name, p.get("id"))


def test_an_unnamed_lane_is_called_by_its_id_and_a_lane_name_is_one_line():
    base = CONTEXT["bangban_case.bpmn"].decode()
    lane = re.search(r'<bpmn:lane id="([^"]+)" name="([^"]+)"', base)
    unnamed = base.replace(lane.group(0), f'<bpmn:lane id="{lane.group(1)}"', 1).encode()
    p = next(p for p in validate_bpmn_file("bangban_case.bpmn", unnamed, CONTEXT) if "泳道" in p.message)
    assert p.message.startswith(f"泳道 {lane.group(1)} 没有名称") and "None" not in str(p)
    broken = base.replace(lane.group(0), f'<bpmn:lane id="{lane.group(1)}" name="Team&#10;Assistant"', 1).encode()
    p = next(p for p in validate_bpmn_file("bangban_case.bpmn", broken, CONTEXT) if "泳道" in p.message)
    assert "「Team Assistant」" in p.message and "\n" not in str(p)
