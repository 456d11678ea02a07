"""The whole local Dataverse server as one ASGI app: identity, gate, data plane, harness.

Layers, outermost first:

1. request ids (`x-ms-service-request-id`, `REQ_ID`) on every response;
2. fault injection (`faults.py`) on every path except `/_admin`;
3. the Entra ID-like identity routes (`oauth.py`) and the harness's `/_admin` routes;
4. for `/api/data/v9.0|v9.1|v9.2/…`, the gate: bearer token → systemuser → `Principal`
   (impersonation through `CallerObjectId`/`MSCRMCallerID`), service protection limits,
   the API-call counter, then the data plane (`webapi.create_webapi_app`) with the
   principal in `scope["state"]["principal"]` (that is, `request.state.principal`).

`create_app(store, config=ServerConfig(...))` returns a `LocalDataverseApp`: mount it on
uvicorn over HTTPS (`server.py`) or drive it in-process through `httpx.ASGITransport`. Its
attributes (`directory`, `security`, `tokens`, `faults`, `limits`, `usage`) are the same
objects the `/_admin` endpoint changes, so in-process tests can skip HTTP for set-up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gtmsync.dataverse_local.directory import AppRegistration, Directory, EntraUser
from gtmsync.dataverse_local.errors import DataverseLocalError
from gtmsync.dataverse_local.faults import (
    Decision,
    FaultConfigError,
    FaultInjector,
    FaultRule,
    truncate_batch,
)
from gtmsync.dataverse_local.limits import (
    LimitConfig,
    ServiceProtection,
    ThrottledError,
    UsageCounter,
)
from gtmsync.dataverse_local.oauth import IdentityProvider, origin_aliases
from gtmsync.dataverse_local.principal import Principal
from gtmsync.dataverse_local.security import (
    ACT_ON_BEHALF,
    SALESPERSON,
    SYSTEM_ADMINISTRATOR,
    SecurityModel,
    SystemUser,
    impersonated_not_found,
    missing_special_privilege,
    not_a_member,
    user_disabled,
)
from gtmsync.dataverse_local.seed import provision_application_user, provision_user
from gtmsync.dataverse_local.tokens import TokenError, TokenIssuer, load_or_create_signing_key

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MULTIPLE = re.compile(r"[/.](CreateMultiple|UpdateMultiple|UpsertMultiple)$")


class DroppedConnection(Exception):  # noqa: N818 - it is an event, not an error of ours
    """Raised after a partial response so the server closes the socket (a dropped connection)."""


@dataclass
class ServerConfig:
    """How one local Dataverse server runs; every field has a working default."""

    data_dir: Path | None = None  # signing key persists here (in memory when None)
    tenant_id: str | None = None  # fixed tenant id; otherwise the directory's (random once)
    tenant_domain: str = "contoso.local"
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    access_token_seconds: int = 3599
    limits: LimitConfig = field(default_factory=LimitConfig)
    faults: list[FaultRule] = field(default_factory=list)
    fault_seed: int = 0
    extra_resources: frozenset[str] = frozenset()  # other org URLs tokens may target
    webapi: ASGIApp | None = None  # the data plane; None = webapi.create_webapi_app(store)


@dataclass
class ProvisionedUser:
    entra: EntraUser
    systemuserid: uuid.UUID

    @property
    def object_id(self) -> str:
        return self.entra.object_id


@dataclass
class ProvisionedApp:
    registration: AppRegistration
    secret: str | None
    systemuserid: uuid.UUID | None

    @property
    def client_id(self) -> str:
        return self.registration.client_id


class _Unauthorized(Exception):  # noqa: N818
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # missing | invalid | expired
        self.message = message


_AUTH_CODES = {
    "missing": "0x80048306",
    "invalid": "0x8004a100",
    "expired": "0x8004a101",
}


class LocalDataverseApp:
    """The composed ASGI application (see the module docstring)."""

    def __init__(self, store: Any, config: ServerConfig) -> None:
        self.store = store
        self.config = config
        self.directory = Directory(store.engine)
        self.tenant = self.directory.tenant(
            default_id=config.tenant_id, domain=config.tenant_domain
        )
        self.tokens = TokenIssuer(
            load_or_create_signing_key(config.data_dir),
            access_token_seconds=config.access_token_seconds,
        )
        self.security = SecurityModel(store.engine, on_secure=self._mark_secured)
        self.limits = ServiceProtection(config.limits)
        self.usage = UsageCounter()
        self.faults = FaultInjector(list(config.faults), seed=config.fault_seed)
        self.faults.token_expiry_hook = self.expire_tokens
        self.idp = IdentityProvider(
            directory=self.directory,
            issuer_keys=self.tokens,
            tenant=self.tenant,
            extra_resources=config.extra_resources,
        )
        webapi = config.webapi
        if webapi is None:
            from gtmsync.dataverse_local.webapi import create_webapi_app

            webapi = create_webapi_app(store)
        self.gate = _Gate(self, webapi)
        routes: list[Route] = [
            Route("/_admin/faults", self._admin_faults, methods=["GET", "POST", "DELETE"]),
            Route("/_admin/limits", self._admin_limits, methods=["GET", "PUT", "DELETE"]),
            Route("/_admin/usage", self._admin_usage, methods=["GET", "DELETE"]),
            Route("/_admin/refresh-tokens/revoke", self._admin_revoke, methods=["POST"]),
            Route("/_admin/token-expiry", self._admin_token_expiry, methods=["POST"]),
            Route("/_admin/users", self._admin_users, methods=["POST"]),
            Route("/_admin/apps", self._admin_apps, methods=["POST"]),
            *self.idp.routes(),
        ]
        self.router = Starlette(routes=routes)

    # in-process controls ----------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Refuse every access token issued before now (the token-expiry fault)."""
        self.tokens.not_before = time.time()

    def add_user(
        self,
        first: str,
        last: str,
        *,
        roles: tuple[str, ...] = (SALESPERSON,),
        global_admin: bool = False,
        disabled: bool = False,
    ) -> ProvisionedUser:
        """An Entra user with a linked systemuser holding `roles` (for tests and demos)."""
        for role in roles:
            self.security.role(role)  # unknown names fail before anything is created
        entra, user_id = provision_user(
            self.store,
            self.directory,
            self.security,
            first=first,
            last=last,
            roles=roles,
            global_admin=global_admin,
            disabled=disabled,
        )
        return ProvisionedUser(entra, user_id)

    def register_app(
        self,
        name: str,
        *,
        redirect_uris: tuple[str, ...] = (),
        multi_tenant: bool = False,
        requires_admin_consent: bool | None = None,
        confidential: bool = True,
        application_user_roles: tuple[str, ...] | None = (SYSTEM_ADMINISTRATOR,),
    ) -> ProvisionedApp:
        """Register an app; with `application_user_roles` also create its application user."""
        registration, secret = self.directory.register_app(
            name,
            redirect_uris=redirect_uris,
            multi_tenant=multi_tenant,
            requires_admin_consent=requires_admin_consent,
            confidential=confidential,
        )
        user_id = None
        if application_user_roles is not None:
            user_id = provision_application_user(
                self.store,
                self.directory,
                self.security,
                client_id=registration.client_id,
                name=name,
                roles=application_user_roles,
            )
        return ProvisionedApp(registration, secret, user_id)

    def reset(self) -> None:
        """Clear faults, limit windows, usage counters and the token-expiry cut-off."""
        self.faults.clear()
        self.limits.reset()
        self.usage.reset()
        self.tokens.not_before = 0.0

    def _mark_secured(self, table: str, attribute: str, secured: bool) -> None:
        """Flag a secured column in the data plane's catalogue (metadata shows IsSecured)."""
        catalogue = getattr(self.store, "catalogue", None)
        if catalogue is None:
            return
        definition = catalogue.get(table)
        if definition is None or attribute not in definition.attributes:
            return
        current = definition.attributes[attribute]
        if hasattr(current, "secured") and current.secured != secured:
            catalogue.add_attribute(table, dataclasses.replace(current, secured=secured))

    def org_url(self, host: str) -> str:
        return f"https://{host}"

    # ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        request_id = str(uuid.uuid4())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-ms-service-request-id", request_id.encode()))
                headers.append((b"req_id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        path: str = scope["path"]
        if path.startswith("/_admin"):
            await self.router(scope, receive, send_with_id)
            return
        decision = self.faults.decide(scope["method"], path)
        if not decision.fired:
            await self._route(scope, receive, send_with_id)
            return
        await self._with_faults(decision, scope, receive, send_with_id)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The data plane routes on the full `/api/data/{version}/…` path itself.
        if scope["path"].startswith("/api/data/"):
            await self.gate(scope, receive, send)
        else:
            await self.router(scope, receive, send)

    async def _with_faults(
        self, decision: Decision, scope: Scope, receive: Receive, send: Send
    ) -> None:
        is_data_plane = scope["path"].startswith("/api/data/")
        if is_data_plane:
            scope.setdefault("state", {})["gtmsync.fault_latency"] = decision.latency_seconds
        elif decision.latency_seconds:
            await asyncio.sleep(decision.latency_seconds)
        if decision.respond is not None:
            response = _fault_response(decision.respond, self.limits.config)
            await response(scope, receive, send)
            return
        drop = decision.drop
        if drop is None:
            await self._route(scope, receive, send)
            return
        if drop.kind == "drop_batch":
            body = await _read_body(receive)
            content_type = _header(scope, "content-type") or ""
            body = truncate_batch(body, content_type, drop.after_operations)
            scope["headers"] = [
                (k, v) for k, v in scope["headers"] if k.lower() != b"content-length"
            ] + [(b"content-length", str(len(body)).encode())]
            receive = _replay(body, receive)
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._route(scope, receive, capture)
        assert start is not None
        body = b"".join(chunks)
        partial = body[: max(0, min(drop.partial_bytes, len(body) - 1))]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body) + 1024).encode()))
        status = 200 if start["status"] in (204, 304) else start["status"]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": partial, "more_body": True})
        raise DroppedConnection(f"fault {drop.id}: connection dropped after {len(partial)} bytes")

    # /_admin -----------------------------------------------------------------------------

    def _admin_ok(self, request: Request) -> bool:
        supplied = request.headers.get("authorization", "")
        expected = f"Bearer {self.config.admin_token}"
        return hmac.compare_digest(supplied.encode(), expected.encode())

    def _admin_denied(self) -> Response:
        return JSONResponse(
            {"error": "the /_admin endpoint needs 'Authorization: Bearer <admin token>'"},
            status_code=401,
        )

    async def _admin_faults(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return self._admin_denied()
        if request.method == "DELETE":
            seed = request.query_params.get("seed")
            self.faults.clear(seed=int(seed) if seed else None)
        elif request.method == "POST":
            try:
                data = await request.json()
                items = data.get("rules", [data]) if isinstance(data, dict) else data
                for item in items:
                    self.faults.add(FaultRule.from_dict(dict(item)))
            except (FaultConfigError, ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.faults.describe())

    async def _admin_limits(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return self._admin_denied()
        if request.method == "DELETE":
            self.limits.reset()
        elif request.method == "PUT":
            try:
                self.limits.config = self.limits.config.updated(await request.json())
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        config = self.limits.config
        return JSONResponse({k: getattr(config, k) for k in config.__dataclass_fields__})

    async def _admin_usage(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return self._admin_denied()
        if request.method == "DELETE":
            self.usage.reset()
        return JSONResponse({"usage": self.usage.snapshot()})

    async def _admin_revoke(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return self._admin_denied()
        data = await request.json()
        revoked = await run_in_threadpool(
            self.directory.revoke_refresh_tokens,
            object_id=data.get("object_id"),
            client_id=data.get("client_id"),
        )
        return JSONResponse({"revoked": revoked})

    async def _admin_users(self, request: Request) -> Response:
        """Provision a user for out-of-process harnesses: `{first, last, roles?, …}`."""
        if not self._admin_ok(request):
            return self._admin_denied()
        try:
            data = dict(await request.json())
            user = await run_in_threadpool(
                lambda: self.add_user(
                    str(data["first"]),
                    str(data["last"]),
                    roles=tuple(data.get("roles", (SALESPERSON,))),
                    global_admin=bool(data.get("global_admin", False)),
                    disabled=bool(data.get("disabled", False)),
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse(
                {"error": f"users: {exc}; send {{first, last, roles?, global_admin?, disabled?}}"},
                status_code=400,
            )
        return JSONResponse(
            {
                "object_id": user.object_id,
                "upn": user.entra.upn,
                "systemuserid": str(user.systemuserid),
            },
            status_code=201,
        )

    async def _admin_apps(self, request: Request) -> Response:
        """Register an app (and its application user) for out-of-process harnesses."""
        if not self._admin_ok(request):
            return self._admin_denied()
        try:
            data = dict(await request.json())
            roles = data.get("application_user_roles", [SYSTEM_ADMINISTRATOR])
            registered = await run_in_threadpool(
                lambda: self.register_app(
                    str(data["name"]),
                    redirect_uris=tuple(data.get("redirect_uris", ())),
                    multi_tenant=bool(data.get("multi_tenant", False)),
                    requires_admin_consent=data.get("requires_admin_consent"),
                    confidential=bool(data.get("confidential", True)),
                    application_user_roles=None if roles is None else tuple(roles),
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse(
                {"error": f"apps: {exc}; send {{name, redirect_uris?, multi_tenant?, …}}"},
                status_code=400,
            )
        return JSONResponse(
            {
                "client_id": registered.client_id,
                "client_secret": registered.secret,
                "systemuserid": None
                if registered.systemuserid is None
                else str(registered.systemuserid),
            },
            status_code=201,
        )

    async def _admin_token_expiry(self, request: Request) -> Response:
        if not self._admin_ok(request):
            return self._admin_denied()
        self.faults.add(FaultRule(kind="token_expiry"))
        return JSONResponse({"not_before": self.tokens.not_before})


class _Gate:
    """Authenticates, authorises, throttles and counts every Web API request."""

    def __init__(self, app: LocalDataverseApp, webapi: ASGIApp) -> None:
        self.app = app
        self.webapi = webapi

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.webapi(scope, receive, send)
            return
        try:
            principal = await run_in_threadpool(self._principal, scope)
        except _Unauthorized as exc:
            await self._unauthorized(scope, exc)(scope, receive, send)
            return
        except DataverseLocalError as exc:
            await _error_response(exc)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        caller = str(principal.caller_id)
        try:
            ticket = self.app.limits.acquire(caller)
        except ThrottledError as exc:
            await _error_response(exc)(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
            self.app.usage.record(caller, _operations(scope, body))
            latency = state.pop("gtmsync.fault_latency", 0.0)
            if latency:
                await asyncio.sleep(latency)
            extra = [(k.encode(), v.encode()) for k, v in self.app.limits.headers(ticket).items()]

            async def send_with_limits(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *extra]
                await send(message)

            await self.webapi(scope, _replay(body, receive), send_with_limits)
        finally:
            self.app.limits.release(ticket)

    def _principal(self, scope: Scope) -> Principal:
        app = self.app
        authorization = _header(scope, "authorization") or ""
        if not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
            raise _Unauthorized(
                "missing",
                "The user is not authenticated: no bearer token was "
                "sent in the Authorization header.",
            )
        host = _header(scope, "host") or "localhost"
        audiences = {*origin_aliases(app.org_url(host)), *app.config.extra_resources}
        try:
            claims = app.tokens.verify(authorization[7:].strip(), audiences=audiences)
        except TokenError as exc:
            if exc.expired:
                raise _Unauthorized(
                    "expired",
                    "The user authentication ticket has expired (the bearer token "
                    "is past its expiry). Acquire a new token and retry.",
                ) from exc
            raise _Unauthorized(
                "invalid", f"The user authentication ticket is invalid: {exc}"
            ) from exc
        if claims.tenant_id != app.tenant.tenant_id:
            raise _Unauthorized("invalid", "The bearer token was issued for another tenant.")
        store = app.store
        row = (
            store.find_systemuser(application_id=claims.app_id)
            if claims.is_app
            else store.find_systemuser(aad_object_id=claims.object_id)
        )
        if row is None:
            raise not_a_member(
                claims.object_id, application_id=claims.app_id if claims.is_app else None
            )
        caller = SystemUser.from_row(row)
        if caller.is_disabled:
            raise user_disabled(caller.systemuserid)
        tenant_id = app.tenant.tenant_id
        by_object = _header(scope, "callerobjectid")
        by_id = _header(scope, "mscrmcallerid")
        if not by_object and not by_id:
            return app.security.principal(caller, tenant_id=tenant_id)
        if by_object:
            target_row = store.find_systemuser(aad_object_id=by_object.strip())
            header, value = "CallerObjectId", by_object
        else:
            try:
                target_id = uuid.UUID(str(by_id).strip())
            except ValueError as exc:
                raise DataverseLocalError(
                    400, "0x80040203", f"MSCRMCallerID: '{by_id}' is not a valid GUID."
                ) from exc
            target_row = store.find_systemuser(systemuserid=target_id)
            header, value = "MSCRMCallerID", str(by_id)
        if target_row is None:
            if not app.security.has_special(caller.systemuserid, ACT_ON_BEHALF):
                raise missing_special_privilege(caller.systemuserid, ACT_ON_BEHALF)
            raise impersonated_not_found(header, value)
        target = SystemUser.from_row(target_row)
        if target.systemuserid == caller.systemuserid:
            return app.security.principal(caller, tenant_id=tenant_id)
        return app.security.impersonate(caller, target, tenant_id=tenant_id)

    def _unauthorized(self, scope: Scope, exc: _Unauthorized) -> Response:
        host = _header(scope, "host") or "localhost"
        challenge = (
            f"Bearer authorization_uri=https://{host}/{self.app.tenant.tenant_id}/oauth2/"
            f"authorize, resource_id=https://{host}/"
        )
        if exc.kind != "missing":
            description = "The token is expired" if exc.kind == "expired" else "Invalid token"
            challenge = (
                f'Bearer error="invalid_token", error_description="{description}", '
                + challenge.removeprefix("Bearer ")
            )
        error = DataverseLocalError(401, _AUTH_CODES[exc.kind], exc.message)
        return Response(
            error.body(),
            status_code=401,
            headers={**error.headers(), "WWW-Authenticate": challenge},
        )


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, upstream: Receive) -> Receive:
    """Hand the already-read body to the next app once, then pass on the server's events."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await upstream()

    return receive


def _operations(scope: Scope, body: bytes) -> int:
    """How many operations the entitlement counter charges for this request (spec §9.2)."""
    path: str = scope["path"]
    if path.rstrip("/").endswith("$batch"):
        return max(1, len(re.findall(rb"(?i)content-type:\s*application/http", body)))
    if _MULTIPLE.search(path.rstrip("/")):
        try:
            targets = json.loads(body or b"{}").get("Targets", [])
        except (ValueError, AttributeError):
            return 1
        return max(1, len(targets)) if isinstance(targets, list) else 1
    return 1


def _error_response(exc: DataverseLocalError) -> Response:
    return Response(exc.body(), status_code=exc.status, headers=exc.headers())


def _fault_response(rule: FaultRule, limits: LimitConfig) -> Response:
    if rule.kind == "throttle":
        exc: DataverseLocalError = ThrottledError(
            "0x80072322",
            f"Number of requests exceeded the limit of {limits.max_requests} over time window "
            f"of {int(limits.window_seconds)} seconds.",
            rule.retry_after,
        )
    else:
        messages = {
            500: ("0x80040216", "An unexpected error occurred."),
            502: ("0x80040216", "Bad Gateway: the upstream server returned an invalid response."),
            503: ("0x80040216", "The service is temporarily unavailable. Try again later."),
            504: ("0x80040216", "Gateway Timeout: the request took too long to process."),
        }
        code, message = messages[rule.status]
        exc = DataverseLocalError(rule.status, code, message)
    return _error_response(exc)


def create_app(store: Any, *, config: ServerConfig | None = None) -> LocalDataverseApp:
    """Compose the local server around `store` (a `store.Store`)."""
    return LocalDataverseApp(store, config or ServerConfig())
