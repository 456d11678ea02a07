"""The org's users (admins only, checked once on the router)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from gtmsync.platform import service as platform_service
from gtmsync.web.api import schemas
from gtmsync.web.deps import CurrentUser, SessionDep, require_admin

router = APIRouter(prefix="/users", tags=["users"], dependencies=[Depends(require_admin)])


@router.get("", response_model=list[schemas.User])
def list_users(db: SessionDep, admin: CurrentUser) -> list[schemas.User]:
    return [schemas.User.model_validate(u) for u in platform_service.list_users(db, admin.org_id)]


@router.get("/{user_id}", response_model=schemas.User)
def get_user(user_id: uuid.UUID, db: SessionDep, admin: CurrentUser) -> schemas.User:
    return schemas.User.model_validate(platform_service.get_user(db, admin.org_id, user_id))
