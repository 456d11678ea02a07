"""`/api/v1/exports`: plan an export, review and decide, run it, read results and the CSV.

POST /api/v1/exports                  {"object": "contact", "platform_ids": [...]}  → plan
GET  /api/v1/exports                  history (newest first)
GET  /api/v1/exports/{id}             plan / review (?review=true: only what needs a person)
                                      / results, with progress while it runs
POST /api/v1/exports/{id}/decisions   {"decisions": [{"item_id"|"platform_id", "duplicate",
                                      "account"}]}
POST /api/v1/exports/{id}/run         queue the run on the worker (202)
GET  /api/v1/exports/{id}/results.csv per-record results
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from gtmsync.export import service as export_service
from gtmsync.export.schemas import ExportObject
from gtmsync.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/exports", tags=["exports"])


class ExportCreate(BaseModel):
    object: ExportObject = Field(description="account, contact or lead")
    platform_ids: list[str] = Field(description="Platform IDs of the records to export")


class ExportSummary(BaseModel):
    id: uuid.UUID
    object: str
    status: str
    total: int
    processed: int


class DecisionsIn(BaseModel):
    decisions: list[export_service.Decision]


@router.post("", response_model=export_service.ExportView, status_code=status.HTTP_201_CREATED)
def create_export(
    body: ExportCreate, db: SessionDep, user: CurrentUser, settings: SettingsDep
) -> export_service.ExportView:
    export = export_service.plan(
        db,
        org_id=user.org_id,
        user_id=user.id,
        obj=body.object,
        platform_ids=body.platform_ids,
        settings=settings,
    )
    return export_service.view(db, export)


@router.get("", response_model=list[ExportSummary])
def list_exports(db: SessionDep, user: CurrentUser) -> list[ExportSummary]:
    return [
        ExportSummary(
            id=e.id, object=e.object_type, status=e.status, total=e.total, processed=e.processed
        )
        for e in export_service.history(db, user.org_id)
    ]


@router.get("/{export_id}", response_model=export_service.ExportView)
def get_export(
    export_id: uuid.UUID, db: SessionDep, user: CurrentUser, review: bool = False
) -> export_service.ExportView:
    export = export_service.get(db, user.org_id, export_id)
    return export_service.view(db, export, review_only=review)


@router.post("/{export_id}/decisions", response_model=export_service.ExportView)
def decide(
    export_id: uuid.UUID, body: DecisionsIn, db: SessionDep, user: CurrentUser
) -> export_service.ExportView:
    export = export_service.decide(db, user.org_id, export_id, body.decisions)
    return export_service.view(db, export, review_only=True)


@router.post(
    "/{export_id}/run",
    response_model=export_service.ExportView,
    status_code=status.HTTP_202_ACCEPTED,
)
def run_export(
    export_id: uuid.UUID, db: SessionDep, user: CurrentUser
) -> export_service.ExportView:
    export = export_service.request_run(db, user.org_id, export_id)
    return export_service.view(db, export, with_items=False)


@router.get("/{export_id}/results.csv")
def results_csv(export_id: uuid.UUID, db: SessionDep, user: CurrentUser) -> Response:
    return Response(
        export_service.csv_for(db, user.org_id, export_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="export-{export_id}.csv"'},
    )
