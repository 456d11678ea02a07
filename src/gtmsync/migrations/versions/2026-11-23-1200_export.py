"""export tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:00:00

Filled in by the export work: add the operations from
`alembic revision --autogenerate` here (keep this revision id).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gtmsync.db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_settings",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_export_settings_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_export_settings_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_settings")),
        sa.UniqueConstraint("org_id", name=op.f("uq_export_settings_org_id")),
    )


def downgrade() -> None:
    op.drop_table("export_settings")
