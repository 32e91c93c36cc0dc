"""Queries of the key-project register (重点项目 / 重点企业认定) and of the service stations a clerk works at
(a mixin of :class:`engine.repository.Repository`)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, insert, or_, select, update

from .models import KeyDesignation, Station

key_register, stations = KeyDesignation.__table__, Station.__table__


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class KeyRegisterRepository:
    conn: object

    def key_designations(self, kind: str | None, q: str | None, limit: int, offset: int) -> tuple[list, int]:
        """The register, newest first: of one kind (or both), matching ``q`` in code, name or document number."""
        k = key_register.c
        conds = []
        if kind:
            conds.append(k.kind == kind)
        if q:
            conds.append(or_(k.code.like(_like(q), escape="\\"), k.name.like(_like(q), escape="\\"),
                             k.document_no.like(_like(q), escape="\\")))
        rows = self.conn.execute(select(key_register).where(*conds).order_by(k.created_at.desc(), k.id.desc())
                                 .limit(limit).offset(offset)).all()
        total = self.conn.execute(select(func.count()).select_from(key_register).where(*conds)).scalar_one()
        return rows, total

    def key_designation(self, designation_id: int):
        return self.conn.execute(select(key_register).where(key_register.c.id == designation_id)).first()

    def insert_key_designation(self, **values) -> int:
        return self.conn.execute(insert(key_register).values(**values).returning(key_register.c.id)).scalar_one()

    def revoke_key_designation(self, designation_id: int, at: datetime, by: str) -> int:
        k = key_register.c
        return self.conn.execute(update(key_register).where(k.id == designation_id, k.revoked_at.is_(None))
                                 .values(revoked_at=at, revoked_by=by)).rowcount

    def valid_key_designation(self, kind: str, code: str, day: date):
        """The designation of ``code`` in force on ``day`` (not revoked, within its validity), if any."""
        k = key_register.c
        return self.conn.execute(
            select(key_register).where(k.kind == kind, k.code == code, k.revoked_at.is_(None), k.valid_from <= day,
                                       or_(k.valid_to.is_(None), k.valid_to >= day))
            .order_by(k.valid_from.desc(), k.id.desc()).limit(1)).first()

    def overlapping_key_designation(self, kind: str, code: str, start: date, end: date | None):
        """A designation of ``code`` not revoked whose validity overlaps ``start``..``end`` (open-ended: None)."""
        k = key_register.c
        conds = [k.kind == kind, k.code == code, k.revoked_at.is_(None), or_(k.valid_to.is_(None), k.valid_to >= start)]
        if end is not None:
            conds.append(k.valid_from <= end)
        return self.conn.execute(select(key_register).where(*conds).order_by(k.id).limit(1)).first()

    def count_key_designations(self) -> int:
        return self.conn.execute(select(func.count()).select_from(key_register)).scalar_one()
