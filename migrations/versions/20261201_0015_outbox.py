"""Notifications outbox (issue 15): each notification carries a kind, subject, link and idempotency key; one
``deliveries`` row per (notification, channel, recipient user), written in the transaction of the event that causes
it and delivered by the worker with retries (in-app rows are delivered at once and carry read/unread); each user's
chosen channels in ``notification_prefs``.

Notifications written before this revision get in-app rows for the users their recipient named then (unread).

Revision ID: 20261201_0015_outbox
Revises: 20261201_0014_search
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "20261201_0015_outbox"
down_revision = "20261201_0014_search"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("subject", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("link", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("idem_key", sa.String(length=120), nullable=True))
        batch_op.create_index("ux_notifications_idem_key", ["idem_key"], unique=True)
    op.create_table(
        "deliveries",
        sa.Column("id", ID, primary_key=True),
        sa.Column("notification_id", ID, sa.ForeignKey("notifications.id"), nullable=False),
        sa.Column("case_id", ID, sa.ForeignKey("cases.id"), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("idem_key", sa.String(length=240), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("idem_key", name="uq_deliveries_idem_key"),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_deliveries_user", "deliveries", ["username", "channel", "read_at"])
    op.create_index("ix_deliveries_case", "deliveries", ["case_id", "id"])
    op.create_index("ix_deliveries_notification", "deliveries", ["notification_id"])
    op.create_table(
        "notification_prefs",
        sa.Column("username", sa.String(length=64), primary_key=True),
        sa.Column("channels", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    # the notices of before: an in-app row for each user the recipient named (user, department, role), unread
    op.execute("UPDATE notifications SET idem_key = 'n' || CAST(id AS VARCHAR(20)) WHERE idem_key IS NULL")
    members = (
        "SELECT n.id, n.case_id, u.username, n.created_at, n.idem_key FROM notifications n JOIN users u ON u.active AND ("
        " n.recipient = 'user:' || u.username"
        " OR (u.department IS NOT NULL AND n.recipient = 'dept:' || u.department)"
        " OR (n.recipient LIKE 'role:%' AND ',' || u.roles || ',' LIKE '%,' || substr(n.recipient, 6) || ',%'))")
    op.execute("INSERT INTO deliveries (notification_id, case_id, channel, username, status, attempts, idem_key, "
               "created_at, sent_at) SELECT m.id, m.case_id, 'inapp', m.username, 'sent', 0, "
               "m.idem_key || '/inapp/' || m.username, m.created_at, m.created_at FROM (" + members + ") m")


def downgrade() -> None:
    op.drop_table("notification_prefs")
    op.drop_index("ix_deliveries_notification", table_name="deliveries")
    op.drop_index("ix_deliveries_case", table_name="deliveries")
    op.drop_index("ix_deliveries_user", table_name="deliveries")
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.drop_table("deliveries")
    with op.batch_alter_table("notifications") as batch_op:
        batch_op.drop_index("ux_notifications_idem_key")
        batch_op.drop_column("idem_key")
        batch_op.drop_column("link")
        batch_op.drop_column("subject")
        batch_op.drop_column("kind")
