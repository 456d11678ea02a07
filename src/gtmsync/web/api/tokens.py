"""The caller's own API tokens. Revocation is checked on every request, so it is immediate."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from gtmsync.platform import service as platform_service
from gtmsync.web.api import schemas
from gtmsync.web.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api-tokens", tags=["api tokens"])


@router.get("", response_model=list[schemas.ApiToken])
def list_tokens(db: SessionDep, user: CurrentUser) -> list[schemas.ApiToken]:
    return [schemas.ApiToken.model_validate(t) for t in platform_service.list_api_tokens(db, user)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.ApiTokenCreated)
def create_token(
    body: schemas.ApiTokenCreate, db: SessionDep, user: CurrentUser
) -> schemas.ApiTokenCreated:
    issued = platform_service.create_api_token(db, user, name=body.name)
    shown = schemas.ApiToken.model_validate(issued.record)
    return schemas.ApiTokenCreated(**shown.model_dump(), token=issued.token)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: uuid.UUID, db: SessionDep, user: CurrentUser) -> Response:
    platform_service.revoke_api_token(db, user, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
