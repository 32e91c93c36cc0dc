"""Case search through its index (engine/repository_search.py): every kind of query, the scope of every role, the
index written in the step's transaction, the capped count, the migration indexing existing cases, bad input."""
from __future__ import annotations

import pytest

from engine import repository_search
from engine.errors import InvalidInput
from engine.migrate import alembic_config
from engine.repository import Repository
from tests import helpers as h
from tests.conftest import actor
from tests.webclient import api_login, chinese, html_login

JIAHE = "河南嘉禾新材料科技有限公司"
HUARUI_CODE, JIAHE_CODE = "91410823MA9HR0001H", "91410823MA9JH00029"


def numbers(svc, username: str, **query) -> list[str]:
    return sorted(c["case_no"] for c in svc.search_cases(actor(svc, username), **query)["cases"])


def index_size(svc) -> int:
    with svc.db.unit_of_work(write=False) as uow:
        return uow.repo.search_index_size()


@pytest.fixture
def two(svc):
    mine = h.start(svc)                                                   # 武陟县华瑞食品有限公司, 年产万吨食品项目
    theirs = h.start(svc, "jiahe", unit_name=JIAHE, project_name="高性能新材料生产线项目", service_items=["qydj"])
    return mine, theirs


def test_each_kind_of_query_finds_the_right_cases(svc, two):
    mine, theirs = two
    assert index_size(svc) == 2
    both = sorted([mine, theirs])
    assert numbers(svc, "agent1", q=theirs) == [theirs]                    # full number
    assert numbers(svc, "agent1", q=theirs[:10]) == both                   # number prefix
    assert numbers(svc, "agent1", q=theirs[-4:]) == [theirs]               # the last digits
    assert numbers(svc, "agent1", q="41") == both                          # two digits
    assert numbers(svc, "agent1", q="华瑞") == [mine]                      # a two-character unit name
    assert numbers(svc, "agent1", q="嘉禾新材") == [theirs]
    assert numbers(svc, "agent1", q="生产线") == [theirs]                  # project name
    assert numbers(svc, "agent1", q="食品") == [mine]
    assert numbers(svc, "agent1", q=HUARUI_CODE) == [mine]                 # credit code
    assert numbers(svc, "agent1", q="ma9jh") == [theirs]                   # case-insensitive
    assert numbers(svc, "agent1", q="  华瑞   食品 ") == [mine]            # whitespace: every word must match
    assert numbers(svc, "agent1", q="华瑞 新材料") == []
    assert numbers(svc, "agent1", q="有限公司") == both
    # the separate fields look only at their own columns
    assert numbers(svc, "agent1", unit="嘉禾") == [theirs]
    assert numbers(svc, "agent1", unit=JIAHE_CODE.lower()) == [theirs]
    assert numbers(svc, "agent1", unit="生产线") == []                     # a project word is not a unit
    assert numbers(svc, "agent1", project="新材料") == [theirs]
    assert numbers(svc, "agent1", project="嘉禾") == []
    assert numbers(svc, "agent1", project="食品", status="active") == [mine]
    assert numbers(svc, "agent1", project="食品", status="completed") == []
    # LIKE wildcards are literal
    for q in ("%%", "__", "%华瑞%", "华_", "4108%", "\\%", '"华瑞"'):
        assert numbers(svc, "agent1", q=q) == [], q
    assert numbers(svc, "agent1", q="不存在的单位") == []


def test_the_scope_of_every_role_holds_with_the_index(svc, two):
    mine, theirs = two
    # applicant of another unit: only its own unit, whatever it searches
    assert numbers(svc, "jiahe", q="华瑞") == [] and numbers(svc, "jiahe", q=mine) == []
    assert numbers(svc, "jiahe", q="有限公司") == [theirs] and numbers(svc, "huarui", q="有限公司") == [mine]
    assert numbers(svc, "jiahe", unit=HUARUI_CODE) == []
    # specialist: the cases its department is involved in
    assert numbers(svc, "zb_sthj", q="有限公司") == []
    h.accept_and_commission(svc, mine)
    h.dispatch(svc, mine, ["hp"])
    assert numbers(svc, "zb_sthj", q="有限公司") == [mine]
    assert numbers(svc, "zb_sthj", q=theirs[-4:]) == []
    assert numbers(svc, "zb_zjj", q="华瑞") == []
    # auditor: all
    assert numbers(svc, "auditor1", q="有限公司") == sorted([mine, theirs])


def test_a_station_clerk_finds_the_cases_it_submitted(svc, two):
    from tests.test_stations_withdrawal import station_start
    mine, theirs = two
    submitted = station_start(svc)                                          # for 嘉禾
    assert numbers(svc, "station1", q="嘉禾") == [submitted]
    assert numbers(svc, "station1", q=theirs) == []
    assert numbers(svc, "station1", q="华瑞") == []
    assert numbers(svc, "jiahe", q="嘉禾") == sorted([theirs, submitted])


