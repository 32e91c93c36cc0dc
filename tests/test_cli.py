"""The command line a new user and an administrator use."""
from __future__ import annotations

from click.testing import CliRunner

from engine import caches
from engine.cli import cli
from engine.config import ROOT


def test_demo_sets_up_users_and_sample_cases_once(db_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()
    first = runner.invoke(cli, ["demo"])
    assert first.exit_code == 0, first.output
    assert "示例办件 3 件" in first.output
    again = runner.invoke(cli, ["demo"])
    assert again.exit_code == 0 and "新增 0 个" in again.output and "示例办件 0 件" in again.output

    from engine.cli import open_service
    from engine.demo import _actor
    service = open_service()
    cases = service.search_cases(_actor(service, "supervisor1"))["cases"]
    assert sorted(c["status"] for c in cases) == ["active", "active", "completed"]
    key = next(c for c in cases if c["title"] == "年产5万吨新型复合材料项目")
    view = service.get_case(_actor(service, "chief1"), key["case_no"])
    assert view["case"]["lead_name"] == "赵首席"
    assert {i["code"]: i["state"] for i in view["items"]}["xmlx"] == "准予许可"
    service.db.dispose()

    # A freshly started process (a server after `bangban demo`) takes the key project's departments to the end.
    caches.clear_all()
    service = open_service()
    for username, title in (("zb_yjgl", "安评"), ("zb_gdgs", "供电")):
        who = _actor(service, username)
        task = next(t for t in service.inbox(who) if t["case_no"] == key["case_no"] and t["title"] == title)
        service.complete_task(who, task["task_id"], {"item_decision": "准予许可", "licence_no": f"{title}-1"})
    service.db.dispose()
    caches.clear_all()
    service = open_service()
    who = _actor(service, "jiahe")
    task = next(t for t in service.inbox(who) if t["case_no"] == key["case_no"])
    service.complete_task(who, task["task_id"], {"supplement_description": "已补充专章", "supplement_complete": True})
    who = _actor(service, "zb_sthj")
    task = next(t for t in service.inbox(who) if t["case_no"] == key["case_no"])
    service.complete_task(who, task["task_id"], {"item_decision": "准予许可", "licence_no": "焦环审〔2026〕1号"})
    assert [t["name"] for t in service.inbox(_actor(service, "chief1")) if t["case_no"] == key["case_no"]] == ["汇总办理结果"]
    service.db.dispose()
    caches.clear_all()
    verified = runner.invoke(cli, ["audit", "verify", "--all"])
    assert verified.exit_code == 0, verified.output
    assert "共核验 3 件，通过 3 件" in verified.output


def test_process_validate_reports_both_verdicts(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["process", "validate", str(ROOT / "processes")])
    assert ok.exit_code == 0 and "可部署" in ok.output
    (tmp_path / "bad.bpmn").write_text("<not-closed>")
    bad = runner.invoke(cli, ["process", "validate", str(tmp_path)])
    assert bad.exit_code == 1 and "不可部署" in bad.output
