"""The daily CRM snapshot behind the Dynamics filters and indicators.

`take(session, org_id)` rebuilds one org's snapshot from the imported data: delete the org's
rows and insert the new ones in the caller's transaction, so readers see the old snapshot or
the new one, never half of each (the edge commits once at the end). It runs from the daily
`search.snapshot` task only; Sync Now refreshes the import, and the seeds say filters follow
the next day, which is what users are told on the page.

The data is read through `crm_import.service.records` (features talk through services).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Select,
    String,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.schemas import GtmObject
from gtmsync.kit.clock import ensure_utc, utc_now
from gtmsync.platform.models import Company, Contact
from gtmsync.search.models import (
    SearchSnapshot,
    SnapAccount,
    SnapContact,
    SnapOpportunity,
    SnapOwner,
    SnapStat,
)

LIMITS = {"accounts": 20_000_000, "contacts": 20_000_000, "leads": 20_000_000}
OPPORTUNITY_LIMIT = 5_000_000
CHUNK = 5_000
STAT_VALUE = String(200)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SnapshotInfo:
    taken_at: datetime
    accounts: int
    contacts: int
    leads: int
    opportunities: int
    truncated: str | None


def _custom(row: Any) -> dict[str, Any] | None:
    custom = getattr(row, "custom", None)
    if not custom:
        return None
    return {k: (None if v is None else str(v)) for k, v in custom.items()}


def _sort_key(row: Any) -> datetime:
    modified = getattr(row, "modified_on", None)
    return ensure_utc(modified) if modified else _EPOCH


def _insert(session: Session, table: Any, rows: Iterable[dict[str, Any]]) -> None:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            session.execute(insert(table), chunk)
            chunk = []
    if chunk:
        session.execute(insert(table), chunk)


def _grouped(rows: Sequence[Any], key: str) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        target = getattr(row, key)
        if target is not None:
            groups[int(target)].append(row)
    for group in groups.values():
        group.sort(key=_sort_key, reverse=True)  # most recently modified first
    return groups


def take(
    session: Session,
    org_id: uuid.UUID,
    *,
    limits: dict[str, int] | None = None,
    opportunity_limit: int = OPPORTUNITY_LIMIT,
) -> SnapshotInfo:
    """Rebuild the org's snapshot; flushes, the edge commits (one transaction = one swap)."""
    caps = {**LIMITS, **(limits or {})}
    truncated: list[str] = []
    owners = {
        getattr(u, "dynamics_id"): getattr(u, "full_name")  # noqa: B009
        for u in import_service.records(session, org_id, GtmObject.USER)
    }

    accounts = [
        a
        for a in import_service.records(session, org_id, GtmObject.ACCOUNT)
        if getattr(a, "matched_company_id", None) is not None
    ]
    if len(accounts) > caps["accounts"]:
        truncated.append(f"accounts beyond {caps['accounts']:,}")
        accounts = accounts[: caps["accounts"]]
    by_company = _grouped(accounts, "matched_company_id")
    company_of_account = {a.dynamics_id: int(a.matched_company_id) for a in accounts}

    people = [
        c
        for c in import_service.records(session, org_id, GtmObject.CONTACT)
        if getattr(c, "matched_contact_id", None) is not None
    ]
    contacts = [c for c in people if c.source_table != "lead"][: caps["contacts"]]
    leads = [c for c in people if c.source_table == "lead"][: caps["leads"]]
    if len(contacts) + len(leads) < len(people):
        truncated.append("contacts or leads beyond the limit")

    opportunities: list[dict[str, Any]] = []
    for opp in import_service.records(session, org_id, GtmObject.OPPORTUNITY):
        company_id = company_of_account.get(getattr(opp, "account_dynamics_id", None))
        if company_id is None:
            continue
        if len(opportunities) >= opportunity_limit:
            truncated.append(f"opportunities beyond {opportunity_limit:,}")
            break
        status = "open" if not opp.is_closed else ("won" if opp.is_won else "lost")
        opportunities.append(
            {
                "org_id": org_id,
                "company_id": company_id,
                "stage": opp.stage,
                "amount": opp.amount,
                "close_date": opp.close_date,
                "status": status,
            }
        )

    for table in (SnapAccount, SnapContact, SnapOpportunity, SnapOwner, SnapStat):
        session.execute(delete(table).where(table.org_id == org_id))

    def account_rows() -> Iterable[dict[str, Any]]:
        for company_id, group in by_company.items():
            for index, acct in enumerate(group):
                yield {
                    "org_id": org_id,
                    "company_id": company_id,
                    "dynamics_id": acct.dynamics_id,
                    "name": acct.name,
                    "owner_id": acct.owner_id,
                    "owner_name": owners.get(acct.owner_id),
                    "account_type": acct.account_type,
                    "modified_on": acct.modified_on,
                    "custom": _custom(acct),
                    "is_primary": index == 0,
                    "match_count": len(group),
                }

    def contact_rows() -> Iterable[dict[str, Any]]:
        for source in (contacts, leads):
            for contact_id, group in _grouped(source, "matched_contact_id").items():
                for index, person in enumerate(group):
                    name = " ".join(p for p in (person.first_name, person.last_name) if p)
                    yield {
                        "org_id": org_id,
                        "contact_id": contact_id,
                        "source_table": "lead" if person.source_table == "lead" else "contact",
                        "dynamics_id": person.dynamics_id,
                        "name": name or None,
                        "owner_id": person.owner_id,
                        "owner_name": owners.get(person.owner_id),
                        "do_not_email": bool(person.do_not_email),
                        "lead_status": person.lead_status,
                        "modified_on": person.modified_on,
                        "custom": _custom(person),
                        "is_primary": index == 0,
                        "match_count": len(group),
                    }

    _insert(session, SnapAccount, account_rows())
    _insert(session, SnapContact, contact_rows())
    _insert(session, SnapOpportunity, opportunities)
    seen = {a.owner_id for a in accounts} | {p.owner_id for p in (*contacts, *leads)}
    _insert(
        session,
        SnapOwner,
        (
            {"org_id": org_id, "owner_id": o, "name": owners.get(o)}
            for o in sorted(seen - {None}, key=str)
        ),
    )

    session.flush()
    refresh_stats(session, org_id)

    info = SnapshotInfo(
        taken_at=utc_now(),
        accounts=len(accounts),
        contacts=len(contacts),
        leads=len(leads),
        opportunities=len(opportunities),
        truncated="; ".join(truncated) or None,
    )
    row = session.get(SearchSnapshot, org_id)
    if row is None:
        row = SearchSnapshot(org_id=org_id, taken_at=info.taken_at)
        session.add(row)
    row.taken_at = info.taken_at
    row.accounts, row.contacts, row.leads = info.accounts, info.contacts, info.leads
    row.opportunities, row.truncated = info.opportunities, info.truncated
    row.platform_companies = int(session.scalar(select(func.count()).select_from(Company)) or 0)
    row.platform_contacts = int(session.scalar(select(func.count()).select_from(Contact)) or 0)
    session.flush()
    analyze(session)
    return info


