"""Platform tables.

Orgs own users, sessions and API tokens: everything an org owns is filtered by `org_id`.
Companies, contacts and intent signals are the platform's shared database (the product the
platform sells), identified by stable `platform_id` strings that exports write into Dynamics
as the anchor for duplicate checks and idempotent retries.

Companies, contacts and signals use integer surrogate keys rather than UUIDs: they are the
bulk-loaded, millions-of-rows tables, and integer keys keep both the load and the joins fast.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gtmsync.db.base import UUIDPK, Base, BigIntPK, TimestampMixin
from gtmsync.kit.clock import utc_now


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


class Org(UUIDPK, TimestampMixin, Base):
    __tablename__ = "orgs"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    # Contractual opt-out of data sharing: when true the Data Sharing toggles are locked OFF.
    data_sharing_contract_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)

    users: Mapped[list[User]] = relationship(back_populates="org")


class User(UUIDPK, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))  # stored lower-cased
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="user_role", native_enum=False, length=20), default=Role.USER
    )
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    org: Mapped[Org] = relationship(back_populates="users")

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class LoginSession(TimestampMixin, Base):
    """Server-side portal sessions: the cookie carries only a signed random ID.

    A fresh ID is issued at every sign-in (no session fixation) and deleting the row signs the
    browser out at once.
    """

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie value
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class ApiToken(UUIDPK, TimestampMixin, Base):
    """Per-user API tokens; only a SHA-256 of the token is kept, the token is shown once."""

    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown in Settings to tell tokens apart
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Company(TimestampMixin, Base):
    __tablename__ = "companies"
    __table_args__ = (
        Index("ix_companies_name_lower", "name_lower"),
        # Advanced Search walks one industry in name order and filters the employee range
        # inside the index (migration 0008): the first page of a narrow search reads a few
        # thousand entries instead of sorting every match.
        Index("ix_companies_industry_name", "industry", "name_lower", "id", "employee_count"),
        # Counting an industry + employee range reads only the range with this one. PostgreSQL
        # only: its planner weighs LIMIT and still walks the name index for a first page;
        # SQLite's would take this index for the page and probe every candidate of the range.
        Index("ix_companies_industry_employees", "industry", "employee_count").ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    platform_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(250))
    name_lower: Mapped[str] = mapped_column(String(250))  # exact-name matching, case-insensitive
    website: Mapped[str | None] = mapped_column(String(250))
    domain: Mapped[str | None] = mapped_column(String(250), index=True)
    phone: Mapped[str | None] = mapped_column(String(50))
    industry: Mapped[str | None] = mapped_column(String(120))
    employee_count: Mapped[int | None] = mapped_column(Integer)
    revenue: Mapped[int | None] = mapped_column(BigInteger)  # USD
    street: Mapped[str | None] = mapped_column(String(250))
    city: Mapped[str | None] = mapped_column(String(120))
    state: Mapped[str | None] = mapped_column(String(120))
    postal_code: Mapped[str | None] = mapped_column(String(30))
    country: Mapped[str | None] = mapped_column(String(120), index=True)
    description: Mapped[str | None] = mapped_column(Text)


class Contact(TimestampMixin, Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    platform_id: Mapped[str] = mapped_column(String(64), unique=True)
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    direct_phone: Mapped[str | None] = mapped_column(String(50))
    mobile_phone: Mapped[str | None] = mapped_column(String(50))
    job_title: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(100), index=True)
    management_level: Mapped[str | None] = mapped_column(String(50), index=True)


class IntentSignal(TimestampMixin, Base):
    __tablename__ = "intent_signals"
    __table_args__ = (
        CheckConstraint("signal_score >= 0 AND signal_score <= 100", name="signal_score_range"),
        Index("ix_intent_signals_topic_score", "topic", "signal_score"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    signal_id: Mapped[str] = mapped_column(String(64), unique=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    topic: Mapped[str] = mapped_column(String(200))
    signal_score: Mapped[int] = mapped_column(Integer)
    audience_strength: Mapped[str | None] = mapped_column(String(20))
    signal_location: Mapped[str | None] = mapped_column(String(120))
    issue_date: Mapped[date] = mapped_column(Date)


class AuditEvent(UUIDPK, Base):
    """An admin action: who did what, when, and what changed (before/after in `detail`).

    The actor's email is copied so the log still reads after the user is deleted.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_at", "org_id", "at"),)

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(80))  # "connection.connect", "export.mapping.save"
    summary: Mapped[str] = mapped_column(Text)  # one readable sentence
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utc_now)
