"""Going live (issue 13): accounts' contact details and first-login password change, server-side sessions, login
throttling, applicant units registered online, departments, service stations, the key-project register, and the
log of administrative changes

Revision ID: 20261201_0008
Revises: 20261130_0007
Create Date: 2026-12-01

Existing units are approved (they were entered by an administrator); existing users keep their password and are not
asked to change it. The departments table starts empty here: ``bangban init-db`` / the service fill it from the
catalogue of the process version in force when it is empty.
"""
import sqlalchemy as sa
from alembic import op

revision = "20261201_0008"
down_revision = "20261130_0007"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("units") as t:
        t.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="approved"))
        t.add_column(sa.Column("legal_representative", sa.String(30), nullable=True))
        t.add_column(sa.Column("contact_name", sa.String(30), nullable=True))
        t.add_column(sa.Column("contact_phone", sa.String(20), nullable=True))
        t.add_column(sa.Column("registered_at", TZ, nullable=True))
        t.add_column(sa.Column("reviewed_by", sa.String(64), nullable=True))
        t.add_column(sa.Column("reviewed_at", TZ, nullable=True))
        t.add_column(sa.Column("review_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("users") as t:
        t.add_column(sa.Column("phone", sa.String(20), nullable=True))
        t.add_column(sa.Column("email", sa.String(120), nullable=True))
        t.add_column(sa.Column("station", sa.String(32), nullable=True))
        t.add_column(sa.Column("unit_admin", sa.Boolean(), nullable=False, server_default=sa.false()))
        t.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()))
        t.add_column(sa.Column("password_changed_at", TZ, nullable=True))
        t.add_column(sa.Column("created_at", TZ, nullable=True))
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("ended_at", TZ, nullable=True),
        sa.Column("ended_reason", sa.String(32), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
    )
    op.create_index("ix_sessions_user", "sessions", ["user_id", "ended_at"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", TZ, nullable=True),
        sa.Column("locked_until", TZ, nullable=True),
    )
    op.create_table(
        "departments",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("phone", sa.String(30), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_table(
        "stations",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("phone", sa.String(30), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_table(
        "key_register",
        sa.Column("id", ID, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("document_no", sa.String(100), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_key_register_code", "key_register", ["kind", "code"])
    op.create_table(
        "admin_log",
        sa.Column("id", ID, primary_key=True),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor_id", ID, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("actor_name", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("target_kind", sa.String(32), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_admin_log_target", "admin_log", ["target_kind", "target"])
    op.create_index("ix_admin_log_at", "admin_log", ["at"])


def downgrade() -> None:
    for index, table in (("ix_admin_log_at", "admin_log"), ("ix_admin_log_target", "admin_log"),
                         ("ix_key_register_code", "key_register"), ("ix_sessions_user", "sessions")):
        op.drop_index(index, table_name=table)
    for table in ("admin_log", "key_register", "stations", "departments", "login_throttle", "sessions"):
        op.drop_table(table)
    with op.batch_alter_table("users") as t:
        for column in ("created_at", "password_changed_at", "must_change_password", "unit_admin", "station", "email",
                       "phone"):
            t.drop_column(column)
    with op.batch_alter_table("units") as t:
        for column in ("review_reason", "reviewed_at", "reviewed_by", "registered_at", "contact_phone", "contact_name",
                       "legal_representative", "status"):
            t.drop_column(column)
