"""Tables of the search feature: the daily CRM snapshot, filter settings, saved searches.

The snapshot is a copy of the imported Dynamics data reduced to what the CRM filters and
indicators read, keyed by the *platform* record it matched (`company_id`, `contact_id`). The
seeds say the filter data refreshes once a day, not on Sync Now: searches read these tables,
never the import's, so an import run changes nothing a user sees until the next snapshot.
Every filter is an EXISTS probe on `(org_id, company_id, ...)`, hence the index shapes.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
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
)
from sqlalchemy.orm import Mapped, mapped_column

from gtmsync.db.base import Base, BigIntPK, TimestampMixin, UTCDateTime
from gtmsync.kit.clock import utc_now


def _org_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))


class SearchSnapshot(Base):
    """When an org's snapshot was taken and what it holds (the "filter date")."""

    __tablename__ = "search_snapshots"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
    accounts: Mapped[int] = mapped_column(BigInteger, default=0)
    contacts: Mapped[int] = mapped_column(BigInteger, default=0)
    leads: Mapped[int] = mapped_column(BigInteger, default=0)
    opportunities: Mapped[int] = mapped_column(BigInteger, default=0)
    truncated: Mapped[str | None] = mapped_column(String(200))
    # Platform records when the snapshot was taken: the denominators of `SnapStat` fractions.
    platform_companies: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    platform_contacts: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class SnapStat(Base):
    """How many platform records have a Dynamics record with a given value, per snapshot.

    `kind` is e.g. `account_owner`, `opp_stage`, `lead_status`; `value` the owner id, stage...
    (empty for "any"). Search multiplies these fractions to estimate the total of a broad
    CRM-filtered search instead of probing every candidate (see `service.estimate`).
    """

    __tablename__ = "search_snap_stats"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    records: Mapped[int] = mapped_column(BigInteger)


class SnapOwner(Base):
    """Owners (Dynamics users) seen in the snapshot: the owner picker and filter sentences."""

    __tablename__ = "search_snap_owners"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))


class SnapAccount(Base):
    """A Dynamics account matched to a platform company (one row per account)."""

    __tablename__ = "search_snap_accounts"
    __table_args__ = (
        Index("ix_search_snap_accounts_company_owner", "org_id", "company_id", "owner_id"),
        Index("ix_search_snap_accounts_company_type", "org_id", "company_id", "account_type"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID] = _org_fk()
    company_id: Mapped[int] = mapped_column(BigInteger)
    dynamics_id: Mapped[uuid.UUID]
    name: Mapped[str | None] = mapped_column(String(250))
    owner_id: Mapped[uuid.UUID | None]
    owner_name: Mapped[str | None] = mapped_column(String(200))
    account_type: Mapped[str | None] = mapped_column(String(100))
    modified_on: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    custom: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The most recently modified of the accounts matching one company: the one shown.
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    match_count: Mapped[int] = mapped_column(Integer, default=1)


class SnapOpportunity(Base):
    """An opportunity of a matched account, keyed by the platform company."""

    __tablename__ = "search_snap_opportunities"
    __table_args__ = (
        Index("ix_search_snap_opportunities_company_stage", "org_id", "company_id", "stage"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID] = _org_fk()
    company_id: Mapped[int] = mapped_column(BigInteger)
    stage: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(19, 4))
    close_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))  # open | won | lost


class SnapContact(Base):
    """A Dynamics contact or lead (`source_table`) matched to a platform contact."""

    __tablename__ = "search_snap_contacts"
    __table_args__ = (
        Index("ix_search_snap_contacts_contact_owner", "org_id", "contact_id", "owner_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    org_id: Mapped[uuid.UUID] = _org_fk()
    contact_id: Mapped[int] = mapped_column(BigInteger)
    source_table: Mapped[str] = mapped_column(String(64))
    dynamics_id: Mapped[uuid.UUID]
    name: Mapped[str | None] = mapped_column(String(250))
    owner_id: Mapped[uuid.UUID | None]
    owner_name: Mapped[str | None] = mapped_column(String(200))
    do_not_email: Mapped[bool] = mapped_column(Boolean, default=False)
    lead_status: Mapped[str | None] = mapped_column(String(100))
    modified_on: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
    custom: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    match_count: Mapped[int] = mapped_column(Integer, default=1)


class SearchFilterSettings(TimestampMixin, Base):
    """Per org: which CRM filter groups users see, and up to three custom fields per object."""

    __tablename__ = "search_filter_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    account: Mapped[bool] = mapped_column(Boolean, default=True)
    opportunity: Mapped[bool] = mapped_column(Boolean, default=True)
    contact: Mapped[bool] = mapped_column(Boolean, default=True)
    lead: Mapped[bool] = mapped_column(Boolean, default=True)
    # {"account": [{"attribute": "x", "type": "Picklist", "label": "X"}], "contact": [...]}
    custom_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class SavedSearch(TimestampMixin, Base):
    __tablename__ = "saved_searches"
    __table_args__ = (Index("ix_saved_searches_org_user", "org_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_id: Mapped[uuid.UUID] = _org_fk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    object: Mapped[str] = mapped_column(String(20))
    params: Mapped[list[list[str]]] = mapped_column(JSON)
    alerts: Mapped[bool] = mapped_column(Boolean, default=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))


class SavedSearchMatch(Base):
    """A record that matched a saved search; `seen_at` is set when the user has looked."""

    __tablename__ = "saved_search_matches"

    saved_search_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("saved_searches.id", ondelete="CASCADE"), primary_key=True
    )
    record_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True), default=utc_now)
    is_new: Mapped[bool] = mapped_column(Boolean, default=True)
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(timezone=True))