def _stat(kind: str, key: Any, value: Any, *where: Any) -> Select[str, str, int]:
    """`(kind, value, records)`: distinct platform records per value (`value` None = "any")."""
    shown = cast(value, STAT_VALUE) if value is not None else literal("")
    query = select(literal(kind), shown, func.count(func.distinct(key))).where(*where)
    return query.group_by(value) if value is not None else query


def stat_queries(org_id: uuid.UUID) -> list[Select[str, str, int]]:
    """The statistics a search estimate reads (see `service.estimate` and `crm_filters`)."""
    acc = (SnapAccount.org_id == org_id,)
    opp = (SnapOpportunity.org_id == org_id,)
    con = (SnapContact.org_id == org_id, SnapContact.source_table == "contact")
    lead = (SnapContact.org_id == org_id, SnapContact.source_table == "lead")
    a, o, c = SnapAccount.company_id, SnapOpportunity.company_id, SnapContact.contact_id
    return [
        _stat("account_any", a, None, *acc),
        _stat("account_owner", a, SnapAccount.owner_id, *acc),
        _stat("account_type", a, SnapAccount.account_type, *acc),
        _stat("opp_any", o, None, *opp),
        _stat("opp_stage", o, SnapOpportunity.stage, *opp),
        _stat("opp_status", o, SnapOpportunity.status, *opp),
        _stat("contact_any", c, None, *con),
        _stat("contact_owner", c, SnapContact.owner_id, *con),
        _stat("contact_optout", c, None, *con, SnapContact.do_not_email.is_(True)),
        _stat("lead_any", c, None, *lead),
        _stat("lead_owner", c, SnapContact.owner_id, *lead),
        _stat("lead_status", c, SnapContact.lead_status, *lead),
        _stat("lead_optout", c, None, *lead, SnapContact.do_not_email.is_(True)),
    ]


