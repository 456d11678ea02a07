"""Advanced Search over the platform's companies and contacts.

The portal page and `/api/v1/search/{object}` call `search()` (one code path, two renderings).
Counting every match of a broad search over millions of rows is slow and rarely useful:

- the page reads one row more than it shows, so `has_next` never needs the total, and a page
  that is not full gives the exact total for free;
- without CRM filters the total is exact up to `COUNT_CAP` and shown as "10,000+" beyond;
- with CRM filters each candidate of the standard filters costs one or two index probes into
  the snapshot, so only up to `EXACT_LIMIT` candidates are counted exactly. Beyond that the
  total is an estimate, shown as "about N" (API: `total_is_estimate`): the standard filters'
  matches times the share of records the CRM filters keep, from the statistics the daily
  snapshot computes (`crm_filters.CrmFilters.fraction`). The standard filters' matches are
  estimated from a short walk of the industry in name order when the search has one industry
  (`_industry_walk`: a few thousand index entries instead of the whole industry), otherwise
  counted up to `CANDIDATE_CAP`. Filters without statistics (amount and date ranges, custom
  fields) fall back to the capped exact count.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select, text, tuple_
from sqlalchemy.orm import Session, aliased

from gtmsync.kit.errors import UserError
from gtmsync.platform.models import Company, Contact, IntentSignal
from gtmsync.search import crm_filters, profiles, snapshot
from gtmsync.search.filters import ParsedFilters, SearchObject, parse

# Company filters on contacts are EXISTS subqueries over `Company`; the company shown beside a
# contact is joined under another name so those subqueries do not correlate with it.
_DisplayCompany = aliased(Company, name="display_company")

COUNT_CAP = 10_000
EXACT_LIMIT = 2_000  # CRM-filtered: candidates probed one by one for an exact total
CANDIDATE_CAP = 100_000  # CRM-filtered: standard-filter matches counted for an estimate
LOOSE_SCAN_CAP = 1_000  # distinct values read to resolve a case-insensitive filter
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25

SORTS: dict[SearchObject, dict[str, tuple[str, Any]]] = {
    SearchObject.COMPANIES: {
        "name": ("Name", Company.name_lower),
        "employees": ("Employees", Company.employee_count),
        "revenue": ("Revenue", Company.revenue),
    },
    SearchObject.CONTACTS: {
        "name": ("Name", Contact.last_name),
        "job_title": ("Job title", Contact.job_title),
    },
}


@dataclass(frozen=True)
class CompanyHit:
    id: int
    platform_id: str
    name: str
    website: str | None
    industry: str | None
    employee_count: int | None
    revenue: int | None
    city: str | None
    country: str | None


@dataclass(frozen=True)
class ContactHit:
    id: int
    platform_id: str
    first_name: str
    last_name: str
    email: str | None
    job_title: str | None
    department: str | None
    management_level: str | None
    company_name: str | None
    company_platform_id: str | None


@dataclass(frozen=True)
class SearchPage:
    obj: SearchObject
    hits: Sequence[CompanyHit | ContactHit]
    total: int
    total_is_capped: bool  # `total` is a lower bound
    page: int
    page_size: int
    sentences: list[str]
    has_next: bool = False
    total_is_estimate: bool = False  # `total` is estimated from snapshot statistics

    @property
    def total_label(self) -> str:
        if self.total_is_estimate:
            return f"about {self.total:,}" + (" or more" if self.total_is_capped else "")
        return f"{self.total:,}+" if self.total_is_capped else f"{self.total:,}"


def _order(obj: SearchObject, sort: str) -> list[Any]:
    key, _, direction = sort.partition(":")
    options = SORTS[obj]
    if key not in options:
        raise UserError(
            f"Cannot sort {obj.value} by {key!r}.", field="sort", fix=f"Use {', '.join(options)}."
        )
    column = options[key][1]
    primary = column.desc() if direction == "desc" else column.asc()
    if getattr(column, "nullable", True):
        # Only for nullable columns: SQLite cannot walk an index for `ASC NULLS LAST`.
        primary = primary.nulls_last()
    tiebreak = Company.id if obj == SearchObject.COMPANIES else Contact.id
    return [primary, tiebreak]


def _base(obj: SearchObject) -> Select[*tuple[Any, ...]]:
    if obj == SearchObject.COMPANIES:
        return select(
            Company.id,
            Company.platform_id,
            Company.name,
            Company.website,
            Company.industry,
            Company.employee_count,
            Company.revenue,
            Company.city,
            Company.country,
        )
    return select(
        Contact.id,
        Contact.platform_id,
        Contact.first_name,
        Contact.last_name,
        Contact.email,
        Contact.job_title,
        Contact.department,
        Contact.management_level,
        _DisplayCompany.name,
        _DisplayCompany.platform_id,
    ).outerjoin(_DisplayCompany, _DisplayCompany.id == Contact.company_id)


def _count(
    session: Session, obj: SearchObject, where: Sequence[ColumnElement[bool]], cap: int
) -> int:
    """Matches of `where`, counting at most `cap + 1` (so `> cap` means "more than cap")."""
    table = Company if obj == SearchObject.COMPANIES else Contact
    capped = select(table.id).where(*where).limit(cap + 1).subquery()
    return int(session.scalar(select(func.count()).select_from(capped)) or 0)


def _about(value: float) -> int:
    """Two significant digits: an estimate should not look exact."""
    if value < 100:
        return round(value)
    scale = 10 ** (int(math.log10(value)) - 1)
    return int(round(value / scale) * scale)


def stored_values(session: Session, filters: ParsedFilters) -> dict[str, list[str]]:
    """For each `in`/`exact` condition on an indexed low-cardinality column (industry,
    country), the column's stored spellings that match ignoring case.

    `lower(industry) IN (...)` can use no index; `industry IN ('Software', 'software')` can.
    The distinct values come from a loose index scan (a recursive query that jumps from one
    value to the next: one index seek per distinct value, not a read of every row). Columns
    with more than `LOOSE_SCAN_CAP` distinct values keep the `lower()` comparison.
    """
    out: dict[str, list[str]] = {}
    scanned: dict[str, list[tuple[str, str]]] = {}
    for cond in filters.conditions:
        column = cond.field.indexed
        if column is None:
            continue
        key = str(column)
        if key not in scanned:
            scanned[key] = _distinct(session, column)
        values = scanned[key]
        if len(values) >= LOOSE_SCAN_CAP:
            continue
        wanted = set(cond.lowered)
        out[cond.param] = [stored for stored, lowered in values if lowered in wanted]
    return out


def _distinct(session: Session, column: Any) -> list[tuple[str, str]]:
    seed = select(select(func.min(column)).scalar_subquery().label("v"), literal(1).label("n"))
    d = seed.cte("d", recursive=True)
    jump = select(func.min(column)).where(column > d.c.v).scalar_subquery()
    d = d.union_all(select(jump, d.c.n + 1).where(d.c.v.is_not(None), d.c.n < LOOSE_SCAN_CAP))
    query = select(d.c.v, func.lower(d.c.v)).where(d.c.v.is_not(None))
    return [(str(v), str(low)) for v, low in session.execute(query)]


def _industry_walk(
    session: Session,
    filters: ParsedFilters,
    stored: Mapping[str, Sequence[str]],
    standard: Sequence[ColumnElement[bool]],
    industry_sizes: Callable[[Sequence[str]], int | None],
) -> float | None:
    """Estimated matches of the standard filters of a companies search by industry, from two
    short walks of `ix_companies_industry_name` instead of a count of the whole industry.

    The (EXACT_LIMIT + 1)-th match in name order marks how far the walk had to go; the share
    of the industry's entries up to it that match, times the industry's size (snapshot
    statistics), estimates the total. 0.0 when there are at most EXACT_LIMIT matches (count
    them exactly); None when the search has no single resolved industry filter or the
    industry has no statistics (count as usual).
    """
    if filters.obj != SearchObject.COMPANIES:
        return None
    industry = [c for c in filters.conditions if c.field.key == "industry"]
    values = stored.get(industry[0].param) if len(industry) == 1 else None
    size = industry_sizes(values) if values else None
    if not values or not size:
        return None
    key = session.execute(
        select(Company.name_lower, Company.id)
        .where(*standard)
        .order_by(Company.name_lower, Company.id)
        .offset(EXACT_LIMIT)
        .limit(1)
    ).first()
    if key is None:
        return 0.0
    walked = session.scalar(
        select(func.count())
        .select_from(Company)
        .where(
            Company.industry.in_(list(values)),
            tuple_(Company.name_lower, Company.id) <= tuple_(literal(key[0]), literal(key[1])),
        )
    )
    return size * (EXACT_LIMIT + 1) / max(int(walked or 0), EXACT_LIMIT + 1)


def search(
    session: Session,
    filters: ParsedFilters,
    *,
    sort: str = "name",
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    extra_where: Sequence[ColumnElement[bool]] = (),
    extra_share: float | None = None,
    industry_sizes: Callable[[Sequence[str]], int | None] | None = None,
) -> SearchPage:
    """One page of hits. `extra_where` lets CRM filters add their clauses to the same query;
    `extra_share` is the share of records they keep, if known, and `industry_sizes` the
    companies per industry at the last snapshot (see the module docstring)."""
    if page < 1:
        raise UserError(
            "page must be 1 or more.", field="page", fix="Use page=1 for the first page."
        )
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise UserError(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}.", field="page_size", fix="Use 25."
        )
    obj = filters.obj
    if session.get_bind().dialect.name == "postgresql":
        # The first page is a LIMIT over a walk of a few thousand index entries: a few ms in
        # one process. PostgreSQL's planner often costs it cheaper in parallel (Gather Merge,
        # two workers that each run far past the 26 rows needed); starting the workers
        # alone took 25-30 ms of the ~35 on the benchmark's busy 2-CPU machine. Interactive
        # searches run serially, for this transaction only.
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    stored = stored_values(session, filters)
    standard = filters.where(stored)
    where = [*standard, *extra_where]
    order = _order(obj, sort)
    offset = (page - 1) * page_size
    # Late row lookup: the page's ids come from the filters' indexes alone (index-only on
    # PostgreSQL, so a candidate the CRM probes reject never costs a table read); only the
    # rows shown are read in full.
    table = Company if obj == SearchObject.COMPANIES else Contact
    ids = select(table.id).where(*where).order_by(*order).limit(page_size + 1).offset(offset)
    query = _base(obj).where(table.id.in_(ids.scalar_subquery())).order_by(*order)
    rows = session.execute(query).all()
    has_next = len(rows) > page_size
    hits: list[CompanyHit | ContactHit] = [
        CompanyHit(*row) if obj == SearchObject.COMPANIES else ContactHit(*row)
        for row in rows[:page_size]
    ]
    seen = offset + len(hits)
    capped = estimated = False
    if not has_next and (hits or page == 1):
        total = seen  # the last page: nothing more to count
    elif not extra_where:
        total = _count(session, obj, where, COUNT_CAP)
    else:
        candidates: float | None = None
        if extra_share is not None and industry_sizes is not None:
            candidates = _industry_walk(session, filters, stored, standard, industry_sizes)
        if candidates is None:
            counted = _count(session, obj, standard, CANDIDATE_CAP)
            candidates, capped = float(min(counted, CANDIDATE_CAP)), counted > CANDIDATE_CAP
        if candidates <= EXACT_LIMIT or extra_share is None:
            total, capped = _count(session, obj, where, COUNT_CAP), False
        else:
            estimated = True
            guess = _about(candidates * extra_share)
            total = max(guess, seen + 1) if has_next else max(guess, seen)
    if not estimated and total > COUNT_CAP:
        total, capped = COUNT_CAP, True
    return SearchPage(
        obj=obj,
        hits=hits,
        total=total,
        total_is_capped=capped,
        page=page,
        page_size=page_size,
        sentences=filters.sentences(),
        has_next=has_next,
        total_is_estimate=estimated,
    )


def facet_values(session: Session, column: str, *, limit: int = 200) -> list[str]:
    """Distinct values for the filter form's pickers (industries, departments, topics)."""
    sources = {
        "industry": Company.industry,
        "country": Company.country,
        "department": Contact.department,
        "management_level": Contact.management_level,
        "intent_topic": IntentSignal.topic,
    }
    col = sources[column]
    query = select(col).where(col.is_not(None)).distinct().order_by(col).limit(limit)
    return [str(v) for v in session.scalars(query)]


