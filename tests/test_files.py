"""Case files in the engine (issue 17): content-addressed storage, limits, type by content, versions, the upload
event in the hash chain (``audit verify`` catches a file changed or removed on disk), gc of unreferenced files.
Each test ends with a cold restore (a fresh service from the database) that passes ``audit verify``."""
from __future__ import annotations

import hashlib
import io
import os
import time

import pytest

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from engine.filestore import MB, FileStore, Limits
from tests import filesamples as f
from tests import helpers as h
from tests.conftest import actor
from tests.test_audit_tamper import fresh, sql

HP = "环境影响报告书（表）"


@pytest.fixture
def store(tmp_path, monkeypatch):
    root = tmp_path / "files"
    monkeypatch.setenv("BANGBAN_FILES_DIR", str(root))
    monkeypatch.delenv("BANGBAN_FILE_MAX_MB", raising=False)
    monkeypatch.delenv("BANGBAN_CASE_FILES_MAX_MB", raising=False)
    return FileStore(root)


@pytest.fixture
def case_no(svc, store):
    h.freeze_clock()
    return h.start(svc)


def upload(svc, who: str, case_no: str, data: bytes, name: str = "报告书.pdf", item: str = "hp", material: str = HP):
    result = svc.upload_file(actor(svc, who), case_no, item, material, name, io.BytesIO(data))
    h.tick()
    return result


def stored_files(store: FileStore) -> list[str]:
    if not store.root.exists():
        return []
    return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())


def cold_verified(db, process_files, case_no: str) -> None:
    result = fresh(db, process_files).audit_case(case_no)
    assert result["ok"], result["text"]


def test_upload_is_stored_by_its_hash_versioned_and_in_the_chain(svc, db, process_files, store, case_no):
    data = f.pdf("第一版")
    first = upload(svc, "huarui", case_no, data)
    sha = hashlib.sha256(data).hexdigest()
    assert first["sha256"] == sha and first["version"] == 1 and first["size"] == len(data)
    assert (store.root / sha[:2] / sha[2:]).read_bytes() == data
    second = upload(svc, "huarui", case_no, f.pdf("第二版"), "报告书（补正）.pdf")
    assert second["version"] == 2
    materials = svc.case_materials(actor(svc, "huarui"), case_no)
    hp = next(i for i in materials["items"] if i["code"] == "hp")
    versions = hp["materials"][0]["versions"]
    assert [v["version"] for v in versions] == [2, 1] and versions[0]["name"] == "报告书（补正）.pdf"
    assert hp["missing"] == ["建设项目环评审批申请表"]
    uploads = [e for e in h.events(svc, case_no) if e.type == "file_uploaded"]
    assert [(e.payload["sha256"], e.payload["version"], e.actor_name) for e in uploads] == \
        [(sha, 1, "huarui"), (second["sha256"], 2, "huarui")]
    # the same bytes again are stored once
    upload(svc, "agent1", case_no, data, "再次上传.pdf")
    assert len(stored_files(store)) == 2
    got = svc.case_file(actor(svc, "auditor1"), case_no, first["file_id"])
    with got["file"] as handle:
        assert handle.read() == data
    cold_verified(db, process_files, case_no)


@pytest.mark.parametrize("maker,name,kind", [
    (f.png, "照片.png", "图片（PNG）"), (f.jpeg, "扫描件.JPG", "图片（JPG）"), (f.docx, "报告.docx", "文字处理文档（DOCX）"),
    (f.xlsx, "清单.xlsx", "电子表格（XLSX）"), (f.ofd, "批文.ofd", "OFD 版式文档")])
def test_each_allowed_kind_is_recognised_by_content(svc, store, case_no, maker, name, kind):
    assert upload(svc, "huarui", case_no, maker(), name)["kind"] == kind


@pytest.mark.parametrize("data,name,words", [
    (f.exe(), "报告书.pdf", "不支持此文件类型"),
    (b"just some text\n", "说明.pdf", "不支持此文件类型"),
    (f.pdf(), "报告书.docx", "扩展名与内容不符"),
    (f.png(), "照片.pdf", "扩展名与内容不符"),
    (b"", "空.pdf", "空的"),
    (f.pdf(), "../../etc/passwd.pdf", "不能包含路径"),
    (f.pdf(), "..\\..\\boot.pdf", "不能包含路径"),
    (f.pdf(), "", "文件名为空"),
    (b"PK\x03\x04 not really a zip", "假.docx", "不支持此文件类型"),
], ids=["exe-as-pdf", "text-as-pdf", "pdf-as-docx", "png-as-pdf", "empty", "traversal", "backslash-traversal",
        "no-name", "broken-zip"])
