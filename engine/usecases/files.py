"""Case materials (issue 17): upload a file per required material of a selected service item, list the materials
with their versions, download one, check stored files in ``audit verify``, collect unreferenced files.

Who may upload: a role with the ``upload_files`` permission (``processes/bangban.json``) who can see the case; a
person of a department only for the items of that department. Read-only roles (the auditor) never; a case that is
no longer being handled (status other than 办理中) takes no uploads. Who may see and download: whoever can see the
case, a person of a department only the items of that department.
"""
from __future__ import annotations

from ..access import Actor, check_read_only
from ..clock import clock, now
from ..errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from ..events import EventBuffer
from ..filestore import BY_TYPE, KINDS, FileStore, Limits, size_text

OPEN_STATUS = "active"
MARKS = {"paper": "纸质材料已收", "not_applicable": "不适用"}


def _extra(ps) -> list[str]:
    """Files a task adds to each service item besides its required materials (forms' ``x-files-extra``, e.g. the
    department's 批文/证照扫描件), in form order, once each."""
    out: list[str] = []
    for schema in ps.forms.values():
        for name in (schema.get("x-files-extra") or []) if isinstance(schema, dict) else []:
            if isinstance(name, str) and name not in out:
                out.append(name)
    return out


def _state(versions: list, mark) -> str | None:
    """Where a required material stands: 已上传, 纸质材料已收, 不适用, or None (still missing)."""
    if versions:
        return "已上传"
    return MARKS.get(mark.status) if mark is not None else None
GRACE_SECONDS = 24 * 3600


