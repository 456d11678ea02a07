"""Portal pages of the exports feature: start an export, review it, run it, history and CSV.

`router` holds pages every signed-in user has; `admin_router` (prefix `/admin`) holds Admin
Portal pages and carries the admin check once (export settings live in their own module).

- `GET /exports/new?source=companies|contacts`: a simple list to select records from (Search
  posts its selection to the same `POST /exports/new`).
- `GET /exports/{id}`: the plan, the decisions that need a person (defaults pre-selected),
  Run; then progress (the page refreshes itself while the worker runs) and the results.
- `GET /exports`: history, each with its results CSV.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from gtmsync.export import service as export_service
from gtmsync.export.schemas import DuplicateAction, ExportObject
from gtmsync.kit.errors import GtmsyncError, UserError
from gtmsync.web.deps import CurrentUser, SessionDep, SettingsDep, require_admin
from gtmsync.web.portal.rendering import redirect, render

router = APIRouter()
admin_router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])


class SelectionForm(BaseModel):
    """Records picked on the New export page or on Search (`source`: companies/contacts)."""

    source: str = "companies"
    platform_ids: list[str] = Field(default_factory=list)
    object: str = ""  # contacts only: contact or lead


class DecisionsForm(BaseModel):
    """The review table: one `item_id` per row with its duplicate and account choices."""

    item_id: list[uuid.UUID] = Field(default_factory=list)
    duplicate: list[str] = Field(default_factory=list)
    account: list[str] = Field(default_factory=list)


SOURCES = {"companies": ExportObject.ACCOUNT, "contacts": ExportObject.CONTACT}
REFRESH_SECONDS = 2


def _new_page(
    request: Request,
    db: SessionDep,
    source: str,
    *,
    error: GtmsyncError | None = None,
    selected: list[str] | None = None,
) -> Response:
    source = source if source in SOURCES else "companies"
    context = {
        "source": source,
        "records": export_service.browse(db, SOURCES[source]),
        "objects": [ExportObject.CONTACT, ExportObject.LEAD] if source == "contacts" else [],
        "selected": set(selected or []),
        "error": error,
    }
    return render(
        request, "exports/new.html", context, status_code=error.status_code if error else 200
    )


@router.get("/exports/new")
def new_export(request: Request, db: SessionDep, source: str = "companies") -> Response:
    return _new_page(request, db, source)


@router.post("/exports/new")
def plan_export(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    form: Annotated[SelectionForm, Form()],
) -> Response:
    source, platform_ids = form.source, form.platform_ids
    obj = SOURCES.get(source, ExportObject.ACCOUNT)
    if source == "contacts" and form.object == ExportObject.LEAD.value:
        obj = ExportObject.LEAD
    try:
        export = export_service.plan(
            db,
            org_id=user.org_id,
            user_id=user.id,
            obj=obj,
            platform_ids=platform_ids or [],
            settings=settings,
        )
    except GtmsyncError as error:
        db.rollback()
        return _new_page(request, db, source, error=error, selected=platform_ids)
    return redirect(request, f"/exports/{export.id}")


@router.get("/exports")
def history(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    exports = [
        export_service.view(db, e, with_items=False)
        for e in export_service.history(db, user.org_id)
    ]
    return render(request, "exports/history.html", {"exports": exports})


def _export_page(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    export_id: uuid.UUID,
    *,
    error: GtmsyncError | None = None,
) -> Response:
    export = export_service.get(db, user.org_id, export_id)
    view = export_service.view(db, export)
    context = {
        "export": view,
        "review": [i for i in view.items if i.needs_review],
        "error": error,
        "labels": {a.value: a.value.replace("_", " ").capitalize() for a in DuplicateAction},
    }
    response = render(
        request,
        "exports/detail.html",
        context,
        status_code=error.status_code if error else 200,
    )
    if view.status in ("queued", "running"):
        response.headers["Refresh"] = str(REFRESH_SECONDS)  # progress without scripts (CSP)
    return response


@router.get("/exports/{export_id}")
def export_detail(
    request: Request, export_id: uuid.UUID, db: SessionDep, user: CurrentUser
) -> Response:
    return _export_page(request, db, user, export_id)


@router.post("/exports/{export_id}/decisions")
def decide(
    request: Request,
    export_id: uuid.UUID,
    db: SessionDep,
    user: CurrentUser,
    form: Annotated[DecisionsForm, Form()],
) -> Response:
    ids = form.item_id
    duplicates = form.duplicate or [""] * len(ids)
    accounts = form.account or [""] * len(ids)
    try:
        if not len(ids) == len(duplicates) == len(accounts):
            raise UserError("The review form was incomplete.", fix="Reload the page and retry.")
        decisions = [
            export_service.Decision(
                item_id=i,
                duplicate=DuplicateAction(d) if d else None,
                account=a or None,
            )
            for i, d, a in zip(ids, duplicates, accounts, strict=True)
        ]
        export_service.decide(db, user.org_id, export_id, decisions)
    except (GtmsyncError, ValueError) as exc:
        db.rollback()
        error = exc if isinstance(exc, GtmsyncError) else UserError(str(exc), field="duplicate")
        return _export_page(request, db, user, export_id, error=error)
    return redirect(request, f"/exports/{export_id}", flash="Decisions saved.")


@router.post("/exports/{export_id}/run")
def run(request: Request, export_id: uuid.UUID, db: SessionDep, user: CurrentUser) -> Response:
    try:
        export_service.request_run(db, user.org_id, export_id)
    except GtmsyncError as error:
        db.rollback()
        return _export_page(request, db, user, export_id, error=error)
    return redirect(request, f"/exports/{export_id}", flash="Export started.")


@router.get("/exports/{export_id}/results.csv")
def results_csv(export_id: uuid.UUID, db: SessionDep, user: CurrentUser) -> Response:
    return Response(
        export_service.csv_for(db, user.org_id, export_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="export-{export_id}.csv"'},
    )
