"""Plan an export: for every record, what will happen, computed without writing to Dynamics.

The plan is stored (an `Export` and one `ExportItem` per record) so that a person can review
it, change the decisions the admin lets them change, and run it later, from the portal, the
API or the CLI alike. Reads go out as the integration's own identity (duplicate checks must
see every row, not only the exporting user's); writes happen in `runner`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from gtmsync.connection import gateway
from gtmsync.dataverse import DataverseClient, RequestInfo
from gtmsync.export import association as association_rules
from gtmsync.export import mapping as export_mapping
from gtmsync.export import settings as export_settings
from gtmsync.export import sources
from gtmsync.export.anchor import DEFAULT_ATTRIBUTE, Anchor, find_anchor
from gtmsync.export.duplicates import (
    AccountProbe,
    Match,
    PersonProbe,
    find_accounts,
    find_people,
)
from gtmsync.export.models import Export, ExportItem, ExportStatus, ItemAction
from gtmsync.export.repository import ExportRepository, PlatformReads
from gtmsync.export.schemas import DuplicateAction, ExportObject, ExportPreferences
from gtmsync.kit.errors import UserError
from gtmsync.platform.models import Company, Contact
from gtmsync.settings import Settings

ACTION_FOR_CHOICE = {
    DuplicateAction.UPDATE: ItemAction.UPDATE,
    DuplicateAction.CREATE_DUPLICATE: ItemAction.CREATE,
    DuplicateAction.SKIP: ItemAction.SKIP,
}
PERSON_SETS = {ExportObject.CONTACT: "contacts", ExportObject.LEAD: "leads"}


def jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as the JSON column stores them (dates as ISO text, as Dataverse takes them)."""
    loaded: dict[str, Any] = json.loads(json.dumps(dict(values), default=str))
    return loaded


def check_request(
    preferences: ExportPreferences, obj: ExportObject, platform_ids: Sequence[str]
) -> list[str]:
    """The IDs to export, once the admin's limits allow it (else a message naming the limit)."""
    preference = preferences.for_object(obj)
    if not preference.enabled:
        raise UserError(
            f"Exporting {obj.label} to Dynamics is turned off for your organization.",
            field="object",
            fix="Ask an admin to allow it under Export › Preferences, or export another object.",
        )
    ids = list(dict.fromkeys(p.strip() for p in platform_ids if p and p.strip()))
    if not ids:
        raise UserError(
            "Nothing to export: no platform IDs were given.",
            field="platform_ids",
            fix="Select at least one record.",
        )
    if len(ids) > preference.max_records:
        raise UserError(
            f"{len(ids):,} {obj.label.lower()} is more than your organization's limit of "
            f"{preference.max_records:,} per export.",
            field="platform_ids",
            fix=f"Export at most {preference.max_records:,} records at a time, or ask an admin "
            "to raise the limit under Export › Preferences.",
        )
    return ids


def needs_review(item: ExportItem) -> bool:
    duplicate = item.duplicate is not None and len(item.duplicate_options) > 1
    association = (
        item.association is not None
        and item.action == ItemAction.CREATE
        and bool(item.association.get("needs_review"))
    )
    return duplicate or association


def _missing(found: Sequence[str], wanted: Sequence[str], obj: ExportObject) -> None:
    unknown = [p for p in wanted if p not in set(found)]
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise UserError(
            f"{len(unknown)} platform ID(s) are not {obj.label.lower()} on the platform: {shown}.",
            field="platform_ids",
            fix="Export records from Search results or a list; check the IDs in the file.",
        )


def _other_anchor(client: DataverseClient, entity_set: str, attribute: str) -> str | None:
    table = entity_set.removesuffix("s")
    return attribute if attribute in client.metadata.attributes(table) else None


def plan_export(
    session: Session,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    obj: ExportObject,
    platform_ids: Sequence[str],
    settings: Settings | None = None,
    on_request: Callable[[RequestInfo], None] | None = None,
) -> Export:
    """Compute and store the plan; nothing is written to Dynamics."""
    preferences = export_settings.get_preferences(session, org_id)
    ids = check_request(preferences, obj, platform_ids)
    reads = PlatformReads(session)
    with gateway.client_for(
        session, org_id, user_id=user_id, settings=settings, on_request=on_request
    ) as client:
        chosen = preferences.for_object(obj).platform_id_attribute
        anchor = find_anchor(client, obj, chosen) or Anchor(
            obj.logical_name, chosen or DEFAULT_ATTRIBUTE, has_key=False
        )
        mapping = export_mapping.compile_mapping(session, org_id, obj, client)
        required = _required_attributes(client, obj, anchor)
        export = Export(
            org_id=org_id,
            user_id=user_id,
            object_type=obj.value,
            status=ExportStatus.PLANNED,
            total=len(ids),
            anchor_attribute=anchor.attribute,
            anchor_has_key=anchor.has_key,
            state={},
        )
        ExportRepository.from_session(session).create(export, flush=True)
        if obj == ExportObject.ACCOUNT:
            items = _plan_accounts(
                client,
                reads=reads,
                anchor=anchor,
                mapping=mapping,
                ids=ids,
                preferences=preferences,
            )
        else:
            items = _plan_people(
                client,
                reads=reads,
                obj=obj,
                anchor=anchor,
                mapping=mapping,
                ids=ids,
                preferences=preferences,
            )
    for position, item in enumerate(items):
        item.export_id = export.id
        item.position = position
        if item.action == ItemAction.CREATE:
            missing = [a for a in required if item.values.get(a) in (None, "")]
            item.problems = [
                *item.problems,
                *(f"Required Dynamics column {a!r} has no value" for a in missing),
            ]
        item.needs_review = needs_review(item)
        session.add(item)
    session.flush()
    return export


