"""Advanced Search filter settings (admin): which CRM filter groups users see, custom fields.

The seeds: toggles for Account, ↳ Opportunity, Contact and Lead, and "Add field filters" of up
to three custom Dynamics attributes per object, accepted only when the attribute is a picklist
or a lookup to a contact, lead, account, opportunity or user. The type is read from the org's
live metadata when the admin adds the field (it may have changed since the import cached it),
and a refusal names the reason. Every change is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from gtmsync.connection import gateway
from gtmsync.dataverse import DataverseClient, DataverseError
from gtmsync.kit.errors import UserError
from gtmsync.platform import audit
from gtmsync.platform.models import User
from gtmsync.search.models import SearchFilterSettings
from gtmsync.settings import Settings

OBJECTS = ("account", "contact", "lead")
TOGGLES = ("account", "opportunity", "contact", "lead")
MAX_CUSTOM_FIELDS = 3
PICKLIST_TYPES = frozenset({"Picklist", "MultiSelectPicklist", "State", "Status"})
LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})
LOOKUP_TARGETS = frozenset({"contact", "lead", "account", "opportunity", "systemuser"})
PAGE = "Admin Portal › Integrations › Dynamics › Search Filters"


@dataclass(frozen=True)
class CustomField:
    attribute: str
    type: str
    label: str
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class FilterSettingsView:
    account: bool
    opportunity: bool
    contact: bool
    lead: bool
    custom_fields: dict[str, list[CustomField]] = field(default_factory=dict)

    def enabled(self, group: str) -> bool:
        if group == "opportunity":
            return self.account and self.opportunity
        return bool(getattr(self, group))


def _row(session: Session, org_id: uuid.UUID) -> SearchFilterSettings:
    row = session.get(SearchFilterSettings, org_id)
    if row is None:
        row = SearchFilterSettings(
            org_id=org_id, account=True, opportunity=True, contact=True, lead=True
        )
        session.add(row)
        session.flush()
    return row


def _view(row: SearchFilterSettings) -> FilterSettingsView:
    custom = {
        obj: [
            CustomField(
                f["attribute"],
                f["type"],
                f.get("label") or f["attribute"],
                tuple(f.get("targets") or ()),
            )
            for f in (row.custom_fields or {}).get(obj, [])
        ]
        for obj in OBJECTS
    }
    return FilterSettingsView(row.account, row.opportunity, row.contact, row.lead, custom)


def get(session: Session, org_id: uuid.UUID) -> FilterSettingsView:
    row = session.get(SearchFilterSettings, org_id)
    if row is None:
        return FilterSettingsView(True, True, True, True, {obj: [] for obj in OBJECTS})
    return _view(row)


def update_toggles(
    session: Session, org_id: uuid.UUID, actor: User, toggles: Mapping[str, bool]
) -> FilterSettingsView:
    unknown = set(toggles) - set(TOGGLES)
    if unknown:
        raise UserError(
            f"Unknown filter toggle {sorted(unknown)[0]!r}.",
            field=sorted(unknown)[0],
            fix=f"Use {', '.join(TOGGLES)}.",
        )
    row = _row(session, org_id)
    changed = {k: v for k, v in toggles.items() if getattr(row, k) != v}
    for key, value in changed.items():
        setattr(row, key, bool(value))
    if changed:
        words = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in changed.items())
        audit.record(
            session,
            org_id=org_id,
            actor=actor,
            action="search.filters.toggles",
            summary=f"Search filters: {words}",
            detail={"changed": changed},
        )
    session.flush()
    return _view(row)


ClientFactory = Callable[[Session, uuid.UUID], DataverseClient]


def _default_client(settings: Settings | None) -> ClientFactory:
    def build(session: Session, org_id: uuid.UUID) -> DataverseClient:
        return gateway.client_for(session, org_id, settings=settings)

    return build


def _lookup_targets(client: DataverseClient, table: str, attribute: str) -> tuple[str, ...]:
    path = (
        f"EntityDefinitions(LogicalName='{table}')/Attributes(LogicalName='{attribute}')"
        "/Microsoft.Dynamics.CRM.LookupAttributeMetadata"
    )
    body: Any = client.request(
        "GET", path, params={"$select": "LogicalName,Targets"}, idempotent=True
    ).json()
    return tuple(str(t) for t in body.get("Targets") or ())


def check_attribute(client: DataverseClient, obj: str, attribute: str) -> CustomField:
    """The attribute's type from live metadata; refuse anything but picklists and lookups."""
    param = f"custom_fields.{obj}"
    try:
        info = client.metadata.attribute(obj, attribute)
    except DataverseError as exc:
        raise UserError(
            f"{attribute!r} is not a column of the Dynamics {obj} table ({exc}).",
            field=param,
            fix="Use the column's logical name as shown in Dynamics (e.g. new_region).",
        ) from None
    label = info.display_name or attribute
    if info.type in PICKLIST_TYPES:
        return CustomField(attribute, info.type, label)
    if info.type in LOOKUP_TYPES:
        targets = _lookup_targets(client, obj, attribute)
        wrong = [t for t in targets if t not in LOOKUP_TARGETS]
        if not targets or wrong:
            raise UserError(
                f"{attribute!r} is a lookup to {', '.join(targets) or 'nothing'}; only lookups "
                "to contact, lead, account, opportunity or user can be filters.",
                field=param,
                fix="Pick a picklist, or a lookup to one of those tables.",
            )
        return CustomField(attribute, info.type, label, targets)
    raise UserError(
        f"{attribute!r} is a {info.type} column; only picklist and lookup columns can be filters.",
        field=param,
        fix="Pick a picklist (choice) column or a lookup column.",
    )


