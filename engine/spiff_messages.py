"""SpiffWorkflow's messages in Chinese, and library text made fit to show (one line, no addresses or reprs); the
kinds of Python exceptions in Chinese.

Used by validation (:mod:`engine.validation.spiff`), by :func:`engine.processes.build` and by
:mod:`engine.script_errors`; it imports nothing of the project, so all can use it.
"""
from __future__ import annotations

import re
from typing import Any

_ADDRESS = re.compile(r"\s*at 0x[0-9a-fA-F]{4,}")
_REPR = re.compile(r"<(?:bound method |function |built-in function |class |module )?'?([\w.]+)'?[^<>]*>")


def one_line(text: Any) -> str:
    """``text`` with every run of whitespace (line breaks included) collapsed to one space."""
    return " ".join(str(text).split())


def clean_detail(text: Any, limit: int = 300) -> str:
    """Original library text fit to show: one line, no memory address, no ``<function f at …>`` repr, bounded."""
    text = _ADDRESS.sub("", one_line(text)).replace("<locals>", "locals")
    text = _REPR.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return text if len(text) <= limit else text[:limit] + "…"


_DATA_STORE = "本服务不支持数据存储（dataStore），请删除它或改用数据对象（dataObject）"
_SPIFF_HINTS: tuple[tuple[str, str], ...] = (   # (regular expression on SpiffWorkflow's text, Chinese; {0}… groups)
    (r"Data Store with name has no implementation", "数据存储（未命名）没有实现：" + _DATA_STORE),
    (r"Data Store with name (.*) has no implementation", "数据存储「{0}」没有实现：" + _DATA_STORE),
    (r"Data Store name is missing", "数据存储缺少名称（name）：" + _DATA_STORE),
    (r"Data Store identifier is missing", "数据存储缺少 id：" + _DATA_STORE),
    (r"A Service Task must have an operator", "服务任务缺少 spiffworkflow:serviceTaskOperator：本服务不执行服务任务"),
    (r"Multiple outgoing flows are not supported", "任务有多条流出顺序流，SpiffWorkflow 不支持：请在任务后加网关"),
    (r"Unknown Time Specification|Time Specification Error", "定时器没有可识别的时间定义（timeDate、timeDuration 或 timeCycle）"),
    (r"Unsupported Catch Event", "不支持的捕获事件（没有事件定义，或事件类型不受支持）"),
    (r"must specify exactly one of cardinality or loop input", "多实例任务只能指定 loopCardinality 与 loopDataInputRef 其中之一"),
    (r"must specify a cardinality or a (?:loop input|collection)", "多实例任务须指定 loopCardinality 或 loopDataInputRef"),
    (r"loop (input|output) data reference is missing from the IO specification",
     "多实例任务引用的循环数据在 ioSpecification 中找不到"),
    (r"Cannot resolve data(Input|Output)Association", "数据关联引用了找不到的数据对象"),
    (r"No start event found", "流程没有开始事件"),
    (r"Exactly one start event is required in a SubWorkflow Task; found (\d+)", "子流程须有且只有一个开始事件（现有 {0} 个）"),
    (r"The process '(.*?)' was not found", "找不到被调用的流程「{0}」（callActivity 的 calledElement 须是某个流程的 id）"),
    (r"No \"calledElement\" attribute for Call Activity", "调用活动（callActivity）缺少 calledElement 属性：须写明要调用的流程"),
    (r"Duplicate process ID: (.*)", "流程 id「{0}」重复"),
    (r"Process (.*) is not executable", "流程 {0} 未标记为可执行（须设 isExecutable=\"true\"）"),
    (r"no support implemented for this task type", "不支持的任务类型"),
    (r"Non-default exclusive outgoing sequence flow without condition",
     "排他网关的流出顺序流没有条件，又不是默认流：请给它写条件表达式，或把它设为网关的默认流（default）"),
    (r"Conditional event definition with missing condition", "条件事件缺少条件"),
    (r"Must contain an End event", "子流程须有结束事件"),
    (r"Cancel Events may only be used with transactions", "取消事件只能用于事务子流程"),
    (r"loopMaximum or loopCondition", "循环任务须指定 loopMaximum 或 loopCondition"),
    (r"Invalid Script Task", "脚本任务没有脚本"),
    (r"Correlation identifier is missing", "消息关联（correlationKey/correlationProperty）缺少 id"),
    (r"Correlation is missing correlation property retrieval expressions", "消息关联属性缺少取值表达式"),
    (r"Message identifier is missing from correlation property", "消息关联属性没有引用消息"),
    (r"(Error|Escalation|Message|Signal) identifier is missing", "{0} 定义缺少 id"),
    (r"Expected an? (Message|Signal|Error|error|Escalation) node|Could not find messageRef",
     "事件引用的消息、信号、错误或升级在文件中找不到定义"),
    (r"Ad hoc subprocesses may not contain start or end events", "自由子流程（adHocSubProcess）中不能有开始或结束事件"),
    (r"Sequential ordering for ad hoc subprocesses not supported", "不支持顺序执行的自由子流程"),
    (r"When looking for a task spec, we found two items", "有两个元素的 id 相同（可能表单与任务同名）"),
)
_REPR_WRAPPED = re.compile(r"^\w+\((['\"])(.*?)(?:: %r)?\1, b(['\"]).*\3\)$", re.DOTALL)
_ELEMENT_REPR = re.compile(r"<Element \{[^}]*\}(\w+) at 0x[0-9a-f]+>")
_ID_IN_XML = re.compile(r"\bid=\"([^\"]+)\"")
_DEFINITION_KINDS = {"message": "消息", "signal": "信号", "error": "错误", "escalation": "升级"}


