"""The inbox's page parameters: the filter, the page size and the cursor (no SQL here: engine/repository_inbox.py).

A cursor is an opaque token: the urgency class and sort key (due date, arrival, task id) of a page's last row, the
moment the first page was read (so every page of one listing ranks red/yellow alike, and each task appears exactly
once), and a digest of the filter; with a checksum, so a garbled or edited token is refused. A well-formed token
made up by hand reveals nothing: the access rules and the filter apply to every page.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime

from .errors import InvalidInput

CLASSES = ("red", "yellow", "green", "none")
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
_TASK_ID = re.compile(r"[0-9a-fA-F-]{1,36}")
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,400}")


@dataclass(frozen=True)
class InboxFilter:
    stage: str | None = None
    item: str | None = None          # a clock key (service item code), or a task's title or name
    department: str | None = None
    unit_id: int | None = None
    due_before: date | None = None   # due on or before this date


@dataclass(frozen=True)
class InboxPosition:
    """Where a page ends: the urgency class (index into CLASSES) and the sort key of its last row."""
    rank: int
    due_date: date | None
    created_at: datetime
    task_id: str


def audiences(roles, department: str | None, username: str, unit_id: int | None) -> list[tuple]:
    """The alternatives of ``access.may_act`` as disjoint (role, department, assignee, unit_id-or-None) equality
    tuples: the role held; the task's department none or the user's; its assignee none or the user; an applicant's
    task only in the user's own unit."""
    out = []
    for role in dict.fromkeys(roles):
        if role == "applicant" and unit_id is None:
            continue
        for d in ([None, department] if department else [None]):
            for a in ([None, username] if username else [None]):
                out.append((role, d, a, unit_id if role == "applicant" else None))
    return out


def audience_key(role: str | None, department: str | None, assignee: str | None) -> str:
    """An inbox row's access alternative as one value (``inbox.audience``): role, department, assignee."""
    return f"{role or ''}|{department or ''}|{assignee or ''}"


def parse_limit(value) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    if isinstance(value, bool):
        raise InvalidInput(f"每页条数须为 1 到 {MAX_LIMIT} 之间的整数")
    if isinstance(value, str):
        if not re.fullmatch(r"\d{1,4}", value.strip()):
            raise InvalidInput(f"每页条数须为 1 到 {MAX_LIMIT} 之间的整数")
        value = int(value.strip())
    if not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(f"每页条数须为 1 到 {MAX_LIMIT} 之间的整数")
    return value


def parse_date(value) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value).strip()):
            raise ValueError
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput("截止日期格式不正确，应为“年-月-日”，例如 2026-12-31") from None


def parse_unit(value) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,12}", value.strip()):
        return int(value.strip())
    raise InvalidInput("筛选的申请单位不正确")


def parse_item(value) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 200 or any(ord(ch) < 32 for ch in value):
        raise InvalidInput("筛选的事项不正确")
    return value.strip() or None


def _filter_digest(f: InboxFilter) -> str:
    return hashlib.sha256(json.dumps([str(v) if v is not None else None for v in astuple(f)],
                                     ensure_ascii=False).encode()).hexdigest()[:12]


def _check(payload: str) -> str:
    return hashlib.sha256(("bangban-inbox:" + payload).encode()).hexdigest()[:10]


def encode_cursor(rank: int, row, at: datetime, f: InboxFilter) -> str:
    created = row.created_at
    payload = json.dumps([1, rank, row.due_date.isoformat() if rank < 3 and row.due_date else None,
                          created.isoformat(), row.task_id, at.isoformat(), _filter_digest(f)], separators=(",", ":"))
    token = payload + "|" + _check(payload)
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


_BAD = "翻页标记无效或已损坏，请从第一页重新打开待办列表"


def decode_cursor(token, f: InboxFilter) -> tuple[InboxPosition, datetime]:
    """The position a cursor names and the moment of its listing; InvalidInput when it is not one we made for this
    filter."""
    if not isinstance(token, str) or not _CURSOR.fullmatch(token):
        raise InvalidInput(_BAD)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        payload, check = raw.rsplit("|", 1)
        if check != _check(payload):
            raise ValueError
        v, rank, due, created, task_id, at, digest = json.loads(payload)
        if v != 1 or not isinstance(rank, int) or not 0 <= rank < len(CLASSES) or not isinstance(task_id, str) \
                or not _TASK_ID.fullmatch(task_id):
            raise ValueError
        due_date = date.fromisoformat(due) if rank < 3 else None
        created_at = datetime.fromisoformat(created)
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    except (ValueError, TypeError, UnicodeDecodeError, AttributeError):
        raise InvalidInput(_BAD) from None
    if digest != _filter_digest(f):
        raise InvalidInput("翻页标记与当前筛选条件不符，请从第一页重新打开待办列表")
    return InboxPosition(rank, due_date, created_at, task_id), moment
