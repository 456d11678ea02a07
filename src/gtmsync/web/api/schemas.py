"""Response and request shapes of `/api/v1`; they are what the OpenAPI document publishes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gtmsync.platform.models import Role


class ErrorBody(BaseModel):
    """Every API error: what went wrong, which field, and how to fix it."""

    error: str
    field: str | None = None
    fix: str | None = None


class Org(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str


class User(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    role: Role
    is_active: bool
    created_at: datetime


class Me(BaseModel):
    user: User
    org: Org
    role: Role


class ApiToken(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The first characters of the token, to tell tokens apart.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["CRM script"])


class ApiTokenCreated(ApiToken):
    token: str = Field(description="The token itself. Shown once: store it now.")
