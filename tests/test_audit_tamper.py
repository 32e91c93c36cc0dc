"""An insider with database access (triggers dropped first, as an attacker with the file or a superuser would) tries
each tampering of issue 12 against `bangban audit verify`; each is caught and names the case and, where there is one,
the event. Resealed chains (hashes recomputed) are caught here when replay can tell (authority, time, clock events,
the case row, documents); pure data forgeries resealed need the anchored digest (tests/test_digest.py)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text, update

from engine import caches
from engine.audit import _aware
from engine.db import Database
from engine.events import event_hash
from engine.models import Case, Event
from engine.services import Bangban
from tests import helpers as h
from tests.conftest import PG_URL, ROOT

BANGBAN = str(Path(sys.executable).parent / "bangban")
EVENTS, CASES = Event.__table__, Case.__table__


# ---- the attacker's tools -------------------------------------------------------------------------------------
def sql(db: Database, statement: str, **params) -> None:
    with db.engine.begin() as c:
        c.execute(text(statement), params)


def set_column(db: Database, table, row_id: int, **values) -> None:
    """An UPDATE through SQLAlchemy's types (times as the database stores them)."""
    with db.engine.begin() as c:
        c.execute(update(table).where(table.c.id == row_id).values(**values))


def case_id(svc: Bangban, case_no: str) -> int:
    return h.case_row(svc, case_no).id


def reseal(db: Database, case_no: str) -> None:
    """Recompute every hash of a case's chain and its last hash, as someone who read the code would."""
    with db.engine.begin() as c:
        cid = c.execute(text("SELECT id FROM cases WHERE case_no = :n"), {"n": case_no}).scalar_one()
        rows = c.execute(text("SELECT * FROM events WHERE case_id = :c ORDER BY seq"), {"c": cid}).mappings().all()
        prev = ""
        for r in rows:
            payload = r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"])
            new = event_hash(prev, case_no, r["seq"], r["type"], _aware(r["at"]), r["actor_name"], r["role"],
                             r["task_id"], r["element_id"], payload, r["actor_id"], r["task_name"])
            c.execute(text("UPDATE events SET prev_hash = :p, hash = :h WHERE id = :i"), {"p": prev, "h": new, "i": r["id"]})
            prev = new
        c.execute(text("UPDATE cases SET last_hash = :h, event_seq = :n WHERE id = :c"),
                  {"h": prev, "n": len(rows), "c": cid})


def fresh(db: Database, process_files) -> Bangban:
    """The auditor's own process: nothing cached from the process that ran the cases."""
    caches.clear_all()
    return Bangban.open_latest(db, process_files)


def verdict(db: Database, process_files, case_no: str) -> dict:
    return fresh(db, process_files).audit_case(case_no)


def completed_case(svc: Bangban) -> str:
    case_no = h.start(svc)
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, ["hp", "xf"])
    h.approve_items(svc, case_no, ["hp", "xf"])
    h.collect_and_deliver(svc, case_no)
    return case_no


def event_of(svc: Bangban, case_no: str, type_: str, task_name: str | None = None, title: str | None = None):
    return next(e for e in h.events(svc, case_no) if e.type == type_
                and (task_name is None or e.task_name == task_name)
                and (title is None or (e.payload or {}).get("title") == title))


@pytest.fixture
def cases(svc, db, process_files):
    done, running = completed_case(svc), h.start(svc)
    h.accept_and_commission(svc, running)
    assert verdict(db, process_files, done)["ok"] and verdict(db, process_files, running)["ok"]
    h.drop_append_only_guards(db.engine)
    return done, running


# What an auditor must never read in a verdict (it is shown on the audit page too): an event type, a field or status
# code, a Python value or exception name.
CODES = re.compile(r"task_|document_|clock_|case_|status_|_at\b|_user|_id\b|_name|_seq|\b(None|True|False|null|true|false|"
                   r"status|stage|title|warning|unit|actor|role|completed|terminated|active|green|red|yellow)\b|Error|"
                   r"\b[A-Z][A-Za-z]*_[A-Za-z]|[{\[]")       # element ids (Task_Handle), JSON or list reprs


def plain_chinese(text: str) -> None:
    assert not CODES.search(text), text


def caught(db, process_files, case_no: str, *words: str, seq: int | None = None) -> dict:
    result = verdict(db, process_files, case_no)
    assert not result["ok"], result
    assert result["case_no"] == case_no
    for w in words:
        assert w in result["text"], result["text"]
    if seq is not None:
        assert result["divergence"]["seq"] == seq, result
    plain_chinese(result["text"])
    return result


