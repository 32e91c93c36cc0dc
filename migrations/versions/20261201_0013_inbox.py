"""The inbox in urgency order: each inbox row carries its running clock's due date and warning moment (copied in
the step's transaction), and its access alternative as one key (role|department|assignee), indexed with the unit for an applicant's.

Existing rows take the values of their case's running, unpaused clock.

Revision ID: 20261201_0013_inbox
Revises: 20261201_0012
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "20261201_0013_inbox"
down_revision = "20261201_0012"
branch_labels = None
depends_on = None

_RUNNING = ("FROM clocks WHERE clocks.case_id = inbox.case_id AND clocks.key = inbox.clock_key "
            "AND clocks.stopped_at IS NULL AND clocks.paused_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch_op:
        batch_op.add_column(sa.Column("due_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("audience", sa.String(length=140), nullable=True))
        batch_op.drop_index("ix_inbox_unit")
        batch_op.create_index("ix_inbox_audience", ["audience", "due_date", "created_at", "task_id"], unique=False)
        batch_op.create_index("ix_inbox_unit_audience", ["unit_id", "audience", "due_date", "created_at", "task_id"],
                              unique=False)
    op.execute(f"UPDATE inbox SET due_date = (SELECT clocks.due_date {_RUNNING}), "
               f"warn_at = (SELECT clocks.yellow_at {_RUNNING}) WHERE inbox.clock_key IS NOT NULL")
    op.execute("UPDATE inbox SET warn_at = NULL WHERE due_date IS NULL")
    # an empty department or assignee means none (access.may_act): store it as NULL, one alternative fewer
    op.execute("UPDATE inbox SET department = NULL WHERE department = ''")
    op.execute("UPDATE inbox SET assignee = NULL WHERE assignee = ''")
    op.execute("UPDATE inbox SET audience = role || '|' || coalesce(department, '') || '|' || coalesce(assignee, '')")


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch_op:
        batch_op.drop_index("ix_inbox_unit_audience")
        batch_op.drop_index("ix_inbox_audience")
        batch_op.create_index("ix_inbox_unit", ["unit_id", "created_at"], unique=False)
        batch_op.drop_column("audience")
        batch_op.drop_column("warn_at")
        batch_op.drop_column("due_date")
