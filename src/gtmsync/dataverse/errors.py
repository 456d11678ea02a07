"""The errors every Dataverse call can raise, classified transient or terminal.

    DataverseError                      (base: status, code, message, request_id, transient)
    ├── TransportError                  transient  no HTTP response: connect/read failed, timeout
    ├── BudgetExceededError             terminal   the caller's on_request hook vetoed the request
    ├── ConfigurationError              terminal   bad library arguments (names the field, the fix)
    ├── BatchFormatError                terminal   a $batch response that cannot be parsed
    └── APIError                        (an HTTP error response from Dataverse)
        ├── ThrottledError              transient  429 service protection; carries retry_after
        ├── ServerError                 transient  500/502/503/504 without a more precise code
        ├── AuthenticationError         terminal   401 that survived one forced token refresh
        │   └── ReconnectRequiredError  terminal   no token can be refreshed silently: sign in again
        ├── PrivilegeError              terminal   403: the user or app user lacks a privilege
        ├── NotFoundError               terminal   404: no row with this id or key
        ├── DuplicateRecordError        terminal   412/500: key collision or duplicate detection hit
        ├── ConcurrencyError            terminal   412: ETag (If-Match) no longer matches the row
        ├── NotSupportedError           terminal   405/501: message not available on this table
        └── ValidationError             terminal   400: bad payload, filter or URL
            └── ChangeTokenExpiredError terminal   the delta token is expired or invalid: backfill

Retry logic looks at `transient` (the class), never at the message text. Dataverse's
`code` "is not related to the http status code and is frequently empty", so the class is
chosen from the code when it is known and from the status otherwise.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx

REQUEST_ID_HEADERS = ("x-ms-service-request-id", "REQ_ID", "req_id", "x-ms-request-id")

_DUPLICATE_CODES = frozenset({"0x80040237", "0x80060892", "0x80040333"})
_CONCURRENCY_CODES = frozenset({"0x80060882"})
_PRIVILEGE_CODES = frozenset({"0x80040220", "0x80040231", "0x80048405"})
_NOT_FOUND_CODES = frozenset({"0x80040217"})
_THROTTLE_CODES = frozenset({"0x80072322", "0x80072321", "0x80072326", "0x80072327"})
# ExpiredVersionStamp: the delta token is older than the change-tracking retention.
CHANGE_TOKEN_CODES = frozenset({"0x80044352"})
_NOT_SUPPORTED_CODES = frozenset({"0x80040800", "0x8004d24c"})


class DataverseError(Exception):
    """Base of every error the library raises."""

    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.attempts = 1

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"(HTTP {self.status}")
            parts[-1] += f", code {self.code})" if self.code else ")"
        if self.request_id:
            parts.append(f"[request {self.request_id}]")
        return " ".join(parts)


class TransportError(DataverseError):
    transient = True


class BudgetExceededError(DataverseError):
    """Raised by an `on_request` hook to stop a request before it is sent."""


class ConfigurationError(DataverseError, ValueError):
    """A library argument is wrong; the message names the argument and the fix."""


class BatchFormatError(DataverseError):
    pass


class APIError(DataverseError):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id)
        self.body = body


class ThrottledError(APIError):
    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(APIError):
    transient = True


class AuthenticationError(APIError):
    pass


class ReconnectRequiredError(AuthenticationError):
    """No token can be obtained without the person (or admin) signing in again."""


class PrivilegeError(APIError):
    pass


class NotFoundError(APIError):
    pass


class DuplicateRecordError(APIError):
    pass


class ConcurrencyError(APIError):
    pass


class NotSupportedError(APIError):
    pass


class ValidationError(APIError):
    pass


class ChangeTokenExpiredError(ValidationError):
    """The delta link cannot be followed any more; the caller should run a backfill."""


def request_id_of(headers: httpx.Headers) -> str | None:
    for name in REQUEST_ID_HEADERS:
        if value := headers.get(name):
            return str(value)
    return None


def parse_error_body(content: bytes) -> tuple[str | None, str | None, Any]:
    """(code, message, decoded body) from `{"error": {"code", "message"}}`, tolerating junk."""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        text = content.decode("utf-8", "replace").strip()
        return None, text[:500] or None, text
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, body
    code = error.get("code") or None
    message = error.get("message") or None
    inner = error.get("innererror")
    if isinstance(inner, dict) and inner.get("message") and inner["message"] != message:
        message = f"{message} ({inner['message']})" if message else str(inner["message"])
    return (str(code).lower() if code else None), (str(message) if message else None), body


def error_class_for(status: int, code: str | None) -> type[APIError]:
    if code in CHANGE_TOKEN_CODES:
        return ChangeTokenExpiredError
    if code in _DUPLICATE_CODES:
        return DuplicateRecordError
    if code in _CONCURRENCY_CODES:
        return ConcurrencyError
    if code in _PRIVILEGE_CODES:
        return PrivilegeError
    if code in _NOT_FOUND_CODES:
        return NotFoundError
    if code in _THROTTLE_CODES or status == 429:
        return ThrottledError
    if code in _NOT_SUPPORTED_CODES:
        return NotSupportedError
    return {
        401: AuthenticationError,
        403: PrivilegeError,
        404: NotFoundError,
        405: NotSupportedError,
        501: NotSupportedError,
    }.get(status) or (ServerError if status >= 500 else ValidationError)


def _classify_412(message: str | None) -> type[APIError]:
    # Microsoft documents both 412 cases with an empty code; the two texts are fixed strings.
    if message and "already exists" in message:
        return DuplicateRecordError
    return ConcurrencyError


def from_parts(
    status: int,
    headers: httpx.Headers,
    content: bytes,
    *,
    retry_after: float | None = None,
) -> APIError:
    """Build the error for one HTTP response (top-level or a $batch part)."""
    code, message, body = parse_error_body(content)
    if code in {"0x0", ""}:
        code = None
    cls = error_class_for(status, code)
    if status == 412 and code is None:
        cls = _classify_412(message)
    text = message or f"Dataverse answered HTTP {status}"
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": request_id_of(headers),
        "body": body,
    }
    if cls is ThrottledError:
        return ThrottledError(text, retry_after=retry_after, **kwargs)
    return cls(text, **kwargs)


def from_response(response: httpx.Response, *, retry_after: float | None = None) -> APIError:
    response.read()
    return from_parts(
        response.status_code, response.headers, response.content, retry_after=retry_after
    )
