"""Case files (issue 17): one row per uploaded material version (the bytes are content-addressed on disk), and the
材料交接 checklist's marks (received on paper / not applicable with a reason), and the log of file downloads.

Revision ID: 20261201_0017_files
Revises: 20261201_0015_outbox
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "20261201_0017_files"
down_revision = "20261201_0015_outbox"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "case_files",
        sa.Column("id", ID, primary_key=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("material", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("original_name", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.UniqueConstraint("case_id", "item_code", "material", "version", name="uq_case_files_version"),
    )
    op.create_index("ix_case_files_sha256", "case_files", ["sha256"])
    op.create_table(
        "material_marks",
        sa.Column("id", ID, primary_key=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("material", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("marked_by", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
    )
    op.create_index("ix_material_marks_case", "material_marks", ["case_id", "item_code", "material"])
    op.create_table(
        "file_downloads",
        sa.Column("id", ID, primary_key=True),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("file_id", ID, sa.ForeignKey("case_files.id"), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("preview", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_file_downloads_case", "file_downloads", ["case_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_file_downloads_case", table_name="file_downloads")
    op.drop_table("file_downloads")
    op.drop_index("ix_material_marks_case", table_name="material_marks")
    op.drop_table("material_marks")
    op.drop_index("ix_case_files_sha256", table_name="case_files")
    op.drop_table("case_files")