def test_bad_files_are_refused_and_leave_nothing(svc, db, process_files, store, case_no, data, name, words):
    before = h.event_types(svc, case_no)
    with pytest.raises(InvalidInput) as caught:
        upload(svc, "huarui", case_no, data, name)
    assert words in caught.value.message
    assert stored_files(store) == [] and h.event_types(svc, case_no) == before
    cold_verified(db, process_files, case_no)


def test_a_zip_bomb_docx_is_stored_without_ever_being_unpacked(svc, store, case_no):
    bomb = f.zip_bomb_docx(200)
    assert len(bomb) < 1 * MB
    started = time.perf_counter()
    assert upload(svc, "huarui", case_no, bomb, "报告.docx")["size"] == len(bomb)
    assert time.perf_counter() - started < 5


def test_file_and_case_limits(svc, db, process_files, store, case_no, monkeypatch):
    monkeypatch.setenv("BANGBAN_FILE_MAX_MB", "1")
    monkeypatch.setenv("BANGBAN_CASE_FILES_MAX_MB", "2")
    assert Limits.from_env() == Limits(1 * MB, 2 * MB)
    before = h.event_types(svc, case_no)
    with pytest.raises(TooLarge) as caught:
        upload(svc, "huarui", case_no, f.pdf(pad=MB))
    assert "1 MB" in caught.value.message and stored_files(store) == []
    assert h.event_types(svc, case_no) == before
    upload(svc, "huarui", case_no, f.pdf("a", pad=MB - 2000))
    upload(svc, "huarui", case_no, f.pdf("b", pad=MB - 2000))
    with pytest.raises(TooLarge) as caught:
        upload(svc, "huarui", case_no, f.pdf("c", pad=10_000))
    assert "总量" in caught.value.message and len(stored_files(store)) == 2
    cold_verified(db, process_files, case_no)


def test_who_may_upload_and_see(svc, store, case_no):
    upload(svc, "huarui", case_no, f.pdf())
    with pytest.raises(NotFound):
        upload(svc, "jiahe", case_no, f.pdf())                   # another unit: the case does not exist for them
    with pytest.raises(NotFound):
        svc.case_materials(actor(svc, "jiahe"), case_no)
    with pytest.raises(Forbidden):
        upload(svc, "auditor1", case_no, f.pdf())                # read only
    with pytest.raises(Forbidden):
        upload(svc, "supervisor1", case_no, f.pdf())             # no upload_files permission
    with pytest.raises(InvalidInput):
        upload(svc, "huarui", case_no, f.pdf(), item="nosuch")
    with pytest.raises(InvalidInput):
        upload(svc, "huarui", case_no, f.pdf(), material="营业执照")
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, ["hp", "xf", "gd"])
    with pytest.raises(Forbidden):
        upload(svc, "zb_zjj", case_no, f.pdf())                  # 住建 may not upload for 环评
    assert upload(svc, "zb_zjj", case_no, f.pdf(), item="xf", material="消防设计文件")["version"] == 1
    seen = svc.case_materials(actor(svc, "zb_sthj"), case_no)
    assert [i["code"] for i in seen["items"]] == ["hp"]
    xf_file = svc.case_materials(actor(svc, "agent1"), case_no)["items"][1]["materials"][0]["current"]["id"]
    with pytest.raises(NotFound):
        svc.case_file(actor(svc, "zb_sthj"), case_no, xf_file)
    assert all(len(svc.case_materials(actor(svc, u), case_no)["items"]) == 3 for u in ("huarui", "auditor1"))
    assert svc.case_materials(actor(svc, "auditor1"), case_no)["may_upload"] is False


def test_a_closed_case_takes_no_uploads(svc, store, case_no):
    h.send(svc, "huarui", case_no, "withdrawal", reason="不再需要")
    assert h.case_row(svc, case_no).status == "withdrawn"
    with pytest.raises(Conflict) as caught:
        upload(svc, "huarui", case_no, f.pdf())
    assert "不能再上传" in caught.value.message and stored_files(store) == []


