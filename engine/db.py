"""Database connection and the unit of work: one transaction per use case, committed explicitly."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from .errors import Unavailable
from .repository import Repository
from .wfcache import new_cache


def normalize_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def ensure_sqlite_dir(url: str) -> None:
    """SQLite creates the file, not its folder."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        ensure_sqlite_dir(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            # Writers take the write lock up front: SQLite then serialises them without deadlocks.
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    # pre-ping: a connection the server dropped (restart, administrator, network) is replaced before it is used
    return create_engine(url, pool_size=10, max_overflow=10, pool_recycle=1800, pool_pre_ping=True)


# A check that must run inside the next transaction of this context (a request) on a given database: the web layer's
# session check rides in the use case's own transaction instead of opening one of its own (see
# ``engine.usecases.sessions``). (database, check) or None; per thread/context, so never seen by another request.
_FIRST_CHECK: ContextVar[tuple[Database, Callable[[UnitOfWork], None]] | None] = ContextVar("bangban_first_check",
                                                                                          default=None)


class UnitOfWork:
    def __init__(self, conn: Connection, transaction, write: bool = True, workflows=None):
        self.conn = conn
        self.workflows = workflows
        self._transaction = transaction
        self.repo = Repository(conn)
        self.write = write
        self.committed = False
        self._after_commit: list[Callable[[], None]] = []
        self._on_release: list[Callable[[], None]] = []

    def commit(self) -> None:
        self._transaction.commit()
        self.committed = True
        for fn in self._after_commit:
            fn()

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the transaction has committed (never if it rolls back)."""
        self._after_commit.append(fn)

    def on_release(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` when a read-only unit of work ends, whatever its outcome (to give back what it borrowed)."""
        self._on_release.append(fn)


class Database:
    def __init__(self, url: str):
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.workflows = new_cache()    # workflows of this database's cases between steps (engine.wfcache)

    @contextmanager
    def unit_of_work(self, write: bool = True) -> Iterator[UnitOfWork]:
        """A transaction; rolled back unless the use case calls ``commit``.

        A database that cannot be reached or answered (PostgreSQL restarting or its connections dropped, SQLite
        locked beyond the busy timeout) raises :class:`Unavailable`: the caller says "try again" (503), and since
        the transaction never committed, nothing was changed."""
        try:
            with self.engine.connect() as conn:
                if write and self.is_sqlite:
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                transaction = conn.begin()
                uow = UnitOfWork(conn, transaction, write, self.workflows)
                try:
                    pending = _FIRST_CHECK.get()
                    if pending is not None and pending[0] is self:
                        _FIRST_CHECK.set(None)
                        pending[1](uow)
                    yield uow
                finally:
                    if not uow.committed and transaction.is_active:
                        transaction.rollback()
                    for fn in uow._on_release:
                        fn()
        except (OperationalError, InterfaceError) as exc:
            raise Unavailable("系统暂时无法访问数据库，您的操作没有生效，请稍后重试") from exc

    def check_in_next_transaction(self, check: Callable[[UnitOfWork], None] | None) -> None:
        """Run ``check(uow)`` first thing in the next transaction this context opens on this database (None: forget
        a check not yet run). A check that raises ends that transaction before the caller sees it."""
        _FIRST_CHECK.set((self, check) if check is not None else None)

    def has_pending_check(self) -> bool:
        pending = _FIRST_CHECK.get()
        return pending is not None and pending[0] is self

    def dispose(self) -> None:
        self.engine.dispose()