# ---- deleted records ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", [0, 1], ids=["completed", "running"])
def test_all_events_of_a_case_deleted(svc, db, process_files, cases, which):
    case_no = cases[which]
    sql(db, "DELETE FROM events WHERE case_id = :c", c=case_id(svc, case_no))
    caught(db, process_files, case_no, "没有任何事件记录")


def test_a_whole_case_deleted_leaves_a_gap_in_the_numbers(svc, db, process_files, cases):
    done, running = cases
    cid = case_id(svc, running)
    for statement in h.delete_whole_case_statements(db.engine.dialect.name):
        sql(db, statement, cid=cid)
    gaps = fresh(db, process_files).audit_numbering()
    assert any("办件编号缺号" in g and running in g for g in gaps), gaps


def test_a_document_deleted_is_caught_in_its_case_and_in_the_numbers(svc, db, process_files, cases):
    done, _ = cases
    number = h.documents(svc, done)[-1][1]
    sql(db, "DELETE FROM documents WHERE number = :n", n=number)
    caught(db, process_files, done, number, "已不存在")
    assert any(number in g and "缺号" in g for g in fresh(db, process_files).audit_numbering())


# ---- columns outside the old hash ----------------------------------------------------------------------------------
def test_the_actor_id_is_covered_by_the_hash(svc, db, process_files, cases):
    done, _ = cases
    e = event_of(svc, done, "task_completed", "部门办理", "环评")
    other = h.events(svc, done)[0].actor_id
    sql(db, "UPDATE events SET actor_id = :a WHERE id = :i", a=other, i=e.id)
    caught(db, process_files, done, "哈希不符", seq=e.seq)


def test_the_task_name_is_covered_by_the_hash(svc, db, process_files, cases):
    done, _ = cases
    e = event_of(svc, done, "task_completed", "部门办理", "环评")
    sql(db, "UPDATE events SET task_name = '不予许可' WHERE id = :i", i=e.id)
    caught(db, process_files, done, "哈希不符", seq=e.seq)


# ---- resealed forgeries that replay catches ------------------------------------------------------------------------
def test_an_approval_reattributed_to_another_department_is_refused(svc, db, process_files, cases):
    done, _ = cases
    e = event_of(svc, done, "task_completed", "部门办理", "环评")
    with db.engine.begin() as c:
        other = c.execute(text("SELECT id, username FROM users WHERE username = 'zb_zjj'")).one()
    payload = dict(e.payload, actor_department="zjj")
    sql(db, "UPDATE events SET actor_id = :a, actor_name = :n, payload = :p WHERE id = :i", a=other.id,
        n=other.username, p=json.dumps(payload, ensure_ascii=False), i=e.id)
    reseal(db, done)
    caught(db, process_files, done, "无权办理", "待办属于焦作市生态环境局武陟分局，办理人属于县住房和城乡建设局", seq=e.seq)


def test_the_actor_name_swapped_for_another_account_is_refused(svc, db, process_files, cases):
    done, _ = cases
    e = event_of(svc, done, "task_completed", "部门办理", "环评")
    sql(db, "UPDATE events SET actor_name = 'zb_zjj' WHERE id = :i", i=e.id)
    reseal(db, done)
    caught(db, process_files, done, "办理人的账号与记录不符", seq=e.seq)


def test_a_role_changed_is_refused(svc, db, process_files, cases):
    done, _ = cases
    e = event_of(svc, done, "task_completed", "受理审核")
    sql(db, "UPDATE events SET role = 'supervisor' WHERE id = :i", i=e.id)
    reseal(db, done)
    caught(db, process_files, done, "角色", seq=e.seq)


def test_a_step_moved_before_the_one_it_follows(svc, db, process_files, cases):
    done, _ = cases
    e = event_of(svc, done, "task_completed", "统一送达")
    set_column(db, EVENTS, e.id, at=_aware(h.events(svc, done)[0].at) - timedelta(days=30))
    reseal(db, done)
    caught(db, process_files, done, "事件时间早于", seq=e.seq)


def test_a_forged_approval_appended_is_refused(svc, db, process_files, cases):
    """A 安评 approval the case never asked for, appended after the 环评 one and the chain resealed."""
    done, _ = cases
    e = event_of(svc, done, "task_completed", "部门办理", "环评")
    last = h.events(svc, done)[-1]
    payload = dict(e.payload, title="安评")
    with db.engine.begin() as c:
        c.execute(insert(EVENTS).values(case_id=last.case_id, seq=last.seq + 1, type="task_completed", at=last.at,
                                        actor_id=e.actor_id, actor_name=e.actor_name, role=e.role, task_id=e.task_id,
                                        element_id=e.element_id, task_name=e.task_name, payload=payload,
                                        prev_hash="", hash=""))
    reseal(db, done)
    caught(db, process_files, done, "重放时找不到这项待办", seq=last.seq + 1)


