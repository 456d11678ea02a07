"""Who am I: the caller's user, org and role."""

from __future__ import annotations

from fastapi import APIRouter

from gtmsync.web.api import schemas
from gtmsync.web.deps import CurrentOrg, CurrentUser

router = APIRouter(tags=["me"])


@router.get("/me", response_model=schemas.Me)
def me(user: CurrentUser, org: CurrentOrg) -> schemas.Me:
    return schemas.Me(
        user=schemas.User.model_validate(user), org=schemas.Org.model_validate(org), role=user.role
    )
