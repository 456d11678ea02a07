"""search: indexes for searching millions of records

The first page of a search filtered by industry (and employee range) walks
`ix_companies_industry_name` in name order with the range checked inside the index. On SQLite
it replaces `ix_companies_industry_employees`, which SQLite's planner (no LIMIT costing, fixed
guesses for ranges) preferred for such pages, probing every company of the range; PostgreSQL
keeps it to count a range without walking the whole industry. `search_snap_stats` and the two platform counts
on `search_snapshots` let a broad CRM-filtered search estimate its total.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 13:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_snap_stats",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_search_snap_stats_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "kind", "value", name=op.f("pk_search_snap_stats")),
    )
    with op.batch_alter_table("search_snapshots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("platform_companies", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("platform_contacts", sa.BigInteger(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("companies", schema=None) as batch_op:
        if op.get_bind().dialect.name != "postgresql":
            batch_op.drop_index("ix_companies_industry_employees")
        batch_op.create_index(
            "ix_companies_industry_name",
            ["industry", "name_lower", "id", "employee_count"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_index("ix_companies_industry_name")
        if op.get_bind().dialect.name != "postgresql":
            batch_op.create_index(
                "ix_companies_industry_employees",
                ["industry", "employee_count"],
                unique=False,
            )
    with op.batch_alter_table("search_snapshots", schema=None) as batch_op:
        batch_op.drop_column("platform_contacts")
        batch_op.drop_column("platform_companies")
    op.drop_table("search_snap_stats")
