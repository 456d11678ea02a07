"""One error path with two renderings: JSON for `/api/…`, a page for the portal.

Services raise `GtmsyncError`s that already say what went wrong, which field and how to fix
it; this module only decides how to show them. API clients always get
`{"error", "field", "fix"}` with the error's status. Portal visitors get a rendered page, or a
redirect to sign-in when they are signed out. Forms that can be corrected catch `UserError`
themselves and re-render with the message next to the field.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from gtmsync.kit.errors import GtmsyncError, PermissionDeniedError, UserError
from gtmsync.web.security import SAFE_METHODS

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


class NotAuthenticatedError(GtmsyncError):
    """No valid session cookie or API token: 401 for the API, a sign-in redirect for pages."""

    status_code = 401

    def __init__(self, message: str = "Sign in to continue.", *, fix: str | None = None) -> None:
        super().__init__(
            message,
            field="authorization",
            fix=fix
            or "Sign in to the portal, or send 'Authorization: Bearer gtm_…' with an API token "
            "from Settings > API tokens.",
        )


class CsrfError(PermissionDeniedError):
    """An unsafe request without the token that proves it came from one of our own pages."""

    def __init__(self, *, header: bool = False) -> None:
        where = "X-CSRF-Token header" if header else "form"
        super().__init__(
            f"The request was refused: its {where} did not carry a valid security token.",
            field="csrf_token",
            fix="Reload the page and submit again."
            if not header
            else "Send the session's CSRF token (the csrf-token meta tag of any portal page) in "
            "the X-CSRF-Token header, or authenticate with an API token instead.",
        )


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def _json(
    error: GtmsyncError | None, status: int, payload: dict[str, Any] | None = None
) -> JSONResponse:
    body = payload if payload is not None else (error.as_dict() if error else {})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _sign_in_redirect(request: Request) -> Response:
    target = "/sign-in"
    if request.method in SAFE_METHODS:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?" + urlencode({"next": path})
    from gtmsync.web.portal.rendering import redirect

    return redirect(request, target)


def _page(request: Request, status: int, message: str, fix: str | None) -> Response:
    from gtmsync.web.portal.rendering import render_error

    return render_error(request, status=status, message=message, fix=fix)


def handle_gtmsync_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GtmsyncError)
    if is_api(request):
        return _json(exc, exc.status_code)
    if isinstance(exc, NotAuthenticatedError):
        return _sign_in_redirect(request)
    return _page(request, exc.status_code, exc.message, exc.fix)


def handle_validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 list becomes our shape, naming the first field at fault."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or None
    message = (
        f"{field}: {first.get('msg', 'invalid value')}" if field else "The request is invalid."
    )
    error = GtmsyncError(message, field=field, fix="Correct the value and send the request again.")
    if is_api(request):
        return _json(error, 422)
    return _page(request, 400, error.message, error.fix)


def handle_http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in the same two shapes."""
    assert isinstance(exc, StarletteHTTPException)
    message = {404: "Not found.", 405: "This method is not allowed here."}.get(
        exc.status_code, str(exc.detail)
    )
    if is_api(request):
        response = _json(None, exc.status_code, {"error": message, "field": None, "fix": None})
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    return _page(request, exc.status_code, message, None)


def handle_data_error(request: Request, exc: Exception) -> Response:
    """The database refused a value the request carried (PostgreSQL: a NUL character, text
    longer than its column). That is the request's fault: a 400 that says so, not a 500."""
    logger.info("database refused a value on %s %s: %s", request.method, request.url.path, exc)
    error = UserError(
        "A value in the request cannot be stored: it contains a character the database "
        "refuses (such as NUL) or is too long.",
        fix="Remove control characters and shorten long values, then send the request again.",
    )
    if is_api(request):
        return _json(error, 400)
    return _page(request, 400, error.message, error.fix)


def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = "Something went wrong on our side."
    fix = "Try again; if it keeps happening, give the request ID to your admin."
    if is_api(request):
        return _json(None, 500, {"error": message, "field": None, "fix": fix})
    return _page(request, 500, message, fix)


def install(app: FastAPI) -> None:
    app.add_exception_handler(GtmsyncError, handle_gtmsync_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(DataError, handle_data_error)
    app.add_exception_handler(Exception, handle_unexpected)