def add_custom_field(
    session: Session,
    org_id: uuid.UUID,
    actor: User,
    obj: str,
    attribute: str,
    *,
    settings: Settings | None = None,
    client_factory: ClientFactory | None = None,
) -> FilterSettingsView:
    if obj not in OBJECTS:
        raise UserError(
            f"Custom field filters exist for {', '.join(OBJECTS)}, not {obj!r}.",
            field="object",
            fix="Pick account, contact or lead.",
        )
    attribute = attribute.strip().lower()
    if not attribute:
        raise UserError("Give the column's logical name.", field="attribute", fix="e.g. new_tier.")
    row = _row(session, org_id)
    current = dict(row.custom_fields or {})
    fields = list(current.get(obj, []))
    if any(f["attribute"] == attribute for f in fields):
        raise UserError(
            f"{attribute!r} is already a {obj} filter.", field="attribute", fix="Pick another."
        )
    if len(fields) >= MAX_CUSTOM_FIELDS:
        raise UserError(
            f"{obj.capitalize()} already has {MAX_CUSTOM_FIELDS} custom field filters, the most "
            "allowed.",
            field=f"custom_fields.{obj}",
            fix="Remove one before adding another.",
        )
    factory = client_factory or _default_client(settings)
    with factory(session, org_id) as client:
        checked = check_attribute(client, obj, attribute)
    fields.append(
        {
            "attribute": checked.attribute,
            "type": checked.type,
            "label": checked.label,
            "targets": list(checked.targets),
        }
    )
    current[obj] = fields
    row.custom_fields = current
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        action="search.filters.custom_field_added",
        summary=f"Search filters: added {obj} field {checked.label} ({checked.type})",
        detail={"object": obj, "attribute": attribute, "type": checked.type},
    )
    session.flush()
    return _view(row)


def remove_custom_field(
    session: Session, org_id: uuid.UUID, actor: User, obj: str, attribute: str
) -> FilterSettingsView:
    row = _row(session, org_id)
    current = dict(row.custom_fields or {})
    fields = [f for f in current.get(obj, []) if f["attribute"] != attribute]
    if len(fields) == len(current.get(obj, [])):
        raise UserError(
            f"{attribute!r} is not a {obj} filter.", field="attribute", fix="Reload the page."
        )
    current[obj] = fields
    row.custom_fields = current
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        action="search.filters.custom_field_removed",
        summary=f"Search filters: removed {obj} field {attribute}",
        detail={"object": obj, "attribute": attribute},
    )
    session.flush()
    return _view(row)
