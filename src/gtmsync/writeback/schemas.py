"""API and form shapes of CRM writeback."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gtmsync.writeback.models import ActivityKind, ActivityStatus, TargetType, WritebackMode


class ActivityIn(BaseModel):
    kind: ActivityKind
    subject: str = Field(max_length=200)
    target_type: TargetType = Field(description="contact (a person) or company")
    target_platform_id: str = Field(description="Platform ID of the contact or company.")
    occurred_at: datetime = Field(description="ISO 8601 with a time zone, e.g. 2026-11-20T15:30Z")
    body: str | None = Field(default=None, description="Email body or call/meeting notes.")
    duration_minutes: int | None = None
    participants: list[str] = Field(
        default_factory=list, description="Platform contact IDs of the other people involved."
    )


class ActivityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: ActivityKind
    subject: str
    target_type: TargetType
    target_platform_id: str
    occurred_at: datetime
    duration_minutes: int | None
    participants: list[str]
    status: ActivityStatus
    attempts: int
    last_error: str | None = Field(description="Why it is not written yet (Dataverse's message).")
    next_attempt_at: datetime | None
    dynamics_table: str | None
    dynamics_id: uuid.UUID | None
    written_at: datetime | None


class WritebackSettingsIO(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    enabled: bool
    mode: WritebackMode = Field(description="tasks, or events (Dynamics appointments)")
    calls_as_phonecalls: bool = False
