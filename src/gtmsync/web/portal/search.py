"""The Search page: Advanced Search with filters, sorting, paging and selection for export."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gtmsync.kit.errors import UserError
from gtmsync.search import filters as search_filters
from gtmsync.search import service as search_service
from gtmsync.web.deps import SessionDep
from gtmsync.web.portal.rendering import render

router = APIRouter()

RESERVED = frozenset({"page", "sort", "object"})


@router.get("/search")
def search_page(request: Request, db: SessionDep) -> Response:
    raw_object = request.query_params.get("object", search_filters.SearchObject.COMPANIES.value)
    try:
        obj = search_filters.SearchObject(raw_object)
    except ValueError:
        obj = search_filters.SearchObject.COMPANIES
    sort = request.query_params.get("sort", "name")
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in RESERVED]
    error: UserError | None = None
    result = None
    parsed = search_filters.ParsedFilters(obj)
    try:
        parsed = search_filters.parse(obj, params)
        result = search_service.search(db, parsed, sort=sort, page=page)
    except UserError as exc:
        error = exc
    context = {
        "object": obj.value,
        "objects": list(search_filters.SearchObject),
        "fields": search_filters.FIELDS[obj],
        "operators": search_filters.OPERATORS,
        "values": parsed.params(),
        "sort": sort,
        "sorts": search_service.SORTS[obj],
        "result": result,
        "error": error,
        "facets": {
            name: search_service.facet_values(db, name)
            for name in ("industry", "department", "management_level", "intent_topic")
        },
        "query_base": [(k, v) for k, v in request.query_params.multi_items() if k != "page"],
    }
    return render(
        request, "search/page.html", context, status_code=error.status_code if error else 200
    )
