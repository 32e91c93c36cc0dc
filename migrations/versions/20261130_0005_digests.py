"""digest_leaves and digests: the append-only Merkle tree of case chain heads and its signed tree heads

Revision ID: 20261130_0005
Revises: 20261130_0004
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "20261130_0005"
down_revision = "20261130_0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "digest_leaves",
        sa.Column("idx", ID, primary_key=True, autoincrement=False),
        sa.Column("case_no", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
    )
    op.create_index("ix_digest_leaves_case", "digest_leaves", ["case_no", "idx"])
    op.create_table(
        "digests",
        sa.Column("id", ID, primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
    )
    op.create_index("ix_digests_at", "digests", ["at"])


def downgrade() -> None:
    op.drop_index("ix_digests_at", table_name="digests")
    op.drop_table("digests")
    op.drop_index("ix_digest_leaves_case", table_name="digest_leaves")
    op.drop_table("digest_leaves")
