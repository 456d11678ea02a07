"""Matching imported records to platform companies and contacts, a page at a time.

Accounts: platform id (the export's `gtmsync_platformid` anchor), then the registrable
domain (website, else email domain), then the normalised exact name. Contacts and leads:
platform id, then email. Each step is one bulk query per page over the keys still
unmatched, so matching costs at most five indexed queries per 5,000 records. Unmatched
records are kept too (the seeds' "non-matched data"), with `match_method` left empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from gtmsync.crm_import.models import GtmObject, MatchMethod
from gtmsync.platform import service as platform_service

Row = dict[str, Any]


def normalise_name(name: str | None) -> str | None:
    if not name:
        return None
    return name.strip().lower() or None  # as the platform's `name_lower`


def _step(
    rows: list[Row],
    key: Callable[[Row], str | None],
    lookup: Callable[[list[str]], dict[str, int]],
    *,
    target: str,
    method: MatchMethod,
) -> None:
    pending = [(r, key(r)) for r in rows if r.get(target) is None]
    keys = [k for _, k in pending if k]
    if not keys:
        return
    found = lookup(keys)
    for row, k in pending:
        if k and k in found:
            row[target] = found[k]
            row["match_method"] = method.value


def match_rows(session: Session, obj: GtmObject, rows: list[Row]) -> None:
    """Fill `matched_company_id`/`matched_contact_id` and `match_method` in place."""
    if obj == GtmObject.ACCOUNT:
        for row in rows:
            row["matched_company_id"] = None
            row["match_method"] = None

        def companies(column: str) -> Callable[[list[str]], dict[str, int]]:
            return lambda keys: platform_service.company_ids_by(session, column, keys)

        _step(
            rows,
            lambda r: r.get("platform_company_id"),
            companies("platform_id"),
            target="matched_company_id",
            method=MatchMethod.PLATFORM_ID,
        )
        _step(
            rows,
            lambda r: r.get("domain"),
            companies("domain"),
            target="matched_company_id",
            method=MatchMethod.DOMAIN,
        )
        _step(
            rows,
            lambda r: normalise_name(r.get("name")),
            companies("name"),
            target="matched_company_id",
            method=MatchMethod.NAME,
        )
    elif obj == GtmObject.CONTACT:
        for row in rows:
            row["matched_contact_id"] = None
            row["match_method"] = None

        def contacts(column: str) -> Callable[[list[str]], dict[str, int]]:
            return lambda keys: platform_service.contact_ids_by(session, column, keys)

        _step(
            rows,
            lambda r: r.get("platform_contact_id"),
            contacts("platform_id"),
            target="matched_contact_id",
            method=MatchMethod.PLATFORM_ID,
        )
        _step(
            rows,
            lambda r: r.get("email"),
            contacts("email"),
            target="matched_contact_id",
            method=MatchMethod.EMAIL,
        )
