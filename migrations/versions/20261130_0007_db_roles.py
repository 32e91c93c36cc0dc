"""history tables hold under every write path: events and documents append-only, published process files immutable

SQLite: ``INSERT OR REPLACE`` / ``REPLACE INTO`` delete the conflicting row without firing DELETE triggers (unless
``recursive_triggers`` is on), so the UPDATE/DELETE triggers of ``…0003`` did not stop a rewrite of an event. A
BEFORE INSERT trigger now refuses any insert whose primary key or unique key (events: ``id`` and ``(case_id, seq)``;
documents: ``id`` and ``(kind, number)``; process_versions: ``id`` and ``hash``) already exists — before the conflict
clause is looked at, so REPLACE, ``INSERT OR REPLACE`` and ``INSERT … ON CONFLICT DO UPDATE`` are all refused
(an UPSERT's DO UPDATE fires UPDATE triggers too). PostgreSQL: ``REPLACE`` does not exist and ``ON CONFLICT DO
UPDATE`` fires the BEFORE UPDATE row trigger (and needs the UPDATE privilege, which the application role lacks).

Besides events:

- ``documents`` (委托书, 办结单, 终止单 …) are issued once and printed from this table: the service only inserts
  them, so they get the same append-only triggers as events.
- ``process_versions``: a version's files, hash, author, comment and creation time never change (cases are pinned to
  them); only ``activated_at`` is updated, when an earlier version is published again. Deleting a version is refused.
- Not protected: ``notifications``, ``inbox``, ``timers``, ``clocks``, ``counters``, ``case_parties``, the calendar
  and the case row, which the service updates or replaces as projections (the case row is checked against replay).

Revision ID: 20261130_0007
Revises: 20261130_0004
Create Date: 2026-11-30
"""
from alembic import op

revision = "20261130_0007"
down_revision = "20261130_0006"
branch_labels = None
depends_on = None

EVENTS = "events are append-only (事件记录只能追加，不能修改、删除或覆盖)"
DOCUMENTS = "documents are append-only (已出具的单据只能追加，不能修改、删除或覆盖)"
VERSIONS = "process versions are immutable (已发布的流程版本内容不能修改、删除或覆盖)"

# table -> (message, unique keys an insert must not collide with)
SQLITE_NO_REPLACE = {
    "events": (EVENTS, (("id",), ("case_id", "seq"))),
    "documents": (DOCUMENTS, (("id",), ("kind", "number"))),
    "process_versions": (VERSIONS, (("id",), ("hash",))),
}
VERSION_CONTENT = "hash, files, author, comment, created_at"


def _exists(table: str, columns: tuple[str, ...]) -> str:
    where = " AND ".join(f"{c} = NEW.{c}" for c in columns)
    return f"EXISTS (SELECT 1 FROM {table} WHERE {where})"


def _sqlite_upgrade() -> None:
    for table, (message, keys) in SQLITE_NO_REPLACE.items():
        clash = " OR ".join(_exists(table, key) for key in keys)
        op.execute(f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} WHEN {clash} "
                   f"BEGIN SELECT RAISE(ABORT, '{message}'); END")
    op.execute(f"CREATE TRIGGER documents_no_update BEFORE UPDATE ON documents BEGIN SELECT RAISE(ABORT, '{DOCUMENTS}'); END")
    op.execute(f"CREATE TRIGGER documents_no_delete BEFORE DELETE ON documents BEGIN SELECT RAISE(ABORT, '{DOCUMENTS}'); END")
    op.execute(f"CREATE TRIGGER process_versions_no_update BEFORE UPDATE OF {VERSION_CONTENT} ON process_versions "
               f"BEGIN SELECT RAISE(ABORT, '{VERSIONS}'); END")
    op.execute(f"CREATE TRIGGER process_versions_no_delete BEFORE DELETE ON process_versions "
               f"BEGIN SELECT RAISE(ABORT, '{VERSIONS}'); END")


def _postgresql_upgrade() -> None:
    # one function for every refusal: the message is the trigger's argument
    op.execute("""
        CREATE FUNCTION bangban_refuse() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION '%', TG_ARGV[0];
        END;
        $$ LANGUAGE plpgsql""")
    op.execute(f"CREATE TRIGGER documents_append_only BEFORE UPDATE OR DELETE ON documents "
               f"FOR EACH ROW EXECUTE FUNCTION bangban_refuse('{DOCUMENTS}')")
    op.execute(f"CREATE TRIGGER documents_no_truncate BEFORE TRUNCATE ON documents "
               f"FOR EACH STATEMENT EXECUTE FUNCTION bangban_refuse('{DOCUMENTS}')")
    op.execute(f"CREATE TRIGGER process_versions_immutable BEFORE UPDATE OF {VERSION_CONTENT} OR DELETE "
               f"ON process_versions FOR EACH ROW EXECUTE FUNCTION bangban_refuse('{VERSIONS}')")
    op.execute(f"CREATE TRIGGER process_versions_no_truncate BEFORE TRUNCATE ON process_versions "
               f"FOR EACH STATEMENT EXECUTE FUNCTION bangban_refuse('{VERSIONS}')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_upgrade()
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger, table in (("process_versions_no_truncate", "process_versions"),
                               ("process_versions_immutable", "process_versions"),
                               ("documents_no_truncate", "documents"), ("documents_append_only", "documents")):
            op.execute(f"DROP TRIGGER {trigger} ON {table}")
        op.execute("DROP FUNCTION bangban_refuse()")
    else:
        for trigger in ("process_versions_no_delete", "process_versions_no_update", "documents_no_delete",
                        "documents_no_update", *(f"{t}_no_replace" for t in SQLITE_NO_REPLACE)):
            op.execute(f"DROP TRIGGER {trigger}")