def spiff_text(message: str) -> tuple[str, str, str | None]:
    """SpiffWorkflow's English message → (Chinese, the English made readable: no XML dumps or memory addresses,
    the element id buried in a dumped node, if any)."""
    element = None
    wrapped = _REPR_WRAPPED.match(message.strip())
    if wrapped:
        found = _ID_IN_XML.search(message)
        element = found.group(1) if found else None
        message = wrapped.group(2)
    message = clean_detail(_ELEMENT_REPR.sub(lambda m: "bpmn:" + m.group(1), message)).rstrip(".").strip()
    for pattern, gloss in _SPIFF_HINTS:
        m = re.search(pattern, message)
        if m:
            groups = [_DEFINITION_KINDS.get((g or "").lower(), one_line(g or "")) for g in m.groups()]
            return gloss.format(*groups), message, element
    return "这里的写法 SpiffWorkflow 不接受", message, element


# ---- Python exceptions (of a diagram's code, or unexpected ones) ------------------------------------------------
_EXCEPTION_KINDS = (
    (RecursionError, "嵌套或链条过深，超过了递归上限"),
    (MemoryError, "内存不足"),
    (ZeroDivisionError, "除数为零"),
    (TimeoutError, "超时"),
    (KeyError, "缺少所需的键"),
    (IndexError, "下标超出范围"),
    (NameError, "用到了未定义的名字"),
    (AttributeError, "对象没有所需的属性"),
    (TypeError, "值的类型不对"),
    (UnicodeError, "文字编码有误"),
    (ValueError, "取值不合要求"),
    (OverflowError, "数值过大"),
    (NotImplementedError, "用到了尚不支持的功能"),
)


def _named(exc: BaseException) -> str:
    """The name a NameError, AttributeError or KeyError is about, as 「x」, where it is known."""
    name = getattr(exc, "name", None) if isinstance(exc, (NameError, AttributeError)) else None
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], (str, int)):
        name = exc.args[0]
    return f"「{one_line(name)[:40]}」" if name not in (None, "") else ""


def exception_kind(exc: BaseException) -> str:
    """What kind of failure ``exc`` is, in Chinese (「用到了未定义的名字「x」」); empty when it is of no known kind."""
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return "整数位数过多（整数与文字互转以 4300 位为限）"
    for kind, text in _EXCEPTION_KINDS:
        if isinstance(exc, kind):
            return f"{text}{_named(exc)}"
    return ""


def exception_detail(exc: BaseException) -> str:
    """The exception's type and text as a detail: one line, no memory addresses."""
    text = clean_detail(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
