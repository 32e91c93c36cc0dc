"""events are append-only: the database refuses UPDATE and DELETE on them

Revision ID: 20261127_0003
Revises: 20261127_0002
Create Date: 2026-11-27
"""
from alembic import op

revision = "20261127_0003"
down_revision = "20261127_0002"
branch_labels = None
depends_on = None

MESSAGE = "events are append-only (事件记录只能追加，不能修改或删除)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION bangban_events_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}';
            END;
            $$ LANGUAGE plpgsql""")
        op.execute("CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
                   "FOR EACH ROW EXECUTE FUNCTION bangban_events_append_only()")
        op.execute("CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
                   "FOR EACH STATEMENT EXECUTE FUNCTION bangban_events_append_only()")
    else:
        op.execute(f"CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
        op.execute(f"CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER events_no_truncate ON events")
        op.execute("DROP TRIGGER events_append_only ON events")
        op.execute("DROP FUNCTION bangban_events_append_only()")
    else:
        op.execute("DROP TRIGGER events_no_delete")
        op.execute("DROP TRIGGER events_no_update")
