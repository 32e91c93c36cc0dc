"""Settings from the environment, with defaults that run the whole service on one machine."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """``database_url`` is what the service runs as (on PostgreSQL, the application role); migrations run as
    ``migrate_database_url`` (the owner role) when it is set, and then grant ``app_role`` its privileges."""

    database_url: str
    process_dir: Path
    migrate_database_url: str | None = None
    app_role: str | None = None
    digest_key: Path | None = None      # the Ed25519 private key that signs digests (a file outside the database)
    digest_log: Path = ROOT / "var" / "digests.jsonl"   # where each signed digest is appended, one JSON line each
    files_dir: Path = ROOT / "var" / "files"            # uploaded case files, content-addressed (engine.filestore)

    @classmethod
    def from_env(cls) -> "Settings":
        default_db = f"sqlite:///{ROOT / 'var' / 'bangban.sqlite3'}"
        return cls(
            database_url=os.environ.get("DATABASE_URL", default_db),
            process_dir=Path(os.environ.get("BANGBAN_PROCESS_DIR", ROOT / "processes")),
            migrate_database_url=os.environ.get("BANGBAN_MIGRATE_DATABASE_URL") or None,
            app_role=os.environ.get("BANGBAN_APP_ROLE") or None,
            digest_key=Path(os.environ["BANGBAN_DIGEST_KEY"]) if os.environ.get("BANGBAN_DIGEST_KEY") else None,
            digest_log=Path(os.environ.get("BANGBAN_DIGEST_LOG") or ROOT / "var" / "digests.jsonl"),
            files_dir=Path(os.environ.get("BANGBAN_FILES_DIR") or ROOT / "var" / "files"),
        )

    @property
    def migration_url(self) -> str:
        return self.migrate_database_url or self.database_url


def ints_from_env(cls, prefix: str):
    """A dataclass of integer limits with each field overridden by ``<prefix><FIELD NAME>`` when that variable holds a
    whole number from 1 to 1,000,000 (anything else keeps the default)."""
    values = {}
    for f in fields(cls):
        raw = os.environ.get(prefix + f.name.upper(), "").strip()
        if raw.isascii() and raw.isdigit() and 0 < int(raw) <= 1_000_000:
            values[f.name] = int(raw)
    return cls(**values)
