"""The org's export settings document: read with defaults, validated whole, saved and audited.

Everything on the Export, Export mapping and Intent tabs is one `ExportSettingsDocument` in
the `export_settings` table. It is read whole (defaults filled in, so callers never see a
missing object) and saved whole: `save_document` validates preferences, every object's rows
and the intent rows against the tenant's live metadata and refuses the save while any row has
an error (the seeds' "Save is refused until the rows are valid"), then bumps `version` and
records an audit event with what changed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select

from gtmsync.dataverse.metadata import AttributeInfo
from gtmsync.export.mapping import MappingInvalidError, default_rows
from gtmsync.export.models import ExportSettings
from gtmsync.export.schemas import (
    MAX_RECORDS_LIMIT,
    ExportObject,
    ExportPreferences,
    ExportSettingsDocument,
    IntentDataPoint,
    IntentMappingRow,
    MappingRow,
)
from gtmsync.export.sources import SourceField, catalogue
from gtmsync.export.validation import (
    CHOICE_TYPES,
    Issue,
    Severity,
    attribute_label,
    errors,
    offered_attributes,
    validate_intent,
    validate_mapping,
)
from gtmsync.kit.errors import ConflictError, UserError
from gtmsync.platform import audit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gtmsync.dataverse import DataverseClient
    from gtmsync.export.trial import TrialResult
    from gtmsync.platform.models import User
    from gtmsync.settings import Settings

CREATE_ANCHOR = "gtmsync_platformid"  # the column gtmsync creates when the admin asks it to


@dataclass(frozen=True)
class StoredSettings:
    document: ExportSettingsDocument
    version: int  # 0 when never saved
    updated_at: datetime | None = None


@dataclass(frozen=True)
class SavedSettings:
    document: ExportSettingsDocument
    version: int
    warnings: list[Issue] = field(default_factory=list)
    changed: dict[str, dict[str, object]] = field(default_factory=dict)


def _row(session: Session, org_id: uuid.UUID) -> ExportSettings | None:
    return session.scalars(select(ExportSettings).where(ExportSettings.org_id == org_id)).first()


def with_defaults(document: ExportSettingsDocument) -> ExportSettingsDocument:
    """A copy with every object present in preferences and mappings (defaults where absent)."""
    filled = document.model_copy(deep=True)
    for obj in ExportObject:
        filled.preferences.objects.setdefault(obj, filled.preferences.for_object(obj))
        if obj not in filled.mappings:
            filled.mappings[obj] = default_rows(obj)
    filled.preferences.objects = {obj: filled.preferences.objects[obj] for obj in ExportObject}
    filled.mappings = {obj: filled.mappings[obj] for obj in ExportObject}
    return filled


def load(session: Session, org_id: uuid.UUID) -> StoredSettings:
    row = _row(session, org_id)
    if row is None:
        return StoredSettings(with_defaults(ExportSettingsDocument()), 0)
    document = ExportSettingsDocument.model_validate(row.document)
    return StoredSettings(with_defaults(document), row.version, row.modified_at)


def get_document(session: Session, org_id: uuid.UUID) -> ExportSettingsDocument:
    """The org's settings, defaults filled in (default mappings per object when never saved)."""
    return load(session, org_id).document


def get_preferences(session: Session, org_id: uuid.UUID) -> ExportPreferences:
    return get_document(session, org_id).preferences


def parse_document(data: Mapping[str, Any]) -> ExportSettingsDocument:
    """Parse a submitted document; pydantic's complaints become one UserError naming the field
    (max records says the allowed range)."""
    try:
        return ExportSettingsDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        fix = "Correct the value and save again."
        if path.endswith("max_records"):
            fix = f"Enter a whole number from 1 to {MAX_RECORDS_LIMIT:,}."
        raise UserError(f"{path}: {message}", field=path, fix=fix) from None


def validate_document(document: ExportSettingsDocument, client: DataverseClient) -> list[Issue]:
    """Every issue of the whole document against live metadata (errors and warnings)."""
    document = with_defaults(document)
    issues: list[Issue] = []
    for obj in ExportObject:
        attributes = client.metadata.attributes(obj.logical_name)
        issues += validate_mapping(obj, document.mappings[obj], attributes)
        preference = document.preferences.for_object(obj)
        chosen = (preference.platform_id_attribute or "").strip()
        if chosen and chosen != CREATE_ANCHOR:
            info = attributes.get(chosen)
            if info is None or info.type != "String":
                problem = "does not exist" if info is None else f"is a {info.type} attribute"
                issues.append(
                    Issue(
                        Severity.ERROR,
                        f"The platform ID attribute {chosen!r} on {obj.logical_name} {problem}: "
                        f"pick a text attribute, or let gtmsync create {CREATE_ANCHOR}.",
                        "preferences",
                        obj,
                    )
                )
        if not document.preferences.for_object(obj).duplicate_user_options:
            issues.append(  # pragma: no cover - the schema always adds the default
                Issue(Severity.ERROR, "offer at least one duplicate option", "preferences", obj)
            )
    account_attributes = client.metadata.attributes(ExportObject.ACCOUNT.logical_name)
    issues += validate_intent(
        document.intent_mappings, account_attributes, document.mappings[ExportObject.ACCOUNT]
    )
    return issues


