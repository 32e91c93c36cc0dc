"""bench/preload.py makes a valid database: templates driven through the engine, clones with fresh identities that
pass ``audit verify``, show in the inboxes, can be stepped, and leave numbering where the next case continues it."""
from __future__ import annotations

import sys
from datetime import timedelta

import pytest

from engine import caches, processes
from engine.clock import clock
from engine.db import Database
from engine.services import Bangban
from tests.conftest import ROOT, actor
from tests.helpers import application

sys.path.insert(0, str(ROOT / "bench"))
import preload  # noqa: E402

TEMPLATES = list(preload.STAGES)          # one template of each stage
CASES = 3 * len(TEMPLATES)                # and two clones of each


@pytest.fixture
def loaded(db_url):
    out = preload.preload(db_url, CASES, templates=len(TEMPLATES), seed=5, echo=None, stages=TEMPLATES)
    caches.clear_all()
    database = Database(db_url)
    svc = Bangban.open_latest(database, processes.read_dir(ROOT / "processes"))
    yield svc, out
    database.dispose()


def _cases(svc):
    with svc.db.unit_of_work(write=False) as uow:
        return uow.conn.exec_driver_sql("SELECT id, case_no, title, unit_id, unit_name, status, created_at FROM cases "
                                        "ORDER BY id").all()


def test_preloaded_cases_verify_and_number_without_gaps(loaded):
    svc, out = loaded
    rows = _cases(svc)
    assert len(rows) == CASES and out["clones"] == CASES - len(TEMPLATES)
    assert len({r.case_no for r in rows}) == CASES
    templates = set(out["template_case_numbers"])
    clones = [r for r in rows if r.case_no not in templates]
    assert len(clones) == CASES - len(TEMPLATES)
    assert len({r.unit_id for r in rows}) > 2                 # clones belong to other units than the demo's
    assert not any(r.title.startswith("模板项目") for r in clones)
    assert {r.status for r in rows} >= {"active", "completed", "refused", "terminated"}
    failed = [(no, r["text"]) for no in svc.audit_case_numbers() if not (r := svc.audit_case(no))["ok"]]
    assert failed == []
    assert svc.audit_registers() == []                        # case and document numbers: no gaps, none beyond


def test_cloned_tasks_are_listed_and_can_be_completed(loaded):
    svc, out = loaded
    templates = set(out["template_case_numbers"])
    agent = actor(svc, "agent1")
    with svc.db.unit_of_work(write=False) as uow:
        open_review = uow.conn.exec_driver_sql(
            "SELECT c.case_no, i.task_id, c.unit_id FROM inbox i JOIN cases c ON c.id = i.case_id "
            "WHERE i.element_id = 'Task_Review' ORDER BY c.id").all()
        template_tasks = {r.task_id for r in open_review if r.case_no in templates}
    clone = next(r for r in open_review if r.case_no not in templates)
    assert clone.task_id not in template_tasks                # a fresh task UUID
    page = svc.inbox_page(agent, limit=200)
    listed = {t["task_id"] for t in page["tasks"]}
    assert clone.task_id in listed
    svc.complete_task(agent, clone.task_id, {"review_decision": "受理", "authorization_checked": True})
    view = svc.get_case(agent, clone.case_no)
    assert any(t["name"] in ("材料交接并签订委托书", "核实重点认定", "指派项目首席服务员") for t in view["open_tasks"])
    assert svc.audit_case(clone.case_no)["ok"], svc.audit_case(clone.case_no)["text"]
    # the clone's unit has its own applicant account, who sees the case
    with svc.db.unit_of_work(write=False) as uow:
        username = uow.conn.exec_driver_sql(f"SELECT username FROM users WHERE unit_id = {int(clone.unit_id)} "
                                            "AND roles = 'applicant'").scalar()
    mine = svc.search_cases(actor(svc, username))
    assert clone.case_no in {c["case_no"] for c in mine["cases"]}


def test_next_case_number_follows_the_clones(loaded):
    svc, out = loaded
    rows = _cases(svc)
    day = max(out["template_case_numbers"])[6:14]             # a template's day, with its clones
    on_day = sorted(r.case_no for r in rows if r.case_no[6:14] == day)
    assert len(on_day) >= 3
    first = min((r for r in rows if r.case_no[6:14] == day), key=lambda r: r.case_no)
    created = first.created_at if not isinstance(first.created_at, str) else None
    from datetime import UTC, datetime
    at = created or datetime.fromisoformat(first.created_at).replace(tzinfo=UTC)
    clock.set((at if at.tzinfo else at.replace(tzinfo=UTC)) + timedelta(minutes=1))
    new = svc.start_case(actor(svc, "huarui"), "bangban_case", application(project_name="预置之后的新项目")).case_no
    assert new[6:14] == day and new not in on_day
    assert int(new[-4:]) == int(on_day[-1][-4:]) + 1
    assert svc.audit_registers() == []
    assert svc.audit_case(new)["ok"]
