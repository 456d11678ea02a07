"""`GET /api/v1/search/{object}`: the same service as the portal's Search page.

Filters use the `field__op=value` grammar (`industry__in=Software,Retail`,
`employees__gte=50`, `intent_topic__in=Cloud Security&intent_score__gte=60`).
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request

from gtmsync.search import filters as search_filters
from gtmsync.search import schemas
from gtmsync.search import service as search_service
from gtmsync.web.deps import SessionDep

router = APIRouter(prefix="/search", tags=["search"])

RESERVED = frozenset({"page", "page_size", "sort"})


@router.get("/{obj}", response_model=schemas.SearchResult)
def search(
    obj: search_filters.SearchObject,
    request: Request,
    db: SessionDep,
    *,
    page: int = 1,
    page_size: int = search_service.DEFAULT_PAGE_SIZE,
    sort: str = "name",
) -> schemas.SearchResult:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in RESERVED]
    parsed = search_filters.parse(obj, params)
    result = search_service.search(db, parsed, sort=sort, page=page, page_size=page_size)
    hit_type = (
        schemas.CompanyHit if obj == search_filters.SearchObject.COMPANIES else schemas.ContactHit
    )
    return schemas.SearchResult(
        object=obj.value,
        total=result.total,
        total_is_capped=result.total_is_capped,
        total_label=result.total_label,
        page=result.page,
        page_size=result.page_size,
        filters=result.sentences,
        hits=[hit_type(**asdict(hit)) for hit in result.hits],
    )