def test_a_forged_clock_pause_is_refused(svc, db, process_files, cases):
    done, _ = cases
    last = h.events(svc, done)[-1]
    with db.engine.begin() as c:
        c.execute(insert(EVENTS).values(case_id=last.case_id, seq=last.seq + 1, type="clock_paused", at=last.at,
                                        payload={"clock": "hp", "reason": "补正", "at": "2026-03-05T01:00:00+00:00"},
                                        prev_hash="", hash=""))
    reseal(db, done)
    caught(db, process_files, done, "不是办理步骤产生的", seq=last.seq + 1)


# ---- the case row against the replay -------------------------------------------------------------------------------
@pytest.mark.parametrize(("column", "value", "words"), [
    ("status", "'terminated'", "办件记录为 已终止，事件重放得到 办理中"),
    ("stage", "'受理'", "办理阶段"),
    ("title", "'另一个项目'", "项目名称"),
    ("lead_user", "'agent2'", "牵头代办员"),
    ("unit_id", "(SELECT id FROM units WHERE name <> cases.unit_name ORDER BY id LIMIT 1)", "申请单位"),
    ("unit_name", "'另一家公司'", "申请单位名称"),
    ("created_at", "created_at", "提交时间"),
    ("warning", "'red'", "办件记录为 红牌"),
    ("due_date", "'2030-01-01'", "办件记录为 2030-01-01"),
    ("event_seq", "event_seq - 1", "事件数"),
])
def test_a_case_row_field_changed(svc, db, process_files, cases, column, value, words):
    done, running = cases
    target = running if column in ("warning", "lead_user", "stage", "due_date") else done
    if column == "created_at":
        first = h.events(svc, target)[0]
        set_column(db, CASES, case_id(svc, target), created_at=_aware(first.at) + timedelta(days=1))
    else:
        sql(db, f"UPDATE cases SET {column} = {value} WHERE case_no = :n", n=target)
    caught(db, process_files, target, "事件数" if column == "event_seq" else words)


def test_the_pinned_process_files_edited(svc, db, process_files, cases):
    done, _ = cases
    with db.engine.begin() as c:
        row = c.execute(text("SELECT id, files FROM process_versions ORDER BY id LIMIT 1")).one()
        files = row.files if isinstance(row.files, dict) else json.loads(row.files)
        files["bangban.json"] = files["bangban.json"].replace("帮办代办", "帮办代办（改）", 1)
        c.execute(text("UPDATE process_versions SET files = :f WHERE id = :i"),
                  {"f": json.dumps(files, ensure_ascii=False), "i": row.id})
    caught(db, process_files, done, "流程文件被改动")


def test_pinned_process_files_that_no_longer_load_are_one_line_each(svc, db, db_url, process_files, cases):
    """The latest version's files edited into something that does not load: verify still runs (no traceback), each
    case pinned to it fails naming it, the version is named, and the exit status is non-zero."""
    done, running = cases
    with db.engine.begin() as c:
        row = c.execute(text("SELECT id, files FROM process_versions ORDER BY id LIMIT 1")).one()
        files = row.files if isinstance(row.files, dict) else json.loads(row.files)
        files["bangban.json"] = "{}"
        c.execute(text("UPDATE process_versions SET files = :f WHERE id = :i"),
                  {"f": json.dumps(files, ensure_ascii=False), "i": row.id})
    out = run_cli(db_url, "audit", "verify", "--all")
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr[-3000:]
    for case_no in (done, running):
        assert f"不通过 {case_no}：" in out.stdout and "流程文件被改动" in out.stdout, out.stdout
    assert re.search(r"不通过 流程版本（.*发布）的文件无法载入", out.stdout), out.stdout
    plain_chinese(out.stdout)
    out = run_cli(db_url, "audit", "verify", done)
    assert out.returncode == 1 and f"不通过 {done}：" in out.stdout and "Traceback" not in out.stderr, out.stderr[-3000:]


