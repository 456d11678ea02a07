"""crm import tables

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:00:00

GTM data model (import_accounts, _contacts, _opportunities, _products, _tasks, _users,
_roles), import settings, cursors, runs and API usage.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gtmsync.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_accounts",
        sa.Column("name", sa.String(length=250), nullable=True),
        sa.Column("account_type", sa.String(length=100), nullable=True),
        sa.Column("annual_spend", sa.Numeric(precision=19, scale=4), nullable=True),
        sa.Column("domain", sa.String(length=250), nullable=True),
        sa.Column("hq_phone", sa.String(length=50), nullable=True),
        sa.Column("website", sa.String(length=250), nullable=True),
        sa.Column("platform_company_id", sa.String(length=64), nullable=True),
        sa.Column("matched_company_id", sa.BigInteger(), nullable=True),
        sa.Column("match_method", sa.String(length=20), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source_table", sa.String(length=64), nullable=False),
        sa.Column("dynamics_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("modified_on", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seen_seq", sa.Integer(), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_import_accounts_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_accounts")),
        sa.UniqueConstraint(
            "org_id",
            "source_table",
            "dynamics_id",
            name=op.f("uq_import_accounts_org_id_source_table_dynamics_id"),
        ),
    )
    with op.batch_alter_table("import_accounts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_import_accounts_org_company", ["org_id", "matched_company_id"], unique=False
        )
        batch_op.create_index("ix_import_accounts_org_owner", ["org_id", "owner_id"], unique=False)
        batch_op.create_index(
            "ix_import_accounts_org_seen", ["org_id", "source_table", "seen_seq"], unique=False
        )
        batch_op.create_index(
            "ix_import_accounts_org_type", ["org_id", "account_type"], unique=False
        )
    op.create_table(
        "import_api_usage",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_import_api_usage_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "day", name=op.f("pk_import_api_usage")),
    )
    op.create_table(
        "import_contacts",
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("do_not_email", sa.Boolean(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("job_title", sa.String(length=200), nullable=True),
        sa.Column("department", sa.String(length=100), nullable=True),
        sa.Column("mobile_phone", sa.String(length=50), nullable=True),
        sa.Column("lead_status", sa.String(length=100), nullable=True),
        sa.Column("account_dynamics_id", sa.Uuid(), nullable=True),
        sa.Column("platform_contact_id", sa.String(length=64), nullable=True),
        sa.Column("matched_contact_id", sa.BigInteger(), nullable=True),
        sa.Column("match_method", sa.String(length=20), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source_table", sa.String(length=64), nullable=False),
        sa.Column("dynamics_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("modified_on", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seen_seq", sa.Integer(), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_import_contacts_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_contacts")),
        sa.UniqueConstraint(
            "org_id",
            "source_table",
            "dynamics_id",
            name=op.f("uq_import_contacts_org_id_source_table_dynamics_id"),
        ),
    )
    with op.batch_alter_table("import_contacts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_import_contacts_org_dne", ["org_id", "do_not_email"], unique=False
        )
        batch_op.create_index(
            "ix_import_contacts_org_matched", ["org_id", "matched_contact_id"], unique=False
        )
        batch_op.create_index("ix_import_contacts_org_owner", ["org_id", "owner_id"], unique=False)
        batch_op.create_index(
            "ix_import_contacts_org_seen", ["org_id", "source_table", "seen_seq"], unique=False
        )
        batch_op.create_index(
            "ix_import_contacts_org_source_status",
            ["org_id", "source_table", "lead_status"],
            unique=False,
        )
    op.create_table(
        "import_cursors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=True),
        sa.Column("delta_link", sa.Text(), nullable=True),
        sa.Column("watermark", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("boundary_ids", sa.JSON(), nullable=True),
        sa.Column("backfill_pending", sa.Boolean(), nullable=False),
        sa.Column("backfill_reason", sa.String(length=50), nullable=True),
        sa.Column("backfill_next_link", sa.Text(), nullable=True),
        sa.Column("backfill_signpost", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("backfill_started", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("stored_count", sa.BigInteger(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("locked_until", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_import_cursors_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_cursors")),
        sa.UniqueConstraint(
            "org_id", "source_key", name=op.f("uq_import_cursors_org_id_source_key")
        ),
    )
    op.create_table(
        "import_opportunities",
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("account_dynamics_id", sa.Uuid(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=19, scale=4), nullable=True),
        sa.Column("close_date", sa.Date(), nullable=True),
        sa.Column("currency", sa.String(length=100), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=True),
        sa.Column("is_won", sa.Boolean(), nullable=True),
        sa.Column("stage", sa.String(length=100), nullable=True),
        sa.Column("opportunity_type", sa.String(length=100), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source_table", sa.String(length=64), nullable=False),
        sa.Column("dynamics_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("modified_on", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seen_seq", sa.Integer(), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_import_opportunities_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_opportunities")),
        sa.UniqueConstraint(
            "org_id",
            "source_table",
            "dynamics_id",
            name=op.f("uq_import_opportunities_org_id_source_table_dynamics_id"),
        ),
    )
    with op.batch_alter_table("import_opportunities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_import_opportunities_org_account", ["org_id", "account_dynamics_id"], unique=False
        )
        batch_op.create_index(
            "ix_import_opportunities_org_close", ["org_id", "close_date"], unique=False
        )
        batch_op.create_index(
            "ix_import_opportunities_org_owner", ["org_id", "owner_id"], unique=False
        )
        batch_op.create_index(
            "ix_import_opportunities_org_seen", ["org_id", "source_table", "seen_seq"], unique=False
        )
        batch_op.create_index(
            "ix_import_opportunities_org_stage", ["org_id", "stage"], unique=False
        )
    op.create_table(
        "import_products",
        sa.Column("name", sa.String(length=250), nullable=True),
        sa.Column("product_number", sa.String(length=100), nullable=True),
        sa.Column("price", sa.Numeric(precision=19, scale=4), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source_table", sa.String(length=64), nullable=False),
        sa.Column("dynamics_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("modified_on", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seen_seq", sa.Integer(), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_import_products_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_products")),
        sa.UniqueConstraint(
            "org_id",
            "source_table",
            "dynamics_id",
            name=op.f("uq_import_products_org_id_source_table_dynamics_id"),
        ),
    )
    with op.batch_alter_table("import_products", schema=None) as batch_op:
        batch_op.create_index("ix_import_products_org_owner", ["org_id", "owner_id"], unique=False)
        batch_op.create_index(
            "ix_import_products_org_seen", ["org_id", "source_table", "seen_seq"], unique=False
        )
    op.create_table(
        "import_roles",
        sa.Column("role", sa.String(length=120), nullable=False),
        sa.Column("record_table", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=True),
        sa.Column("related_id", sa.Uuid(), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source_table", sa.String(length=64), nullable=False),
        sa.Column("dynamics_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("modified_on", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seen_seq", sa.Integer(), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_import_roles_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_roles")),
        sa.UniqueConstraint(
            "org_id",
            "source_table",
            "dynamics_id",
            name=op.f("uq_import_roles_org_id_source_table_dynamics_id"),
        ),
    )
    with op.batch_alter_table("import_roles", schema=None) as batch_op:
        batch_op.create_index("ix_import_roles_org_owner", ["org_id", "owner_id"], unique=False)
        batch_op.create_index("ix_import_roles_org_record", ["org_id", "record_id"], unique=False)
        batch_op.create_index("ix_import_roles_org_related", ["org_id", "related_id"], unique=False)
        batch_op.create_index(
            "ix_import_roles_org_seen", ["org_id", "source_table", "seen_seq"], unique=False
        )
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("source_table", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=50), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("records_read", sa.Integer(), nullable=False),
        sa.Column("records_stored", sa.Integer(), nullable=False),
        sa.Column("records_deleted", sa.Integer(), nullable=False),
        sa.Column("records_excluded", sa.Integer(), nullable=False),
        sa.Column("api_calls", sa.Integer(), nullable=False),
        sa.Column("started_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("errors", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_import_runs_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )
    with op.batch_alter_table("import_runs", schema=None) as batch_op:
        batch_op.create_index("ix_import_runs_org_started", ["org_id", "started_at"], unique=False)
    op.create_table(
        "import_settings",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("daily_budget", sa.Integer(), nullable=False),
        sa.Column("page_size", sa.Integer(), nullable=False),
        sa.Column("lag_seconds", sa.Integer(), nullable=False),
        sa.Column("object_limits", sa.JSON(), nullable=True),
        sa.Column("mapping", sa.JSON(), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=True),
        sa.Column("schema_cache", sa.JSON(), nullable=True),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_import_settings_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_import_settings")),
    )
    op.create_table(
        "import_tasks",
        sa.Column("subject", sa.String(length=400), nullable=True),
        sa.Column("regarding_id", sa.Uuid(), nullable=True),
        sa.Column("due_on", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=50), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source_table", sa.String(length=64), nullable=False),
        sa.Column("dynamics_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("modified_on", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seen_seq", sa.Integer(), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_import_tasks_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_tasks")),
        sa.UniqueConstraint(
            "org_id",
            "source_table",
            "dynamics_id",
            name=op.f("uq_import_tasks_org_id_source_table_dynamics_id"),
        ),
    )
    with op.batch_alter_table("import_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_import_tasks_org_owner", ["org_id", "owner_id"], unique=False)
        batch_op.create_index(
            "ix_import_tasks_org_seen", ["org_id", "source_table", "seen_seq"], unique=False
        )
    op.create_table(
        "import_users",
        sa.Column("full_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("job_title", sa.String(length=100), nullable=True),
        sa.Column("is_disabled", sa.Boolean(), nullable=True),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("source_table", sa.String(length=64), nullable=False),
        sa.Column("dynamics_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("modified_on", gtmsync.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seen_seq", sa.Integer(), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=True),
        sa.Column("created_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("modified_at", gtmsync.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_import_users_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_users")),
        sa.UniqueConstraint(
            "org_id",
            "source_table",
            "dynamics_id",
            name=op.f("uq_import_users_org_id_source_table_dynamics_id"),
        ),
    )
    with op.batch_alter_table("import_users", schema=None) as batch_op:
        batch_op.create_index("ix_import_users_org_owner", ["org_id", "owner_id"], unique=False)
        batch_op.create_index(
            "ix_import_users_org_seen", ["org_id", "source_table", "seen_seq"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("import_users", schema=None) as batch_op:
        batch_op.drop_index("ix_import_users_org_seen")
        batch_op.drop_index("ix_import_users_org_owner")
    op.drop_table("import_users")
    with op.batch_alter_table("import_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_import_tasks_org_seen")
        batch_op.drop_index("ix_import_tasks_org_owner")
    op.drop_table("import_tasks")
    op.drop_table("import_settings")
    with op.batch_alter_table("import_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_import_runs_org_started")
    op.drop_table("import_runs")
    with op.batch_alter_table("import_roles", schema=None) as batch_op:
        batch_op.drop_index("ix_import_roles_org_seen")
        batch_op.drop_index("ix_import_roles_org_related")
        batch_op.drop_index("ix_import_roles_org_record")
        batch_op.drop_index("ix_import_roles_org_owner")
    op.drop_table("import_roles")
    with op.batch_alter_table("import_products", schema=None) as batch_op:
        batch_op.drop_index("ix_import_products_org_seen")
        batch_op.drop_index("ix_import_products_org_owner")
    op.drop_table("import_products")
    with op.batch_alter_table("import_opportunities", schema=None) as batch_op:
        batch_op.drop_index("ix_import_opportunities_org_stage")
        batch_op.drop_index("ix_import_opportunities_org_seen")
        batch_op.drop_index("ix_import_opportunities_org_owner")
        batch_op.drop_index("ix_import_opportunities_org_close")
        batch_op.drop_index("ix_import_opportunities_org_account")
    op.drop_table("import_opportunities")
    op.drop_table("import_cursors")
    with op.batch_alter_table("import_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_import_contacts_org_source_status")
        batch_op.drop_index("ix_import_contacts_org_seen")
        batch_op.drop_index("ix_import_contacts_org_owner")
        batch_op.drop_index("ix_import_contacts_org_matched")
        batch_op.drop_index("ix_import_contacts_org_dne")
    op.drop_table("import_contacts")
    op.drop_table("import_api_usage")
    with op.batch_alter_table("import_accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_import_accounts_org_type")
        batch_op.drop_index("ix_import_accounts_org_seen")
        batch_op.drop_index("ix_import_accounts_org_owner")
        batch_op.drop_index("ix_import_accounts_org_company")
    op.drop_table("import_accounts")
