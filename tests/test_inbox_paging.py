"""The inbox that never hides work: urgency order (red, yellow, green, no clock; by due date, then arrival) at any
date, cursor paging that returns every task exactly once, the total, every filter, the access rules of
``access.may_act`` unchanged, the projection of the clocks onto the inbox rows, HTTP per role and bad parameters."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bench.inbox_preload import day_start, insert_tasks, preload_inbox
from engine import access
from engine.deadlines import local_date
from engine.models import Clock, InboxTask, User
from engine.usecases.step import _urgency
from tests.conftest import actor
from tests.helpers import (
    START,
    accept,
    accept_and_commission,
    complete,
    dispatch,
    freeze_clock,
    needs_correction,
    start,
    supplement,
)
from tests.webclient import api_login, assert_json_error, html_login
from web import create_app

TODAY = local_date(START)   # 2026-03-02 (a Monday)


@pytest.fixture
def app(svc):
    return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})


def d(n: int) -> date:
    return TODAY + timedelta(days=n)


def at(n: int) -> datetime:
    return START - timedelta(days=30) + timedelta(minutes=n)


def every_page(svc, username: str, limit: int = 50, **filters) -> tuple[list[dict], list[int]]:
    """All tasks by following the cursor, and the total each page reported."""
    who = actor(svc, username)
    out, totals, after = [], [], None
    for _ in range(1000):
        page = svc.inbox_page(who, limit=limit, after=after, **filters)
        assert len(page["tasks"]) <= limit
        out += page["tasks"]
        totals.append(page["total"])
        after = page["next"]
        if after is None:
            return out, totals
    raise AssertionError("翻页没有结束")


def ids(tasks) -> list[str]:
    return [t["task_id"] for t in tasks]


def all_rows(svc) -> list:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.conn.execute(select(InboxTask.__table__)).all()


def _aware(v):
    return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v


def expected_order(rows, now: datetime) -> list[str]:
    """The urgency order computed here in Python from the rows, as the specification states it."""
    today = local_date(now)

    def key(r):
        if r.due_date is None:
            rank = 3
        elif r.due_date < today:
            rank = 0
        elif _aware(r.warn_at) <= now:
            rank = 1
        else:
            rank = 2
        return (rank, r.due_date or date.min, _aware(r.created_at), r.task_id)
    return [r.task_id for r in sorted(rows, key=key)]


# ---- order ---------------------------------------------------------------------------------------------------
def test_red_before_yellow_before_green_before_no_clock_at_two_todays(svc):
    freeze_clock(START)
    spec = {
        "g_late": {"due_date": d(10), "warn_at": day_start(d(7)), "created_at": at(0)},
        "g_early": {"due_date": d(3), "warn_at": day_start(d(2)), "created_at": at(1)},
        "y_later": {"due_date": d(5), "warn_at": day_start(d(-1)), "created_at": at(2)},   # yellow, due after g_early
        "y_today": {"due_date": d(0), "warn_at": day_start(d(-2)), "created_at": at(3)},
        "r_1": {"due_date": d(-1), "warn_at": day_start(d(-4)), "created_at": at(4)},
        "r_5": {"due_date": d(-5), "warn_at": day_start(d(-8)), "created_at": at(5)},
        "r_1_later": {"due_date": d(-1), "warn_at": day_start(d(-4)), "created_at": at(6)},   # same due: by arrival
        "none_late": {"created_at": at(7)},
        "none_early": {"created_at": at(-1)},
    }
    names = list(spec)
    tids = dict(zip(names, insert_tasks(svc, [dict(s, clock_key="hp") if "due_date" in s else s
                                              for s in spec.values()]), strict=True))
    by_id = {v: k for k, v in tids.items()}
    got = [by_id[t] for t in ids(svc.inbox(actor(svc, "agent1")))]
    assert got == ["r_5", "r_1", "r_1_later", "y_today", "y_later", "g_early", "g_late", "none_early", "none_late"]
    assert got == [by_id[t] for t in expected_order(all_rows(svc), START)]

    # four days on: g_early and y_today are overdue, y_later still yellow, g_late still green — no row rewritten
    freeze_clock(START + timedelta(days=4))
    got = [by_id[t] for t in ids(svc.inbox(actor(svc, "agent1")))]
    assert got == ["r_5", "r_1", "r_1_later", "y_today", "g_early", "y_later", "g_late", "none_early", "none_late"]
    # nine days on: g_late (warning on day 7) is yellow, everything dated before it red
    freeze_clock(START + timedelta(days=9))
    got = [by_id[t] for t in ids(svc.inbox(actor(svc, "agent1")))]
    assert got == ["r_5", "r_1", "r_1_later", "y_today", "g_early", "y_later", "g_late", "none_early", "none_late"]
    freeze_clock(START + timedelta(days=11))
    assert expected_order(all_rows(svc), START + timedelta(days=11)) == ids(svc.inbox(actor(svc, "agent1")))
    # read in one statement (it fits on a page) or class by class two at a time: the same order
    assert ids(every_page(svc, "agent1", limit=2)[0]) == ids(svc.inbox(actor(svc, "agent1")))


def test_warning_moment_within_the_day(svc):
    """Yellow begins at the clock's yellow moment (warn_at), not at midnight."""
    freeze_clock(START)
    green_then_yellow, = insert_tasks(svc, [{"due_date": d(4), "warn_at": START + timedelta(hours=2),
                                             "clock_key": "hp", "created_at": at(0)}])
    yellow, = insert_tasks(svc, [{"due_date": d(6), "warn_at": START - timedelta(hours=1), "clock_key": "hp",
                                  "created_at": at(1)}], prefix="Q")
    assert ids(svc.inbox(actor(svc, "agent1"))) == [yellow, green_then_yellow]
    freeze_clock(START + timedelta(hours=3))
    assert ids(svc.inbox(actor(svc, "agent1"))) == [green_then_yellow, yellow]


