"""Saved searches with alerts: the daily job records records that newly match.

A saved search keeps its query string (standard and `crm_*` filters alike). The first check
records what matches as the baseline (not "new": the user has seen that list when saving);
each later check marks records that were not matched before as new, and the portal lists them
until the user opens the search. Each check looks at the first `ALERT_SCAN` matches by id
order, so a very broad search costs the same as a narrow one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gtmsync.kit.clock import utc_now
from gtmsync.kit.errors import NotFoundError, UserError
from gtmsync.platform.models import Company, Contact
from gtmsync.search import crm_filters
from gtmsync.search import filters as search_filters
from gtmsync.search.models import SavedSearch, SavedSearchMatch

ALERT_SCAN = 5_000
MAX_SAVED_PER_USER = 50


@dataclass(frozen=True)
class SavedView:
    id: uuid.UUID
    name: str
    object: str
    params: list[tuple[str, str]]
    new_matches: int
    last_checked_at: datetime | None

    @property
    def query_string(self) -> str:
        from urllib.parse import urlencode

        return urlencode([("object", self.object), *self.params])


def _view(session: Session, row: SavedSearch) -> SavedView:
    new = session.scalar(
        select(func.count())
        .select_from(SavedSearchMatch)
        .where(SavedSearchMatch.saved_search_id == row.id, SavedSearchMatch.is_new.is_(True))
    )
    return SavedView(
        row.id,
        row.name,
        row.object,
        [(k, v) for k, v in row.params],
        int(new or 0),
        row.last_checked_at,
    )


def save(
    session: Session,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    name: str,
    obj: search_filters.SearchObject,
    params: Sequence[tuple[str, str]],
) -> SavedView:
    """Validate the filters as a search would, then store them; alerts start at the baseline."""
    name = name.strip()
    if not name or len(name) > 120:
        raise UserError(
            "Give the search a name (1-120 characters).",
            field="name",
            fix="e.g. 'West coast SaaS without an owner'.",
        )
    kept = [(k, v) for k, v in params if str(v).strip() and k not in {"object", "page", "sort"}]
    search_filters.parse(obj, [(k, v) for k, v in kept if not k.startswith(crm_filters.PREFIX)])
    crm_filters.parse(session, org_id, obj, kept)
    count = session.scalar(
        select(func.count()).select_from(SavedSearch).where(SavedSearch.user_id == user_id)
    )
    if int(count or 0) >= MAX_SAVED_PER_USER:
        raise UserError(
            f"You have {MAX_SAVED_PER_USER} saved searches, the most allowed.",
            field="name",
            fix="Delete one you no longer need.",
        )
    row = SavedSearch(
        org_id=org_id,
        user_id=user_id,
        name=name,
        object=obj.value,
        params=[[k, v] for k, v in kept],
    )
    session.add(row)
    session.flush()
    check(session, row.id)
    return _view(session, row)


def _matching_ids(session: Session, row: SavedSearch) -> list[int]:
    obj = search_filters.SearchObject(row.object)
    pairs = [(k, v) for k, v in row.params]
    standard = search_filters.parse(obj, [(k, v) for k, v in pairs if not k.startswith("crm_")])
    crm = crm_filters.parse(session, row.org_id, obj, pairs)
    table = Company if obj == search_filters.SearchObject.COMPANIES else Contact
    query = (
        select(table.id).where(*standard.where(), *crm.where()).order_by(table.id).limit(ALERT_SCAN)
    )
    return list(session.scalars(query))


def check(session: Session, saved_id: uuid.UUID) -> int:
    """Record matches of one saved search; returns how many are new since the last check."""
    row = session.get(SavedSearch, saved_id)
    if row is None:
        raise NotFoundError(f"No saved search {saved_id}.")
    baseline = row.last_checked_at is None
    known = set(
        session.scalars(
            select(SavedSearchMatch.record_id).where(SavedSearchMatch.saved_search_id == row.id)
        )
    )
    now = utc_now()
    fresh = [i for i in _matching_ids(session, row) if i not in known]
    session.add_all(
        SavedSearchMatch(
            saved_search_id=row.id, record_id=i, first_seen_at=now, is_new=not baseline
        )
        for i in fresh
    )
    row.last_checked_at = now
    session.flush()
    return 0 if baseline else len(fresh)


def check_all(session: Session) -> dict[uuid.UUID, int]:
    """The daily alert job: every saved search with alerts on (after the snapshot)."""
    ids = list(session.scalars(select(SavedSearch.id).where(SavedSearch.alerts.is_(True))))
    return {i: check(session, i) for i in ids}


def list_for(session: Session, org_id: uuid.UUID, user_id: uuid.UUID) -> list[SavedView]:
    rows = session.scalars(
        select(SavedSearch)
        .where(SavedSearch.org_id == org_id, SavedSearch.user_id == user_id)
        .order_by(SavedSearch.name)
    )
    return [_view(session, r) for r in rows]


def _owned(
    session: Session, org_id: uuid.UUID, user_id: uuid.UUID, saved_id: uuid.UUID
) -> SavedSearch:
    row = session.get(SavedSearch, saved_id)
    if row is None or row.org_id != org_id or row.user_id != user_id:
        raise NotFoundError("No such saved search.")
    return row


def new_matches(
    session: Session, org_id: uuid.UUID, user_id: uuid.UUID, saved_id: uuid.UUID
) -> list[tuple[int, str, datetime]]:
    """(record id, display name, first seen) of the new matches, newest first."""
    row = _owned(session, org_id, user_id, saved_id)
    table = Company if row.object == search_filters.SearchObject.COMPANIES.value else Contact
    label = table.name if table is Company else Contact.first_name + " " + Contact.last_name
    query = (
        select(SavedSearchMatch.record_id, label, SavedSearchMatch.first_seen_at)
        .join(table, table.id == SavedSearchMatch.record_id)
        .where(SavedSearchMatch.saved_search_id == row.id, SavedSearchMatch.is_new.is_(True))
        .order_by(SavedSearchMatch.first_seen_at.desc(), SavedSearchMatch.record_id)
        .limit(500)
    )
    return [(int(i), str(n), at) for i, n, at in session.execute(query)]


def mark_seen(session: Session, org_id: uuid.UUID, user_id: uuid.UUID, saved_id: uuid.UUID) -> None:
    row = _owned(session, org_id, user_id, saved_id)
    session.execute(
        update(SavedSearchMatch)
        .where(SavedSearchMatch.saved_search_id == row.id, SavedSearchMatch.is_new.is_(True))
        .values(is_new=False, seen_at=utc_now())
    )
    session.flush()


def delete(session: Session, org_id: uuid.UUID, user_id: uuid.UUID, saved_id: uuid.UUID) -> None:
    session.delete(_owned(session, org_id, user_id, saved_id))
    session.flush()
