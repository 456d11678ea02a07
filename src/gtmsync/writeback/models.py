"""Activities users log on the platform, and the org's CRM writeback settings.

An activity row is also its own outbox entry: `status` says where it is on the way to Dynamics
(pending → written, or waiting as not_in_crm / failed with the reason and the next attempt).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gtmsync.db.base import UUIDPK, Base, TimestampMixin


class ActivityKind(StrEnum):
    EMAIL = "email"
    CALL = "call"
    MEETING = "meeting"


class TargetType(StrEnum):
    CONTACT = "contact"  # a platform contact: a Dynamics contact, or a lead
    COMPANY = "company"  # a platform company: a Dynamics account


class WritebackMode(StrEnum):
    TASKS = "tasks"
    EVENTS = "events"  # Dynamics appointments


class ActivityStatus(StrEnum):
    PENDING = "pending"
    NOT_IN_CRM = "not_in_crm"  # the record it concerns is not in Dynamics yet: waits
    WRITTEN = "written"
    FAILED = "failed"  # retried with backoff; `last_error` has Dataverse's message
    OFF = "writeback_off"  # logged while writeback was off: written when it is turned on


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=20)


class WritebackSettings(UUIDPK, TimestampMixin, Base):
    __tablename__ = "writeback_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), unique=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mode: Mapped[WritebackMode] = mapped_column(
        _enum(WritebackMode, "writeback_mode"), default=WritebackMode.TASKS
    )
    calls_as_phonecalls: Mapped[bool] = mapped_column(Boolean, default=False)


class Activity(UUIDPK, TimestampMixin, Base):
    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_org_status_next", "org_id", "status", "next_attempt_at"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ActivityKind] = mapped_column(_enum(ActivityKind, "activity_kind"))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime]
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    target_type: Mapped[TargetType] = mapped_column(_enum(TargetType, "activity_target_type"))
    target_platform_id: Mapped[str] = mapped_column(String(64))
    # Platform contact IDs of the other people involved (activity parties in Dynamics).
    participants: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[ActivityStatus] = mapped_column(
        _enum(ActivityStatus, "activity_status"), default=ActivityStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    dynamics_table: Mapped[str | None] = mapped_column(String(40))
    dynamics_id: Mapped[uuid.UUID | None]
    written_at: Mapped[datetime | None]