def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        flat: dict[str, object] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def diff(before: ExportSettingsDocument, after: ExportSettingsDocument) -> dict[str, Any]:
    """Changed paths → {before, after} (row lists compare whole: a row list is one setting)."""
    old = _flatten(before.model_dump(mode="json"))
    new = _flatten(after.model_dump(mode="json"))
    return {
        path: {"before": old.get(path), "after": new.get(path)}
        for path in sorted(old.keys() | new.keys())
        if json.dumps(old.get(path), sort_keys=True) != json.dumps(new.get(path), sort_keys=True)
    }


def _section(path: str) -> str:
    """What a changed path belongs to, for the audit summary: `preferences.objects.lead`,
    `preferences.association`, `mappings.contact`, `intent_mappings`."""
    parts = path.split(".")
    depth = 3 if parts[:2] == ["preferences", "objects"] else 2
    return ".".join(parts[:depth])


def _create_anchors(document: ExportSettingsDocument, client: DataverseClient) -> None:
    from gtmsync.export.anchor import ensure_anchor

    for obj in ExportObject:
        preference = document.preferences.for_object(obj)
        if (preference.platform_id_attribute or "").strip() == CREATE_ANCHOR:
            anchor = ensure_anchor(client, obj, None)
            preference.platform_id_attribute = anchor.attribute


def save_document(
    session: Session,
    org_id: uuid.UUID,
    actor: User | None,
    document: ExportSettingsDocument,
    client: DataverseClient,
    *,
    expected_version: int | None = None,
) -> SavedSettings:
    """Validate the whole document against live metadata, then store it and audit the change.

    Refused (MappingInvalidError, every issue attached) while any row has an error; warnings
    are returned. `expected_version` guards against two admins saving over each other.
    `platform_id_attribute == "gtmsync_platformid"` asks gtmsync to create that column (and
    its key, when allowed) if it does not exist yet.
    """
    document = with_defaults(document)
    issues = validate_document(document, client)
    if errors(issues):
        raise MappingInvalidError(None, issues)
    stored = load(session, org_id)
    if expected_version is not None and expected_version != stored.version:
        raise ConflictError(
            "Someone else saved the export settings while you were editing them.",
            field="version",
            fix="Reload the page to see their changes, then make yours again.",
        )
    _create_anchors(document, client)
    changed = diff(stored.document, document)
    row = _row(session, org_id)
    if row is None:
        row = ExportSettings(org_id=org_id, version=0)
        session.add(row)
    row.document = document.model_dump(mode="json")
    row.version = (row.version or 0) + 1
    row.updated_by_id = actor.id if actor else None
    session.flush()
    sections = sorted({_section(path) for path in changed})
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        action="export.settings.save",
        summary=(
            f"Saved export settings (version {row.version}): "
            + (", ".join(sections) if sections else "no changes")
            + "."
        ),
        detail={"version": row.version, "changes": changed},
    )
    warnings = [i for i in issues if i.severity == Severity.WARNING]
    return SavedSettings(document, row.version, warnings, changed)


# -- the facade the web layer calls (one call per request; each opens the org's client) -------


@contextmanager
def _client(session: Session, org_id: uuid.UUID, settings: Settings | None) -> Iterator[Any]:
    """The org's service client; settings are edited before the integration is turned on
    (the seeds configure mapping "connected but not yet turned on"), so it need not be."""
    from gtmsync.connection import gateway

    with gateway.client_for(session, org_id, settings=settings, require_enabled=False) as client:
        yield client


