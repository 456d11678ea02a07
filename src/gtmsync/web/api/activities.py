"""`/api/v1/activities` (log and follow activities) and `/api/v1/writeback-settings` (admins)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, status

from gtmsync import tasks
from gtmsync.db.unit_of_work import after_commit
from gtmsync.kit.errors import NotFoundError
from gtmsync.web.deps import AdminUser, CurrentUser, SessionDep, require_admin
from gtmsync.writeback import schemas
from gtmsync.writeback import service as writeback_service

router = APIRouter(tags=["writeback"])
admin_router = APIRouter(tags=["writeback"], dependencies=[Depends(require_admin)])


def _enqueue(db: SessionDep, activity_id: uuid.UUID) -> None:
    after_commit(db, lambda: tasks.write_activity(activity_id))


@router.post("/activities", response_model=schemas.ActivityOut, status_code=status.HTTP_201_CREATED)
def log_activity(
    body: schemas.ActivityIn, db: SessionDep, user: CurrentUser
) -> schemas.ActivityOut:
    activity = writeback_service.log_activity(
        db,
        user=user,
        data=writeback_service.ActivityCreate(
            kind=body.kind,
            subject=body.subject,
            target_type=body.target_type,
            target_platform_id=body.target_platform_id,
            occurred_at=body.occurred_at,
            body=body.body,
            duration_minutes=body.duration_minutes,
            participants=tuple(body.participants),
        ),
    )
    _enqueue(db, activity.id)
    return schemas.ActivityOut.model_validate(activity)


@router.get("/activities", response_model=list[schemas.ActivityOut])
def list_activities(db: SessionDep, user: CurrentUser) -> list[schemas.ActivityOut]:
    """Yours; admins see the whole org's."""
    rows = writeback_service.list_activities(
        db, user.org_id, user_id=None if user.is_admin else user.id
    )
    return [schemas.ActivityOut.model_validate(a) for a in rows]


@router.get("/activities/{activity_id}", response_model=schemas.ActivityOut)
def get_activity(activity_id: uuid.UUID, db: SessionDep, user: CurrentUser) -> schemas.ActivityOut:
    activity = writeback_service.get_activity(db, user.org_id, activity_id)
    if not user.is_admin and activity.user_id != user.id:
        raise NotFoundError("Activity not found.")
    return schemas.ActivityOut.model_validate(activity)


@router.post("/activities/{activity_id}/retry", response_model=schemas.ActivityOut)
def retry_activity(
    activity_id: uuid.UUID, db: SessionDep, user: CurrentUser
) -> schemas.ActivityOut:
    activity = writeback_service.get_activity(db, user.org_id, activity_id)
    if not user.is_admin and activity.user_id != user.id:
        raise NotFoundError("Activity not found.")
    activity = writeback_service.retry_now(db, user.org_id, activity_id)
    _enqueue(db, activity.id)
    return schemas.ActivityOut.model_validate(activity)


@admin_router.get("/writeback-settings", response_model=schemas.WritebackSettingsIO)
def get_writeback_settings(db: SessionDep, admin: AdminUser) -> schemas.WritebackSettingsIO:
    return schemas.WritebackSettingsIO.model_validate(
        writeback_service.get_settings(db, admin.org_id)
    )


@admin_router.put("/writeback-settings", response_model=schemas.WritebackSettingsIO)
def put_writeback_settings(
    body: schemas.WritebackSettingsIO, db: SessionDep, admin: AdminUser
) -> schemas.WritebackSettingsIO:
    row = writeback_service.update_settings(
        db,
        org_id=admin.org_id,
        actor=admin,
        enabled=body.enabled,
        mode=body.mode,
        calls_as_phonecalls=body.calls_as_phonecalls,
    )
    return schemas.WritebackSettingsIO.model_validate(row)
