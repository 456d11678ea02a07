"""REST API under `/api/v1`: one router module per feature, composed here.

Authentication (API token or session cookie) and the session-cookie CSRF check sit on the
composed router, so every route added below is protected without repeating it. A feature adds
its module and one `include_router` line.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from gtmsync.web.api import (
    activities,
    connection,
    export_settings,
    exports,
    imports,
    me,
    schemas,
    search,
    sharing,
    tokens,
    users,
)
from gtmsync.web.deps import require_user, verify_api_csrf

API_PREFIX = "/api/v1"

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorBody, "description": description}
    for code, description in {
        401: "No valid API token or session.",
        403: "Not allowed for this user (or a missing X-CSRF-Token with a session cookie).",
        404: "Not found in your org.",
        422: "The request is invalid; `field` names the culprit.",
    }.items()
}


def build_api_router() -> APIRouter:
    api = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(require_user), Depends(verify_api_csrf)],
        responses=ERROR_RESPONSES,
    )
    api.include_router(me.router)
    api.include_router(users.router)
    api.include_router(tokens.router)
    api.include_router(connection.router)
    api.include_router(export_settings.router)
    api.include_router(exports.router)
    api.include_router(imports.router)
    api.include_router(search.router)
    api.include_router(sharing.router)
    api.include_router(activities.router)
    api.include_router(activities.admin_router)
    return api
