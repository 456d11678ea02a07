"""Pages every signed-in user has: Search and Settings > Integrations / API tokens."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from gtmsync.kit.errors import UserError
from gtmsync.platform import service as platform_service
from gtmsync.web.deps import CurrentUser, SessionDep
from gtmsync.web.portal.forms import ApiTokenForm
from gtmsync.web.portal.rendering import redirect, render

router = APIRouter()


@router.get("/")
def home(request: Request) -> Response:
    return redirect(request, "/search")


def _tokens_page(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    *,
    new_token: str | None = None,
    error: UserError | None = None,
    name: str = "",
) -> Response:
    tokens = platform_service.list_api_tokens(db, user)
    context = {"tokens": tokens, "new_token": new_token, "error": error, "name": name}
    status = error.status_code if error else (201 if new_token else 200)
    return render(request, "settings/api_tokens.html", context, status_code=status)


@router.get("/settings/api-tokens")
def api_tokens(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    return _tokens_page(request, db, user)


@router.post("/settings/api-tokens")
def create_api_token(
    request: Request, form: Annotated[ApiTokenForm, Form()], db: SessionDep, user: CurrentUser
) -> Response:
    """Renders the page directly (no redirect): the token exists in clear only in this reply."""
    try:
        issued = platform_service.create_api_token(db, user, name=form.name)
    except UserError as error:
        return _tokens_page(request, db, user, error=error, name=form.name)
    return _tokens_page(request, db, user, new_token=issued.token)


@router.post("/settings/api-tokens/{token_id}/revoke")
def revoke_api_token(
    request: Request, token_id: uuid.UUID, db: SessionDep, user: CurrentUser
) -> Response:
    platform_service.revoke_api_token(db, user, token_id)
    return redirect(request, "/settings/api-tokens", flash="The token was revoked.")
