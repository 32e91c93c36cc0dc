"""What an audit finds wrong (:class:`Divergence`) and how it reads: one Chinese line naming the event by number and
kind, the task, the field by its Chinese name, and the recorded and replayed sides — never an internal code."""
from __future__ import annotations

import json
from dataclasses import dataclass

from .views import EVENT_LABELS


@dataclass
class Divergence:
    seq: int | None
    event_type: str | None
    message: str
    task: str | None = None
    field: str | None = None
    expected: object = None
    actual: object = None
    sides: tuple[str, str] = ("记录为", "重放得到")   # what ``expected`` and ``actual`` are, in the text
    field_label: str | None = None                    # the field's Chinese name where the caller knows it
    task_label: str | None = None                     # a clock's title where ``task`` is its key

    def to_dict(self) -> dict:
        return {"seq": self.seq, "event_type": self.event_type, "message": self.message, "task": self.task,
                "field": self.field, "expected": _show(self.expected), "actual": _show(self.actual)}

    def __str__(self) -> str:
        """One Chinese line: where (the event by number and kind), what, and the two sides; no internal codes."""
        if self.seq:
            kind = EVENT_LABELS.get(self.event_type or "", "其他事件") if self.event_type else None
            where = f"第 {self.seq} 条事件" + (f"（{kind}）" if kind else "")
        else:
            where = "最终状态"
        extra = f"；任务：{self.task_label or self.task}" if self.task else ""
        label = self.field_label if self.field_label is not None else FIELD_LABELS.get(self.field or "")
        extra += f"；字段：{label or self.field}" if self.field and label != "" else ""
        if self.expected is not None or self.actual is not None:
            extra += f"；{self.sides[0]} {_say(self.expected)}，{self.sides[1]} {_say(self.actual)}"
        return f"{where}：{self.message}{extra}"


# The Chinese names of the fields a divergence may name ("" where the message already says it).
FIELD_LABELS = {
    "status": "办件状态", "state": "任务状态", "ready_after": "此步之后的待办", "element": "待办", "actor": "办理人",
    "role": "角色", "at": "时间", "payload": "事件内容", "document": "", "number": "单据编号", "due_date": "办结期限",
    "from": "原办理人", "to": "新办理人", "variables": "办件变量", "limit": "时限天数", "started_at": "开始计时时间",
    "pauses": "暂停记录", "extensions": "延期记录", "stopped_at": "结束计时时间", "warned": "已发预警",
    "stop_reason": "结束原因",
}


def _show(value) -> str | None:
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 300 else text[:300] + "…"


def _say(value) -> str:
    """A value in a Chinese line: 「（无）」 for nothing, 是/否 for booleans, else as :func:`_show`."""
    if value is None or value == "":
        return "（无）"
    if isinstance(value, bool):
        return "是" if value else "否"
    return _show(value)