def refresh_stats(session: Session, org_id: uuid.UUID) -> None:
    """Recompute the org's `SnapStat` rows from its snapshot tables (one GROUP BY each)."""
    session.execute(delete(SnapStat).where(SnapStat.org_id == org_id))
    rows = session.execute(union_all(*stat_queries(org_id))).all()
    merged: dict[tuple[str, str], int] = defaultdict(int)
    for kind, value, records in rows:
        if value is None:
            continue  # records without an owner, type, stage...: no filter asks for them
        # UUIDs come back as 32-hex text on SQLite: store the canonical form search uses.
        merged[(kind, _canonical(kind, value))] += int(records)
    # Platform companies per industry: the size of the name-ordered walk a search filtered
    # by industry starts from (`service._industry_walk`). One index scan a day.
    industries = select(Company.industry, func.count()).where(Company.industry.is_not(None))
    for industry, records in session.execute(industries.group_by(Company.industry)):
        merged[("company_industry", str(industry))] += int(records)
    _insert(
        session,
        SnapStat,
        (
            {"org_id": org_id, "kind": k, "value": v, "records": n}
            for (k, v), n in merged.items()
            if n
        ),
    )


def industry_sizes(session: Session, org_id: uuid.UUID, industries: Sequence[str]) -> int | None:
    """Platform companies in these industries when the snapshot was taken (None: unknown)."""
    rows = session.scalars(
        select(SnapStat.records).where(
            SnapStat.org_id == org_id,
            SnapStat.kind == "company_industry",
            SnapStat.value.in_(list(industries)),
        )
    ).all()
    return sum(rows) if rows else None


def _canonical(kind: str, value: Any) -> str:
    if kind.endswith("_owner") and value:
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            return str(value)
    return str(value or "")


def analyze(session: Session) -> None:
    """Refresh the planner's statistics of the snapshot tables after a rebuild.

    A rebuild replaces millions of rows; until the statistics follow, PostgreSQL plans the
    EXISTS probes from the old row counts (autovacuum gets there eventually, minutes later).
    `take` runs it in its own transaction, before the commit: PostgreSQL's ANALYZE counts
    the transaction's own inserts as live rows, and the new statistics publish with the new
    rows. SQLite's `analysis_limit` keeps its ANALYZE to a sample of each index.
    """
    tables = [t.__tablename__ for t in (SnapAccount, SnapOpportunity, SnapContact, SnapStat)]
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA analysis_limit=1000"))
    for table in tables:
        session.execute(text(f"ANALYZE {table}"))


def info(session: Session, org_id: uuid.UUID) -> SnapshotInfo | None:
    row = session.get(SearchSnapshot, org_id)
    if row is None:
        return None
    return SnapshotInfo(
        row.taken_at, row.accounts, row.contacts, row.leads, row.opportunities, row.truncated
    )


def orgs_with_imports(session: Session) -> list[uuid.UUID]:
    """Orgs the daily task snapshots: every org the import runs for, plus existing ones."""
    known = set(session.scalars(select(SearchSnapshot.org_id)))
    return sorted(known | set(import_service.orgs_to_import(session)), key=str)
