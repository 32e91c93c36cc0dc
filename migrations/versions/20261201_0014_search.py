"""Case search that does not scan: one search row per case (case number, unit name, credit code, project name)

SQLite: an FTS5 table with the trigram tokenizer (``case_search``, rowid = case id) and its vocabulary
(``case_search_terms``, for two-character terms). PostgreSQL: a table ``case_search`` with a GIN ``pg_trgm`` index
on its lower-cased text and a GIN index on its two-character pieces; ``CREATE EXTENSION IF NOT EXISTS pg_trgm`` in
the schema ``public`` (or wherever it already is). If the extension cannot be created, the text index is left out
(searches of three or more characters then scan) and a warning says so. Existing cases are indexed here.

Revision ID: 20261201_0014_search
Revises: 20261201_0013_inbox
Create Date: 2026-12-01
"""
import logging
import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "20261201_0014_search"
down_revision = "20261201_0013_inbox"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def _index_existing(bind) -> None:
    """The search rows of the cases already there, written by the repository function the engine uses."""
    from engine.repository import Repository
    repo = Repository(bind)
    rows = bind.execute(sa.text("SELECT c.id AS case_id, c.case_no, c.title, u.name AS unit_name, u.credit_code "
                                "FROM cases c JOIN units u ON u.id = c.unit_id ORDER BY c.id")).mappings().all()
    for i in range(0, len(rows), 1000):
        repo.index_cases([dict(r) for r in rows[i:i + 1000]])


def _pg_trgm_schema(bind) -> str | None:
    """The schema of pg_trgm, creating the extension in ``public`` if needed; None if it cannot be created."""
    found = bind.execute(sa.text("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    if found:
        return found
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
    except sa.exc.DBAPIError as exc:
        log.warning("无法建立 pg_trgm 扩展（%s）：办件搜索将不使用三字索引", str(exc.orig or exc).splitlines()[0][:200])
        return None
    return "public"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.create_table(
            "case_search",
            sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                      sa.ForeignKey("cases.id"), primary_key=True),
            sa.Column("case_no", sa.Text(), nullable=False), sa.Column("unit_text", sa.Text(), nullable=False),
            sa.Column("title", sa.Text(), nullable=False), sa.Column("body", sa.Text(), nullable=False),
            sa.Column("grams", sa.dialects.postgresql.ARRAY(sa.Text()), nullable=False))
        schema = _pg_trgm_schema(bind)
        if schema:
            op.execute(f'CREATE INDEX ix_case_search_body ON case_search USING gin (body "{schema}".gin_trgm_ops)')
        op.execute("CREATE INDEX ix_case_search_grams ON case_search USING gin (grams)")
        _index_existing(bind)
        return
    if sqlite3.sqlite_version_info < (3, 34, 0):
        raise RuntimeError(f"SQLite {sqlite3.sqlite_version} 太旧：办件搜索需要 3.34 以上（FTS5 三字分词）")
    op.execute("CREATE VIRTUAL TABLE case_search USING fts5(case_no, unit_name, credit_code, title, tokenize='trigram')")
    op.execute("CREATE VIRTUAL TABLE case_search_terms USING fts5vocab(case_search, 'row')")
    _index_existing(bind)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("case_search")
        return
    op.execute("DROP TABLE case_search_terms")
    op.execute("DROP TABLE case_search")
