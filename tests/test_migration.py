"""Publishing while cases run, and moving running cases to a new version."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from engine.errors import InvalidInput
from engine.services import Bangban
from tests import helpers as h
from tests.conftest import actor


def renamed(files: dict, old: str = "受理审核", new: str = "受理初审") -> dict:
    return dict(files, **{"bangban_case.bpmn": files["bangban_case.bpmn"].replace(old.encode(), new.encode())})


def versions_of(svc: Bangban, *case_nos: str) -> list[int]:
    return [h.case_row(svc, no).version_id for no in case_nos]


def test_publishing_while_cases_run_keeps_old_cases_on_their_version(svc, process_files):
    old_case = h.start(svc)
    result = svc.publish(actor(svc, "owner1"), renamed(process_files), "受理审核改名为受理初审", replace_all=True)
    assert not result["unchanged"] and svc.current_version_id == result["id"]
    new_case = h.start(svc)
    old_v, new_v = versions_of(svc, old_case, new_case)
    assert old_v != new_v == result["id"]
    names = {t["case_no"]: t["name"] for t in svc.inbox(actor(svc, "agent1"))}
    assert names == {old_case: "受理审核", new_case: "受理初审"}
    # both run to the end, each on its own version
    for no in (old_case, new_case):
        h.complete(svc, "agent1", names[no], case_no=no, review_decision="不予受理", refusal_explanation="不属于服务事项")
        assert h.case_row(svc, no).status == "refused"
    assert versions_of(svc, old_case, new_case) == [old_v, new_v]
    history = svc.process_versions(actor(svc, "owner1"))
    assert history[0]["latest"] and history[0]["comment"] == "受理审核改名为受理初审"
    changes = svc.diff_versions(actor(svc, "supervisor1"), old_v, new_v)
    assert [(c["kind"], c["category"], c["element"], c["name"]) for c in changes] == \
        [("changed", "任务", "Task_Review", "受理初审")]


def test_only_the_process_owner_publishes_and_a_broken_set_changes_nothing(svc, process_files):
    with pytest.raises(Exception, match="无权"):
        svc.publish(actor(svc, "supervisor1"), renamed(process_files), "x", replace_all=True)
    broken = dict(process_files, **{"bangban_case.bpmn": b"<not-xml"})
    before = svc.process_versions(None)
    with pytest.raises(InvalidInput) as info:
        svc.publish(actor(svc, "owner1"), broken, "坏文件", replace_all=True)
    assert info.value.details and "未发布" in info.value.message
    assert svc.process_versions(None) == before
    with pytest.raises(InvalidInput, match="发布说明"):
        svc.publish(actor(svc, "owner1"), renamed(process_files), "  ", replace_all=True)


def test_migration_dry_run_and_real_run(svc, process_files):
    waiting = h.start(svc)                       # 受理审核 not yet done: may move
    done = h.start(svc)
    h.accept_and_commission(svc, done)           # 受理审核 completed: its change blocks the move
    first = h.case_row(svc, done).version_id
    target = svc.publish(None, renamed(process_files), "改名", replace_all=True)["id"]
    before = {no: h.snapshot(svc, no) for no in (waiting, done)}

    report = {r["case_no"]: r for r in svc.migrate_cases(target, dry_run=True)}
    assert report[waiting]["ok"] and not report[waiting]["reasons"], report
    assert not report[done]["ok"] and "受理" in report[done]["reasons"][0]
    assert {no: h.snapshot(svc, no) for no in (waiting, done)} == before      # a dry run changes nothing

    report = {r["case_no"]: r for r in svc.migrate_cases(target)}
    assert report[waiting]["ok"] and not report[done]["ok"]
    assert versions_of(svc, waiting, done) == [target, first]
    assert h.snapshot(svc, done) == before[done]
    assert "migrated" in h.event_types(svc, waiting)
    h.assert_event_chain(svc, waiting)
    # the migrated case now shows and runs the new version's task, and can finish
    assert [t["name"] for t in svc.inbox(actor(svc, "agent1")) if t["case_no"] == waiting] == ["受理初审"]
    h.complete(svc, "agent1", "受理初审", case_no=waiting, review_decision="受理", authorization_checked=True)
    h.complete(svc, "agent1", "材料交接并签订委托书", case_no=waiting, **h.commission())
    h.assert_round_trip(svc, waiting)


def test_migrate_command(db_url, monkeypatch, tmp_path):
    from engine.cli import cli, open_service
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()
    assert runner.invoke(cli, ["demo"]).exit_code == 0
    service = open_service()
    files = renamed({k: v.encode() for k, v in service.version_files(None, service.current_version_id).items()})
    service.db.dispose()
    folder = tmp_path / "p"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)       # forms/, documents/
        (folder / name).write_bytes(data)
    published = runner.invoke(cli, ["process", "publish", "-m", "改名", "--dir", str(folder)])
    assert published.exit_code == 0, published.output
    dry = runner.invoke(cli, ["case", "migrate", "--to", "2", "--dry-run"])
    assert dry.exit_code == 0 and "可迁移" in dry.output and "不能迁移" in dry.output
    real = runner.invoke(cli, ["case", "migrate", "--to", "2"])
    assert "已迁移" in real.output
    listing = runner.invoke(cli, ["process", "versions"])
    assert "改名" in listing.output


def test_a_case_submitted_before_the_key_register_moves_onto_it_and_its_claim_goes_to_the_window(svc, process_files):
    """A case claiming 重点项目, submitted on a version that recorded no register facts, moved onto the version that
    checks the claim: the fact it lacks counts as unknown (not registered), so the window verifies the claim instead of
    the key gateway failing on a name it does not know."""
    import json
    manifest = json.loads(process_files["bangban.json"])
    manifest.pop("case_facts")
    older = dict(process_files, **{"bangban.json": json.dumps(manifest, ensure_ascii=False).encode("utf-8")})
    svc.publish(None, older, "尚未核验重点认定的版本", replace_all=True)
    case_no = h.start(svc, key_project="重点项目", project_code="2099-410823-00-00-000001")
    target = svc.publish(None, process_files, "按认定登记簿核验重点认定", replace_all=True)["id"]
    report = {r["case_no"]: r for r in svc.migrate_cases(target)}
    assert report[case_no]["ok"], report
    h.complete(svc, "agent1", "受理审核", case_no=case_no, **h.accept())
    assert [t["name"] for t in h.inbox(svc, "window1", case_no)] == ["核实重点认定"]
    h.assert_round_trip(svc, case_no)
