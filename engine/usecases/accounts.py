"""Who is using the service: units (logins and sessions: :mod:`engine.usecases.sessions`)."""
from __future__ import annotations


class Accounts:
    """Use cases: Who is using the service: units."""

    def units(self) -> list[dict]:
        with self.db.unit_of_work(write=False) as uow:
            return [dict(r._mapping) for r in uow.repo.units()]
