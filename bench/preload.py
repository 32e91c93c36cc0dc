#!/usr/bin/env python
"""Preload a database with N realistic cases through the engine, fast (issue 14 item 5; see bench/README.md).

    python bench/preload.py --database-url sqlite:///big.sqlite3 --cases 100000
    python bench/preload.py --database-url postgresql://root@127.0.0.1:5432/test?options=-csearch_path%3Dx --cases 10000

Two phases:

1. **Templates through the engine.** ``--templates`` cases (default 200, fewer when N is small) are driven through
   the real use cases (``Bangban.start_case`` / ``complete_task`` / ``send_message``, the demo users of
   ``engine.demo.load_demo``) on a frozen service clock, each started on a day of the past year and stepped a few
   hours apart, to a stage drawn from :data:`STAGES` (weights documented there): just submitted, refused, accepted,
   items at the departments (1–3 items across departments, some waiting for a 补正, some with a 延期 approved),
   decided, delivered, completed with every rating, terminated (by the lead or at the applicant's request). About a
   quarter are key projects (核实重点认定 → 首席服务员). Due BPMN timers are then fired (``fire_due``) at the real time,
   as the worker would have.
2. **Clones.** Every other case copies a template with a fresh identity: a new id and case number on the template's
   day (the day's counter advanced, so the next real case number does not collide), new task UUIDs mapped
   consistently over the workflow state, inbox, timers, events and documents, another applicant unit (with its own
   applicant account, so the events' actors still belong to the unit) and project name and code, new document
   numbers (their counters advanced) with their content hashes, the event chain re-hashed with
   ``engine.events`` (``bangban audit verify`` passes on clones), parties, clocks, timers, notifications and a search
   row (``Repository.index_cases``, as intake writes it). Rows are inserted in bulk (executemany in batches; COPY on
   PostgreSQL). A clone keeps its template's timestamps (so statutory clocks and the calendar stay exactly as the
   engine computed them); creation dates are spread by the templates' days.

The text of a template (state, case variables, event payloads, documents, ...) is split once at every value that
differs per clone (UUIDs, case number, unit, applicant, project, document numbers and hashes, ids inside JSON), so a
clone is a join of the pieces with its own values: no JSON parsing per clone.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
PROCESS = "bangban_case"
FAST_HASH = "pbkdf2:sha256:1000"
UUID_RX = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# The stage a template is driven to, with its weight (per cent of cases). Open cases are recent (started within the
# last 45 days); closed ones are spread over the past year.
STAGES = {
    "submitted": 8,     # 受理审核 open
    "refused": 4,       # 不予受理: closed
    "accepted": 6,      # 受理 done; 材料交接/委托协议 (key: 核实重点认定, 指派首席) open
    "dispatched": 22,   # items at the departments: some decided, some open, some waiting for the applicant's 补正
    "decided": 5,       # every item decided: 汇总办理结果 open
    "delivered": 5,     # 统一送达 done: 签收办结单 open
    "completed": 43,    # signed and every rating given
    "terminated": 7,    # 终止 during the departments' work: by the lead, or granted at the applicant's request
}
OPEN_STAGES = {"submitted", "accepted", "dispatched", "decided", "delivered"}
KEY_SHARE = 0.25         # key projects (重点项目): 核实重点认定 → 指派项目首席服务员 → 签订代办委托协议
CORRECTION_SHARE = 0.2   # each item: a 补正 round before its decision
EXTENSION_SHARE = 0.15   # each case at the departments: one item's specialist asks for 延期, the supervisor approves
REFUSE_ITEM_SHARE = 0.1  # an item 不予许可
ITEMS = ["qydj", "xmlx", "gh", "np", "hp", "ap", "xf", "rf", "sg", "ys", "gd", "gs", "gq", "tx"]
TEMPLATE_APPLICANT = "tplapp"
TEMPLATE_UNIT = {"name": "武陟县模板预置实业有限公司", "credit_code": "91410823MA9TPL0011", "legal_representative": "模板甲",
                 "address": "武陟县模板预置路1号", "postcode": "454950", "leader_name": "模板甲", "leader_phone": "0391-7220000",
                 "contact_name": "模板乙", "contact_phone": "13700000000", "status": "approved"}
USERS_BY_ROLE = {"agent": ["agent1", "agent2"], "window": ["window1"], "supervisor": ["supervisor1"],
                 "chief": ["chief1", "chief2"]}


class PreloadError(RuntimeError):
    pass


# ---- phase 1: templates through the engine ------------------------------------------------------------------------

class Driver:
    """Drives one case through the use cases on the frozen service clock."""

    def __init__(self, svc, rng: random.Random, applicant: str):
        self.svc, self.rng, self.applicant = svc, rng, applicant
        self.actors: dict = {}
        self.case_no = None

    def actor(self, username: str):
        if username not in self.actors:
            from engine.access import Actor
            with self.svc.db.unit_of_work(write=False) as uow:
                row = uow.repo.user_by_username(username)
            if row is None:
                raise PreloadError(f"no user {username} (did load_demo run?)")
            self.actors[username] = Actor.from_row(row)
        return self.actors[username]

    def wait(self, hours_lo: float = 0.5, hours_hi: float = 8.0) -> None:
        from engine.clock import clock
        clock.advance(timedelta(hours=self.rng.uniform(hours_lo, hours_hi)))

    def open_tasks(self) -> list:
        with self.svc.db.unit_of_work(write=False) as uow:
            case = uow.repo.case_by_no(self.case_no)
            return list(uow.repo.inbox_for_case(case.id))

    def who(self, t) -> str:
        if t.assignee:
            return t.assignee
        if t.role == "applicant":
            return self.applicant
        if t.role == "specialist":
            return f"zb_{t.department}"
        return self.rng.choice(USERS_BY_ROLE[t.role])

    def do(self, element: str, form: dict, title: str | None = None) -> None:
        self.wait()
        found = [t for t in self.open_tasks() if t.element_id == element and (title is None or t.title == title)]
        if not found:
            raise PreloadError(f"{self.case_no}: no open {element} {title or ''}: "
                               f"{[(t.element_id, t.title) for t in self.open_tasks()]}")
        t = found[0]
        self.svc.complete_task(self.actor(self.who(t)), t.task_id, form)

    def has(self, element: str) -> bool:
        return any(t.element_id == element for t in self.open_tasks())

    def message(self, username: str, key: str, form: dict, task_id: str | None = None) -> None:
        self.wait()
        self.svc.send_message(self.actor(username), self.case_no, key, form, task_id=task_id)

    # ---- the lifecycle
    def run(self, stage: str, n: int, key: bool, items: list[str]) -> str:
        r = self.rng
        from engine.clock import service_today
        from engine.demo import SAMPLE_APPLICATION
        unit = TEMPLATE_UNIT if self.applicant == TEMPLATE_APPLICANT else {}
        data = dict(SAMPLE_APPLICATION, project_name=template_project(n), project_code=template_code(n),
                    **{f: unit[k] for f, k in (("unit_name", "name"), ("unit_address", "address"),
                                               ("leader_name", "leader_name"), ("leader_phone", "leader_phone"),
                                               ("postcode", "postcode")) if k in unit},
                    key_project="重点项目" if key else "否", service_items=items,
                    total_investment=r.choice([800, 1500, 3200, 12000, 32000]))
        self.case_no = self.svc.start_case(self.actor(self.applicant), PROCESS, data).case_no
        if stage == "submitted":
            return self.case_no
        if stage == "refused":
            self.do("Task_Review", {"review_decision": "不予受理", "refusal_explanation": "不属于帮办代办服务事项"})
            return self.case_no
        self.do("Task_Review", {"review_decision": "受理", "authorization_checked": True})
        if self.has("Task_VerifyKey"):
            self.do("Task_VerifyKey", {"key_decision": "按重点项目/企业办理", "key_decision_reason": "已核实县发改委认定文件"})
        if self.has("Task_AssignChief"):
            self.do("Task_AssignChief", {"chief_officer": r.choice(["chief1", "chief2"]),
                                         "designated_by": "县发展和改革委员会（重点项目）"})
        if stage == "accepted":
            return self.case_no
        if self.has("Task_Agreement"):
            self.do("Task_Agreement", {"agreement_signed": True, "materials_received": "营业执照、项目备案证明等",
                                       "service_mode_confirmed": "上门服务"})
        else:
            self.do("Task_Commission", {"commission_signed": True, "materials_received": "营业执照、项目备案证明等",
                                        "service_mode_confirmed": "现场服务"})
        self.do("Task_Dispatch", {"service_items": items})
        handles = {t.title: t for t in self.open_tasks() if t.element_id == "Task_Handle"}
        order = sorted(handles)
        r.shuffle(order)
        if r.random() < EXTENSION_SHARE:
            title = order[0]
            t = handles[title]
            self.message(self.who(t), "extension_request", {"extension_days": r.choice([5, 10, 15]),
                                                             "extension_reason": "项目情况复杂，需现场核查"}, t.task_id)
            self.do("Task_ApproveExtension", {"extension_decision": "批准延期", "extension_days_approved": 5,
                                              "extension_opinion": "同意延期五个工作日"}, title)
        stop_after = r.randint(0, len(order) - 1) if stage in ("dispatched", "terminated") else len(order)
        for i, title in enumerate(order):
            if i == stop_after:
                if stage == "dispatched" and r.random() < 0.3:     # this item waits for the applicant's 补正
                    self.do("Task_Handle", {"item_decision": "需要补正", "correction_request": "补充相关材料",
                                              "correction_due": service_today(10).isoformat()}, title)
                break
            if r.random() < CORRECTION_SHARE:
                self.do("Task_Handle", {"item_decision": "需要补正", "correction_request": "补充相关材料",
                                              "correction_due": service_today(10).isoformat()}, title)
                self.do("Task_Supplement", {"supplement_description": "已按要求补交全部材料", "supplement_complete": True},
                        title)
            decision = {"item_decision": "不予许可", "refusal_reason": "不符合审批条件"} if r.random() < REFUSE_ITEM_SHARE \
                else {"item_decision": "准予许可", "licence_no": f"武审〔2026〕{r.randint(1, 999)}号"}
            self.do("Task_Handle", decision, title)
        if stage == "dispatched":
            return self.case_no
        if stage == "terminated":
            lead = self.lead()
            if r.random() < 0.5:
                self.message(self.applicant, "termination_request", {"reason": "申请单位申请终止帮办代办服务",
                                                                      "remark": "项目暂缓"})
                self.do("Task_ReviewTermination", {"termination_decision": "同意终止", "termination_opinion": "同意"})
            else:
                self.message(lead, "termination", {"reason": "国家法律法规规章和政策发生调整", "remark": "政策调整"})
            self.do("Task_TerminationSlip", {"termination_reason": "申请单位申请终止帮办代办服务",
                                             "termination_date": self.today(), "materials_returned": "申请材料原件全部退还",
                                             "both_signed": True})
            return self.case_no
        if stage == "decided":
            return self.case_no
        self.do("Task_Collect", {"results_collected": True})
        self.do("Task_Deliver", {"delivery_method": r.choice(["现场转交", "邮寄"]), "tracking_no": "SF1234567890",
                                 "delivery_date": self.today(), "work_record": "全程代办完成，批文已送达", "filed": True})
        if stage == "delivered":
            return self.case_no
        self.do("Task_Receipt", {"results_received": True})
        self.do("Task_RateAgent", {"rating": r.choice(["非常满意", "非常满意", "满意", "满意", "不满意"])})
        if self.has("Task_RateWindow"):
            self.do("Task_RateWindow", {"rating": "满意"})
        while self.has("Task_RateDept"):
            self.do("Task_RateDept", {"rating": "满意"})
        return self.case_no

    def lead(self) -> str:
        with self.svc.db.unit_of_work(write=False) as uow:
            return uow.repo.case_by_no(self.case_no).lead_user

    @staticmethod
    def today() -> str:
        from engine.clock import LOCAL_TZ, now
        return now().astimezone(LOCAL_TZ).date().isoformat()


def new_uuid(rng: random.Random) -> str:
    """A random (version 4) UUID in its text form, from the seeded generator (faster than ``uuid.uuid4``)."""
    h = f"{rng.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62) | (0x4 << 76) | (0x2 << 62):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def template_project(n: int) -> str:
    return f"模板项目{n:04d}号工程"


def template_code(n: int) -> str:
    return f"2026-410823-99-03-{900000 + n}"


def make_templates(svc, count: int, rng: random.Random, echo=print, stages: list[str] | None = None) -> list[str]:
    """``count`` cases through the use cases, stages drawn from :data:`STAGES` (or ``stages`` in turn); returns their
    case numbers."""
    from engine.clock import clock
    real_now = datetime.now(UTC)
    stages = [stages[i % len(stages)] for i in range(count)] if stages else \
        rng.choices(list(STAGES), weights=list(STAGES.values()), k=count)
    plans = []
    for n, stage in enumerate(stages):
        days = rng.uniform(6, 45) if stage in OPEN_STAGES else rng.uniform(45, 360)
        start = real_now - timedelta(days=days)
        k = rng.choices([1, 2, 3], [0.35, 0.35, 0.3])[0]
        plans.append((start, n, stage, rng.random() < KEY_SHARE, rng.sample(ITEMS, k)))
    plans.sort()                             # in time order, so each day's numbers follow the clock
    out = []
    t0 = time.perf_counter()
    try:
        for i, (start, n, stage, key, items) in enumerate(plans):
            clock.set(start)
            out.append(Driver(svc, rng, TEMPLATE_APPLICANT).run(stage, n, key, items))
            if echo and (i + 1) % 25 == 0:
                echo(f"  templates: {i + 1}/{count} ({time.perf_counter() - t0:.0f} s)")
        clock.reset()                        # the worker's round at the real time: due warnings fire
        while svc.fire_due(1000):
            pass
    finally:
        clock.reset()
    return out


# ---- phase 2: clones ------------------------------------------------------------------------------------------------

class Pieces:
    """Text split at the per-clone values: ``parts`` (literal text) around ``refs`` (indexes into the clone's values
    followed by the same values escaped as inside a JSON string written with \\u escapes)."""

    __slots__ = ("parts", "refs", "last")

    def __init__(self, parts: list[str], refs: list[int]):
        self.parts, self.refs, self.last = parts[:-1], refs, parts[-1]

    def render(self, both: list[str]) -> str:
        if not self.refs:
            return self.last
        return "".join(itertools.chain.from_iterable(zip(self.parts, map(both.__getitem__, self.refs),
                                                                        strict=True))) + self.last


class Splitter:
    """Finds the per-clone values (raw, and as escaped inside a JSON string) in a template's texts."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        forms: dict[str, int] = {}
        for i, k in enumerate(keys):
            forms.setdefault(k, i)
            esc = json.dumps(k)[1:-1]
            if esc != k:
                forms.setdefault(esc, i + len(keys))
        self.forms = forms
        self.rx = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))

    def split(self, text: str | None) -> Pieces | None:
        if text is None:
            return None
        parts, refs, pos = [], [], 0
        for m in self.rx.finditer(text):
            parts.append(text[pos:m.start()])
            refs.append(self.forms[m.group()])
            pos = m.end()
        parts.append(text[pos:])
        return Pieces(parts, refs)


