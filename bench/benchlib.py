"""What the benchmarks share: throwaway databases, free loopback ports, the ``bangban`` command, percentiles."""
from __future__ import annotations

import math
import shutil
import socket
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgresql://root@127.0.0.1:5432/test"
HOST = "127.0.0.1"
DEMO_PASSWORD = "demo1234"


class Databases:
    """Fresh databases: SQLite files in a temp dir, or PostgreSQL schemas bench_<random> (dropped at cleanup)."""

    def __init__(self, kind: str, tmpdir: Path):
        self.kind, self.tmpdir = kind, tmpdir
        self.schemas: list[str] = []
        self._admin = None

    def new(self, name: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmpdir / (name + '.sqlite3')}"
        from sqlalchemy import create_engine, text

        from engine.db import normalize_url
        if self._admin is None:
            self._admin = create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        return f"{PG_URL}?options=-csearch_path%3D{schema}"

    def cleanup(self) -> None:
        if self._admin is None:
            return
        from sqlalchemy import text
        for schema in self.schemas:
            try:
                with self._admin.connect() as c:
                    c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            except Exception as exc:  # keep cleaning the others
                print(f"warning: could not drop schema {schema}: {exc}", file=sys.stderr)
        self.schemas.clear()
        self._admin.dispose()
        self._admin = None


def bangban_cmd() -> list[str]:
    """The `bangban` entry point next to this interpreter (not a pyenv shim), else PATH, else ``python -c``."""
    beside = Path(sys.executable).parent / "bangban"
    if beside.exists():
        return [str(beside)]
    exe = shutil.which("bangban")
    return [exe] if exe else [sys.executable, "-c", "from web.cli import main; main()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def percentile(sorted_values: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of already sorted values."""
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]
