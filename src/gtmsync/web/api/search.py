"""`/api/v1/search`: Advanced Search (the same service as the portal's Search page), the
admin's filter settings and the user's saved searches.

Filters use the `field__op=value` grammar (`industry__in=Software,Retail`,
`employees__gte=50`, `intent_topic__in=Cloud Security&intent_score__gte=60`) and the Dynamics
filters the same way (`crm_owner__in=<id>,<id>`, `crm_owner__exclude=all`,
`crm_opp_stage__exclude=Closed`). Each hit carries its in-Dynamics indicator.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request

from gtmsync.kit.errors import UserError
from gtmsync.search import filters as search_filters
from gtmsync.search import saved, schemas
from gtmsync.search import service as search_service
from gtmsync.search import settings as filter_settings
from gtmsync.web.deps import AdminUser, CurrentUser, SessionDep, SettingsDep, require_admin

router = APIRouter(prefix="/search", tags=["search"])

RESERVED = frozenset({"page", "page_size", "sort"})


def _settings_out(view: filter_settings.FilterSettingsView) -> schemas.FilterSettingsOut:
    return schemas.FilterSettingsOut(
        account=view.account,
        opportunity=view.opportunity,
        contact=view.contact,
        lead=view.lead,
        custom_fields={
            obj: [
                schemas.CustomFieldOut(
                    attribute=f.attribute, type=f.type, label=f.label, targets=list(f.targets)
                )
                for f in fields
            ]
            for obj, fields in view.custom_fields.items()
        },
    )


@router.get("/filter-settings", response_model=schemas.FilterSettingsOut)
def get_filter_settings(db: SessionDep, user: CurrentUser) -> schemas.FilterSettingsOut:
    return _settings_out(filter_settings.get(db, user.org_id))


@router.put(
    "/filter-settings",
    response_model=schemas.FilterSettingsOut,
    dependencies=[Depends(require_admin)],
)
def put_filter_settings(
    body: schemas.FilterTogglesIn, db: SessionDep, user: AdminUser
) -> schemas.FilterSettingsOut:
    toggles = {k: v for k, v in body.model_dump().items() if v is not None}
    return _settings_out(filter_settings.update_toggles(db, user.org_id, user, toggles))


@router.post(
    "/filter-settings/fields",
    response_model=schemas.FilterSettingsOut,
    dependencies=[Depends(require_admin)],
)
def add_custom_field(
    body: schemas.CustomFieldIn, db: SessionDep, user: AdminUser, settings: SettingsDep
) -> schemas.FilterSettingsOut:
    view = filter_settings.add_custom_field(
        db, user.org_id, user, body.object, body.attribute, settings=settings
    )
    return _settings_out(view)


@router.delete(
    "/filter-settings/fields/{obj}/{attribute}",
    response_model=schemas.FilterSettingsOut,
    dependencies=[Depends(require_admin)],
)
def remove_custom_field(
    obj: str, attribute: str, db: SessionDep, user: AdminUser
) -> schemas.FilterSettingsOut:
    return _settings_out(filter_settings.remove_custom_field(db, user.org_id, user, obj, attribute))


def _saved_out(view: saved.SavedView) -> schemas.SavedSearchOut:
    return schemas.SavedSearchOut(
        id=str(view.id),
        name=view.name,
        object=view.object,
        params=view.params,
        new_matches=view.new_matches,
    )


@router.get("/saved", response_model=list[schemas.SavedSearchOut])
def list_saved(db: SessionDep, user: CurrentUser) -> list[schemas.SavedSearchOut]:
    return [_saved_out(v) for v in saved.list_for(db, user.org_id, user.id)]


@router.post("/saved", response_model=schemas.SavedSearchOut, status_code=201)
def create_saved(
    body: schemas.SavedSearchIn, db: SessionDep, user: CurrentUser
) -> schemas.SavedSearchOut:
    try:
        obj = search_filters.SearchObject(body.object)
    except ValueError:
        raise UserError(
            f"{body.object!r} is not something you can search.",
            field="object",
            fix="Use one of: " + ", ".join(o.value for o in search_filters.SearchObject) + ".",
        ) from None
    view = saved.save(db, user.org_id, user.id, name=body.name, obj=obj, params=body.params)
    return _saved_out(view)


@router.delete("/saved/{saved_id}", status_code=204)
def delete_saved(saved_id: uuid.UUID, db: SessionDep, user: CurrentUser) -> None:
    saved.delete(db, user.org_id, user.id, saved_id)


def _indicator(mark: Any) -> schemas.Indicator:
    if mark is None:
        return schemas.Indicator(in_dynamics=False)
    return schemas.Indicator(
        in_dynamics=True,
        table=mark.table,
        dynamics_id=str(mark.dynamics_id),
        owner_name=mark.owner_name,
        others=mark.others,
        as_of=mark.as_of.isoformat() if mark.as_of else None,
        url=mark.url,
    )


@router.get("/{obj}", response_model=schemas.SearchResult)
def search(
    obj: search_filters.SearchObject,
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    *,
    page: int = 1,
    page_size: int = search_service.DEFAULT_PAGE_SIZE,
    sort: str = "name",
) -> schemas.SearchResult:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in RESERVED]
    outcome = search_service.advanced_search(
        db, user.org_id, obj, params, sort=sort, page=page, page_size=page_size
    )
    result = outcome.page
    hit_type = (
        schemas.CompanyHit if obj == search_filters.SearchObject.COMPANIES else schemas.ContactHit
    )
    return schemas.SearchResult(
        object=obj.value,
        total=result.total,
        total_is_capped=result.total_is_capped,
        total_is_estimate=result.total_is_estimate,
        total_label=result.total_label,
        has_next=result.has_next,
        page=result.page,
        page_size=result.page_size,
        filters=result.sentences,
        hits=[
            hit_type(**asdict(hit), dynamics=_indicator(outcome.indicators.get(hit.id)))
            for hit in result.hits
        ],
    )
