"""The project's rules for one file: lanes, user tasks and their properties, scripts, conditions, timers."""
from __future__ import annotations

import ast
import re
from typing import Any

from lxml import etree

from .. import sandbox, showspec
from . import progress
from .common import (
    _NOT_TASK_SPECS,
    _TIMER_KINDS,
    BPMN_NS,
    EXPRESSION_PROPERTIES,
    MAX_TIMER_SECONDS,
    NS,
    RESERVED_IDS,
    WARNING_LEVELS,
    Problem,
    _as_dict,
    _as_list,
    _drawn_processes,
    _label,
    _owner,
    _properties,
)
from .context import _Context
from .expressions import _evaluate_timer, _items_named, _looks_iso, _TimerBudget
from .pysyntax import explain_check

CONFIRM_MAX = 200
_CJK = re.compile(r"[\u4e00-\u9fff]")

# ---- the rules of one file ---------------------------------------------------------------------------------


class _FileChecker:
    """The project rules for the runnable processes of one BPMN file."""

    def __init__(self, name: str, tree: Any, ctx: _Context | None, runnable: dict[str, tuple[str, Any]],
                 out: list[Problem], budget: _TimerBudget):
        self.name, self.tree, self.ctx, self.out, self.budget = name, tree, ctx, out, budget
        self.processes = [p for (f, p) in runnable.values() if f == name]

    def problem(self, message: str, el: Any = None, detail: str | None = None) -> None:
        owner = _owner(el) if el is not None else None
        self.out.append(Problem(message, self.name, el.sourceline if el is not None else None,
                                owner.get("id") if owner is not None else None, detail))

    def run(self) -> None:
        if not self.processes:
            self.not_executable()
            return
        for process in self.processes:
            self.lanes(process)
            self.elements(process)
            self.expressions(process)
        self.correlations()

    def not_executable(self) -> None:
        """No runnable process: name the processes the owner drew and what marks them not executable."""
        drawn = _drawn_processes(self.tree)
        if not drawn:
            self.problem("文件中没有画任何流程（没有含任务或事件的 bpmn:process），无法部署")
            return
        for process in drawn:
            value = process.get("isExecutable")
            why = "没有 isExecutable 属性（按 BPMN 2.0 规范缺省为 false）" if value is None \
                else f"标记为 isExecutable=\"{value}\""
            self.problem(f"流程「{_label(process)}」{why}，不是可执行流程：如要部署，请设 isExecutable=\"true\"", process)

    # lanes, user tasks, properties
    def lanes(self, process) -> None:
        lanes = process.xpath(".//bpmn:lane", namespaces=NS)
        if not lanes:
            self.problem(f"流程「{_label(process)}」没有泳道：无法确定由哪个角色办理，不能部署", process)
        if self.ctx is None or self.ctx.manifest is None:
            return
        known = "、".join(self.ctx.lanes) or "（清单中没有泳道）"
        for lane in lanes:
            if not (lane.get("name") or "").strip():
                self.problem(f"泳道 {lane.get('id') or '（无 id）'} 没有名称：无法对应清单中的角色（已知：{known}）", lane)
            elif lane.get("name") not in self.ctx.lanes:
                self.problem(f"泳道「{_label(lane)}」不是清单中的已知角色（已知：{known}）", lane)

    def elements(self, process) -> None:
        lane_of: dict[str, str | None] = {}
        for ref in process.xpath(".//bpmn:lane/bpmn:flowNodeRef", namespaces=NS):
            if ref.text:
                lane_of[ref.text.strip()] = _label(ref.getparent())
        for el in process.iter():
            if not isinstance(el.tag, str) or etree.QName(el).namespace != BPMN_NS:
                continue
            local = etree.QName(el).localname
            if el.get("id") in RESERVED_IDS and local not in _NOT_TASK_SPECS:
                self.problem(f"元素 id「{el.get('id')}」与 SpiffWorkflow 内置的 Start/End 冲突，会使流程解析出错，请改名", el)
            if local in ("userTask", "manualTask"):
                self.user_task(el, lane_of)
            if local == "startEvent" and el.getparent().get("triggeredByEvent") == "true" \
                    and el.get("isInterrupting", "true") == "true":
                self.problem("事件子流程的开始事件是中断型（isInterrupting 缺省为 true），SpiffWorkflow 3.2.0 不会中断主流程："
                             "请设 isInterrupting=\"false\"，或改用子流程上的中断型边界事件", el)
            props = _properties(el)
            for prop in props:
                self.property(el, prop)
            if props:
                self.confirm_pair(el)

    def user_task(self, task, lane_of: dict) -> None:
        label = f"任务「{_label(task)}」"
        lane = lane_of.get(task.get("id") or "")
        if lane is None and lane_of:
            self.problem(f"{label}不在任何泳道中：无法确定由哪个角色办理", task)
        form = next((p.get("value") for p in _properties(task) if p.get("name") == "formJsonSchemaFilename"), None)
        if not form:
            self.problem(f"{label}未指定表单（spiffworkflow:property formJsonSchemaFilename）", task)
        elif self.ctx is not None:
            if form in self.ctx.bad_forms:
                self.problem(f"{label}引用的表单 {form} 不是有效的表单（见 forms/{form} 的问题）", task)
            elif form not in self.ctx.forms:
                self.problem(f"{label}引用的表单 {form} 不存在（应在 forms/{form}）", task)

    def property(self, el, prop) -> None:
        name, value = prop.get("name"), prop.get("value")
        if value is None or not value.strip():
            return
        manifest = self.ctx.manifest if self.ctx is not None else None
        if name in EXPRESSION_PROPERTIES:
            self.code(value, "eval", prop, f"属性 {name} 的表达式")
        elif name == "show":
            self.show(value, prop)
        elif name == "confirm":
            self.confirm(value, prop)
        elif name == "stage" and manifest is not None and value not in _as_list(manifest.get("stages")):
            self.problem(f"阶段「{value}」不在清单的阶段列表中", prop)
        elif name == "document" and manifest is not None and value not in _as_dict(manifest.get("numbers")):
            self.problem(f"单据「{value}」在清单的编号规则（numbers）中没有定义", prop)
        elif name == "warning_level" and value not in WARNING_LEVELS:
            self.problem(f"预警级别「{value}」应为 yellow 或 red", prop)
        elif name == "ends_tasks":
            root = prop.getroottree()
            missing = [i for i in (v.strip() for v in value.split(",")) if i and not root.xpath(
                "//bpmn:userTask[@id=$id]", namespaces=NS, id=i)]
            if missing:
                self.problem(f"属性 ends_tasks 列出的「{'、'.join(missing)}」不是本文件中的用户任务", prop)

    def show(self, value: str, prop) -> None:
        """``show``: variable names and named views (``engine.showspec``); a view's arguments are expressions."""
        entries, problems = showspec.parse(value)
        for p in problems:
            self.problem(p, prop)
        root = prop.getroottree()
        for entry in entries:
            for arg in entry.args:
                self.code(arg, "eval", prop, f"属性 show 中视图 {entry.kind} 的参数表达式")
            if entry.kind == "latest" and not root.xpath("//bpmn:userTask[@id=$id]", namespaces=NS, id=entry.name):
                self.problem(f"属性 show 中 latest 的任务「{entry.name}」不是本文件中的用户任务", prop)

    def confirm(self, value: str, prop) -> None:
        """``confirm``: the consequence people confirm before the step, in Chinese words (not an expression)."""
        text = value.strip()
        if len(text) > CONFIRM_MAX:
            self.problem(f"属性 confirm 的确认提示太长（{len(text)} 个字符，至多 {CONFIRM_MAX} 个）", prop)
        if not _CJK.search(text):
            self.problem("属性 confirm 应为中文的确认提示，写明这一步的后果（如“不予受理后办件即告结束……确定吗？”）", prop)
        owner = _owner(prop)
        if owner is not None and etree.QName(owner).localname != "userTask":
            self.problem("属性 confirm 只能用于用户任务（办理这一步之前请办理人确认）", prop)

    def confirm_pair(self, el) -> None:
        """``confirm_when`` alone would ask nobody anything."""
        values = {p.get("name"): (p.get("value") or "").strip() for p in _properties(el)}
        if values.get("confirm_when") and not values.get("confirm"):
            self.problem("属性 confirm_when 须与 confirm（确认提示）一起设置：只有条件、没有提示，不会询问任何人", el)

    # scripts and expressions
    def expressions(self, process) -> None:
        x = process.xpath
        for el in x(".//bpmn:scriptTask/bpmn:script", namespaces=NS):
            self.code(el.text or "", "exec", el, "脚本")
        for el in x(".//spiffworkflow:preScript | .//spiffworkflow:postScript", namespaces=NS):
            self.code(el.text or "", "exec", el, "前置/后置脚本")
        for el in x(".//bpmn:conditionExpression | .//bpmn:conditionalEventDefinition/bpmn:condition", namespaces=NS):
            self.code(el.text or "", "eval", el, "条件表达式", required=True)
        for el in x(".//bpmn:loopCardinality | .//bpmn:completionCondition | .//bpmn:loopCondition", namespaces=NS):
            self.code(el.text or "", "eval", el, "多实例/循环表达式")
        for el in x(".//spiffworkflow:messagePayload", namespaces=NS):
            self.code(el.text or "", "eval", el, "消息内容表达式（messagePayload）")
        for el in x(".//spiffworkflow:serviceTaskOperator/spiffworkflow:parameter[@value]", namespaces=NS):
            self.code(el.get("value"), "eval", el, f"服务任务参数 {el.get('id')} 的表达式")
        for el in x(".//bpmn:timerEventDefinition/*", namespaces=NS):
            kind = etree.QName(el).localname
            if kind in _TIMER_KINDS:
                self.timer(kind, el)
        for definition in x(".//bpmn:timerEventDefinition", namespaces=NS):
            if not any(etree.QName(c).localname in _TIMER_KINDS for c in definition if isinstance(c.tag, str)):
                self.problem("定时器没有 timeDate、timeDuration 或 timeCycle 表达式", definition)

    def correlations(self) -> None:
        for el in self.tree.getroot().xpath(".//bpmn:correlationPropertyRetrievalExpression/*", namespaces=NS):
            self.code(el.text or "", "eval", el, "消息关联表达式")

    def code(self, source: str, mode: str, el, what: str, required: bool = False) -> ast.AST | None:
        """Check one piece of diagram code in the sandbox's compiler; report literal service items it names."""
        if not source.strip():
            if required:
                self.problem(f"{what}为空", el)
            return None
        problems = sandbox.check(source, mode)
        for p in problems:
            text, detail = explain_check(p)
            self.problem(f"{what}未通过沙箱检查：{text}", el, detail)
        try:
            tree = ast.parse(source, mode=mode)
        except (SyntaxError, ValueError):
            return None
        catalogue = self.ctx.catalogue if self.ctx is not None else None
        if catalogue is not None:
            for code in _items_named(tree):
                if code not in catalogue.items:
                    self.problem(f"{what}引用的服务事项「{code}」不在事项目录中", el)
        return None if problems else tree

    def timer(self, kind: str, el) -> None:
        source = (el.text or "").strip()
        what = f"定时器表达式（{kind}）"
        if not source:
            self.problem(f"{what}为空", el)
            return
        if _looks_iso(source):
            self.problem(f"{what}按 Python 表达式求值：ISO-8601 值 {source} 须加引号，写成 '{source}'", el)
            return
        tree = self.code(source, "eval", el, what)
        if tree is None:
            return
        if self.budget.exhausted():
            if not self.budget.reported:
                self.budget.reported = True
                self.problem(f"定时器表达式求值总耗时超过 {MAX_TIMER_SECONDS:g} 秒，从这里起的定时器未求值", el)
            return
        progress.at("计算定时器表达式", self.name, el, element=_owner(el).get("id"))
        reason = _evaluate_timer(kind, source, tree, self.ctx.helpers if self.ctx is not None else {})
        if reason:
            self.problem(reason[0], el, reason[1])