def test_verify_catches_a_file_changed_removed_or_its_row_edited(svc, db, process_files, store, case_no):
    data = f.pdf("原件")
    first = upload(svc, "huarui", case_no, data)
    cold_verified(db, process_files, case_no)
    path = store.path_of(first["sha256"])
    path.write_bytes(data.replace("原件".encode(), "改件".encode()))
    result = fresh(db, process_files).audit_case(case_no)
    assert not result["ok"] and "哈希不符" in result["text"] and "环境影响报告书" in result["text"]
    path.write_bytes(data + b"x")
    assert "大小" in fresh(db, process_files).audit_case(case_no)["text"]
    path.unlink()
    assert "不存在" in fresh(db, process_files).audit_case(case_no)["text"]
    path.write_bytes(data)
    cold_verified(db, process_files, case_no)
    other = upload(svc, "huarui", case_no, f.pdf("另一份"))
    sql(db, "UPDATE case_files SET sha256 = :s WHERE id = :i", s=other["sha256"], i=first["file_id"])
    assert "记录被改动" in fresh(db, process_files).audit_case(case_no)["text"]


def test_an_interrupted_upload_leaves_no_file_and_gc_collects_orphans(svc, store, case_no):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 100_000:
                raise OSError("connection reset")
            return super().read(n)
    with pytest.raises(OSError):
        svc.upload_file(actor(svc, "huarui"), case_no, "hp", HP, "大.pdf", Broken(f.pdf(pad=500_000)))
    assert stored_files(store) == []
    kept = upload(svc, "huarui", case_no, f.pdf("留"))
    orphan = store.put(io.BytesIO(f.pdf("孤儿")), "孤儿.pdf", MB, "太大")      # stored, never recorded
    part = store.root / ".upload-dead.part"
    part.write_bytes(b"half")
    assert svc.files_gc(dry_run=True) == []                      # all younger than the grace period
    old = time.time() - 2 * 86400
    for p in (store.path_of(orphan.sha256), part, store.path_of(kept["sha256"])):
        os.utime(p, (old, old))
    expected = sorted([".upload-dead.part", orphan.sha256[:2] + "/" + orphan.sha256[2:]])
    assert sorted(svc.files_gc(dry_run=True)) == expected
    assert len(stored_files(store)) == 3
    assert sorted(svc.files_gc()) == expected
    assert stored_files(store) == [kept["sha256"][:2] + "/" + kept["sha256"][2:]]


def test_two_handlers_uploading_the_same_material_at_once_get_two_versions(svc, db, process_files, store, case_no):
    import threading
    h.accept_and_commission(svc, case_no)
    h.dispatch(svc, case_no, ["hp"])
    barrier, results, errors = threading.Barrier(2), [], []

    def send(who: str, text: str) -> None:
        barrier.wait()
        try:
            results.append(svc.upload_file(actor(svc, who), case_no, "hp", HP, f"{who}.pdf", io.BytesIO(f.pdf(text))))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=send, args=(who, who)) for who in ("huarui", "zb_sthj")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r["version"] for r in results) == [1, 2]
    assert len(stored_files(store)) == 2
    cold_verified(db, process_files, case_no)


# ---- the 材料交接 checklist (x-materials-complete) --------------------------------------------------------------------
def checklist_service(db, process_files):
    """The service on the shipped processes with 材料交接并签订委托书 declaring ``x-materials-complete``."""
    import json

    from engine.demo import load_demo
    from engine.services import Bangban
    files = dict(process_files)
    schema = json.loads(files["forms/commission.json"])
    schema["x-materials-complete"] = True
    files["forms/commission.json"] = json.dumps(schema, ensure_ascii=False).encode()
    service = Bangban.open(db, files)
    load_demo(db, service.current.catalogue)
    return service, files


