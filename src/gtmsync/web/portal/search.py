"""The Search page: Advanced Search with standard and Dynamics filters, indicators, paging and
selection for export; company and contact profiles; saved searches; and the admin's Search
Filters settings page. Each handler parses, calls one search service function and renders.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from gtmsync.kit.errors import UserError
from gtmsync.search import crm_filters, profiles, saved, snapshot
from gtmsync.search import filters as search_filters
from gtmsync.search import service as search_service
from gtmsync.search import settings as filter_settings
from gtmsync.web.deps import AdminUser, CurrentUser, SessionDep, SettingsDep, require_admin
from gtmsync.web.portal.rendering import redirect, render

router = APIRouter()

RESERVED = frozenset({"page", "sort", "object"})
SETTINGS_PAGE = "/admin/integrations/dynamics/search-filters"


def _object(raw: str | None) -> search_filters.SearchObject:
    try:
        return search_filters.SearchObject(raw or search_filters.SearchObject.COMPANIES.value)
    except ValueError:
        return search_filters.SearchObject.COMPANIES


@router.get("/search")
def search_page(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    obj = _object(request.query_params.get("object"))
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
        parsed = search_filters.parse(obj, [(k, v) for k, v in params if not k.startswith("crm_")])
        result = search_service.advanced_search(db, user.org_id, obj, params, sort=sort, page=page)
    except UserError as exc:
        error = exc
    context: dict[str, Any] = {
        "object": obj.value,
        "objects": list(search_filters.SearchObject),
        "fields": search_filters.FIELDS[obj],
        "operators": search_filters.OPERATORS,
        "values": parsed.params(),
        "crm_values": {k: v for k, v in params if k.startswith("crm_")},
        "sort": sort,
        "sorts": search_service.SORTS[obj],
        "result": result.page if result else None,
        "marks": result.indicators if result else {},
        "error": error,
        "facets": {
            name: search_service.facet_values(db, name)
            for name in ("industry", "department", "management_level", "intent_topic")
        },
        "crm_facets": {
            name: crm_filters.facet(db, user.org_id, name)
            for name in ("account_type", "opp_stage", "lead_status")
        },
        "owners": crm_filters.owners_by_id(db, user.org_id),
        "filter_settings": filter_settings.get(db, user.org_id),
        "snapshot": snapshot.info(db, user.org_id),
        "query_base": [(k, v) for k, v in request.query_params.multi_items() if k != "page"],
        "save_query": [(k, v) for k, v in request.query_params.multi_items() if k != "page"],
    }
    return render(
        request, "search/page.html", context, status_code=error.status_code if error else 200
    )


@router.get("/search/companies/{company_id}")
def company_page(company_id: int, request: Request, db: SessionDep, user: CurrentUser) -> Response:
    profile = profiles.company_profile(db, user.org_id, company_id)
    return render(request, "search/company.html", {"profile": profile})


@router.get("/search/contacts/{contact_id}")
def contact_page(contact_id: int, request: Request, db: SessionDep, user: CurrentUser) -> Response:
    profile = profiles.contact_profile(db, user.org_id, contact_id)
    return render(request, "search/contact.html", {"profile": profile})


@router.get("/search/saved")
def saved_list(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    return render(request, "search/saved.html", {"saved": saved.list_for(db, user.org_id, user.id)})


@router.post("/search/saved")
def save_search(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    name: Annotated[str, Form()],
    query: Annotated[str, Form()] = "",
) -> Response:
    pairs = parse_qsl(query, keep_blank_values=False)
    obj = _object(dict(pairs).get("object"))
    try:
        view = saved.save(db, user.org_id, user.id, name=name, obj=obj, params=pairs)
    except UserError as exc:
        return render(
            request,
            "search/saved.html",
            {"saved": saved.list_for(db, user.org_id, user.id), "error": exc},
            status_code=exc.status_code,
        )
    return redirect(request, "/search/saved", flash=f"Saved search “{view.name}”.")


@router.get("/search/saved/{saved_id}")
def saved_detail(
    saved_id: uuid.UUID, request: Request, db: SessionDep, user: CurrentUser
) -> Response:
    views = {v.id: v for v in saved.list_for(db, user.org_id, user.id)}
    matches = saved.new_matches(db, user.org_id, user.id, saved_id)
    saved.mark_seen(db, user.org_id, user.id, saved_id)
    return render(
        request, "search/saved_detail.html", {"view": views[saved_id], "matches": matches}
    )


@router.post("/search/saved/{saved_id}/delete")
def saved_delete(
    saved_id: uuid.UUID, request: Request, db: SessionDep, user: CurrentUser
) -> Response:
    saved.delete(db, user.org_id, user.id, saved_id)
    return redirect(request, "/search/saved", flash="Saved search deleted.")


# -- admin: Search Filters settings ---------------------------------------------------------


def _settings_page(
    request: Request, db: SessionDep, user: AdminUser, error: UserError | None = None
) -> Response:
    context = {
        "config": filter_settings.get(db, user.org_id),
        "objects": filter_settings.OBJECTS,
        "max_fields": filter_settings.MAX_CUSTOM_FIELDS,
        "snapshot": snapshot.info(db, user.org_id),
        "error": error,
    }
    return render(
        request,
        "search/filter_settings.html",
        context,
        status_code=error.status_code if error else 200,
    )


@router.get(SETTINGS_PAGE, dependencies=[Depends(require_admin)])
def settings_page(request: Request, db: SessionDep, user: AdminUser) -> Response:
    return _settings_page(request, db, user)


@router.post(SETTINGS_PAGE, dependencies=[Depends(require_admin)])
async def settings_save(request: Request, db: SessionDep, user: AdminUser) -> Response:
    form = await request.form()
    toggles = {key: form.get(key) == "on" for key in filter_settings.TOGGLES}
    filter_settings.update_toggles(db, user.org_id, user, toggles)
    return redirect(request, SETTINGS_PAGE, flash="Search filter settings saved.")


@router.post(f"{SETTINGS_PAGE}/fields", dependencies=[Depends(require_admin)])
def settings_add_field(  # noqa: PLR0917 - FastAPI injects by parameter
    request: Request,
    db: SessionDep,
    user: AdminUser,
    settings: SettingsDep,
    object: Annotated[str, Form()],
    attribute: Annotated[str, Form()],
) -> Response:
    try:
        filter_settings.add_custom_field(
            db, user.org_id, user, object, attribute, settings=settings
        )
    except UserError as exc:
        return _settings_page(request, db, user, exc)
    return redirect(request, SETTINGS_PAGE, flash=f"Added {attribute} as a {object} filter.")


@router.post(f"{SETTINGS_PAGE}/fields/remove", dependencies=[Depends(require_admin)])
def settings_remove_field(
    request: Request,
    db: SessionDep,
    user: AdminUser,
    object: Annotated[str, Form()],
    attribute: Annotated[str, Form()],
) -> Response:
    filter_settings.remove_custom_field(db, user.org_id, user, object, attribute)
    return redirect(request, SETTINGS_PAGE, flash=f"Removed the {object} filter {attribute}.")
