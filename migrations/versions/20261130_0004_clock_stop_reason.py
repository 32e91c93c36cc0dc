"""clocks.stop_reason: why a clock stopped without a decision (the case was terminated, refused or ended)

Revision ID: 20261130_0004
Revises: 20261127_0003
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "20261130_0004"
down_revision = "20261127_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clocks") as batch:
        batch.add_column(sa.Column("stop_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clocks") as batch:
        batch.drop_column("stop_reason")
