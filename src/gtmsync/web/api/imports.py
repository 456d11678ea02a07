"""`/api/v1/imports`: runs, Sync Now, mapping, rules, settings, usage (admins) and My Target
Accounts (every user). Everything is the caller's org."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from gtmsync import tasks
from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.schemas import (
    AttributeOption,
    GtmObject,
    ImportSettingsUpdate,
    ImportSettingsView,
    ImportStatus,
    MappingDocument,
    RuleSet,
    RunView,
    SyncNowResult,
    TargetAccount,
    UsageView,
)
from gtmsync.db.unit_of_work import after_commit
from gtmsync.settings import Mode, Settings
from gtmsync.web.deps import AdminUser, CurrentUser, SessionDep, SettingsDep, require_admin

router = APIRouter(tags=["imports"])
admin_router = APIRouter(tags=["imports"], dependencies=[Depends(require_admin)])


class CustomFieldIn(BaseModel):
    object: GtmObject
    name: str


def start_sync(db: SessionDep, org_id: uuid.UUID, settings: Settings) -> list[RunView]:
    """Development runs the backfill inline (no worker needed); otherwise a worker does,
    enqueued once this request commits."""
    if settings.mode == Mode.DEVELOPMENT:
        runs = import_service.run_import(db, org_id, checkpoint=db.commit, settings=settings)
        return [RunView.model_validate(r) for r in runs]
    after_commit(db, lambda: tasks.import_run(str(org_id)))
    return []


@admin_router.get("/imports/runs", response_model=list[RunView])
def list_runs(db: SessionDep, admin: AdminUser, limit: int = 100) -> list[RunView]:
    return import_service.list_runs(db, admin.org_id, limit=min(max(limit, 1), 500))


@admin_router.post("/imports/sync-now", response_model=SyncNowResult)
def sync_now(db: SessionDep, admin: AdminUser, settings: SettingsDep) -> SyncNowResult:
    queued = import_service.sync_now(db, admin.org_id, actor=admin, settings=settings)
    return SyncNowResult(queued=queued, runs=start_sync(db, admin.org_id, settings))


@admin_router.get("/imports/mapping", response_model=MappingDocument)
def get_mapping(db: SessionDep, admin: AdminUser, settings: SettingsDep) -> MappingDocument:
    return import_service.get_mapping(db, admin.org_id, settings=settings)


@admin_router.put("/imports/mapping", response_model=MappingDocument)
def put_mapping(
    body: dict[str, Any], db: SessionDep, admin: AdminUser, settings: SettingsDep
) -> MappingDocument:
    doc = import_service.parse_mapping(body)
    return import_service.save_mapping(db, admin.org_id, doc, actor=admin, settings=settings)


@admin_router.get("/imports/attributes/{table}", response_model=list[AttributeOption])
def list_attributes(
    table: str, db: SessionDep, admin: AdminUser, settings: SettingsDep
) -> list[AttributeOption]:
    return import_service.schema_for(db, admin.org_id, table, settings=settings).options()


@admin_router.post("/imports/custom-fields", response_model=MappingDocument)
def create_custom_field(
    body: CustomFieldIn, db: SessionDep, admin: AdminUser, settings: SettingsDep
) -> MappingDocument:
    return import_service.create_custom_field(
        db, admin.org_id, body.object, body.name, actor=admin, settings=settings
    )


@admin_router.get("/imports/rules", response_model=RuleSet)
def get_rules(db: SessionDep, admin: AdminUser) -> RuleSet:
    return import_service.get_rules(db, admin.org_id)


@admin_router.put("/imports/rules", response_model=RuleSet)
def put_rules(body: RuleSet, db: SessionDep, admin: AdminUser, settings: SettingsDep) -> RuleSet:
    return import_service.save_rules(db, admin.org_id, body, actor=admin, settings=settings)


@admin_router.get("/imports/settings", response_model=ImportSettingsView)
def get_import_settings(db: SessionDep, admin: AdminUser) -> ImportSettingsView:
    return import_service.get_settings_view(db, admin.org_id)


@admin_router.put("/imports/settings", response_model=ImportSettingsView)
def put_import_settings(
    body: ImportSettingsUpdate, db: SessionDep, admin: AdminUser
) -> ImportSettingsView:
    return import_service.update_settings(db, admin.org_id, body, actor=admin)


@admin_router.get("/imports/usage", response_model=UsageView)
def get_usage(db: SessionDep, admin: AdminUser, days: int = 14) -> UsageView:
    return import_service.usage(db, admin.org_id, days=min(max(days, 1), 90))


@admin_router.get("/imports/status", response_model=ImportStatus)
def get_status(db: SessionDep, admin: AdminUser) -> ImportStatus:
    return import_service.status(db, admin.org_id)


@router.get("/imports/my-target-accounts", response_model=list[TargetAccount])
def my_target_accounts(db: SessionDep, user: CurrentUser) -> list[TargetAccount]:
    return import_service.my_target_accounts(db, user.org_id, user.id)


router.include_router(admin_router)
