"""Connection tables: one Dynamics integration per org, its credentials and its user mapping.

Token caches are MSAL `SerializableTokenCache` strings, Fernet-encrypted before they reach a
column (`connection.token_store`); nothing here ever holds a token in clear.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gtmsync.db.base import UUIDPK, Base, TimestampMixin


class ExportPreference(StrEnum):
    """The seeds' *Export Preference Connection Options*."""

    SERVICE_ACCOUNT = "service_account"
    USER_ACCOUNT = "user_account"


class ConnectionStatus(StrEnum):
    CONNECTED = "connected"
    RECONNECT_NEEDED = "reconnect_needed"


class AttemptPurpose(StrEnum):
    """Why an OAuth round trip was started: what the callback does with the sign-in."""

    CONNECT = "connect"  # first connection (or reconnect) by an admin: service account
    CHANGE_USER = "change_user"  # a secondary admin takes over the service account
    USER = "user"  # a user's own connection (User Account preference)


class MappingSource(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=30)


class Integration(UUIDPK, TimestampMixin, Base):
    """The org's Dynamics connection. `token_cache` holds the service account's sign-in."""

    __tablename__ = "integrations"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), unique=True
    )
    provider: Mapped[str] = mapped_column(String(40), default="dynamics")
    name: Mapped[str] = mapped_column(String(100), default="Dynamics")  # Connection Name
    org_url: Mapped[str] = mapped_column(String(255))  # normalised https://host, no path
    authority: Mapped[str] = mapped_column(String(255))  # tenant authority used to refresh
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    export_preference: Mapped[ExportPreference] = mapped_column(
        _enum(ExportPreference, "export_preference"), default=ExportPreference.SERVICE_ACCOUNT
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[ConnectionStatus] = mapped_column(
        _enum(ConnectionStatus, "connection_status"), default=ConnectionStatus.CONNECTED
    )
    status_detail: Mapped[str | None] = mapped_column(Text)
    primary_admin_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # The Dynamics identity the service account signed in as.
    service_upn: Mapped[str | None] = mapped_column(String(320))
    service_systemuser_id: Mapped[uuid.UUID | None]
    account_id: Mapped[str | None] = mapped_column(String(255))  # MSAL home_account_id
    token_cache: Mapped[str | None] = mapped_column(Text)  # encrypted
    connected_at: Mapped[datetime]


class UserConnection(UUIDPK, TimestampMixin, Base):
    """A user's own sign-in, used when the export preference is *User Account*."""

    __tablename__ = "integration_user_connections"
    __table_args__ = (UniqueConstraint("integration_id", "user_id"),)

    integration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    upn: Mapped[str | None] = mapped_column(String(320))
    systemuser_id: Mapped[uuid.UUID | None]
    account_id: Mapped[str | None] = mapped_column(String(255))
    token_cache: Mapped[str | None] = mapped_column(Text)  # encrypted
    status: Mapped[ConnectionStatus] = mapped_column(
        _enum(ConnectionStatus, "connection_status"), default=ConnectionStatus.CONNECTED
    )
    status_detail: Mapped[str | None] = mapped_column(Text)
    connected_at: Mapped[datetime]


class UserMapping(UUIDPK, TimestampMixin, Base):
    """Platform user → Dynamics systemuser, for record ownership under the service account.

    `systemuser_id` None means "not mapped": that user's records fall to the service account.
    """

    __tablename__ = "integration_user_mappings"
    __table_args__ = (UniqueConstraint("integration_id", "user_id"),)

    integration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    systemuser_id: Mapped[uuid.UUID | None]
    entra_object_id: Mapped[str | None] = mapped_column(String(64))  # for CallerObjectId
    dynamics_name: Mapped[str | None] = mapped_column(String(200))
    dynamics_email: Mapped[str | None] = mapped_column(String(320))
    source: Mapped[MappingSource] = mapped_column(
        _enum(MappingSource, "mapping_source"), default=MappingSource.AUTO
    )


class OAuthAttempt(UUIDPK, TimestampMixin, Base):
    """One sign-in round trip in flight, kept server-side until its callback.

    The MSAL flow dict (PKCE verifier, nonce, state) is encrypted; the callback finds the row
    by `state`, checks it belongs to the signed-in user and has not expired, and deletes it
    before redeeming the code, so a state works once.
    """

    __tablename__ = "integration_oauth_attempts"

    state: Mapped[str] = mapped_column(String(128), unique=True)
    purpose: Mapped[AttemptPurpose] = mapped_column(_enum(AttemptPurpose, "attempt_purpose"))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    org_url: Mapped[str] = mapped_column(String(255))
    authority: Mapped[str] = mapped_column(String(255))  # where the sign-in was sent
    flow: Mapped[str] = mapped_column(Text)  # encrypted MSAL flow dict (JSON)
    notes: Mapped[str | None] = mapped_column(Text)  # what URL normalisation changed
    expires_at: Mapped[datetime]