def _canonical(value) -> str:
    from engine.events import canonical
    return canonical(value)


# tables copied per case: (table, key column or None, columns that are not copied as they are)
COPIED = ("inbox", "case_parties", "clocks", "timers", "notifications")


class Template:
    """One template case read back as raw rows, split for cloning."""

    def __init__(self, db, case_no: str, ctx: dict):
        self.case_no = case_no
        raw = db.raw
        case = raw.one("cases", "case_no", case_no)
        self.case_cols, case_row = case
        c = dict(zip(self.case_cols, case_row, strict=True))
        self.case_id = c["id"]
        self.day = case_no[6:14]
        self.rows = {t: raw.all(t, "case_id", self.case_id) for t in COPIED + ("events", "documents")}
        from engine.events import stamp
        ev_cols, events = self.rows["events"]
        doc_cols, docs = self.rows["documents"]
        ev = [dict(zip(ev_cols, e, strict=True)) for e in events]
        dc = [dict(zip(doc_cols, d, strict=True)) for d in docs]
        self.docs = dc
        applicant, unit = ctx["applicant"], ctx["unit"]
        texts = [c["state"], c["case_vars"]]
        for t in COPIED:
            cols, rows = self.rows[t]
            texts += [v for r in rows for v in r if isinstance(v, str)]
        for e in ev:
            texts.append(e["payload"])
            texts.append(e["task_id"] or "")
        uuids = sorted(set(itertools.chain.from_iterable(UUID_RX.findall(x) for x in texts if x)))
        # the per-clone values, in this order: see values()
        self.fixed = [case_no, template_project_of(c["title"]), c["project_code"] or "\x00none",
                      unit["name"], unit["address"], unit["leader_name"], applicant["username"],
                      applicant["display_name"],
                      f'"actor_id":{applicant["id"]},"at"', f'"unit_id":{unit["id"]},"unit_name"',
                      f'"issued_by":{applicant["id"]},"kind"']
        self.doc_keys = []
        for d in dc:
            data = json.loads(d["data"]) if isinstance(d["data"], str) else d["data"]
            digest = hashlib.sha256(_canonical(
                {"kind": d["kind"], "number": d["number"], "issued_at": stamp(_aware(d["issued_at"])),
                 "issued_by": d["issued_by"], "task": d["task_id"], "title": d["title"], "data": data}).encode()).hexdigest()
            self.doc_keys += [d["number"], f'"document_id":{d["id"]},"kind"', digest]
        self.uuids = uuids
        self.uuid_at = {u: len(self.fixed) + len(self.doc_keys) + i for i, u in enumerate(uuids)}
        keys = self.fixed + self.doc_keys + uuids
        sp = Splitter(keys)
        self.n_keys = len(keys)
        self.state = sp.split(c["state"])
        self.case_vars = sp.split(c["case_vars"] if isinstance(c["case_vars"], str) else json.dumps(c["case_vars"]))
        self.case_row = c
        # documents: data and the body of their digest (data spliced in)
        self.doc_pieces = []
        for d in dc:
            data = json.loads(d["data"]) if isinstance(d["data"], str) else d["data"]
            body = _canonical({"kind": d["kind"], "number": d["number"], "issued_at": stamp(_aware(d["issued_at"])),
                               "issued_by": d["issued_by"], "task": d["task_id"], "title": d["title"],
                               "data": "@@DATA@@"})
            self.doc_pieces.append((sp.split(_canonical(data)), sp.split(body),
                                    sp.split(d["task_id"]) if d["task_id"] else None, d))
        # events: stored payload = canonical text; hash body with the payload spliced in
        self.ev_pieces = []
        for e in ev:
            payload = json.loads(e["payload"]) if isinstance(e["payload"], str) else e["payload"]
            body = _canonical({"case": case_no, "seq": e["seq"], "type": e["type"], "at": stamp(_aware(e["at"])),
                               "actor": e["actor_name"], "role": e["role"], "task": e["task_id"],
                               "element": e["element_id"], "payload": "@@PAYLOAD@@", "v": 2,
                               "actor_id": e["actor_id"], "task_name": e["task_name"]})
            self.ev_pieces.append((sp.split(_canonical(payload)), sp.split(body), e))
        self.ev_cols = ev_cols
        self.doc_cols = doc_cols
        self.copied = {}
        for t in COPIED:
            cols, rows = self.rows[t]
            self.copied[t] = (cols, [[sp.split(v) if isinstance(v, str) else v for v in r] for r in rows])
        self.applicant_id = applicant["id"]
        self.unit_id = unit["id"]


