"""calendar_changes: the working-day calendar's history, append-only, with a baseline of the calendar at migration

Revision ID: 20261130_0006
Revises: 20261130_0004
Create Date: 2026-11-30

Baseline: nothing recorded the calendar's changes before this migration, so the best known calendar for any earlier
instant is the one in the tables now (the one audit replay used until now). One ``baseline`` row per administrator's
day and year present is written here (``by`` 数据迁移, ``at`` the migration's time); replay treats the baseline as in
force from the beginning of time and applies later changes forwards from it (``engine.calhistory``). An empty
calendar gives no baseline rows, and the history then starts empty, which is exact.
"""
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

revision = "20261130_0006"
down_revision = "20261130_0005"
branch_labels = None
depends_on = None

MESSAGE = "calendar_changes is append-only (日历变更记录只能追加，不能修改或删除)"
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    table = op.create_table(
        "calendar_changes",
        sa.Column("seq", ID, nullable=False),
        sa.Column("change_no", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("kind_before", sa.String(length=8), nullable=True),
        sa.Column("name_before", sa.String(length=50), nullable=True),
        sa.Column("kind_after", sa.String(length=8), nullable=True),
        sa.Column("name_after", sa.String(length=50), nullable=True),
        sa.Column("complete_before", sa.Boolean(), nullable=True),
        sa.Column("complete_after", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_calendar_changes_change_no", "calendar_changes", ["change_no"])
    bind = op.get_bind()
    at = datetime.now(UTC)
    base = {"change_no": 0, "at": at, "by": "数据迁移", "source": "baseline", "since": None,
            "kind_before": None, "name_before": None, "complete_before": None}
    rows = [dict(base, year=r.year, day=None, kind_after=None, name_after=None, complete_after=bool(r.complete))
            for r in bind.execute(sa.text("SELECT year, complete FROM calendar_years ORDER BY year"))]
    rows += [dict(base, year=r.year, day=date.fromisoformat(str(r.day)[:10]), kind_after=r.kind, name_after=r.name or "",
                  complete_after=None)
             for r in bind.execute(sa.text("SELECT day, year, kind, name FROM calendar_days ORDER BY day"))]
    if rows:
        op.bulk_insert(table, rows)
    if bind.dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION bangban_calendar_changes_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '{MESSAGE}';
            END;
            $$ LANGUAGE plpgsql""")
        op.execute("CREATE TRIGGER calendar_changes_append_only BEFORE UPDATE OR DELETE ON calendar_changes "
                   "FOR EACH ROW EXECUTE FUNCTION bangban_calendar_changes_append_only()")
        op.execute("CREATE TRIGGER calendar_changes_no_truncate BEFORE TRUNCATE ON calendar_changes "
                   "FOR EACH STATEMENT EXECUTE FUNCTION bangban_calendar_changes_append_only()")
    else:
        op.execute("CREATE TRIGGER calendar_changes_no_update BEFORE UPDATE ON calendar_changes "
                   f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
        op.execute("CREATE TRIGGER calendar_changes_no_delete BEFORE DELETE ON calendar_changes "
                   f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
        # INSERT OR REPLACE deletes the old row without firing the DELETE trigger: refuse a taken seq up front
        op.execute("CREATE TRIGGER calendar_changes_no_replace BEFORE INSERT ON calendar_changes "
                   "WHEN EXISTS (SELECT 1 FROM calendar_changes WHERE seq = NEW.seq) "
                   f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER calendar_changes_no_truncate ON calendar_changes")
        op.execute("DROP TRIGGER calendar_changes_append_only ON calendar_changes")
        op.execute("DROP FUNCTION bangban_calendar_changes_append_only()")
    else:
        op.execute("DROP TRIGGER calendar_changes_no_replace")
        op.execute("DROP TRIGGER calendar_changes_no_delete")
        op.execute("DROP TRIGGER calendar_changes_no_update")
    op.drop_index("ix_calendar_changes_change_no", table_name="calendar_changes")
    op.drop_table("calendar_changes")
