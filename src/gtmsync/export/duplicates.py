"""Duplicate checks in bulk, in the seeds' order (*Duplicate Logic*).

- Accounts: platform ID, then exact company name, then exact website.
- People (exported as contacts or leads): platform ID, then email, then exact first name +
  last name + company name; contacts are searched before leads, so a person who exists as
  both is matched to the contact, as the seeds require.

Never one query per record: every criterion becomes `In()` filters over all the records'
values, and the filters travel as GET requests inside `$batch` requests (up to 1,000 per
request), so ten thousand records cost a handful of HTTP requests. Values are matched again
locally, case-insensitively (Dataverse's default collation is case-insensitive, so the
server returns the same rows), which also decides between several rows per value.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gtmsync.dataverse import BatchOperation, DataverseClient, Record, odata

PAGE_SIZE = 5000
# In a $batch the URL travels in the body; Dataverse accepts the same 32 KB as for a GET.
BATCH_URL_LENGTH = 30_000


@dataclass(frozen=True)
class InQuery:
    """Rows of `entity_set` whose `field` is one of `values`."""

    entity_set: str
    field: str
    values: Sequence[str]
    select: Sequence[str]


def fetch_in(
    client: DataverseClient,
    queries: Sequence[InQuery],
    *,
    max_url_length: int = BATCH_URL_LENGTH,
) -> list[list[Record]]:
    """All rows for each query (same order), sent as `$batch` GETs; next links followed."""
    operations: list[BatchOperation] = []
    for index, query in enumerate(queries):
        values = sorted({v for v in query.values if v})
        if not values:
            continue
        params = odata.query(select=query.select)
        prefix = client.url(odata.name(query.entity_set))
        for chunk in odata.in_chunks(
            query.field,
            values,
            url_prefix=prefix,
            other_params=params,
            max_url_length=max_url_length,
        ):
            path = f"{odata.name(query.entity_set)}?" + odata.encode_query(
                {**params, "$filter": chunk}
            )
            operations.append(
                BatchOperation(
                    "GET", path, headers={"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}, ref=index
                )
            )
    found: list[list[Record]] = [[] for _ in queries]
    if not operations:
        return found
    for result in client.batch(operations, continue_on_error=True, idempotent=True):
        if result.error is not None:
            raise result.error
        body: Mapping[str, Any] = result.json() or {}
        found[result.ref] += [Record(row) for row in body.get("value", [])]
        link = body.get("@odata.nextLink")
        while link:
            page = client.request(
                "GET",
                str(link),
                headers={"Prefer": f"odata.maxpagesize={PAGE_SIZE}"},
                idempotent=True,
            ).json()
            found[result.ref] += [Record(row) for row in page.get("value", [])]
            link = page.get("@odata.nextLink")
    return found


def _fold(value: object) -> str:
    return str(value).strip().casefold() if value else ""


def _website(value: object) -> str:
    return _fold(value).rstrip("/")


@dataclass(frozen=True)
class Match:
    """A Dynamics row that matches a platform record, and the criterion that matched."""

    entity_set: str
    id: uuid.UUID
    matched_by: str  # platform_id | name | website | email | full_name
    name: str
    modified_on: str

    def as_json(self) -> dict[str, object]:
        return {
            "entity_set": self.entity_set,
            "id": str(self.id),
            "matched_by": self.matched_by,
            "name": self.name,
            "modified_on": self.modified_on,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Match:
        return cls(
            str(data["entity_set"]),
            uuid.UUID(str(data["id"])),
            str(data["matched_by"]),
            str(data.get("name") or ""),
            str(data.get("modified_on") or ""),
        )


def _newest_first(matches: Iterable[Match]) -> list[Match]:
    unique = {m.id: m for m in matches}
    return sorted(unique.values(), key=lambda m: m.modified_on, reverse=True)


@dataclass(frozen=True)
class AccountProbe:
    platform_id: str
    name: str
    website: str | None = None


ACCOUNT_SELECT = ("accountid", "name", "websiteurl", "modifiedon")


def find_accounts(
    client: DataverseClient, anchor: str | None, probes: Sequence[AccountProbe]
) -> dict[str, list[Match]]:
    """Per company platform ID: the accounts of the first criterion that matches, newest first.

    One account means a clear duplicate (or association); several mean the person picks
    (or the most recently modified wins, per the admin's association options).
    """
    select = [*ACCOUNT_SELECT, *([anchor] if anchor else [])]
    queries = [
        InQuery("accounts", "name", [p.name for p in probes], select),
        InQuery("accounts", "websiteurl", [p.website or "" for p in probes], select),
    ]
    if anchor:
        queries.append(InQuery("accounts", anchor, [p.platform_id for p in probes], select))
    rows = fetch_in(client, queries)
    by: dict[str, dict[str, list[Record]]] = {c: defaultdict(list) for c in ("id", "n", "w")}
    for row in rows[0]:
        by["n"][_fold(row.get("name"))].append(row)
    for row in rows[1]:
        by["w"][_website(row.get("websiteurl"))].append(row)
    if anchor:
        for row in rows[2]:
            by["id"][str(row.get(anchor) or "")].append(row)

    def match(row: Record, criterion: str) -> Match:
        return Match(
            "accounts",
            uuid.UUID(str(row["accountid"])),
            criterion,
            str(row.get("name") or ""),
            str(row.get("modifiedon") or ""),
        )

    result: dict[str, list[Match]] = {}
    for probe in probes:
        for criterion, key, table in (
            ("platform_id", probe.platform_id, "id"),
            ("name", _fold(probe.name), "n"),
            ("website", _website(probe.website), "w"),
        ):
            found = by[table].get(key) if key else None
            if found:
                result[probe.platform_id] = _newest_first(match(r, criterion) for r in found)
                break
        else:
            result[probe.platform_id] = []
    return result


@dataclass(frozen=True)
class PersonProbe:
    platform_id: str
    first_name: str
    last_name: str
    email: str | None
    company_name: str | None


PERSON_TABLES = (
    (
        "contacts",
        "contactid",
        ("firstname", "lastname", "emailaddress1", "_parentcustomerid_value"),
    ),
    ("leads", "leadid", ("firstname", "lastname", "emailaddress1", "companyname")),
)


def find_people(
    client: DataverseClient,
    anchors: Mapping[str, str | None],
    probes: Sequence[PersonProbe],
    account_names: Mapping[uuid.UUID, str],
) -> dict[str, Match | None]:
    """Per person platform ID: the duplicate contact or lead, or None.

    `anchors` gives the platform-ID column per entity set (None: the table has none).
    `account_names` names the accounts a contact's company may be (a contact has no company
    name column of its own: its parent account's name is compared).
    """
    queries: list[InQuery] = []
    layout: list[tuple[str, str, str | None, int]] = []
    for entity_set, primary, columns in PERSON_TABLES:
        anchor = anchors.get(entity_set)
        select = [primary, *columns, "modifiedon", *([anchor] if anchor else [])]
        start = len(queries)
        queries.append(
            InQuery(entity_set, "emailaddress1", [p.email or "" for p in probes], select)
        )
        queries.append(InQuery(entity_set, "lastname", [p.last_name for p in probes], select))
        if anchor:
            queries.append(InQuery(entity_set, anchor, [p.platform_id for p in probes], select))
        layout.append((entity_set, primary, anchor, start))
    rows = fetch_in(client, queries)
    result: dict[str, Match | None] = {p.platform_id: None for p in probes}
    for entity_set, _primary, anchor, start in layout:
        by_email: dict[str, list[Record]] = defaultdict(list)
        by_name: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
        by_id: dict[str, list[Record]] = defaultdict(list)
        for row in rows[start]:
            by_email[_fold(row.get("emailaddress1"))].append(row)
        for row in rows[start + 1]:
            if entity_set == "contacts":
                parent = row.get("_parentcustomerid_value")
                company = account_names.get(uuid.UUID(str(parent))) if parent else None
            else:
                company = row.get("companyname")
            key = (_fold(row.get("firstname")), _fold(row.get("lastname")), _fold(company))
            by_name[key].append(row)
        if anchor:
            for row in rows[start + 2]:
                by_id[str(row.get(anchor) or "")].append(row)

        def match(row: Record, criterion: str, entity_set: str = entity_set) -> Match:
            primary_id = "contactid" if entity_set == "contacts" else "leadid"
            name = f"{row.get('firstname') or ''} {row.get('lastname') or ''}".strip()
            return Match(
                entity_set,
                uuid.UUID(str(row[primary_id])),
                criterion,
                name,
                str(row.get("modifiedon") or ""),
            )

        for probe in probes:
            if result[probe.platform_id] is not None:
                continue  # a contact already matched: the contact is the duplicate
            name_key = (
                _fold(probe.first_name),
                _fold(probe.last_name),
                _fold(probe.company_name),
            )
            for criterion, found in (
                ("platform_id", by_id.get(probe.platform_id)),
                ("email", by_email.get(_fold(probe.email)) if probe.email else None),
                ("full_name", by_name.get(name_key) if probe.company_name else None),
            ):
                if found:
                    result[probe.platform_id] = _newest_first(match(r, criterion) for r in found)[0]
                    break
    return result
