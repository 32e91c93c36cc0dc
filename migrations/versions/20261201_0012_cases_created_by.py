"""Station clerks see the cases they submitted (manifest ``sees_cases: submitted``): an index on cases.created_by

Revision ID: 20261201_0012
Revises: 20261201_0010_units
Create Date: 2026-12-01
"""
from alembic import op

revision = "20261201_0012"
down_revision = "20261201_0010_units"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_created_by", "cases", ["created_by", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_cases_created_by", table_name="cases")
