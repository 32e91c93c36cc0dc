"""Queries of case files (issue 17; a mixin of :class:`engine.repository.Repository`)."""
from __future__ import annotations

from sqlalchemy import func, insert, select

from .models import CaseFile, FileDownload, MaterialMark, User

case_files, users, marks, downloads = CaseFile.__table__, User.__table__, MaterialMark.__table__, FileDownload.__table__


class FilesRepository:
    conn: object

    def insert_case_file(self, **values) -> int:
        return self.conn.execute(insert(case_files).values(**values).returning(case_files.c.id)).scalar_one()

    def case_files(self, case_id: int) -> list:
        """Every file of a case with its uploader's name, by item, material and version."""
        f = case_files.c
        return self.conn.execute(
            select(case_files, users.c.display_name.label("uploader_name"), users.c.username.label("uploader"))
            .join(users, users.c.id == f.uploaded_by).where(f.case_id == case_id)
            .order_by(f.item_code, f.material, f.version)).all()

    def case_file(self, case_id: int, file_id: int):
        f = case_files.c
        return self.conn.execute(
            select(case_files, users.c.display_name.label("uploader_name"))
            .join(users, users.c.id == f.uploaded_by).where(f.case_id == case_id, f.id == file_id)).first()

    def case_files_bytes(self, case_id: int) -> int:
        return int(self.conn.execute(select(func.coalesce(func.sum(case_files.c.size), 0))
                                     .where(case_files.c.case_id == case_id)).scalar_one())

    def last_file_version(self, case_id: int, item_code: str, material: str) -> int:
        f = case_files.c
        return int(self.conn.execute(select(func.coalesce(func.max(f.version), 0))
                                     .where(f.case_id == case_id, f.item_code == item_code, f.material == material))
                   .scalar_one())

    def referenced_file_hashes(self) -> set[str]:
        return {r[0] for r in self.conn.execute(select(case_files.c.sha256).distinct())}

    def insert_material_mark(self, **values) -> int:
        return self.conn.execute(insert(marks).values(**values).returning(marks.c.id)).scalar_one()

    def material_marks(self, case_id: int) -> list:
        """Every checklist mark of a case with its author's name, oldest first (the latest of a material counts)."""
        return self.conn.execute(
            select(marks, users.c.display_name.label("marker_name")).join(users, users.c.id == marks.c.marked_by)
            .where(marks.c.case_id == case_id).order_by(marks.c.id)).all()

    def log_download(self, **values) -> None:
        self.conn.execute(insert(downloads).values(**values))

    def file_downloads(self, case_id: int, limit: int = 100) -> list:
        """The latest downloads of a case's files, newest first, with who and which file."""
        d = downloads.c
        return self.conn.execute(
            select(downloads, users.c.display_name, case_files.c.material, case_files.c.version,
                   case_files.c.original_name)
            .join(users, users.c.id == d.user_id).join(case_files, case_files.c.id == d.file_id)
            .where(d.case_id == case_id).order_by(d.id.desc()).limit(limit)).all()