def template_project_of(title: str) -> str:
    return title


def _aware(v):
    if isinstance(v, str):
        v = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return v.replace(tzinfo=UTC) if v.tzinfo is None else v


class Raw:
    """Raw DB-API access (text values as stored) on one connection of the service's engine."""

    def __init__(self, conn, dialect: str):
        self.conn, self.dialect = conn, dialect
        self.ph = "?" if dialect == "sqlite" else "%s"
        self._cols: dict[str, list[str]] = {}

    def cols(self, table: str) -> list[str]:
        if table not in self._cols:
            cur = self.conn.exec_driver_sql(f"SELECT * FROM {table} WHERE 1=0")
            self._cols[table] = list(cur.keys())
        return self._cols[table]

    def _select(self, table: str) -> str:
        if self.dialect == "sqlite":
            return ", ".join(self.cols(table))
        return ", ".join(f"{c}::text" for c in self.cols(table))   # every value as its text form (COPY takes it)

    INTS = frozenset({"id", "case_id", "seq", "actor_id", "issued_by", "created_by", "unit_id", "version_id",
                      "row_version", "event_seq"})

    def _typed(self, table: str, row) -> tuple:
        """PostgreSQL gives every value as text (for COPY); the integers the cloning computes with as ints."""
        if self.dialect == "sqlite":
            return tuple(row)
        return tuple(int(v) if v is not None and c in self.INTS else v for c, v in zip(self.cols(table), row, strict=True))

    def one(self, table: str, col: str, value) -> tuple[list[str], tuple]:
        row = self.conn.exec_driver_sql(f"SELECT {self._select(table)} FROM {table} WHERE {col} = {self.ph}",
                                        (value,)).first()
        return self.cols(table), self._typed(table, row)

    def all(self, table: str, col: str, value) -> tuple[list[str], list[tuple]]:
        order = {"events": " ORDER BY events.seq", "documents": " ORDER BY documents.id"}.get(table, "")
        rows = self.conn.exec_driver_sql(f"SELECT {self._select(table)} FROM {table} WHERE {col} = {self.ph}{order}",
                                         (value,)).all()
        return self.cols(table), [self._typed(table, r) for r in rows]

    def insert(self, table: str, cols: list[str], rows: list[list]) -> None:
        if not rows:
            return
        if self.dialect == "postgresql":
            dbapi = self.conn.connection.driver_connection
            with dbapi.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row([None if v is None else str(v) for v in r])
            return
        self.conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                  [tuple(r) for r in rows])

    def max_id(self, table: str, col: str = "id") -> int:
        return self.conn.exec_driver_sql(f"SELECT coalesce(max({col}), 0) FROM {table}").scalar()


