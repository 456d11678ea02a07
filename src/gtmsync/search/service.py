"""Advanced Search over the platform's companies and contacts.

The portal page and `/api/v1/search/{object}` call `search()` (one code path, two renderings).
Counting every match of a broad search over millions of rows is slow and rarely useful, so the
total is exact up to `COUNT_CAP` and shown as "10,000+" beyond it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, aliased

from gtmsync.kit.errors import UserError
from gtmsync.platform.models import Company, Contact, IntentSignal
from gtmsync.search import crm_filters, profiles, snapshot
from gtmsync.search.filters import ParsedFilters, SearchObject, parse

# Company filters on contacts are EXISTS subqueries over `Company`; the company shown beside a
# contact is joined under another name so those subqueries do not correlate with it.
_DisplayCompany = aliased(Company, name="display_company")

COUNT_CAP = 10_000
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
    total_is_capped: bool
    page: int
    page_size: int
    sentences: list[str]

    @property
    def total_label(self) -> str:
        return f"{COUNT_CAP:,}+" if self.total_is_capped else f"{self.total:,}"

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.total


def _order(obj: SearchObject, sort: str) -> list[Any]:
    key, _, direction = sort.partition(":")
    options = SORTS[obj]
    if key not in options:
        raise UserError(
            f"Cannot sort {obj.value} by {key!r}.", field="sort", fix=f"Use {', '.join(options)}."
        )
    column = options[key][1]
    primary = column.desc().nulls_last() if direction == "desc" else column.asc().nulls_last()
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


def _count(session: Session, obj: SearchObject, where: list[ColumnElement[bool]]) -> int:
    table = Company if obj == SearchObject.COMPANIES else Contact
    capped = select(table.id).where(*where).limit(COUNT_CAP + 1).subquery()
    return int(session.scalar(select(func.count()).select_from(capped)) or 0)


def search(
    session: Session,
    filters: ParsedFilters,
    *,
    sort: str = "name",
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    extra_where: Sequence[ColumnElement[bool]] = (),
) -> SearchPage:
    """One page of hits. `extra_where` lets CRM filters add their clauses to the same query."""
    if page < 1:
        raise UserError(
            "page must be 1 or more.", field="page", fix="Use page=1 for the first page."
        )
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise UserError(
            f"page_size must be between 1 and {MAX_PAGE_SIZE}.", field="page_size", fix="Use 25."
        )
    obj = filters.obj
    where = [*filters.where(), *extra_where]
    query = _base(obj).where(*where).order_by(*_order(obj, sort))
    rows = session.execute(query.limit(page_size).offset((page - 1) * page_size)).all()
    hits: list[CompanyHit | ContactHit] = [
        CompanyHit(*row) if obj == SearchObject.COMPANIES else ContactHit(*row) for row in rows
    ]
    total = _count(session, obj, where)
    return SearchPage(
        obj=obj,
        hits=hits,
        total=min(total, COUNT_CAP),
        total_is_capped=total > COUNT_CAP,
        page=page,
        page_size=page_size,
        sentences=filters.sentences(),
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
    result = search(
        session, standard, sort=sort, page=page, page_size=page_size, extra_where=crm.where()
    )
    result = SearchPage(
        obj=result.obj,
        hits=result.hits,
        total=result.total,
        total_is_capped=result.total_is_capped,
        page=result.page,
        page_size=result.page_size,
        sentences=[*result.sentences, *crm.sentences()],
    )
    marks = profiles.indicators(session, org_id, obj, [h.id for h in result.hits])
    taken = snapshot.info(session, org_id)
    return AdvancedResult(result, marks, crm.sentences(), taken.taken_at if taken else None)
