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
    pending: list[Row],
    keys: list[str | None],
    lookup: Callable[[list[str]], dict[str, int]],
    *,
    target: str,
    method: MatchMethod,
) -> list[Row]:
    """Match `pending` rows by their `keys` (one per row); returns the rows still unmatched.

    Runs over every row of a page, so it avoids a call per row: keys come precomputed and
    the unmatched list is rebuilt only when something matched.
    """
    wanted = {k for k in keys if k}
    if not wanted:
        return pending
    found = lookup(sorted(wanted))
    if not found:
        return pending
    left: list[Row] = []
    for row, k in zip(pending, keys, strict=True):
        company = found.get(k) if k else None
        if company is None:
            left.append(row)
        else:
            row[target] = company
            row["match_method"] = method.value
    return left


def match_rows(session: Session, obj: GtmObject, rows: list[Row]) -> None:
    """Fill `matched_company_id`/`matched_contact_id` and `match_method` in place."""
    if obj == GtmObject.ACCOUNT:
        for row in rows:
            row["matched_company_id"] = None
            row["match_method"] = None

        def companies(column: str) -> Callable[[list[str]], dict[str, int]]:
            return lambda keys: platform_service.company_ids_by(session, column, keys)

        pending = _step(
            rows,
            [r.get("platform_company_id") for r in rows],
            companies("platform_id"),
            target="matched_company_id",
            method=MatchMethod.PLATFORM_ID,
        )
        pending = _step(
            pending,
            [r.get("domain") for r in pending],
            companies("domain"),
            target="matched_company_id",
            method=MatchMethod.DOMAIN,
        )
        _step(
            pending,
            [normalise_name(r.get("name")) for r in pending],
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

        pending = _step(
            rows,
            [r.get("platform_contact_id") for r in rows],
            contacts("platform_id"),
            target="matched_contact_id",
            method=MatchMethod.PLATFORM_ID,
        )
        _step(
            pending,
            [r.get("email") for r in pending],
            contacts("email"),
            target="matched_contact_id",
            method=MatchMethod.EMAIL,
        )
