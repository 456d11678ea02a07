"""Pure ASGI middleware: request IDs, metrics with an access log line, and security headers.

Pure ASGI (rather than `BaseHTTPMiddleware`) keeps streaming responses streaming and lets the
context variable set here reach the endpoint's thread and the log lines it writes.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gtmsync.kit import metrics
from gtmsync.kit.logging import request_id_var

access_log = logging.getLogger("gtmsync.web.access")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's ID only when it is short and plain, so it cannot inject into logs.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")

PORTAL_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# FastAPI's Swagger UI loads its bundle from jsDelivr and boots it with an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"


class RequestContextMiddleware:
    """X-Request-ID in and out (generated when absent), exposed through `request_id_var`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), ""
        )
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def route_template(scope: Scope, root_path: str = "") -> str:
    """The matched route's full template (`/api/v1/exports/{export_id}`), or `unmatched`.

    FastAPI leaves the innermost route in `scope["route"]`, whose path lacks the prefixes of
    the routers it was included in; those prefixes are static, so they are what precedes the
    route's own part in the requested path. When that cannot be worked out (a converter
    changed a value's spelling) the route's own template is used: still one label per route.
    A mounted app (static files) sets no route but extends `root_path` (given before the call).
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        mounted = str(scope.get("root_path", ""))
        if mounted != root_path and mounted.startswith(root_path):
            return mounted[len(root_path) :] + "/{path}"
        return "unmatched"
    path: str = scope["path"]
    try:
        rendered = template.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return template
    if rendered and path.endswith(rendered):
        return path[: len(path) - len(rendered)] + template
    return template


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, and logs one access line.

    The label is the matched route's template (`/api/v1/exports/{export_id}`), never the raw
    path, so IDs cannot multiply the time series; requests no route matched share
    `unmatched`. Added inside `RequestContextMiddleware`, so the access line carries the
    request ID. The line has no query string: search terms can be personal data.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        status = 500  # what the client gets when the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope, root_path)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            metrics.HTTP_REQUEST_SECONDS.labels(method=method, route=route).observe(seconds)
            access_log.info(
                "request",
                extra={
                    "extra_fields": {
                        "method": method,
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 1),
                    }
                },
            )


class SecurityHeadersMiddleware:
    """nosniff, no framing, same-origin referrers and a CSP chosen by the kind of page."""

    def __init__(self, app: ASGIApp, *, docs_paths: frozenset[str]) -> None:
        self.app = app
        self.docs_paths = docs_paths

    def _csp(self, path: str) -> str:
        if path in self.docs_paths:
            return DOCS_CSP
        if path.startswith("/api/"):
            return API_CSP
        return PORTAL_CSP

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"
                headers["Content-Security-Policy"] = self._csp(path)
                if not path.startswith("/static/"):
                    # Pages hold per-user data: never keep them in a shared or back-button cache.
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
