"""writeback and sharing tables

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:00:00

Filled in by the writeback_and_sharing work: add the operations from
`alembic revision --autogenerate` here (keep this revision id).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gtmsync.db.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "writeback_settings",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "mode",
            sa.Enum("TASKS", "EVENTS", name="writeback_mode", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("calls_as_phonecalls", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_writeback_settings_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_writeback_settings")),
        sa.UniqueConstraint("org_id", name=op.f("uq_writeback_settings_org_id")),
    )
    op.create_table(
        "activities",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("EMAIL", "CALL", "MEETING", name="activity_kind", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("occurred_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column(
            "target_type",
            sa.Enum(
                "CONTACT", "COMPANY", name="activity_target_type", native_enum=False, length=20
            ),
            nullable=False,
        ),
        sa.Column("target_platform_id", sa.String(length=64), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING",
                "NOT_IN_CRM",
                "WRITTEN",
                "FAILED",
                "OFF",
                name="activity_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dynamics_table", sa.String(length=40), nullable=True),
        sa.Column("dynamics_id", sa.Uuid(), nullable=True),
        sa.Column("written_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_activities_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_activities_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activities")),
    )
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_activities_org_status_next", ["org_id", "status", "next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_activities_user_id"), ["user_id"], unique=False)
    op.create_table(
        "data_contributions",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("recorded_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_data_contributions_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_contributions")),
        sa.UniqueConstraint("org_id", "source", name=op.f("uq_data_contributions_org_id_source")),
    )
    with op.batch_alter_table("data_contributions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_contributions_day"), ["day"], unique=False)

    op.create_table(
        "data_sharing_settings",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("changed_by_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["users.id"],
            name=op.f("fk_data_sharing_settings_changed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_data_sharing_settings_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_sharing_settings")),
        sa.UniqueConstraint(
            "org_id", "category", name=op.f("uq_data_sharing_settings_org_id_category")
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("activities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_activities_user_id"))
        batch_op.drop_index("ix_activities_org_status_next")

    op.drop_table("activities")
    op.drop_table("writeback_settings")
    op.drop_table("data_sharing_settings")
    with op.batch_alter_table("data_contributions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_contributions_day"))
    op.drop_table("data_contributions")