class Files:
    """Use cases: Case materials (upload, list with versions, download), file checks for audit, gc."""

    _file_store: FileStore | None = None
    _file_limits: Limits | None = None

    @property
    def file_store(self) -> FileStore:
        return self._file_store or FileStore.from_env()

    @file_store.setter
    def file_store(self, store: FileStore) -> None:
        self._file_store = store

    @property
    def file_limits(self) -> Limits:
        return self._file_limits or Limits.from_env()

    @file_limits.setter
    def file_limits(self, limits: Limits) -> None:
        self._file_limits = limits

    # ---- what the case needs ---------------------------------------------------------------------------------
    def _case_items(self, uow, case, ps) -> list[dict]:
        """The service items of the case (as selected or dispatched) with their required materials."""
        run = self._load_run(uow, case, ps)
        codes = run.value("service_items") or []
        out = []
        for code in codes if isinstance(codes, list) else []:
            item = ps.catalogue.items.get(code)
            if item is not None:
                out.append({"code": code, "name": item["name"], "department": item["department"],
                            "department_name": ps.catalogue.departments.get(item["department"], ""),
                            "materials": [str(m) for m in item.get("materials") or []], "extra": _extra(ps)})
        return out

    @staticmethod
    def _sees_item(actor: Actor, item: dict) -> bool:
        return not actor.department or actor.department == item["department"]

    def case_materials(self, actor: Actor, case_no: str) -> dict:
        """The materials of each service item of the case this actor may see: each required material with its
        versions (newest first), which are still missing, and whether this actor may upload."""
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            ps = self.version(case.version_id)
            items = [i for i in self._case_items(uow, case, ps) if self._sees_item(actor, i)]
            rows = uow.repo.case_files(case.id)
            used = uow.repo.case_files_bytes(case.id)
            marks = {(m.item_code, m.material): m for m in uow.repo.material_marks(case.id)}   # the latest counts
            log = uow.repo.file_downloads(case.id) if "audit" in self.permissions(actor) else None
        may_upload = self._may_upload(actor) and case.status == OPEN_STATUS
        by_material: dict[tuple[str, str], list[dict]] = {}
        for r in rows:
            by_material.setdefault((r.item_code, r.material), []).append(self._file_dict(r))
        out = []
        for item in items:
            materials = []
            for name in item["materials"] + [x for x in item["extra"] if x not in item["materials"]]:
                versions = sorted(by_material.get((item["code"], name), []), key=lambda v: -v["version"])
                mark = marks.get((item["code"], name))
                materials.append({"name": name, "versions": versions, "current": versions[0] if versions else None,
                                  "mark": self._mark_dict(mark) if mark is not None else None,
                                  "state": _state(versions, mark), "required": name in item["materials"]})
            required = [m for m in materials if m["required"]]
            out.append(dict(item, materials=materials, missing=[m["name"] for m in required if not m["versions"]],
                            unsettled=[m["name"] for m in required if m["state"] is None]))
        limits = self.file_limits
        may_mark = "mark_materials" in self.permissions(actor) and case.status == OPEN_STATUS
        downloads = [{"who": d.display_name, "at": d.at, "file": f"{d.material} 第{d.version}版（{d.original_name}）",
                      "preview": d.preview} for d in log] if log is not None else None
        return {"case_no": case.case_no, "items": out, "may_upload": may_upload, "may_mark": may_mark, "used": used,
                "uploads_results": may_upload and bool(actor.department), "downloads": downloads,
                "used_text": size_text(used), "file_limit_text": size_text(limits.file_bytes),
                "case_limit_text": size_text(limits.case_bytes), "accept": ",".join(
                    e for k in KINDS.values() for e in k.extensions)}

    def task_materials(self, actor: Actor, task_id: str) -> dict | None:
        """The materials a task's page shows, as its form declares (``x-files``: ``item``, the service item in the
        task's ``item`` variable; ``case``, every item), or None when the form declares none."""
        from .. import access
        with self.db.unit_of_work(write=False) as uow:
            row = self._ready_row(uow, task_id)
            access.check_may_act(actor, row)
            case = uow.repo.case_by_id(row.case_id)
            ps = self.version(case.version_id)
            task = self._load_run(uow, case, ps).ready_task(task_id)
        scope = (ps.forms.get(task.form) or {}).get("x-files") if task is not None and task.form else None
        if scope not in ("item", "case"):
            return None
        view = self.case_materials(actor, case.case_no)
        if scope == "item":
            item = task.data.get("item")
            view["items"] = [i for i in view["items"] if isinstance(item, dict) and i["code"] == item.get("code")]
        return dict(view, scope=scope)

    def start_materials(self, process_id: str) -> bool:
        """Whether the application form of ``process_id`` declares ``x-files`` (the applicant attaches the materials
        right after submitting)."""
        proc = self.current.manifest["processes"].get(process_id) or {}
        return bool((self.current.forms.get(proc.get("start_form") or "") or {}).get("x-files"))

    @staticmethod
    def _file_dict(r) -> dict:
        kind = BY_TYPE.get(r.content_type)
        return {"id": r.id, "item": r.item_code, "material": r.material, "version": r.version,
                "name": r.original_name, "size": r.size, "size_text": size_text(r.size),
                "kind": kind.label if kind else "文件", "previewable": bool(kind and kind.previewable),
                "uploader": r.uploader_name, "created_at": r.created_at}

    def _may_upload(self, actor: Actor) -> bool:
        roles = self.current.manifest["roles"]
        return "upload_files" in self.permissions(actor) and not all(roles.get(r, {}).get("read_only") for r in actor.roles)

    # ---- upload ----------------------------------------------------------------------------------------------
    def upload_file(self, actor: Actor, case_no: str, item_code, material, filename, stream) -> dict:
        """Store one uploaded file as the next version of (item, material) of the case: the bytes first (streamed,
        limited, type by content), then in one transaction the row and a ``file_uploaded`` event in the case's
        hash chain. Refused with a Chinese 4xx and nothing recorded: see the module's docstring and
        :meth:`engine.filestore.FileStore.put`. A file stored but never recorded (a refusal after storing, a
        crash) is removed by :meth:`files_gc`."""
        check_read_only(actor, self.current.manifest["roles"])
        limits = self.file_limits
        with self.db.unit_of_work(write=False) as uow:
            case = self._visible_case(uow, actor, case_no)
            ps = self.version(case.version_id)
            item, material = self._upload_target(actor, case, uow, ps, item_code, material)
            used = uow.repo.case_files_bytes(case.id)
        room = limits.case_bytes - used
        if room <= 0:
            raise TooLarge(f"本办件的材料已达 {size_text(limits.case_bytes)} 总量上限，不能再上传")
        if room < limits.file_bytes:
            stored = self.file_store.put(stream, filename, room,
                                         f"本办件的材料总量不能超过 {size_text(limits.case_bytes)}，"
                                         f"还可上传 {size_text(room)}")
        else:
            stored = self.file_store.put(stream, filename, limits.file_bytes,
                                         f"文件超过 {size_text(limits.file_bytes)} 上限，请压缩或分拆后重新上传")
        with clock.step() as step, self.db.unit_of_work() as uow:
            case = self._visible_case(uow, actor, case_no, lock=True)
            step.after(case.updated_at)
            if case.status != OPEN_STATUS:
                raise Conflict("办件已结束（或已撤回、终止），不能再上传材料")
            if uow.repo.case_files_bytes(case.id) + stored.size > limits.case_bytes:
                raise TooLarge(f"本办件的材料总量不能超过 {size_text(limits.case_bytes)}")
            version = uow.repo.last_file_version(case.id, item["code"], material) + 1
            at = now()
            role = self._acting_role(actor, [r for r, c in self.current.manifest["roles"].items()
                                             if "upload_files" in c.get("permissions", [])])
            events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
            file_id = uow.repo.insert_case_file(
                case_id=case.id, item_code=item["code"], material=material, version=version, uploaded_by=actor.id,
                size=stored.size, content_type=stored.kind.content_type, sha256=stored.sha256,
                original_name=stored.name, created_at=at, event_seq=events.seq + 1)
            events.add("file_uploaded", at, actor, role, {
                "file_id": file_id, "sha256": stored.sha256, "size": stored.size, "content_type": stored.kind.content_type,
                "name": stored.name, "item": item["code"], "item_name": item["name"], "material": material,
                "version": version, "by": actor.display_name})
            uow.repo.update_case(case.id, case.row_version, event_seq=events.seq, last_hash=events.last_hash,
                                 updated_at=at)
            uow.repo.append_events(events.rows)
            uow.commit()
        return {"case_no": case.case_no, "file_id": file_id, "item": item["code"], "material": material,
                "version": version, "size": stored.size, "sha256": stored.sha256, "name": stored.name,
                "kind": stored.kind.label}

    def _upload_target(self, actor: Actor, case, uow, ps, item_code, material) -> tuple[dict, str]:
        if not self._may_upload(actor):
            raise Forbidden("您的角色不能上传此办件的材料")
        if case.status != OPEN_STATUS:
            raise Conflict("办件已结束（或已撤回、终止），不能再上传材料")
        items = {i["code"]: i for i in self._case_items(uow, case, ps)}
        item = items.get(item_code) if isinstance(item_code, str) else None
        if item is None:
            raise InvalidInput("请选择本办件的服务事项", {"item": "不是本办件的服务事项"})
        if not self._sees_item(actor, item):
            raise Forbidden("只能上传本部门负责事项的材料")
        if not isinstance(material, str) or material not in item["materials"] + item["extra"]:
            raise InvalidInput(f"请选择「{item['name']}」的申报材料", {"material": "不是该事项的申报材料"})
        if material not in item["materials"] and not actor.department:
            raise Forbidden(f"「{material}」是办理结果，只能由负责该事项的部门上传")
        return item, material

    # ---- the 材料交接 checklist --------------------------------------------------------------------------------
    @staticmethod
    def _mark_dict(m) -> dict:
        return {"status": m.status, "status_name": MARKS.get(m.status, m.status), "reason": m.reason,
                "by": m.marker_name, "at": m.created_at}

    def mark_material(self, actor: Actor, case_no: str, item_code, material, status, reason=None) -> dict:
        """Record for one required material that its paper original was received (``paper``) or that it does not
        apply (``not_applicable``, with the reason): a row and a ``material_marked`` event in the case's chain."""
        check_read_only(actor, self.current.manifest["roles"])
        if "mark_materials" not in self.permissions(actor):
            raise Forbidden("您的角色不能登记材料交接情况")
        if status not in MARKS:
            raise InvalidInput("请选择“纸质材料已收”或“不适用”", {"status": "取值无效"})
        reason = " ".join(str(reason or "").split())[:500] if isinstance(reason, str) or reason is None else ""
        if status == "not_applicable" and not reason:
            raise InvalidInput("选择“不适用”须写明原因", {"reason": "请写明原因"})
        with clock.step() as step, self.db.unit_of_work() as uow:
            case = self._visible_case(uow, actor, case_no, lock=True)
            step.after(case.updated_at)
            ps = self.version(case.version_id)
            if case.status != OPEN_STATUS:
                raise Conflict("办件已结束（或已撤回、终止），不能再登记材料")
            items = {i["code"]: i for i in self._case_items(uow, case, ps)}
            item = items.get(item_code) if isinstance(item_code, str) else None
            if item is None:
                raise InvalidInput("请选择本办件的服务事项", {"item": "不是本办件的服务事项"})
            if not isinstance(material, str) or material not in item["materials"]:
                raise InvalidInput(f"请选择「{item['name']}」的申报材料", {"material": "不是该事项的申报材料"})
            at = now()
            events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
            mark_id = uow.repo.insert_material_mark(
                case_id=case.id, item_code=item["code"], material=material, status=status,
                reason=reason or None, marked_by=actor.id, created_at=at, event_seq=events.seq + 1)
            role = self._acting_role(actor, [r for r, c in self.current.manifest["roles"].items()
                                             if "mark_materials" in c.get("permissions", [])])
            events.add("material_marked", at, actor, role, {
                "mark_id": mark_id, "item": item["code"], "item_name": item["name"], "material": material,
                "status": status, "status_name": MARKS[status], "reason": reason or None, "by": actor.display_name})
            uow.repo.update_case(case.id, case.row_version, event_seq=events.seq, last_hash=events.last_hash,
                                 updated_at=at)
            uow.repo.append_events(events.rows)
            uow.commit()
        return {"case_no": case.case_no, "item": item["code"], "material": material, "status": status,
                "status_name": MARKS[status]}

    def unsettled_materials(self, uow, case, ps, run, task) -> list[str]:
        """For a task whose form declares ``x-materials-complete``: the required materials of the items it shows
        (``x-files``) that are neither uploaded, nor received on paper, nor marked not applicable."""
        schema = ps.forms.get(task.form or "") or {}
        if not schema.get("x-materials-complete"):
            return []
        codes = run.value("service_items") or []
        if schema.get("x-files") == "item":
            item = task.data.get("item")
            codes = [item.get("code")] if isinstance(item, dict) else []
        uploaded = {(r.item_code, r.material) for r in uow.repo.case_files(case.id)}
        marked = {(m.item_code, m.material) for m in uow.repo.material_marks(case.id)}
        out = []
        for code in codes if isinstance(codes, list) else []:
            item = ps.catalogue.items.get(code)
            for name in (item or {}).get("materials") or []:
                if (code, name) not in uploaded and (code, name) not in marked:
                    out.append(f"{item['name']}「{name}」")
        return out

    # ---- download --------------------------------------------------------------------------------------------
    def case_file(self, actor: Actor, case_no: str, file_id, preview: bool = False) -> dict:
        """One file of a case for download: its record and an open binary file (the caller closes it). Each fetch
        is logged (who, when, which file and its hash) in ``file_downloads``."""
        with self.db.unit_of_work() as uow:
            case = self._visible_case(uow, actor, case_no)
            ps = self.version(case.version_id)
            row = uow.repo.case_file(case.id, int(file_id)) if str(file_id).isdigit() and len(str(file_id)) < 12 else None
            if row is not None and actor.department:
                dept = ps.catalogue.items.get(row.item_code, {}).get("department")
                if dept != actor.department:
                    row = None
            if row is not None:
                uow.repo.log_download(case_id=case.id, file_id=row.id, sha256=row.sha256, user_id=actor.id,
                                      preview=bool(preview), at=now())
                uow.commit()
        if row is None:
            raise NotFound("材料文件不存在或您无权查看")
        try:
            handle = self.file_store.open(row.sha256)
        except (OSError, ValueError):
            raise NotFound("材料文件在存储中缺失，请联系管理员核查") from None
        return dict(self._file_dict(row), content_type=row.content_type, sha256=row.sha256, file=handle)

    # ---- audit and housekeeping ------------------------------------------------------------------------------
    def file_problems(self, uow, case, events: list):
        """The first uploaded file whose row or stored bytes no longer match its ``file_uploaded`` event."""
        from ..audit import Divergence
        rows = {r.id: r for r in uow.repo.case_files(case.id)}
        recorded = set()
        for e in events:
            if e.type != "file_uploaded":
                continue
            p = e.payload or {}
            row = rows.get(p.get("file_id"))
            label = f"{p.get('item_name') or ''}「{p.get('material')}」第 {p.get('version')} 版"
            if row is None or (row.sha256, row.size, row.event_seq) != (p.get("sha256"), p.get("size"), e.seq):
                return Divergence(e.seq, e.type, f"材料文件的记录与上传事件不符（记录被改动或删除）：{label}")
            recorded.add(row.id)
            problem = self.file_store.problem(row.sha256, row.size)
            if problem:
                return Divergence(e.seq, e.type, f"材料文件{label}：{problem}")
        extra = sorted(set(rows) - recorded)
        if extra:
            return Divergence(None, None, "有材料文件记录没有对应的上传事件（记录被插入）")
        marks = {m.id: m for m in uow.repo.material_marks(case.id)}
        logged = {}
        for e in events:
            if e.type == "material_marked":
                logged[(e.payload or {}).get("mark_id")] = e
        for mark_id, e in logged.items():
            m, p = marks.get(mark_id), e.payload or {}
            if m is None or (m.item_code, m.material, m.status, m.reason, m.event_seq) != \
                    (p.get("item"), p.get("material"), p.get("status"), p.get("reason"), e.seq):
                return Divergence(e.seq, e.type, f"材料交接记录与其事件不符（记录被改动或删除）：{p.get('material')}")
        if set(marks) - set(logged):
            return Divergence(None, None, "有材料交接记录没有对应的事件（记录被插入）")
        return None

    def files_gc(self, dry_run: bool = False, grace_seconds: float = GRACE_SECONDS) -> list[str]:
        """Remove stored files no case file row references, once older than the grace period."""
        with self.db.unit_of_work(write=False) as uow:
            referenced = uow.repo.referenced_file_hashes()
        return self.file_store.gc(referenced, grace_seconds, dry_run)