@dataclass(frozen=True)
class AttributeChoice:
    """One Dynamics attribute as the mapping dropdowns and the API list it."""

    logical_name: str
    display_name: str | None
    type: str
    max_length: int | None
    required_level: str
    is_custom: bool
    options: list[tuple[int, str]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return attribute_label(self._info())

    @property
    def required(self) -> bool:
        return self.required_level == "ApplicationRequired"

    def _info(self) -> AttributeInfo:
        return AttributeInfo(
            logical_name=self.logical_name,
            schema_name=None,
            type=self.type,
            required_level=self.required_level,
            max_length=self.max_length,
            readable=True,
            creatable=True,
            updatable=True,
            is_custom=self.is_custom,
            display_name=self.display_name,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "logical_name": self.logical_name,
            "display_name": self.display_name,
            "type": self.type,
            "max_length": self.max_length,
            "required_level": self.required_level,
            "is_custom": self.is_custom,
            "options": [{"value": v, "label": label} for v, label in self.options],
        }


def _choices(
    client: DataverseClient,
    obj: ExportObject,
    *,
    refresh: bool,
    options_for: set[str] | None = None,
) -> list[AttributeChoice]:
    """Offered attributes; picklist options for all of them, or only those in `options_for`
    (one request per picklist: a page needs only the ones its rows target)."""
    table = obj.logical_name
    if refresh:
        client.metadata.refresh(table)
    choices: list[AttributeChoice] = []
    for info in offered_attributes(client.metadata.attributes(table)):
        options: list[tuple[int, str]] = []
        if info.type in CHOICE_TYPES and (options_for is None or info.logical_name in options_for):
            options = [
                (o.value, o.label or str(o.value))
                for o in client.metadata.options(table, info.logical_name)
            ]
        choices.append(
            AttributeChoice(
                logical_name=info.logical_name,
                display_name=info.display_name,
                type=info.type,
                max_length=info.max_length,
                required_level=info.required_level,
                is_custom=info.is_custom,
                options=options,
            )
        )
    return choices


def attribute_catalogue(
    session: Session, org_id: uuid.UUID, obj: ExportObject, *, settings: Settings | None = None
) -> list[AttributeChoice]:
    """The attributes of `obj`'s table that a mapping row may target, read live (a custom
    attribute created in Dynamics a minute ago is listed)."""
    with _client(session, org_id, settings) as client:
        return _choices(client, obj, refresh=True)


@dataclass(frozen=True)
class IntentOffer:
    data_point: IntentDataPoint
    label: str
    attributes: list[AttributeChoice]


@dataclass(frozen=True)
class EditorData:
    """Everything the settings tabs render, read in one go."""

    stored: StoredSettings
    attributes: dict[ExportObject, list[AttributeChoice]]
    sources: dict[ExportObject, tuple[SourceField, ...]]
    issues: list[Issue]
    topics: list[str]
    intent_offers: list[IntentOffer]
    platform_id_candidates: dict[ExportObject, list[AttributeChoice]]


def editor(
    session: Session,
    org_id: uuid.UUID,
    *,
    settings: Settings | None = None,
    document: ExportSettingsDocument | None = None,
) -> EditorData:
    """The tabs' data: the saved document (or `document`, being edited), live attributes per
    object, the issues of every row, intent topics and the attributes each data point fits."""
    from gtmsync.export import intent

    stored = load(session, org_id)
    if document is not None:
        stored = StoredSettings(with_defaults(document), stored.version, stored.updated_at)
    with _client(session, org_id, settings) as client:
        attributes = {
            obj: _choices(
                client,
                obj,
                refresh=True,
                options_for={r.target_attribute for r in stored.document.mappings[obj]},
            )
            for obj in ExportObject
        }
        issues = validate_document(stored.document, client)
        account = client.metadata.attributes(ExportObject.ACCOUNT.logical_name)
        offers = [
            IntentOffer(
                point,
                intent.DATA_POINT_LABELS[point],
                [
                    c
                    for c in attributes[ExportObject.ACCOUNT]
                    if c.logical_name
                    in {a.logical_name for a in intent.offered_attributes(point, account)}
                ],
            )
            for point in IntentDataPoint
        ]
    candidates = {obj: [c for c in attributes[obj] if c.type == "String"] for obj in ExportObject}
    return EditorData(
        stored=stored,
        attributes=attributes,
        sources={obj: catalogue(obj) for obj in ExportObject},
        issues=issues,
        topics=intent.topics(session),
        intent_offers=offers,
        platform_id_candidates=candidates,
    )


def save(
    session: Session,
    org_id: uuid.UUID,
    actor: User,
    document: ExportSettingsDocument,
    *,
    settings: Settings | None = None,
    expected_version: int | None = None,
) -> SavedSettings:
    """`save_document` with the org's own client (what the pages and the API call)."""
    with _client(session, org_id, settings) as client:
        client.metadata.refresh()
        return save_document(
            session, org_id, actor, document, client, expected_version=expected_version
        )


def run_trial(
    session: Session,
    org_id: uuid.UUID,
    obj: ExportObject,
    rows: Sequence[MappingRow],
    intent_rows: Sequence[IntentMappingRow] = (),
    *,
    settings: Settings | None = None,
) -> TrialResult:
    """Test Mapping with the current, unsaved rows (the seeds' *Test and Save*)."""
    from gtmsync.export.trial import try_mapping

    with _client(session, org_id, settings) as client:
        client.metadata.refresh(obj.logical_name)
        return try_mapping(client, obj, rows, intent_rows)