class _RawDb:
    def __init__(self, raw):
        self.raw = raw


def _bool(v, dialect):
    return v


def clone_units(raw: Raw, count: int, rng: random.Random, pw_hash: str) -> list[dict]:
    """``count`` new approved units, each with an applicant account ``app<unit id>`` (its administrator)."""
    from bench_search import unit_rows
    start = raw.max_id("units") + 1
    have = {r[0] for r in raw.conn.exec_driver_sql("SELECT name FROM units").all()}
    units = [u for u in unit_rows(count + len(have), rng, start) if u["name"] not in have][:count]
    for i, u in enumerate(units):
        u["id"] = start + i
        u["address"] = f"武陟县{rng.choice(['产业集聚区', '詹店镇', '木城街道', '龙源街道', '西陶镇'])}{rng.randint(1, 300)}号"
        u["leader_name"] = rng.choice("王李张刘陈杨赵黄周吴") + rng.choice(["建国", "志强", "秀英", "海峰", "丽华", "明", "静",
                                                                   "伟"])
        u["postcode"] = "454950"
    cols = ["id", "name", "credit_code", "address", "postcode", "leader_name", "status"]
    raw.insert("units", cols, [[u[c] for c in cols] for u in units])
    uid = raw.max_id("users") + 1
    created = "2026-01-01 00:00:00.000000" if raw.dialect == "sqlite" else "2026-01-01 00:00:00+00"
    t, f = (1, 0) if raw.dialect == "sqlite" else ("t", "f")
    ucols = ["id", "username", "password_hash", "display_name", "roles", "unit_id", "active", "unit_admin",
             "must_change_password", "created_at"]
    users = []
    for i, u in enumerate(units):
        u["user_id"] = uid + i
        u["username"] = f"app{u['id']}"
        u["display_name"] = f"{u['leader_name']}（{u['name'][:6]}）"
        users.append([uid + i, u["username"], pw_hash, u["display_name"], "applicant", u["id"], t, t, f, created])
    raw.insert("users", ucols, users)
    return units


