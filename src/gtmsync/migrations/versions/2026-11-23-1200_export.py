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

    op.create_table(
        "exports",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("object", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("anchor_attribute", sa.String(length=100), nullable=False),
        sa.Column("anchor_has_key", sa.Boolean(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_exports_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_exports_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
    )
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exports_org_id"), ["org_id"], unique=False)

    op.create_table(
        "export_items",
        sa.Column("export_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=400), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("duplicate", sa.JSON(), nullable=True),
        sa.Column("duplicate_choice", sa.String(length=30), nullable=True),
        sa.Column("duplicate_options", sa.JSON(), nullable=False),
        sa.Column("association", sa.JSON(), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("dynamics_id", sa.Uuid(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_export_items_export_id_exports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_items")),
        sa.UniqueConstraint(
            "export_id", "position", name=op.f("uq_export_items_export_id_position")
        ),
    )
    with op.batch_alter_table("export_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_export_items_export_id"), ["export_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("export_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_items_export_id"))
    op.drop_table("export_items")
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exports_org_id"))
    op.drop_table("exports")
    op.drop_table("export_settings")
