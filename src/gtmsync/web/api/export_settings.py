"""`/api/v1/export-settings`: the export settings document, Test Mapping and the live list of
Dynamics attributes (admins only, checked once on the router; everything is the caller's org).

A save that validation refuses answers 422 with the usual `{error, field, fix}` plus `issues`:
every row problem (errors and warnings) with its object, row index and message.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gtmsync.export import settings as export_settings
from gtmsync.export.mapping import MappingInvalidError
from gtmsync.export.schemas import (
    ExportObject,
    ExportSettingsDocument,
    IntentMappingRow,
    MappingRow,
)
from gtmsync.web.deps import AdminUser, SessionDep, SettingsDep, require_admin

router = APIRouter(tags=["export settings"], dependencies=[Depends(require_admin)])


class IssueOut(BaseModel):
    severity: str
    message: str
    section: str
    object: str | None
    row: int | None
    field: str


class ExportSettingsOut(BaseModel):
    version: int = Field(description="Bumped on every save; 0 when never saved.")
    document: ExportSettingsDocument
    warnings: list[IssueOut] = Field(default_factory=list)


class TrialRequest(BaseModel):
    object: ExportObject
    rows: list[MappingRow]
    intent_rows: list[IntentMappingRow] = Field(
        default_factory=list, description="Accounts only: intent rows to test as well."
    )


class RowErrorOut(BaseModel):
    row: int
    attribute: str
    message: str
    intent: bool


class TrialOut(BaseModel):
    ok: bool
    object: ExportObject
    message: str
    created_id: str | None
    deleted: bool
    sent: dict[str, Any]
    issues: list[IssueOut]
    row_errors: list[RowErrorOut]
    problems: list[str]


class OptionOut(BaseModel):
    value: int
    label: str


class AttributeOut(BaseModel):
    logical_name: str
    display_name: str | None
    type: str
    max_length: int | None
    required_level: str
    is_custom: bool
    options: list[OptionOut]


def _invalid(error: MappingInvalidError) -> JSONResponse:
    body: dict[str, Any] = dict(error.as_dict())
    body["issues"] = [issue.as_dict() for issue in error.issues]
    return JSONResponse(body, status_code=422)


@router.get("/export-settings", response_model=ExportSettingsOut)
def get_export_settings(db: SessionDep, admin: AdminUser) -> ExportSettingsOut:
    stored = export_settings.load(db, admin.org_id)
    return ExportSettingsOut(version=stored.version, document=stored.document)


@router.put(
    "/export-settings",
    response_model=ExportSettingsOut,
    responses={422: {"description": "Rows are invalid; `issues` lists every problem."}},
)
def put_export_settings(
    body: ExportSettingsDocument,
    db: SessionDep,
    admin: AdminUser,
    settings: SettingsDep,
    version: int | None = Query(
        default=None, description="The version you edited; a newer saved one answers 409."
    ),
) -> ExportSettingsOut | JSONResponse:
    """Replace the whole document; refused (422, with `issues`) until every row is valid."""
    try:
        saved = export_settings.save(
            db, admin.org_id, admin, body, settings=settings, expected_version=version
        )
    except MappingInvalidError as error:
        return _invalid(error)
    return ExportSettingsOut(
        version=saved.version,
        document=saved.document,
        warnings=[IssueOut.model_validate(w.as_dict()) for w in saved.warnings],
    )


@router.post("/export-settings/test-mapping", response_model=TrialOut)
def test_mapping(
    body: TrialRequest, db: SessionDep, admin: AdminUser, settings: SettingsDep
) -> TrialOut:
    """Create and delete one sample record with these (unsaved) rows; `ok` says how it went,
    `row_errors` carry Dynamics' own message on the row it names."""
    result = export_settings.run_trial(
        db, admin.org_id, body.object, body.rows, body.intent_rows, settings=settings
    )
    return TrialOut.model_validate(result.as_dict())


@router.get("/export-settings/attributes/{object}", response_model=list[AttributeOut])
def list_attributes(
    object: ExportObject,
    db: SessionDep,
    admin: AdminUser,
    settings: SettingsDep,
) -> list[AttributeOut]:
    """The table's attributes a mapping row may target, read live from Dynamics."""
    return [
        AttributeOut.model_validate(choice.as_dict())
        for choice in export_settings.attribute_catalogue(
            db, admin.org_id, object, settings=settings
        )
    ]
