"""Shapes of the export settings (the seeds' *Export Preferences*, *Export Considerations*,
*Configure Export Mapping*, *Duplicate Checking*), shared by the settings pages, the planner and
the API. Settings are stored as one validated document per org (`ExportSettings.document`).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, field_validator, model_validator

MAX_RECORDS_LIMIT = 10_000


class ExportObject(StrEnum):
    ACCOUNT = "account"
    CONTACT = "contact"
    LEAD = "lead"

    @property
    def entity_set(self) -> str:
        return f"{self.value}s"

    @property
    def logical_name(self) -> str:
        return self.value

    @property
    def primary_id(self) -> str:
        return f"{self.value}id"

    @property
    def label(self) -> str:
        return {"account": "Accounts", "contact": "Contacts", "lead": "Leads"}[self.value]


class UpdateMode(StrEnum):
    """Per mapping row: fill only empty Dynamics fields (default) or overwrite them."""

    COMPLETE_IF_MISSING = "complete_if_missing"
    OVERWRITE = "overwrite"


class DuplicateAction(StrEnum):
    UPDATE = "update"
    CREATE_DUPLICATE = "create_duplicate"
    SKIP = "do_not_export"


class NoMatchAccount(StrEnum):
    """A contact's company has no account in Dynamics."""

    MANUAL = "manual"  # the user confirms creating the account
    AUTOMATIC = "automatic"  # the account is created without asking


class OneMatchAccount(StrEnum):
    MANUAL = "manual"  # the user confirms the association
    AUTOMATIC = "automatic"


class ManyMatchAccount(StrEnum):
    MANUAL = "manual"  # the user picks the account
    AUTOMATIC = "automatic"  # the most recently modified account
    EITHER = "either"  # the user may pick, or accept the most recently modified


class IntentDataPoint(StrEnum):
    SIGNAL_SCORE = "signal_score"
    AUDIENCE_STRENGTH = "audience_strength"
    SIGNAL_LOCATION = "signal_location"
    INTENT_ID = "intent_id"
    ISSUE_DATE = "issue_date"


class ObjectPreference(BaseModel):
    enabled: bool = True
    max_records: int = Field(default=1000)
    duplicate_default: DuplicateAction = DuplicateAction.UPDATE
    duplicate_user_options: list[DuplicateAction] = Field(
        default_factory=lambda: list(DuplicateAction)
    )
    # The Dynamics attribute that carries the platform ID (anchor for duplicates and retries).
    platform_id_attribute: str | None = None

    @field_validator("max_records")
    @classmethod
    def _limit(cls, value: int) -> int:
        if not 1 <= value <= MAX_RECORDS_LIMIT:
            raise ValueError(
                f"must be between 1 and {MAX_RECORDS_LIMIT:,} records per export (got {value})"
            )
        return value

    @model_validator(mode="after")
    def _default_is_offered(self) -> ObjectPreference:
        if self.duplicate_default not in self.duplicate_user_options:
            self.duplicate_user_options = [self.duplicate_default, *self.duplicate_user_options]
        return self


class AssociationOptions(BaseModel):
    """Contact → account association; the seeds recommend (and default to) manual for all."""

    no_match: NoMatchAccount = NoMatchAccount.MANUAL
    one_match: OneMatchAccount = OneMatchAccount.MANUAL
    many_match: ManyMatchAccount = ManyMatchAccount.MANUAL


class ExportPreferences(BaseModel):
    objects: dict[ExportObject, ObjectPreference] = Field(
        default_factory=lambda: {obj: ObjectPreference() for obj in ExportObject}
    )
    association: AssociationOptions = Field(default_factory=AssociationOptions)

    def for_object(self, obj: ExportObject) -> ObjectPreference:
        return self.objects.get(obj) or ObjectPreference()


class MappingRow(BaseModel):
    """One platform field → one Dynamics attribute. Rows sharing a target form a hierarchy,
    numbered by their order in the list: the first non-empty value wins."""

    source_field: str
    target_attribute: str
    update_mode: UpdateMode = UpdateMode.COMPLETE_IF_MISSING


class IntentMappingRow(BaseModel):
    topic: str
    data_point: IntentDataPoint
    target_attribute: str


class ExportSettingsDocument(BaseModel):
    """Everything an admin sets for exports, stored and versioned as one document."""

    preferences: ExportPreferences = Field(default_factory=ExportPreferences)
    mappings: dict[ExportObject, list[MappingRow]] = Field(default_factory=dict)
    intent_mappings: list[IntentMappingRow] = Field(default_factory=list)