def _required_attributes(client: DataverseClient, obj: ExportObject, anchor: Anchor) -> list[str]:
    """Application-required columns a create must fill (Dataverse enforces them only in its
    own forms, so gtmsync checks them itself rather than create half-empty rows)."""
    skip = {obj.primary_id, anchor.attribute, DEFAULT_ATTRIBUTE}
    return sorted(
        name
        for name, info in client.metadata.attributes(obj.logical_name).items()
        if info.required_level == "ApplicationRequired" and info.creatable and name not in skip
    )


def _duplicate_fields(
    item: ExportItem, match: Match | None, preferences: ExportPreferences, obj: ExportObject
) -> None:
    preference = preferences.for_object(obj)
    if match is None:
        item.action = ItemAction.CREATE
        item.duplicate = None
        item.duplicate_choice = None
        item.duplicate_options = []
        return
    item.duplicate = match.as_json()
    item.duplicate_choice = preference.duplicate_default.value
    item.duplicate_options = [o.value for o in preference.duplicate_user_options]
    item.action = ACTION_FOR_CHOICE[preference.duplicate_default]


def _plan_accounts(
    client: DataverseClient,
    *,
    reads: PlatformReads,
    anchor: Anchor,
    mapping: Any,
    ids: Sequence[str],
    preferences: ExportPreferences,
) -> list[ExportItem]:
    companies = {c.platform_id: c for c in reads.companies(ids)}
    _missing(list(companies), ids, ExportObject.ACCOUNT)
    signals = reads.intent_signals(c.id for c in companies.values())
    probes = [AccountProbe(c.platform_id, c.name, c.website) for c in companies.values()]
    matches = find_accounts(client, _other_anchor(client, "accounts", anchor.attribute), probes)
    items: list[ExportItem] = []
    for platform_id in ids:
        company = companies[platform_id]
        mapped = mapping.map(sources.company_values(company, signals.get(company.id, [])))
        item = ExportItem(
            platform_id=platform_id,
            label=company.name,
            values=jsonable(mapped.values),
            problems=[str(p) for p in mapped.problems],
            association=None,
        )
        found = matches.get(platform_id) or []
        _duplicate_fields(item, found[0] if found else None, preferences, ExportObject.ACCOUNT)
        items.append(item)
    return items


def _person_label(contact: Contact, company: Company | None) -> str:
    name = f"{contact.first_name} {contact.last_name}".strip()
    return f"{name} ({company.name})" if company is not None else name


def _plan_people(
    client: DataverseClient,
    *,
    reads: PlatformReads,
    obj: ExportObject,
    anchor: Anchor,
    mapping: Any,
    ids: Sequence[str],
    preferences: ExportPreferences,
) -> list[ExportItem]:
    contacts = {c.platform_id: c for c in reads.contacts(ids)}
    _missing(list(contacts), ids, obj)
    companies = reads.companies_by_ids(c.company_id for c in contacts.values() if c.company_id)
    account_matches: dict[str, list[Match]] = {}
    if obj == ExportObject.CONTACT and companies:
        account_anchor = find_anchor(
            client,
            ExportObject.ACCOUNT,
            preferences.for_object(ExportObject.ACCOUNT).platform_id_attribute,
        )
        account_matches = find_accounts(
            client,
            account_anchor.attribute if account_anchor else None,
            [AccountProbe(c.platform_id, c.name, c.website) for c in companies.values()],
        )
    account_names = {m.id: m.name for ms in account_matches.values() for m in ms}
    anchors: dict[str, str | None] = {
        PERSON_SETS[obj]: _other_anchor(client, PERSON_SETS[obj], anchor.attribute)
    }
    other = "leads" if obj == ExportObject.CONTACT else "contacts"
    anchors[other] = _other_anchor(client, other, anchor.attribute)
    probes = []
    for contact in contacts.values():
        company = companies.get(contact.company_id) if contact.company_id else None
        probes.append(
            PersonProbe(
                contact.platform_id,
                contact.first_name,
                contact.last_name,
                contact.email,
                company.name if company is not None else None,
            )
        )
    duplicates = find_people(client, anchors, probes, account_names)
    items: list[ExportItem] = []
    for platform_id in ids:
        contact = contacts[platform_id]
        company = companies.get(contact.company_id) if contact.company_id else None
        mapped = mapping.map(sources.contact_values(contact, company))
        item = ExportItem(
            platform_id=platform_id,
            label=_person_label(contact, company),
            values=jsonable(mapped.values),
            problems=[str(p) for p in mapped.problems],
        )
        item.association = (
            association_rules.plan_association(
                preferences.association,
                company_platform_id=company.platform_id,
                company_name=company.name,
                candidates=account_matches.get(company.platform_id, []),
            )
            if obj == ExportObject.CONTACT and company is not None
            else None
        )
        _duplicate_fields(item, duplicates.get(platform_id), preferences, obj)
        items.append(item)
    return items