@dataclass(frozen=True)
class AdvancedResult:
    """A page of hits with the CRM filters applied and each hit's in-Dynamics indicator."""

    page: SearchPage
    indicators: dict[int, profiles.Indicator]
    crm_sentences: list[str]
    snapshot_taken_at: datetime | None


def advanced_search(
    session: Session,
    org_id: uuid.UUID,
    obj: SearchObject,
    params: Sequence[tuple[str, str]],
    *,
    sort: str = "name",
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> AdvancedResult:
    """Standard filters plus `crm_*` filters (over the daily snapshot) in one query."""
    standard = parse(obj, [(k, v) for k, v in params if not k.startswith(crm_filters.PREFIX)])
    crm = crm_filters.parse(session, org_id, obj, params)
    crm_where = crm.where()
    result = search(
        session,
        standard,
        sort=sort,
        page=page,
        page_size=page_size,
        extra_where=crm_where,
        extra_share=crm.fraction(session) if crm_where else None,
        industry_sizes=lambda names: snapshot.industry_sizes(session, org_id, names),
    )
    result = replace(result, sentences=[*result.sentences, *crm.sentences()])
    marks = profiles.indicators(session, org_id, obj, [h.id for h in result.hits])
    taken = snapshot.info(session, org_id)
    return AdvancedResult(result, marks, crm.sentences(), taken.taken_at if taken else None)
