"""Process versions (process owners): list, files, element diff, validate, publish, migrate running cases."""
from __future__ import annotations

from time import monotonic

from .. import forms
from .. import processes as process_files
from ..access import Actor
from ..clock import clock, now
from ..errors import (
    InvalidInput,
    NotFound,
)
from ..events import EventBuffer
from .base import MAX_ID

AUTHOR_NAMES = {"system": "系统（初始版本）"}
"""Authors that are not accounts: the service's own first version (the command line is recorded as 命令行)."""


class Versions:
    """Use cases: Process versions (process owners): list, files, element diff, validate, publish, migrate running cases."""

    def process_versions(self, actor: Actor | None) -> list[dict]:
        if actor is not None:
            self.check_permission(actor, "processes")
        with self.db.unit_of_work(write=False) as uow:
            rows = uow.repo.versions()
            counts = uow.repo.count_cases_by_version()
            names = uow.repo.display_names([r.author for r in rows])
        latest = rows[0].id if rows else None
        outcomes = self.current.manifest.get("outcomes", {})
        return [{"id": r.id, "hash": r.hash, "short": r.hash[:12], "author": r.author, "comment": r.comment,
                 "author_name": AUTHOR_NAMES.get(r.author) or names.get(r.author) or r.author,
                 "created_at": r.created_at, "activated_at": r.activated_at, "latest": r.id == latest,
                 "cases": {outcomes.get(k, k): v for k, v in counts.get(r.id, {}).items()}} for r in rows]

    def resolve_version(self, ref: str) -> int:
        """A version by id (``12``) or hash prefix (at least 6 characters)."""
        ref = str(ref).strip()
        with self.db.unit_of_work(write=False) as uow:
            if ref.isascii() and ref.isdigit() and int(ref) < MAX_ID:
                row = uow.repo.version_files(int(ref))
                if row is not None:
                    return row.id
            if len(ref) >= 6 and ref.isalnum():
                rows = uow.repo.version_by_prefix(ref.lower())
                if len(rows) == 1:
                    return rows[0].id
        raise NotFound(f"流程版本 {ref} 不存在或不唯一")

    def version_files(self, actor: Actor | None, version_id: int) -> dict[str, str]:
        if actor is not None:
            self.check_permission(actor, "processes")
        with self.db.unit_of_work(write=False) as uow:
            row = uow.repo.version_files(int(version_id)) if 0 < int(version_id) < MAX_ID else None
        if row is None:
            raise NotFound("流程版本不存在")
        return dict(row.files)

    def diff_versions(self, actor: Actor | None, old_id: int, new_id: int) -> list[dict]:
        """Element by element: tasks, lanes, flows, forms, timers, catalogue items added, removed or changed."""
        from ..versions import diff_files
        old = {k: v.encode("utf-8") for k, v in self.version_files(actor, old_id).items()}
        new = {k: v.encode("utf-8") for k, v in self.version_files(actor, new_id).items()}
        return diff_files(old, new)

    def publish(self, actor: Actor | None, changed: dict[str, bytes], comment: str, base: dict[str, bytes] | None = None,
                replace_all: bool = False) -> dict:
        """Publish a new version: the latest version's files with ``changed`` applied (or exactly ``changed`` when
        ``replace_all``). Everything is validated first; a set with any problem changes nothing."""
        author = "命令行"
        if actor is not None:
            self.check_permission(actor, "process_publish")
            author = actor.username
        comment = forms.plain_text(comment, "发布说明", 500, multiline=True)
        if not comment:
            raise InvalidInput("请填写发布说明")
        if base is None and not replace_all:
            base = {k: v.encode("utf-8") for k, v in self.version_files(None, self.current_version_id).items()}
        files = dict(changed) if replace_all else {**(base or {}), **changed}
        files = {k: v for k, v in files.items() if v is not None}
        from ..validation import bounded
        problems = [p.to_dict() for p in bounded.validate_set(files)] + self.catalogue_department_problems(files)
        if problems:
            raise InvalidInput(f"流程文件有 {len(problems)} 处问题，未发布", details=problems)
        ps = process_files.load(files)
        with self.db.unit_of_work() as uow:
            before = uow.repo.latest_version()
            version_id = self._store_version(uow, ps, files, author, comment[:500])
            uow.commit()
        self._current = (version_id, self.version(version_id))
        self._checked_latest = monotonic()
        unchanged = before is not None and before.id == version_id
        return {"id": version_id, "hash": ps.hash, "short": ps.hash[:12], "unchanged": unchanged}

    def validate(self, actor: Actor | None, changed: dict[str, bytes]) -> list[dict]:
        """Problems of the latest version with ``changed`` applied (nothing is stored)."""
        if actor is not None:
            self.check_permission(actor, "processes")
        base = {k: v.encode("utf-8") for k, v in self.version_files(None, self.current_version_id).items()}
        from ..validation import bounded
        files = {**base, **changed}
        return [p.to_dict() for p in bounded.validate_set(files)] + self.catalogue_department_problems(files)

    def migrate_cases(self, to_version: int, case_nos: list[str] | None = None, dry_run: bool = False,
                      actor: Actor | None = None) -> list[dict]:
        """Move running cases to another version where SpiffWorkflow's diff allows it (nothing completed or started
        changed); each migration is logged in the case's events. Returns one report per case."""
        if actor is not None:
            self.check_permission(actor, "process_publish")
        target = self.version(to_version)
        with self.db.unit_of_work(write=False) as uow:
            cases = uow.repo.active_cases(case_nos)
        found = {c.case_no for c in cases}
        report = [{"case_no": no, "ok": False, "reasons": ["办件不存在或已结束"]} for no in (case_nos or []) if no not in found]
        for c in cases:
            if c.version_id == to_version:
                report.append({"case_no": c.case_no, "ok": True, "reasons": [], "note": "已在该版本"})
                continue
            with clock.step() as step, self.db.unit_of_work() as uow:
                case = uow.repo.case_by_id(c.id, lock=True)
                step.after(case.updated_at)
                ps = self.version(case.version_id)
                run = self._load_run(uow, case, ps)
                if case.process_id not in target.specs:
                    report.append({"case_no": case.case_no, "ok": False, "reasons": [f"新版本中没有流程 {case.process_id}"]})
                    continue
                blockers = run.migrate_to(target, dry_run=dry_run)
                entry = {"case_no": case.case_no, "ok": not blockers, "reasons": blockers,
                         "from": ps.hash[:12], "to": target.hash[:12]}
                report.append(entry)
                if blockers or dry_run:
                    continue
                at = now()
                events = EventBuffer(case.case_no, case.id, case.event_seq, case.last_hash)
                events.add("migrated", at, actor, None, {"from": ps.hash, "to": target.hash, "from_version": case.version_id,
                                                         "to_version": to_version})
                self._save(uow, case, target, run, events, at, actor=actor, version_id=to_version)
                uow.commit()
        return report