def test_the_index_row_is_written_in_the_steps_transaction(svc, monkeypatch):
    h.start(svc)
    assert index_size(svc) == 1

    def broken(self, rows):
        raise RuntimeError("断电")
    monkeypatch.setattr(Repository, "append_events", broken)
    with pytest.raises(RuntimeError):
        h.start(svc, project_name="失败的申请项目")
    monkeypatch.undo()
    assert index_size(svc) == 1
    assert numbers(svc, "agent1", q="失败的申请") == []


def test_the_count_is_capped(svc, monkeypatch, app_client_factory):
    monkeypatch.setattr(repository_search, "COUNT_CAP", 3)
    for _ in range(5):
        h.start(svc)
    found = svc.search_cases(actor(svc, "agent1"), q="华瑞")
    assert (found["total"], found["total_capped"], len(found["cases"])) == (3, True, 5)
    assert svc.search_cases(actor(svc, "agent1"))["total_capped"] is True
    few = svc.search_cases(actor(svc, "huarui"), q="华瑞", status="completed")
    assert (few["total"], few["total_capped"]) == (0, False)
    app = app_client_factory()
    r = api_login(app, "agent1").get("/api/cases?q=华瑞")
    assert r.status_code == 200 and r.json["total"] == 3 and r.json["total_capped"] is True
    page = html_login(app, "agent1").get("/cases?q=华瑞").text
    assert "共 3+ 件" in page


def test_the_migration_indexes_existing_cases(svc, db_url):
    from alembic import command

    from engine.db import normalize_url
    mine = h.start(svc)
    theirs = h.start(svc, "jiahe", unit_name=JIAHE, project_name="高性能新材料生产线项目", service_items=["qydj"])
    svc.db.dispose()
    cfg = alembic_config(normalize_url(db_url))
    command.downgrade(cfg, "20261201_0012")
    command.upgrade(cfg, "head")
    assert index_size(svc) == 2
    assert numbers(svc, "agent1", q="华瑞") == [mine]
    assert numbers(svc, "agent1", q=JIAHE_CODE) == [theirs]
    assert numbers(svc, "agent1", q=theirs[-4:]) == [theirs]


@pytest.mark.parametrize("query, fragment", [
    ({"q": "号" * 41}, "太长"), ({"unit": "嘉" * 101}, "太长"), ({"project": "项" * 101}, "太长"),
    ({"q": "华瑞\x00"}, "控制字符"), ({"unit": "嘉禾\n"}, "控制字符"), ({"q": "\x1b[31m"}, "控制字符"),
    ({"q": "司"}, "两个字"), ({"q": "华瑞 司"}, "两个字"),
])
def test_bad_input_is_refused_in_chinese(svc, query, fragment):
    with pytest.raises(InvalidInput, match=fragment) as info:
        svc.search_cases(actor(svc, "agent1"), **query)
    assert chinese(info.value.message)


def test_bad_input_over_http_is_a_chinese_4xx(svc, app_client_factory):
    app = app_client_factory()
    api, page = api_login(app, "agent1"), html_login(app, "agent1")
    for path in ("/api/cases?q=" + "号" * 41, "/api/cases?q=%00%00", "/api/cases?project=%1B", "/api/cases?q=司"):
        r = api.get(path)
        assert r.status_code == 422 and r.is_json and chinese(r.json["message"]), path
    r = page.get("/cases?q=" + "号" * 500)
    assert r.status_code == 422 and "太长" in r.text
    ok = api.get("/api/cases?q=%E5%8D%8E%E7%91%9E").json          # 华瑞
    assert ok["total"] == 0 and ok["total_capped"] is False


@pytest.fixture
def app_client_factory(svc):
    from web import create_app

    def make():
        return create_app({"BANGBAN_SERVICE": svc, "SECRET_KEY": "test", "TESTING": True})
    return make


def test_a_unit_renamed_is_found_by_its_new_name_in_the_same_transaction(svc, two):
    mine, _ = two
    with svc.db.unit_of_work() as uow:
        unit = uow.repo.unit_by_name("武陟县华瑞食品有限公司")
        uow.repo.update_unit(unit.id, name="武陟县瑞祥食品有限公司", credit_code="91410823MA9RX0001Q")
        uow.commit()
    assert numbers(svc, "agent1", q="瑞祥") == [mine]
    assert numbers(svc, "agent1", q="ma9rx") == [mine]
    assert numbers(svc, "agent1", q=HUARUI_CODE) == []
    with svc.db.unit_of_work() as uow:                     # rolled back: the index keeps the committed name
        uow.repo.update_unit(unit.id, name="武陟县回滚食品有限公司")
    assert numbers(svc, "agent1", q="回滚") == [] and numbers(svc, "agent1", q="瑞祥") == [mine]