# ---- paging, total -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [37, 50, 200])
def test_paging_through_250_tasks_returns_each_exactly_once_in_order(svc, limit):
    freeze_clock(START)
    made = preload_inbox(svc, 250, TODAY)
    got, totals = every_page(svc, "agent1", limit=limit)
    assert len(got) == 250 and set(ids(got)) == set(made)
    assert ids(got) == expected_order(all_rows(svc), START)
    assert set(totals) == {250}
    assert len(totals) == -(-250 // limit)


def test_default_page_is_50_and_the_last_page_has_no_cursor(svc):
    freeze_clock(START)
    preload_inbox(svc, 60, TODAY)
    page = svc.inbox_page(actor(svc, "agent1"))
    assert len(page["tasks"]) == 50 and page["total"] == 60 and page["next"]
    rest = svc.inbox_page(actor(svc, "agent1"), after=page["next"])
    assert len(rest["tasks"]) == 10 and rest["next"] is None
    assert svc.inbox_page(actor(svc, "agent1"), limit=60)["next"] is None


def test_paging_keeps_the_moment_of_its_first_page(svc):
    """A listing paged across midnight ranks every page as its first page did: no task is skipped or repeated."""
    freeze_clock(START)
    preload_inbox(svc, 120, TODAY)
    who = actor(svc, "agent1")
    first = svc.inbox_page(who, limit=40)
    freeze_clock(START + timedelta(days=3))
    second = svc.inbox_page(who, limit=40, after=first["next"])
    third = svc.inbox_page(who, limit=40, after=second["next"])
    got = ids(first["tasks"] + second["tasks"] + third["tasks"])
    assert got == expected_order(all_rows(svc), START) and third["next"] is None


def test_a_new_case_is_listed_when_the_user_has_more_than_200_older_tasks(svc):
    """The bug: the inbox held only the 200 oldest tasks; a new case's task was never listed."""
    freeze_clock(START - timedelta(days=1))
    preload_inbox(svc, 230, TODAY)                  # all arrived before the new case
    freeze_clock(START)
    case_no = start(svc)
    got, totals = every_page(svc, "agent1", limit=200)
    assert totals == [231, 231]
    mine = [t for t in got if t["case_no"] == case_no]
    assert [t["name"] for t in mine] == ["受理审核"]
    # and it can be completed from there
    complete(svc, "agent1", "受理审核", case_no=case_no, **accept())
    assert not [t for t in svc.inbox(actor(svc, "agent1")) if t["case_no"] == case_no and t["name"] == "受理审核"]


# ---- filters -------------------------------------------------------------------------------------------------
def test_every_filter(svc):
    freeze_clock(START)
    with svc.db.unit_of_work(write=False) as uow:
        unit_a, unit_b = sorted(u.id for u in uow.repo.units())[:2]
    specs = [
        {"stage": "联合办理", "clock_key": "hp", "title": "环评", "due_date": d(2), "warn_at": day_start(d(1)),
         "unit_id": unit_a},
        {"stage": "联合办理", "clock_key": "gd", "title": "供电", "due_date": d(9), "warn_at": day_start(d(6)),
         "unit_id": unit_b},
        {"stage": "代办受理", "name": "受理审核", "unit_id": unit_a},
        {"stage": "限时办结", "clock_key": "hp", "title": "环评", "due_date": d(-3), "warn_at": day_start(d(-6)),
         "unit_id": unit_b},
        {"role": "specialist", "department": "sthj", "clock_key": "hp", "title": "环评", "due_date": d(5),
         "warn_at": day_start(d(3)), "unit_id": unit_a},
        {"role": "specialist", "department": None, "name": "会商", "unit_id": unit_a},
    ]
    t = insert_tasks(svc, specs)

    def listed(username="agent1", **f):
        got, totals = every_page(svc, username, limit=2, **f)
        assert set(totals) == {len(got)}
        # an inbox that fits on one page is read in one statement (inbox_all): the same tasks in the same order
        one = svc.inbox_page(actor(svc, username), limit=50, **f)
        assert (ids(one["tasks"]), one["total"], one["next"]) == (ids(got), len(got), None)
        return ids(got)
    assert listed() == [t[3], t[0], t[1], t[2]]
    assert listed(stage="联合办理") == [t[0], t[1]]
    assert listed(stage="代办受理") == [t[2]]
    assert listed(item="hp") == [t[3], t[0]]            # a clock key
    assert listed(item="供电") == [t[1]]                 # a task title
    assert listed(item="受理审核") == [t[2]]              # a task name
    assert listed(item="没有这个事项") == []
    assert listed(unit=str(unit_a)) == [t[0], t[2]]
    assert listed(unit=unit_b) == [t[3], t[1]]
    assert listed(due_before=d(2).isoformat()) == [t[3], t[0]]
    assert listed(due_before=d(-4).isoformat()) == []
    assert listed(stage="联合办理", unit=unit_b, item="gd") == [t[1]]
    # a department's specialist: its department's tasks and those of no department
    assert listed("zb_sthj") == [t[4], t[5]]
    assert listed("zb_sthj", department="sthj") == [t[4]]
    assert listed("zb_sthj", department="zjj") == []


def test_cursor_belongs_to_its_filter(svc):
    freeze_clock(START)
    preload_inbox(svc, 30, TODAY)
    who = actor(svc, "agent1")
    page = svc.inbox_page(who, limit=5, stage="联合办理")
    from engine.errors import InvalidInput
    with pytest.raises(InvalidInput, match="筛选条件"):
        svc.inbox_page(who, limit=5, after=page["next"])
    assert svc.inbox_page(who, limit=50, after=page["next"], stage="联合办理")["tasks"]


# ---- access --------------------------------------------------------------------------------------------------
def test_the_inbox_is_exactly_what_may_act_allows_for_every_user(svc):
    freeze_clock(START)
    with svc.db.unit_of_work(write=False) as uow:
        units = sorted(u.id for u in uow.repo.units())
        users = [u.username for u in uow.repo.conn.execute(select(User.__table__)).all()]
    specs = []
    for k, (role, dept, assignee) in enumerate([
            ("agent", None, None), ("agent", None, "agent2"), ("agent", "sthj", None), ("chief", None, None),
            ("specialist", "sthj", None), ("specialist", "zjj", None), ("specialist", "sthj", "zb_sthj"),
            ("specialist", "zjj", "zb_sthj"), ("specialist", None, None), ("window", None, None),
            ("supervisor", None, None), ("applicant", None, None), ("applicant", None, "huarui"),
            ("applicant", None, "jiahe"), ("process_owner", None, None)]):
        for unit in units[:3]:
            specs.append({"role": role, "department": dept, "assignee": assignee, "unit_id": unit,
                          "created_at": at(k * 10 + unit), **({"due_date": d(k % 5 - 2), "clock_key": "hp",
                                                               "warn_at": day_start(d(k % 5 - 4))} if k % 2 else {})})
    insert_tasks(svc, specs)
    case_no = start(svc)                             # and a real case's task
    assert case_no
    rows = all_rows(svc)
    seen_any = 0
    for username in users:
        who = actor(svc, username)
        allowed = {r.task_id for r in rows if access.may_act(who, r.role, r.department, r.assignee, r.unit_id)}
        got, totals = every_page(svc, username, limit=7)
        assert set(ids(got)) == allowed, username
        assert len(got) == len(allowed) and set(totals) == {len(allowed)}, username
        seen_any += bool(allowed)
    assert seen_any >= 6
    # the cases named: another department's specialist, the assignee, the applicant's unit
    zjj = {t["task_id"] for t in svc.inbox(actor(svc, "zb_zjj"))}
    sthj = {t["task_id"] for t in svc.inbox(actor(svc, "zb_sthj"))}
    assert zjj and sthj and not zjj & {r.task_id for r in rows if r.department == "sthj"}
    assert {r.task_id for r in rows if r.assignee == "zb_sthj" and r.department == "sthj"} <= sthj
    assert not {r.task_id for r in rows if r.assignee == "agent2"} & {t["task_id"] for t in svc.inbox(actor(svc, "agent1"))}
    huarui = svc.inbox(actor(svc, "huarui"))
    assert huarui and {t["unit_name"] for t in huarui} == {actor_unit_name(svc, "huarui")}


def actor_unit_name(svc, username):
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.unit(actor(svc, username).unit_id).name


# ---- projection ----------------------------------------------------------------------------------------------
def check_projection(svc) -> int:
    """Every inbox row carries its running clock's due date and warning moment (none when paused or stopped)."""
    with svc.db.unit_of_work(write=False) as uow:
        conn = uow.repo.conn
        clocks = {(c.case_id, c.key): c for c in conn.execute(select(Clock.__table__)).all()}
        rows = conn.execute(select(InboxTask.__table__)).all()
    from engine.deadlines import ClockState
    n = 0
    for r in rows:
        c = clocks.get((r.case_id, r.clock_key)) if r.clock_key else None
        want = _urgency(ClockState.from_row(c) if c is not None else None)
        assert (r.due_date, _aware(r.warn_at)) == (want["due_date"], want["warn_at"]), r
        n += r.due_date is not None
    return n


def test_clock_changes_are_projected_in_the_step(svc):
    freeze_clock(START)
    case_no = start(svc)
    accept_and_commission(svc, case_no)
    dispatch(svc, case_no, ["hp", "xf"])
    assert check_projection(svc) == 2
    task = next(t for t in svc.inbox(actor(svc, "zb_sthj")) if t["case_no"] == case_no)
    assert task["clock"]["level"] == "green"
    complete(svc, "zb_sthj", "部门办理", "环评", case_no=case_no, **needs_correction("补交报告"))
    check_projection(svc)                                          # paused: the 环评 row has no due date
    complete(svc, "huarui", "补正材料", "环评", case_no=case_no, **supplement())
    assert check_projection(svc) == 2                              # resumed
    # time passes: the worker's tick recomputes; the order follows without any rewrite
    freeze_clock(START + timedelta(days=40))
    svc.fire_due()
    check_projection(svc)
    levels = [t["clock"]["level"] for t in svc.inbox(actor(svc, "zb_sthj")) if t["case_no"] == case_no]
    assert levels == ["red"]


# ---- HTTP ----------------------------------------------------------------------------------------------------
def test_http_inbox_per_role(app, svc):
    freeze_clock(START)
    preload_inbox(svc, 75, TODAY)
    insert_tasks(svc, [{"role": "specialist", "department": "sthj", "clock_key": "hp", "title": "环评",
                        "due_date": d(-1), "warn_at": day_start(d(-3))}], prefix="S")
    agent = api_login(app, "agent1")
    r = agent.get("/api/tasks")
    assert r.status_code == 200 and r.json["total"] == 75 and len(r.json["tasks"]) == 50 and r.json["next"]
    assert r.json["tasks"][0]["clock"]["level"] == "red"
    r2 = agent.get("/api/tasks", query_string={"after": r.json["next"]})
    assert len(r2.json["tasks"]) == 25 and r2.json["next"] is None
    assert not set(ids(r.json["tasks"])) & set(ids(r2.json["tasks"]))
    assert agent.get("/api/tasks?limit=10&stage=联合办理").json["total"] == len(
        [t for t in svc.inbox(actor(svc, "agent1")) if t["stage"] == "联合办理"])
    sthj = api_login(app, "zb_sthj").get("/api/tasks").json
    assert sthj["total"] == 1 and sthj["tasks"][0]["title"] == "环评"
    assert api_login(app, "zb_zjj").get("/api/tasks").json == {"tasks": [], "total": 0, "next": None}
    assert api_login(app, "huarui").get("/api/tasks").json["total"] == 0
    assert app.test_client().get("/api/tasks").status_code == 401

    page = html_login(app, "agent1").get("/inbox")
    assert page.status_code == 200 and "共 75 件" in page.text and "下一页" in page.text
    assert page.text.count('href="/tasks/') == 50 and "红牌" in page.text
    html = html_login(app, "agent1")
    nxt = html.get("/inbox?limit=70")
    assert nxt.text.count('href="/tasks/') == 70 and "下一页" in nxt.text
    import re
    link = re.search(r'<a rel="next" href="([^"]+)"', nxt.text).group(1).replace("&amp;", "&")
    last = html.get(link)
    assert last.status_code == 200 and last.text.count('href="/tasks/') == 5 and "下一页" not in last.text
    filtered = html.get("/inbox?stage=联合办理")
    assert filtered.status_code == 200 and "清除筛选" in filtered.text
    assert html_login(app, "zb_sthj").get("/inbox").text.count('href="/tasks/') == 1


BAD = [
    ({"limit": "abc"}, "每页条数"), ({"limit": "0"}, "每页条数"), ({"limit": "201"}, "每页条数"),
    ({"limit": "-5"}, "每页条数"), ({"limit": "1.5"}, "每页条数"), ({"limit": "9" * 40}, "每页条数"),
    ({"after": "garbage!!"}, "翻页标记"), ({"after": "eyJhIjoxfQ"}, "翻页标记"), ({"after": "x" * 500}, "翻页标记"),
    ({"due_before": "2026-13-01"}, "日期"), ({"due_before": "明天"}, "日期"), ({"due_before": "2026-3-1"}, "日期"),
    ({"stage": "不存在的阶段"}, "阶段"), ({"department": "nope"}, "部门"), ({"unit": "abc"}, "单位"),
    ({"unit": "99999"}, "单位"), ({"item": "x" * 300}, "事项"), ({"item": "a\x01b"}, "事项"),
]


@pytest.mark.parametrize("params,fragment", BAD)
def test_bad_parameters_are_a_chinese_422(app, svc, params, fragment):
    freeze_clock(START)
    agent = api_login(app, "agent1")
    assert_json_error(agent.get("/api/tasks", query_string=params), 422, fragment)
    page = html_login(app, "agent1").get("/inbox", query_string=params)
    assert page.status_code == 422 and fragment in page.text


def test_forged_cursors_are_refused(app, svc):
    freeze_clock(START)
    preload_inbox(svc, 12, TODAY)
    agent = api_login(app, "agent1")
    good = agent.get("/api/tasks?limit=5").json["next"]
    import base64
    raw = base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)).decode()
    edited = raw.replace('[1,', '[1, ', 1)
    forged = base64.urlsafe_b64encode(edited.encode()).decode().rstrip("=")
    assert_json_error(agent.get("/api/tasks", query_string={"after": forged}), 422, "翻页标记")
    assert_json_error(agent.get("/api/tasks", query_string={"after": good[:-3]}), 422, "翻页标记")
    assert agent.get("/api/tasks", query_string={"after": good}).status_code == 200


def test_the_migration_fills_existing_rows(svc, db_url):
    """Rows written before the migration get their clock's due date and warning moment and their audience key."""
    from alembic import command

    from engine.db import normalize_url
    from engine.migrate import alembic_config
    freeze_clock(START)
    case_no = start(svc)
    accept_and_commission(svc, case_no)
    dispatch(svc, case_no, ["hp", "xf"])
    before = ids(svc.inbox(actor(svc, "zb_sthj")))
    svc.db.engine.dispose()
    cfg = alembic_config(normalize_url(db_url))
    command.downgrade(cfg, "20261201_0012")
    command.upgrade(cfg, "head")
    svc.db.engine.dispose()
    assert check_projection(svc) == 2
    assert all(r.audience == f"{r.role}|{r.department or ''}|{r.assignee or ''}" for r in all_rows(svc))
    assert ids(svc.inbox(actor(svc, "zb_sthj"))) == before and before