def test_commission_waits_until_every_material_is_uploaded_received_or_explained(db, process_files, store):
    svc, files = checklist_service(db, process_files)
    h.freeze_clock()
    no = h.start(svc, service_items=["hp"])
    h.complete(svc, "agent1", "受理审核", case_no=no, **h.accept())
    with pytest.raises(InvalidInput) as caught:
        h.complete(svc, "agent1", "材料交接并签订委托书", case_no=no, **h.commission())
    assert "环评「环境影响报告书（表）」" in caught.value.message and "建设项目环评审批申请表" in caught.value.message
    upload(svc, "huarui", no, f.pdf())
    agent = actor(svc, "agent1")
    with pytest.raises(InvalidInput) as caught:
        svc.mark_material(agent, no, "hp", "建设项目环评审批申请表", "not_applicable", "  ")
    assert "原因" in caught.value.message
    with pytest.raises(Forbidden):
        svc.mark_material(actor(svc, "huarui"), no, "hp", "建设项目环评审批申请表", "paper")
    with pytest.raises(InvalidInput):
        svc.mark_material(agent, no, "hp", "建设项目环评审批申请表", "lost")
    svc.mark_material(agent, no, "hp", "建设项目环评审批申请表", "not_applicable", "本项目为登记表项目，无需审批申请表")
    h.tick()
    svc.mark_material(agent, no, "hp", "建设项目环评审批申请表", "paper")
    h.tick()
    states = {m["name"]: m["state"] for m in svc.case_materials(agent, no)["items"][0]["materials"] if m["required"]}
    assert states == {HP: "已上传", "建设项目环评审批申请表": "纸质材料已收"}
    h.complete(svc, "agent1", "材料交接并签订委托书", case_no=no, **h.commission())
    assert ("分派服务事项", None) in h.open_tasks(svc, no)
    assert [e.payload["status"] for e in h.events(svc, no) if e.type == "material_marked"] == ["not_applicable", "paper"]
    assert reopened(db, files).audit_case(no)["ok"]
    sql(db, "UPDATE material_marks SET status = 'paper', reason = NULL WHERE status = 'not_applicable'")
    result = reopened(db, files).audit_case(no)
    assert not result["ok"] and "材料交接记录与其事件不符" in result["text"]


def reopened(db, files):
    from engine import caches
    from engine.services import Bangban
    caches.clear_all()
    return Bangban.open_latest(db, files)


# ---- the command line: export with files, verify offline, gc ------------------------------------------------------------
def test_export_with_files_verifies_offline_and_catches_a_changed_file(svc, db, db_url, store, case_no, tmp_path):
    import zipfile

    from tests.test_audit_tamper import run_cli
    upload(svc, "huarui", case_no, f.pdf("一"))
    upload(svc, "huarui", case_no, f.png(), "照片.png", material="建设项目环评审批申请表")
    out = tmp_path / "档案.zip"
    done = run_cli(db_url, "audit", "export", case_no, "-o", str(out), "--with-files")
    assert done.returncode == 0 and "2 个材料文件" in done.stdout, done.stdout + done.stderr
    checked = run_cli(db_url, "audit", "verify", "--file", str(out))
    assert checked.returncode == 0 and "完整" in checked.stdout and "含 2 个材料文件" in checked.stdout, checked.stdout
    doctored = tmp_path / "改过.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(doctored, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data.replace("一".encode(), "二".encode()) if data.startswith(b"%PDF") else data)
    bad = run_cli(db_url, "audit", "verify", "--file", str(doctored))
    assert bad.returncode == 1 and "哈希不符" in bad.stdout and "Traceback" not in bad.stdout + bad.stderr
    store.path_of(hashlib.sha256(f.png()).hexdigest()).unlink()
    refused = run_cli(db_url, "audit", "export", case_no, "-o", str(tmp_path / "x.zip"), "--with-files")
    assert refused.returncode == 1 and "不存在" in refused.stderr


def test_files_gc_command(svc, db_url, store, case_no):
    from tests.test_audit_tamper import run_cli
    kept = upload(svc, "huarui", case_no, f.pdf("留"))
    orphan = store.put(io.BytesIO(f.pdf("孤儿")), "孤儿.pdf", MB, "太大")
    old = time.time() - 3 * 86400
    for sha in (orphan.sha256, kept["sha256"]):
        os.utime(store.path_of(sha), (old, old))
    dry = run_cli(db_url, "files", "gc", "--dry-run")
    assert dry.returncode == 0 and "将删除：" + orphan.sha256[:2] in dry.stdout and "共将删除 1 个文件" in dry.stdout
    assert store.path_of(orphan.sha256).exists()
    done = run_cli(db_url, "files", "gc")
    assert done.returncode == 0 and "共删除 1 个文件" in done.stdout
    assert not store.path_of(orphan.sha256).exists() and store.path_of(kept["sha256"]).exists()
