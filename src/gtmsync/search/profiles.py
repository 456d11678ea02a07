"""In-CRM indicators, company and contact profiles, and a company's org chart.

Indicators come from the daily snapshot, so they carry its date ("as of"): the seeds show the
filter date with the owner. When several Dynamics records match one platform record
(duplicates across locations) the most recently modified one is shown and the others counted.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from gtmsync.connection import gateway
from gtmsync.kit.errors import NotFoundError
from gtmsync.platform.models import Company, Contact
from gtmsync.search import snapshot
from gtmsync.search.filters import SearchObject
from gtmsync.search.models import SnapAccount, SnapContact

MANAGEMENT_ORDER = ("C-Level", "VP", "Director", "Manager", "Non-Manager")


@dataclass(frozen=True)
class Indicator:
    in_dynamics: bool
    table: str | None = None  # account | contact | lead
    dynamics_id: uuid.UUID | None = None
    name: str | None = None
    owner_name: str | None = None
    others: int = 0  # further Dynamics records matching the same platform record
    as_of: datetime | None = None
    url: str | None = None


NOT_IN_DYNAMICS = Indicator(in_dynamics=False)


def record_url(org_url: str | None, table: str, dynamics_id: uuid.UUID) -> str | None:
    """The Dynamics record's form: `<org>/main.aspx?etn=account&id=<guid>&pagetype=...`."""
    if not org_url:
        return None
    query = urlencode({"etn": table, "id": str(dynamics_id), "pagetype": "entityrecord"})
    return f"{org_url.rstrip('/')}/main.aspx?{query}"


def _org_url(session: Session, org_id: uuid.UUID) -> str | None:
    integration = gateway.get_integration(session, org_id)
    return integration.org_url if integration is not None else None


def indicators(
    session: Session, org_id: uuid.UUID, obj: SearchObject, ids: Sequence[int]
) -> dict[int, Indicator]:
    """One indicator per platform id in `ids` (ids not in Dynamics are left out)."""
    if not ids:
        return {}
    taken = snapshot.info(session, org_id)
    as_of = taken.taken_at if taken else None
    org_url = _org_url(session, org_id)
    out: dict[int, Indicator] = {}
    if obj == SearchObject.COMPANIES:
        rows = session.execute(
            select(
                SnapAccount.company_id,
                SnapAccount.dynamics_id,
                SnapAccount.name,
                SnapAccount.owner_name,
                SnapAccount.match_count,
            ).where(
                SnapAccount.org_id == org_id,
                SnapAccount.company_id.in_(list(ids)),
                SnapAccount.is_primary.is_(True),
            )
        )
        for company_id, dyn_id, name, owner, count in rows:
            out[company_id] = Indicator(
                True,
                "account",
                dyn_id,
                name,
                owner,
                count - 1,
                as_of,
                record_url(org_url, "account", dyn_id),
            )
        return out
    people = session.execute(
        select(
            SnapContact.contact_id,
            SnapContact.source_table,
            SnapContact.dynamics_id,
            SnapContact.name,
            SnapContact.owner_name,
            SnapContact.match_count,
        ).where(
            SnapContact.org_id == org_id,
            SnapContact.contact_id.in_(list(ids)),
            SnapContact.is_primary.is_(True),
        )
    )
    for contact_id, source, dyn_id, name, owner, count in people:
        # A person may be both a contact and a lead: the contact is the one to show.
        if contact_id in out and out[contact_id].table == "contact":
            continue
        out[contact_id] = Indicator(
            True,
            source,
            dyn_id,
            name,
            owner,
            count - 1,
            as_of,
            record_url(org_url, source, dyn_id),
        )
    return out


@dataclass(frozen=True)
class Match:
    table: str
    dynamics_id: uuid.UUID
    name: str | None
    owner_name: str | None
    modified_on: datetime | None
    url: str | None


@dataclass(frozen=True)
class OrgChartPerson:
    id: int
    name: str
    job_title: str | None
    indicator: Indicator


@dataclass
class OrgChart:
    # department -> management level -> people
    departments: dict[str, dict[str, list[OrgChartPerson]]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(p) for levels in self.departments.values() for p in levels.values())


@dataclass(frozen=True)
class CompanyProfile:
    company: Company
    indicator: Indicator
    matches: list[Match]
    org_chart: OrgChart


@dataclass(frozen=True)
class ContactProfile:
    contact: Contact
    company: Company | None
    indicator: Indicator
    matches: list[Match]


def _level_rank(level: str) -> int:
    return MANAGEMENT_ORDER.index(level) if level in MANAGEMENT_ORDER else len(MANAGEMENT_ORDER)


def org_chart(session: Session, org_id: uuid.UUID, company_id: int) -> OrgChart:
    people = list(
        session.scalars(
            select(Contact)
            .where(Contact.company_id == company_id)
            .order_by(Contact.last_name, Contact.id)
            .limit(1000)
        )
    )
    marks = indicators(session, org_id, SearchObject.CONTACTS, [p.id for p in people])
    grouped: dict[str, dict[str, list[OrgChartPerson]]] = defaultdict(lambda: defaultdict(list))
    for p in people:
        grouped[p.department or "Other"][p.management_level or "Unknown"].append(
            OrgChartPerson(
                p.id,
                f"{p.first_name} {p.last_name}",
                p.job_title,
                marks.get(p.id, NOT_IN_DYNAMICS),
            )
        )
    chart = OrgChart()
    for department in sorted(grouped):
        levels = grouped[department]
        chart.departments[department] = {
            level: levels[level] for level in sorted(levels, key=lambda lv: (_level_rank(lv), lv))
        }
    return chart


def company_profile(session: Session, org_id: uuid.UUID, company_id: int) -> CompanyProfile:
    company = session.get(Company, company_id)
    if company is None:
        raise NotFoundError(f"No company with id {company_id}.")
    org_url = _org_url(session, org_id)
    rows = session.scalars(
        select(SnapAccount)
        .where(SnapAccount.org_id == org_id, SnapAccount.company_id == company_id)
        .order_by(SnapAccount.is_primary.desc(), SnapAccount.modified_on.desc())
    )
    matches = [
        Match(
            "account",
            r.dynamics_id,
            r.name,
            r.owner_name,
            r.modified_on,
            record_url(org_url, "account", r.dynamics_id),
        )
        for r in rows
    ]
    mark = indicators(session, org_id, SearchObject.COMPANIES, [company_id])
    return CompanyProfile(
        company,
        mark.get(company_id, NOT_IN_DYNAMICS),
        matches,
        org_chart(session, org_id, company_id),
    )


def contact_profile(session: Session, org_id: uuid.UUID, contact_id: int) -> ContactProfile:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFoundError(f"No contact with id {contact_id}.")
    company = session.get(Company, contact.company_id) if contact.company_id else None
    org_url = _org_url(session, org_id)
    rows = session.scalars(
        select(SnapContact)
        .where(SnapContact.org_id == org_id, SnapContact.contact_id == contact_id)
        .order_by(SnapContact.is_primary.desc(), SnapContact.modified_on.desc())
    )
    matches = [
        Match(
            r.source_table,
            r.dynamics_id,
            r.name,
            r.owner_name,
            r.modified_on,
            record_url(org_url, r.source_table, r.dynamics_id),
        )
        for r in rows
    ]
    mark = indicators(session, org_id, SearchObject.CONTACTS, [contact_id])
    return ContactProfile(contact, company, mark.get(contact_id, NOT_IN_DYNAMICS), matches)
