"""jobs: leases and schedule claims for running on many workers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gtmsync.db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("acquired_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )
    op.create_table(
        "schedule_claims",
        sa.Column("task", sa.String(length=100), nullable=False),
        sa.Column("period_start", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task", "period_start", name=op.f("pk_schedule_claims")),
    )


def downgrade() -> None:
    op.drop_table("schedule_claims")
    op.drop_table("job_leases")
