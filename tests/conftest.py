"""Fixtures: a fresh database per test (SQLite file, or a PostgreSQL schema when BANGBAN_TEST_DATABASE_URL is set)."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

# Every saved workflow state is also converted in full and compared with the one that reuses finished tasks'
# conversions (engine.spiff_runtime.dump_state); servers the tests start inherit it. Set before engine is imported.
os.environ.setdefault("BANGBAN_CHECK_STATE_MEMO", "1")

import pytest
from sqlalchemy import create_engine, text

from engine import caches, processes
from engine.access import Actor
from engine.clock import clock, wall
from engine.db import Database, normalize_url
from engine.demo import load_demo
from engine.migrate import upgrade
from engine.services import Bangban

# argon2's cheapest parameters for the hundreds of databases and logins of the tests (never set in a deployment);
# servers the tests start inherit it
os.environ.setdefault("BANGBAN_ARGON2_TESTING", "1")

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BANGBAN_TEST_DATABASE_URL")
FAST_HASH = "pbkdf2:sha256:1000"      # a hash of before argon2 (upgraded at the first login)


@pytest.fixture
def db_url(tmp_path):
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as c:
        c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def db(db_url):
    upgrade(normalize_url(db_url))
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def process_files():
    return processes.read_dir(ROOT / "processes")


@pytest.fixture
def svc(request, db, process_files):
    """The service with the demo users. Parametrized indirectly with ``"cold"`` (``pytest.mark.parametrize("svc",
    ["warm", "cold"], indirect=True)``), every use case runs in a service as a freshly started process has it."""
    service = Bangban.open(db, process_files)
    load_demo(db, service.current.catalogue)
    if getattr(request, "param", "warm") == "cold":
        return ColdService(db, process_files)
    return service


@pytest.fixture
def all_cases_verified(svc):
    """After the test, every case in the database passes ``audit verify`` (chain intact, replay equals the stored
    case), as ``bangban audit verify --all`` would check it."""
    yield
    failed = [(no, r["text"]) for no in svc.audit_case_numbers() if not (r := svc.audit_case(no))["ok"]]
    assert failed == [], f"audit verify 不通过：{failed}"


class ColdService:
    """Each use case as a freshly started server process takes it: every in-memory cache of the engine forgotten,
    the service opened again from the database (the stored version rebuilt from its files, the case loaded from its
    row). Between two steps nothing is carried over but the database, as when consecutive requests of one case go
    to different server processes, or a server restarts mid-case."""

    def __init__(self, db: Database, process_files: dict[str, bytes]):
        self.db = db
        self._files = process_files
        self.opened = 0

    def fresh(self) -> Bangban:
        caches.clear_all()
        self.opened += 1
        return Bangban.open_latest(self.db, self._files)

    def __getattr__(self, name: str):
        return getattr(self.fresh(), name)


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.reset()
    wall.reset()


def actor(svc: Bangban, username: str) -> Actor:
    with svc.db.unit_of_work(write=False) as uow:
        return Actor.from_row(uow.repo.user_by_username(username))
