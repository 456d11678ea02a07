"""Documents and views of the import: mapping, rules, settings, runs, usage, target accounts.

`GtmObject` is re-exported here so edges need not import the models.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gtmsync.crm_import import models as _models

GtmObject = _models.GtmObject  # re-exported for the edges


class FieldMap(BaseModel):
    """One Dynamics attribute feeding one GTM field (`custom.<name>` for a custom field)."""

    attribute: str
    field: str


class Source(BaseModel):
    """A Dynamics table feeding a GTM object, or (object `role`) role records from a lookup."""

    table: str
    object: GtmObject
    enabled: bool = True
    fields: list[FieldMap] = Field(default_factory=list)
    # Role sources only: the record's id attribute, the lookup holding the related person,
    # and the friendly role name.
    record_id_attribute: str | None = None
    related_id_attribute: str | None = None
    role_name: str | None = None

    @property
    def key(self) -> str:
        if self.object == GtmObject.ROLE:
            return f"role:{self.table}:{self.related_id_attribute}"
        return f"{self.object.value}:{self.table}"


class MappingDocument(BaseModel):
    sources: list[Source] = Field(default_factory=list)
    custom_fields: dict[str, list[str]] = Field(default_factory=dict)

    def source(self, key: str) -> Source | None:
        return next((s for s in self.sources if s.key == key), None)


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    GT = "gt"
    LT = "lt"
    IS_EMPTY = "is_empty"
    IS_NOT_EMPTY = "is_not_empty"
    IN = "in"


OPERATOR_LABELS: dict[Operator, str] = {
    Operator.EQ: "equals",
    Operator.NE: "does not equal",
    Operator.CONTAINS: "contains",
    Operator.NOT_CONTAINS: "does not contain",
    Operator.STARTS_WITH: "starts with",
    Operator.GT: "is greater than",
    Operator.LT: "is less than",
    Operator.IS_EMPTY: "is empty",
    Operator.IS_NOT_EMPTY: "is not empty",
    Operator.IN: "is one of (comma separated)",
}


class Condition(BaseModel):
    attribute: str
    operator: Operator
    value: str | None = None


class ConditionGroup(BaseModel):
    """Conditions joined by `match` (all = AND, any = OR)."""

    match: str = "all"
    conditions: list[Condition] = Field(default_factory=list)

    @field_validator("match")
    @classmethod
    def _match(cls, value: str) -> str:
        if value not in ("all", "any"):
            raise ValueError("match must be 'all' (AND) or 'any' (OR)")
        return value


class ObjectRules(BaseModel):
    """Exclude a source's record when its groups match, groups joined by `match`."""

    source_key: str
    match: str = "any"
    groups: list[ConditionGroup] = Field(default_factory=list)

    @field_validator("match")
    @classmethod
    def _match(cls, value: str) -> str:
        if value not in ("all", "any"):
            raise ValueError("match must be 'all' (AND) or 'any' (OR)")
        return value


class RuleSet(BaseModel):
    rules: list[ObjectRules] = Field(default_factory=list)

    def for_source(self, key: str) -> ObjectRules | None:
        return next((r for r in self.rules if r.source_key == key), None)


class ImportSettingsView(BaseModel):
    enabled: bool
    daily_budget: int
    page_size: int
    lag_seconds: int
    object_limits: dict[str, int]


# `daily_budget` is a 32-bit column; a larger number was a database error (500), not a 422.
_MAX_BUDGET = 2_000_000_000


class ImportSettingsUpdate(BaseModel):
    enabled: bool | None = None
    daily_budget: int | None = Field(default=None, ge=1, le=_MAX_BUDGET)
    page_size: int | None = Field(default=None, ge=1, le=5000)
    object_limits: dict[str, Annotated[int, Field(ge=0, le=_MAX_BUDGET)]] | None = None


class AttributeOption(BaseModel):
    """A Dynamics column as the mapping page offers it."""

    name: str
    label: str
    type: str
    readable: bool
    reason: str | None = None


class RunView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source_key: str
    source_table: str
    kind: str
    reason: str | None
    status: str
    records_read: int
    records_stored: int
    records_deleted: int
    records_excluded: int
    api_calls: int
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    message: str | None
    errors: str | None


class UsageDay(BaseModel):
    day: date
    requests: int


class UsageView(BaseModel):
    budget: int
    today: int
    days: list[UsageDay]


class SyncNowResult(BaseModel):
    queued: list[str]
    runs: list[RunView] = Field(default_factory=list)


class TargetAccount(BaseModel):
    company_id: int
    platform_id: str
    name: str
    domain: str | None
    account_name: str | None
    dynamics_id: uuid.UUID


class SourceStatus(BaseModel):
    source_key: str
    mode: str | None
    backfill_pending: bool
    backfill_reason: str | None
    resumable: bool
    stored: int | None
    message: str | None


class ImportStatus(BaseModel):
    enabled: bool
    budget: int
    used_today: int
    sources: list[SourceStatus]


JsonDict = dict[str, Any]
