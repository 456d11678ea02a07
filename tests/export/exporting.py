"""Helpers shared by the export-run tests: unique names, settings, Dynamics rows, counters.

The local Dataverse server lives for the whole test session, so every test makes its own
uniquely named records (a random suffix) and counts only those.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from gtmsync.dataverse import DataverseClient, RequestInfo
from gtmsync.export import service as export_service
from gtmsync.export import settings as export_settings
from gtmsync.export.anchor import Anchor, ensure_anchor
from gtmsync.export.models import Export
from gtmsync.export.schemas import ExportObject, ExportSettingsDocument
from gtmsync.platform.models import Company, Contact
from tests.fixtures.connection import ConnectedOrg
from tests.fixtures.factories import make_company, make_contact

# OData-special characters and non-ASCII letters. (The local server compares case-insensitively
# with SQLite's ASCII-only lower(), so accented letters stay lower-case here.)
SPECIAL = "O'Brien & Sons #1 100% +plus café ünïcødé"


def tag() -> str:
    return uuid.uuid4().hex[:10]


def company(session: Session, name: str, **values: Any) -> Company:
    return make_company(session, name=name, platform_id=f"C-{tag()}", **values)


def person(session: Session, first: str, last: str, **values: Any) -> Contact:
    return make_contact(
        session, first_name=first, last_name=last, platform_id=f"P-{tag()}", **values
    )


def planned_accounts(
    session: Session, connected: ConnectedOrg, label: str, size: int
) -> tuple[Export, list[str]]:
    """`size` new uniquely named companies and the seller's planned account export of them."""
    t = tag()
    pids = [company(session, f"{label} {i} {t}").platform_id for i in range(size)]
    export = export_service.plan(
        session,
        org_id=connected.org.id,
        user_id=connected.seller.id,
        obj=ExportObject.ACCOUNT,
        platform_ids=pids,
        settings=connected.settings,
    )
    return export, pids


def configure(
    session: Session, connected: ConnectedOrg, change: Callable[[ExportSettingsDocument], None]
) -> None:
    """Save the org's export settings after `change` (through the settings service)."""
    document = export_settings.get_document(session, connected.org.id)
    change(document)
    with connected.client(session) as client:
        export_settings.save_document(session, connected.org.id, connected.admin, document, client)


def anchor(client: DataverseClient, obj: ExportObject) -> Anchor:
    return ensure_anchor(client, obj)


class Calls:
    """Counts the HTTP requests a client sends (its `on_request` hook)."""

    def __init__(self) -> None:
        self.requests: list[RequestInfo] = []

    def __call__(self, info: RequestInfo) -> None:
        self.requests.append(info)

    @property
    def count(self) -> int:
        return len(self.requests)

    def by_resource(self) -> Counter[str]:
        return Counter(r.resource for r in self.requests)


def rows(client: DataverseClient, entity_set: str, field: str, value: str) -> list[dict[str, Any]]:
    """Every row of `entity_set` whose `field` equals `value` (for count checks)."""
    from gtmsync.dataverse import odata

    return [dict(r) for r in client.query(entity_set, filter=odata.eq(field, value))]