def clone(svc, template_nos: list[str], count: int, rng: random.Random, batch: int = 1000, echo=print) -> dict:
    """Add ``count`` clones of the templates (round robin); see the module docstring."""
    from bench_search import PLACES, PRODUCTS, PROJECTS
    from werkzeug.security import generate_password_hash

    from engine.demo import DEMO_PASSWORD
    if count <= 0 or not template_nos:
        return {"clones": 0}
    timing = {"split": 0.0, "render": 0.0, "insert": 0.0}
    t0 = time.perf_counter()
    with svc.db.unit_of_work() as uow:
        raw = Raw(uow.conn, uow.repo.dialect)
        ctx_user = raw.conn.exec_driver_sql(
            f"SELECT id, username, display_name, unit_id FROM users WHERE username = {raw.ph}",
            (TEMPLATE_APPLICANT,)).first()
        unit = raw.conn.exec_driver_sql(
            f"SELECT id, name, address, leader_name FROM units WHERE id = {raw.ph}", (ctx_user[3],)).first()
        ctx = {"applicant": {"id": ctx_user[0], "username": ctx_user[1], "display_name": ctx_user[2]},
               "unit": {"id": unit[0], "name": unit[1], "address": unit[2], "leader_name": unit[3]}}
        db = _RawDb(raw)
        templates = [Template(db, no, ctx) for no in template_nos]
        timing["split"] = time.perf_counter() - t0
        units = clone_units(raw, max(50, min(3000, count // 20)), rng,
                            generate_password_hash(DEMO_PASSWORD, method=FAST_HASH))
        weights = [rng.paretovariate(1.2) for _ in units]
        counters = {(k, p): v for k, p, v in raw.conn.exec_driver_sql("SELECT kind, period, value FROM counters").all()}
        ids = {t: raw.max_id(t) for t in ("cases", "events", "documents", "clocks", "timers", "notifications")}
        uow.commit()

    code_seq = itertools.count(rng.randint(1000, 5000))
    made = 0
    while made < count:
        n = min(batch, count - made)
        t1 = time.perf_counter()
        out: dict[str, list] = {t: [] for t in ("cases", "events", "documents") + COPIED}
        search = []
        for k in range(n):
            tpl = templates[(made + k) % len(templates)]
            u = rng.choices(units, weights)[0]
            day = tpl.day
            counters[("case", day)] = seq = counters[("case", day)] + 1
            case_no = f"410823{day}{seq:04d}"
            title = rng.choice(PROJECTS).format(n=rng.randint(1, 50), p=rng.choice(PRODUCTS), place=rng.choice(PLACES))
            code = f"20{rng.randint(24, 26)}-410823-{rng.randint(10, 99)}-03-{next(code_seq):06d}"
            ids["cases"] += 1
            case_id = ids["cases"]
            values = [case_no, title, code, u["name"], u["address"], u["leader_name"], u["username"],
                      u["display_name"], f'"actor_id":{u["user_id"]},"at"', f'"unit_id":{u["id"]},"unit_name"',
                      f'"issued_by":{u["user_id"]},"kind"']
            values += [""] * (len(tpl.doc_keys))
            uuids = [new_uuid(rng) for _ in tpl.uuids]
            both = values + uuids + [json.dumps(v)[1:-1] for v in values] + uuids   # raw, then escaped (\\u)
            nk = len(values) + len(uuids)
            values += uuids

            def put(i: int, v: str, both=both, nk=nk) -> None:
                both[i] = v
                both[i + nk] = json.dumps(v)[1:-1]
            # documents first: their numbers, ids and digests go into the events
            docs = []
            base = len(tpl.fixed)
            for j, (data_p, body_p, task_p, d) in enumerate(tpl.doc_pieces):
                year = d["number"].split("〔")[1][:4]
                counters[(d["kind"], year)] = dn = counters[(d["kind"], year)] + 1
                number = svc.current.manifest["numbers"][d["kind"]]["format"].format(
                    year=int(year), seq=dn, date=None)
                ids["documents"] += 1
                put(base + 3 * j, number)
                put(base + 3 * j + 1, f'"document_id":{ids["documents"]},"kind"')
                data = data_p.render(both)
                body = body_p.render(both).replace('"@@DATA@@"', data)
                digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
                put(base + 3 * j + 2, digest)
                docs.append((ids["documents"], number, data, task_p.render(both) if task_p else None, d))
            for doc_id, number, data, task_id, d in docs:
                row = dict(d, id=doc_id, case_id=case_id, number=number, data=data, task_id=task_id,
                           issued_by=u["user_id"] if d["issued_by"] == tpl.applicant_id else d["issued_by"])
                out["documents"].append([row[c] for c in tpl.doc_cols])
            # events, re-chained
            prev = ""
            for payload_p, body_p, e in tpl.ev_pieces:
                payload = payload_p.render(both)
                body = body_p.render(both).replace('"@@PAYLOAD@@"', payload)
                h = hashlib.sha256((prev + "\n" + body).encode("utf-8")).hexdigest()
                ids["events"] += 1
                applicant_event = e["actor_id"] == tpl.applicant_id
                row = dict(e, id=ids["events"], case_id=case_id, payload=payload, prev_hash=prev, hash=h,
                           task_id=values[tpl.uuid_at[e["task_id"]]] if e["task_id"] else None,
                           actor_id=u["user_id"] if applicant_event else e["actor_id"],
                           actor_name=u["username"] if applicant_event else e["actor_name"])
                out["events"].append([row[c] for c in tpl.ev_cols])
                prev = h
            c = tpl.case_row
            row = dict(c, id=case_id, case_no=case_no, title=title, unit_id=u["id"], unit_name=u["name"],
                       project_code=code if c["project_code"] else None,
                       created_by=u["user_id"] if c["created_by"] == tpl.applicant_id else c["created_by"],
                       state=tpl.state.render(both), case_vars=tpl.case_vars.render(both),
                       last_hash=prev)
            out["cases"].append([row[col] for col in tpl.case_cols])
            search.append({"case_id": case_id, "case_no": case_no, "unit_name": u["name"],
                           "credit_code": u["credit_code"], "title": title})
            for t in COPIED:
                cols, rows = tpl.copied[t]
                for r in rows:
                    new = []
                    for col, v in zip(cols, r, strict=True):
                        if col == "case_id":
                            v = case_id
                        elif col == "id":
                            ids[t] += 1
                            v = ids[t]
                        elif col == "unit_id" and v is not None:
                            v = u["id"]
                        elif col == "idem_key" and v is not None:     # a notification's own key (unique)
                            v = new_uuid(rng).replace("-", "")
                        elif isinstance(v, Pieces):
                            v = v.render(both)
                        new.append(v)
                    out[t].append(new)
        t2 = time.perf_counter()
        timing["render"] += t2 - t1
        with svc.db.unit_of_work() as uow:
            raw = Raw(uow.conn, uow.repo.dialect)
            tpl0 = templates[0]
            raw.insert("cases", tpl0.case_cols, out["cases"])
            raw.insert("events", tpl0.ev_cols, out["events"])
            raw.insert("documents", tpl0.doc_cols, out["documents"])
            for t in COPIED:
                raw.insert(t, raw.cols(t), out[t])
            uow.repo.index_cases(search)
            uow.commit()
        timing["insert"] += time.perf_counter() - t2
        made += n
        if echo and (made // batch) % 10 == 0:
            rate = made / (time.perf_counter() - t0)
            echo(f"  clones: {made}/{count} ({rate:.0f} cases/s)")
    with svc.db.unit_of_work() as uow:
        raw = Raw(uow.conn, uow.repo.dialect)
        for (kind, period), value in counters.items():
            raw.conn.exec_driver_sql(f"UPDATE counters SET value = {raw.ph} WHERE kind = {raw.ph} AND period = {raw.ph}",
                                     (value, kind, period))
        if raw.dialect == "postgresql":
            for t in ("units", "users", "cases", "events", "documents", "clocks", "timers", "notifications"):
                raw.conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                                         f"(SELECT coalesce(max(id), 1) FROM {t}))")
        uow.commit()
    return {"clones": count, "units": len(units), "seconds": time.perf_counter() - t0, **timing}


# ---- the whole preload ------------------------------------------------------------------------------------------

def open_service(url: str):
    from engine import processes
    from engine.db import Database, normalize_url
    from engine.demo import load_demo
    from engine.migrate import upgrade
    from engine.services import Bangban
    upgrade(normalize_url(url))
    db = Database(url)
    svc = Bangban.open(db, processes.read_dir(ROOT / "processes"))
    load_demo(db, svc.current.catalogue, hash_method=FAST_HASH)
    with db.unit_of_work() as uow:     # the templates' own unit and applicant: the demo units keep no preloaded case
        if uow.repo.user_by_username(TEMPLATE_APPLICANT) is None:
            from werkzeug.security import generate_password_hash

            from engine.demo import DEMO_PASSWORD
            unit_id = uow.repo.insert_unit(**TEMPLATE_UNIT)
            uow.repo.insert_user(username=TEMPLATE_APPLICANT, password_hash=generate_password_hash(
                DEMO_PASSWORD, method=FAST_HASH), display_name="模板经办人（预置）", roles="applicant", department=None,
                unit_id=unit_id, active=True, unit_admin=True)
        uow.commit()
    return svc


def preload(url: str, cases: int, templates: int = 200, seed: int = 14, echo=print,
            stages: list[str] | None = None) -> dict:
    """Bring the database at ``url`` (migrated, demo users loaded) to ``cases`` more cases: ``templates`` of them
    through the engine, the rest cloned. Returns counts and timings."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    svc = open_service(url)
    try:
        k = min(templates, cases)
        if echo:
            echo(f"preload {cases} cases: {k} templates through the engine, {cases - k} clones")
        nos = make_templates(svc, k, rng, echo, stages) if k else []
        t1 = time.perf_counter()
        if svc.db.engine.dialect.name == "postgresql":
            with svc.db.unit_of_work() as uow:
                uow.conn.exec_driver_sql("ANALYZE")
                uow.commit()
        result = clone(svc, nos, cases - k, rng, echo=echo)
        if svc.db.engine.dialect.name == "postgresql" and cases > k:
            with svc.db.unit_of_work() as uow:
                uow.conn.exec_driver_sql("ANALYZE")
                uow.commit()
        t2 = time.perf_counter()
        out = {"cases": cases, "templates": k, "template_seconds": t1 - t0, "clone_seconds": t2 - t1,
               "total_seconds": t2 - t0, "template_case_numbers": nos, **result}
        out["clone_rate"] = (cases - k) / (t2 - t1) if cases > k else None
        if echo:
            echo(f"done: {k} templates in {t1 - t0:.1f} s, {cases - k} clones in {t2 - t1:.1f} s"
                 + (f" ({out['clone_rate']:.0f} cases/s)" if out["clone_rate"] else "")
                 + f"; total {t2 - t0:.1f} s")
        return out
    finally:
        svc.db.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", required=True, help="sqlite:///<file> or a PostgreSQL URL (migrated if needed)")
    ap.add_argument("--cases", type=int, required=True, help="how many cases to add")
    ap.add_argument("--templates", type=int, default=200, help="cases driven through the engine (default 200)")
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args(argv)
    os.environ.setdefault("BANGBAN_ARGON2_TESTING", "1")
    out = preload(args.database_url, args.cases, args.templates, args.seed)
    print(json.dumps({k: v for k, v in out.items() if k != "template_case_numbers"}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
