"""crm_import: storage for fast backfills

Drops the `(org_id, source_table, seen_seq)` index of every GTM record table. Only the
backfill's end-of-run sweep (`seen_seq < seq`) read it, once per backfill, while every
upserted record paid for it, twice on a re-backfill (each row's `seen_seq` changes, so its
entry moved). The sweep now walks the source's rows through the unique
`(org_id, source_table, dynamics_id)` index instead: one pass per backfill.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 13:02:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "import_accounts",
    "import_contacts",
    "import_opportunities",
    "import_products",
    "import_roles",
    "import_tasks",
    "import_users",
)


def upgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_org_seen", table_name=table)


def downgrade() -> None:
    for table in TABLES:
        op.create_index(
            f"ix_{table}_org_seen", table, ["org_id", "source_table", "seen_seq"], unique=False
        )
