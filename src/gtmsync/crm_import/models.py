"""Tables of the `crm_import` feature: the GTM data model, import settings, cursors, runs, usage.

GTM records are keyed by `(org_id, source_table, dynamics_id)` with an integer surrogate
primary key: at 20M rows per org an 8-byte key keeps every secondary index small, and the
natural key stays unique for idempotent upserts. `source_table` keeps where a row came from
(a Contact may come from Dynamics `contact` or `lead`, an Account from a custom table).

Custom fields live in one JSON column `custom` per row rather than in a side table or in
columns: admins create them at runtime, per org, on tables shared by every org (no DDL per
tenant), and a row's custom values are always read together with the row. The seeds say
custom objects do not feed Advanced Search filters, so nothing needs to index into them yet.

`seen_seq` implements mark-and-sweep for backfills: each backfill of a source bumps the
cursor's sequence, every row it stores carries it, and rows left with an older sequence at
the end were deleted in Dynamics or are now excluded by an import rule. `seen_seq` has no
index of its own (migration 0009): every upsert would pay for it, the sweep reads it once
per backfill through the natural key's index.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from gtmsync.db.base import Base, BigIntPK, TimestampMixin
from gtmsync.kit.clock import utc_now


class GtmObject(StrEnum):
    ACCOUNT = "account"
    CONTACT = "contact"
    OPPORTUNITY = "opportunity"
    PRODUCT = "product"
    TASK = "task"
    USER = "user"
    ROLE = "role"


class MatchMethod(StrEnum):
    PLATFORM_ID = "platform_id"
    DOMAIN = "domain"
    NAME = "name"
    EMAIL = "email"


class RunKind(StrEnum):
    BACKFILL = "backfill"
    INCREMENTAL = "incremental"


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PAUSED = "paused"  # daily API budget reached; resumes on a later run
    STOPPED = "stopped"  # per-object limit reached; what was stored is kept
    FAILED = "failed"
    SKIPPED = "skipped"  # another run of the same org+source holds the lease


class CursorMode(StrEnum):
    DELTA = "delta"  # Dataverse change tracking (delta link)
    WATERMARK = "watermark"  # modifiedon watermark with signpost, closed start and lag


def _org_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))


class _GtmRecord(TimestampMixin):
    """Columns every imported record has."""

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID] = _org_fk()
    source_table: Mapped[str] = mapped_column(String(64))
    dynamics_id: Mapped[uuid.UUID]
    owner_id: Mapped[uuid.UUID | None]
    modified_on: Mapped[datetime | None]
    seen_seq: Mapped[int] = mapped_column(Integer, default=0)
    custom: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:  # noqa: N805 - SQLAlchemy's declared_attr form
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            UniqueConstraint("org_id", "source_table", "dynamics_id"),
            Index(f"ix_{name}_org_owner", "org_id", "owner_id"),
            *cls._extra_indexes(name),
        )

    @classmethod
    def _extra_indexes(cls, name: str) -> tuple[Index, ...]:  # noqa: ARG003
        return ()


class ImportedAccount(_GtmRecord, Base):
    __tablename__ = "import_accounts"

    name: Mapped[str | None] = mapped_column(String(250))
    account_type: Mapped[str | None] = mapped_column(String(100))
    annual_spend: Mapped[Decimal | None] = mapped_column(Numeric(19, 4))
    domain: Mapped[str | None] = mapped_column(String(250))
    hq_phone: Mapped[str | None] = mapped_column(String(50))
    website: Mapped[str | None] = mapped_column(String(250))
    platform_company_id: Mapped[str | None] = mapped_column(String(64))
    matched_company_id: Mapped[int | None] = mapped_column(BigInteger)
    match_method: Mapped[str | None] = mapped_column(String(20))

    @classmethod
    def _extra_indexes(cls, name: str) -> tuple[Index, ...]:
        return (
            Index(f"ix_{name}_org_type", "org_id", "account_type"),
            Index(f"ix_{name}_org_company", "org_id", "matched_company_id"),
        )


class ImportedContact(_GtmRecord, Base):
    """Dynamics contacts and leads (`source_table` says which)."""

    __tablename__ = "import_contacts"

    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    do_not_email: Mapped[bool | None] = mapped_column(Boolean)
    email: Mapped[str | None] = mapped_column(String(320))
    job_title: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(100))
    mobile_phone: Mapped[str | None] = mapped_column(String(50))
    lead_status: Mapped[str | None] = mapped_column(String(100))
    account_dynamics_id: Mapped[uuid.UUID | None]
    platform_contact_id: Mapped[str | None] = mapped_column(String(64))
    matched_contact_id: Mapped[int | None] = mapped_column(BigInteger)
    match_method: Mapped[str | None] = mapped_column(String(20))

    @classmethod
    def _extra_indexes(cls, name: str) -> tuple[Index, ...]:
        return (
            Index(f"ix_{name}_org_source_status", "org_id", "source_table", "lead_status"),
            Index(f"ix_{name}_org_dne", "org_id", "do_not_email"),
            Index(f"ix_{name}_org_matched", "org_id", "matched_contact_id"),
        )


class ImportedOpportunity(_GtmRecord, Base):
    __tablename__ = "import_opportunities"

    name: Mapped[str | None] = mapped_column(String(300))
    account_dynamics_id: Mapped[uuid.UUID | None]
    amount: Mapped[Decimal | None] = mapped_column(Numeric(19, 4))
    close_date: Mapped[date | None] = mapped_column(Date)
    currency: Mapped[str | None] = mapped_column(String(100))
    is_closed: Mapped[bool | None] = mapped_column(Boolean)
    is_won: Mapped[bool | None] = mapped_column(Boolean)
    stage: Mapped[str | None] = mapped_column(String(100))
    opportunity_type: Mapped[str | None] = mapped_column(String(100))

    @classmethod
    def _extra_indexes(cls, name: str) -> tuple[Index, ...]:
        return (
            Index(f"ix_{name}_org_stage", "org_id", "stage"),
            Index(f"ix_{name}_org_close", "org_id", "close_date"),
            Index(f"ix_{name}_org_account", "org_id", "account_dynamics_id"),
        )


class ImportedProduct(_GtmRecord, Base):
    __tablename__ = "import_products"

    name: Mapped[str | None] = mapped_column(String(250))
    product_number: Mapped[str | None] = mapped_column(String(100))
    price: Mapped[Decimal | None] = mapped_column(Numeric(19, 4))


class ImportedTask(_GtmRecord, Base):
    __tablename__ = "import_tasks"

    subject: Mapped[str | None] = mapped_column(String(400))
    regarding_id: Mapped[uuid.UUID | None]
    due_on: Mapped[datetime | None]
    state: Mapped[str | None] = mapped_column(String(50))


class ImportedUser(_GtmRecord, Base):
    """Dynamics systemusers (owners of the other records)."""

    __tablename__ = "import_users"

    full_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    job_title: Mapped[str | None] = mapped_column(String(100))
    is_disabled: Mapped[bool | None] = mapped_column(Boolean)


class ImportedRole(_GtmRecord, Base):
    """Account-team style roles made from two ID fields: record X has person Y as <role>.

    `dynamics_id` is the id of the row carrying the fields (one role row per row and source);
    `record_id` is the first ID field (the row itself, or a lookup such as its account) and
    `related_id` the second (the person).
    """

    __tablename__ = "import_roles"

    role: Mapped[str] = mapped_column(String(120))
    record_table: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[uuid.UUID | None]
    related_id: Mapped[uuid.UUID | None]

    @classmethod
    def _extra_indexes(cls, name: str) -> tuple[Index, ...]:
        return (
            Index(f"ix_{name}_org_related", "org_id", "related_id"),
            Index(f"ix_{name}_org_record", "org_id", "record_id"),
        )


GTM_MODELS: dict[GtmObject, type[_GtmRecord]] = {
    GtmObject.ACCOUNT: ImportedAccount,
    GtmObject.CONTACT: ImportedContact,
    GtmObject.OPPORTUNITY: ImportedOpportunity,
    GtmObject.PRODUCT: ImportedProduct,
    GtmObject.TASK: ImportedTask,
    GtmObject.USER: ImportedUser,
    GtmObject.ROLE: ImportedRole,
}


class ImportSettings(TimestampMixin, Base):
    """Per org: the import toggle, budget, page size, limits, mapping and rules documents.

    Mapping and rules are JSON documents validated by `schemas.MappingDocument` and
    `schemas.RuleSet`: they are edited and saved whole from one page, and versioned together.
    """

    __tablename__ = "import_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    daily_budget: Mapped[int] = mapped_column(Integer)
    page_size: Mapped[int] = mapped_column(Integer, default=5000)
    lag_seconds: Mapped[int] = mapped_column(Integer, default=300)
    object_limits: Mapped[dict[str, int] | None] = mapped_column(JSON)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    schema_cache: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ImportCursor(TimestampMixin, Base):
    """Where one source (Dynamics table → GTM object) of one org stands; one run at a time.

    The lease (`locked_by`, `locked_until`) is taken with a conditional UPDATE committed on its
    own, so two workers (or a worker and the CLI) never run the same org+source at once.
    """

    __tablename__ = "import_cursors"
    __table_args__ = (UniqueConstraint("org_id", "source_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = _org_fk()
    source_key: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str | None] = mapped_column(String(20))
    delta_link: Mapped[str | None] = mapped_column(Text)
    watermark: Mapped[datetime | None]
    boundary_ids: Mapped[list[str] | None] = mapped_column(JSON)
    # An unfinished backfill: the next page to read (nextLink) and, for watermark mode, the
    # signpost it was started with.
    backfill_pending: Mapped[bool] = mapped_column(Boolean, default=True)
    backfill_reason: Mapped[str | None] = mapped_column(String(50), default="initial connection")
    backfill_next_link: Mapped[str | None] = mapped_column(Text)
    backfill_signpost: Mapped[datetime | None]
    backfill_started: Mapped[bool] = mapped_column(Boolean, default=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    stored_count: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[str | None] = mapped_column(Text)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None]


class ImportRun(Base):
    __tablename__ = "import_runs"
    __table_args__ = (Index("ix_import_runs_org_started", "org_id", "started_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = _org_fk()
    source_key: Mapped[str] = mapped_column(String(200))
    source_table: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.RUNNING)
    records_read: Mapped[int] = mapped_column(Integer, default=0)
    records_stored: Mapped[int] = mapped_column(Integer, default=0)
    records_deleted: Mapped[int] = mapped_column(Integer, default=0)
    records_excluded: Mapped[int] = mapped_column(Integer, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[str | None] = mapped_column(Text)


class ImportApiUsage(Base):
    """Dataverse requests made by the import, per org and UTC day (budget and the chart)."""

    __tablename__ = "import_api_usage"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
