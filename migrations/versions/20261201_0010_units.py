"""Applicant units registered online (issue 13): a unit's name and credit code are unique among the units not
rejected (a rejected unit may register again as a new record); cases keep their 项目编号 to find possible duplicate
applications

Revision ID: 20261201_0010_units
Revises: 20261201_0008
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "20261201_0010_units"
down_revision = "20261201_0008"
branch_labels = None
depends_on = None

LIVE = sa.text("status <> 'rejected'")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # the unique constraint of 0001 has no name on SQLite: name it while the table is rebuilt, then drop it
        with op.batch_alter_table("units", naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"}) as t:
            t.drop_constraint("uq_units_name", type_="unique")
    else:
        op.drop_constraint("units_name_key", "units", type_="unique")
    op.create_index("ux_units_name_live", "units", ["name"], unique=True, sqlite_where=LIVE, postgresql_where=LIVE)
    op.create_index("ux_units_credit_code_live", "units", ["credit_code"], unique=True, sqlite_where=LIVE,
                    postgresql_where=LIVE)
    op.create_index("ix_units_status", "units", ["status", "registered_at"])
    with op.batch_alter_table("cases") as t:
        t.add_column(sa.Column("project_code", sa.String(50), nullable=True))
    op.create_index("ix_cases_project_code", "cases", ["project_code", "status"])


def downgrade() -> None:
    op.drop_index("ix_cases_project_code", "cases")
    with op.batch_alter_table("cases") as t:
        t.drop_column("project_code")
    op.drop_index("ix_units_status", "units")
    op.drop_index("ux_units_credit_code_live", "units")
    op.drop_index("ux_units_name_live", "units")
    with op.batch_alter_table("units") as t:
        t.create_unique_constraint("units_name_key", ["name"])