@pytest.mark.parametrize("edit", ["data", "number"])
def test_an_issued_document_edited(svc, db, process_files, cases, edit):
    done, _ = cases
    kind, number, _title = h.documents(svc, done)[-1]
    if edit == "data":
        with db.engine.begin() as c:
            data = c.execute(text("SELECT data FROM documents WHERE number = :n"), {"n": number}).scalar_one()
            data = data if isinstance(data, dict) else json.loads(data)
            data["project_name"] = "改过的项目名"
            c.execute(text("UPDATE documents SET data = :d WHERE number = :n"),
                      {"d": json.dumps(data, ensure_ascii=False), "n": number})
        caught(db, process_files, done, number, "内容与签发时的哈希不符")
    else:
        sql(db, "UPDATE documents SET number = :x WHERE number = :n", x=number + "改", n=number)
        caught(db, process_files, done, "编号与签发记录不符")


# ---- never a traceback ----------------------------------------------------------------------------------------------
def run_cli(db_url: str, *args: str) -> subprocess.CompletedProcess:
    import os
    env = dict(os.environ, DATABASE_URL=db_url)
    return subprocess.run([BANGBAN, *args], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_a_corrupt_case_an_unknown_number_and_a_bad_dossier_are_one_chinese_line_each(svc, db, db_url, process_files,
                                                                                       cases, tmp_path):
    done, running = cases
    sql(db, "UPDATE cases SET state = 'not json {' WHERE case_no = :n", n=running)
    out = run_cli(db_url, "audit", "verify", "--all")
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr, out.stderr[-2000:]
    assert f"不通过 {running}：" in out.stdout and "记录已损坏" in out.stdout
    plain_chinese(out.stdout)
    assert "共核验 2 件，通过 1 件，不通过 1 件" in out.stdout, out.stdout       # it went on with the other case
    out = run_cli(db_url, "audit", "verify", "123", done)
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr
    assert "不通过 123：办件不存在" in out.stdout and "通过 1 件" in out.stdout
    for bad in ({"format": "bangban-dossier/1"}, {"format": "bangban-dossier/1", "case": {"case_no": "X"}},
                {"format": "bangban-dossier/1", "case": {"case_no": "X"}, "events": []}, [1, 2]):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad), encoding="utf-8")
        out = run_cli(db_url, "audit", "verify", "--file", str(path))
        assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr, out.stderr[-2000:]
        assert out.stdout.strip() and "\u4e00" <= out.stdout.split("：", 1)[1][0] <= "\u9fff", out.stdout
    # not a dossier at all: not JSON, not UTF-8, no such file — one Chinese line naming the file
    (tmp_path / "text.json").write_text("not json {", encoding="utf-8")
    (tmp_path / "gbk.json").write_bytes("档案".encode("gbk"))
    for name, words in (("text.json", "第 1 行第 1 列无法解析"), ("gbk.json", "不是 UTF-8 编码"), ("none.json", "文件不存在")):
        out = run_cli(db_url, "audit", "verify", "--file", str(tmp_path / name))
        assert out.returncode != 0 and str(tmp_path / name) in out.stdout + out.stderr, out.stdout + out.stderr
        assert words in out.stdout + out.stderr, out.stdout + out.stderr
        assert not re.search(r"Traceback|Error|Usage|Expecting|codec", out.stdout + out.stderr), out.stdout + out.stderr


def test_an_untampered_database_passes_with_every_check(svc, db, db_url, process_files):
    completed_case(svc)
    h.start(svc)
    out = run_cli(db_url, "audit", "verify", "--all")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "不通过 0 件" in out.stdout and "问题" not in out.stdout


def test_a_calendar_day_edited_in_the_tables_directly(svc, db, db_url, process_files):
    assert fresh(db, process_files).audit_registers() == []
    sql(db, "INSERT INTO calendar_days (day, year, kind, name) VALUES (:d, 2026, 'rest', '私改')", d="2026-12-25")
    assert any("工作日历与其变更记录不符" in p for p in fresh(db, process_files).audit_registers())
    out = run_cli(db_url, "audit", "verify", "--all")
    assert out.returncode == 1 and "不通过 工作日历与其变更记录不符" in out.stdout, out.stdout


@pytest.mark.skipif(bool(PG_URL), reason="SQLite file tampering")
def test_sqlite_triggers_dropped_do_not_help_an_attacker(svc, db, process_files, cases):
    done, _ = cases
    e = event_of(svc, done, "task_completed", "统一送达")
    sql(db, "UPDATE events SET payload = :p WHERE id = :i", p=json.dumps({"form": {}}), i=e.id)
    caught(db, process_files, done, "哈希不符", seq=e.seq)
