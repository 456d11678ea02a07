"""Export tables: the org's export settings document, and export runs with per-record results.

Settings are one JSON document per org validated by `export.schemas.ExportSettingsDocument`:
they are read whole and saved whole (Save is refused until every row is valid), and a
document keeps that all-or-nothing shape without a table per tab.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gtmsync.db.base import UUIDPK, Base, TimestampMixin


class ExportSettings(UUIDPK, TimestampMixin, Base):
    __tablename__ = "export_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), unique=True
    )
    document: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every save
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class ExportStatus(StrEnum):
    PLANNED = "planned"  # plan stored; decisions may still change
    QUEUED = "queued"  # run requested, waiting for the worker
    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"  # stopped part-way (killed, error); running again resumes


class ItemAction(StrEnum):
    """What the plan says will happen to one record."""

    CREATE = "create"
    UPDATE = "update"
    SKIP = "skip"


class ItemStatus(StrEnum):
    PENDING = "pending"
    CREATED = "created"
    UPDATED = "updated"
    SKIPPED = "skipped"
    FAILED = "failed"


class Export(UUIDPK, TimestampMixin, Base):
    """One export: its plan, the reviewer's decisions and the run's checkpointed progress.

    `state` holds what the run learned that later batches need (accounts it created for
    contacts, keyed by company platform ID), so a resumed run does not redo or lose it.
    """

    __tablename__ = "exports"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    object_type: Mapped[str] = mapped_column("object", String(20))  # ExportObject value
    status: Mapped[str] = mapped_column(String(20), default=ExportStatus.PLANNED)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    anchor_attribute: Mapped[str] = mapped_column(String(100))
    anchor_has_key: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ExportItem(UUIDPK, Base):
    """One record of an export: the plan for it, the decisions taken, and its result."""

    __tablename__ = "export_items"
    __table_args__ = (UniqueConstraint("export_id", "position"),)

    export_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exports.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    platform_id: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(400))
    action: Mapped[str] = mapped_column(String(20))
    # The Dynamics row found by the duplicate check: entity_set, id, matched_by, name.
    duplicate: Mapped[dict[str, object] | None] = mapped_column(JSON)
    duplicate_choice: Mapped[str | None] = mapped_column(String(30))
    duplicate_options: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Contacts: situation (none/one/many), candidates, company, choice, allowed choices.
    association: Mapped[dict[str, object] | None] = mapped_column(JSON)
    values: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=ItemStatus.PENDING)
    dynamics_id: Mapped[uuid.UUID | None]
    message: Mapped[str | None] = mapped_column(Text)
