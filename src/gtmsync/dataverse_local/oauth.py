"""Entra ID's OAuth 2.0 / OpenID Connect endpoints for the local tenant (spec §10).

Served on the same HTTPS origin as the Web API, so one `authority` (`https://<host>/<tenant>`)
works with MSAL (`instance_discovery=False`) and azure-identity unmodified:

- `GET /{tenant}/v2.0/.well-known/openid-configuration` and `/{tenant}/discovery/v2.0/keys`;
- `GET|POST /{tenant}/oauth2/v2.0/authorize`: a sign-in page listing the tenant's enabled
  users (no passwords: a local stand-in, you click who you are), then a consent page when
  the app lacks consent; redirects with `code`+`state` or `error`+`error_description`;
- `POST /{tenant}/oauth2/v2.0/token`: `authorization_code` (PKCE), `refresh_token`
  (rotating) and `client_credentials` (secret in the body or HTTP Basic);
- `GET|POST /{tenant}/adminconsent`: a global admin grants tenant-wide consent.

`{tenant}` may be the tenant id, its domain, `common` or `organizations`; all resolve to
the one local tenant. Errors use Entra's JSON shape with `AADSTS` codes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gtmsync.dataverse_local.directory import (
    AppRegistration,
    Directory,
    EntraUser,
    Grant,
    GrantError,
    Tenant,
)
from gtmsync.dataverse_local.tokens import DELEGATED_SCOPE, TokenIssuer, client_info

OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
TENANT_ALIASES = frozenset({"common", "organizations"})


@dataclass
class IdentityProvider:
    """The local tenant's sign-in and token service."""

    directory: Directory
    issuer_keys: TokenIssuer
    tenant: Tenant
    # Extra resource URLs (besides this server's own origin) tokens may be issued for.
    extra_resources: frozenset[str] = field(default_factory=frozenset)

    # helpers ---------------------------------------------------------------------------

    @staticmethod
    def origin(request: Request) -> str:
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        return f"https://{host}"

    def issuer(self, request: Request) -> str:
        return f"{self.origin(request)}/{self.tenant.tenant_id}/v2.0"

    def known_tenant(self, segment: str) -> bool:
        return segment.lower() in {
            self.tenant.tenant_id.lower(),
            self.tenant.domain.lower(),
            *TENANT_ALIASES,
        }

    def resources(self, request: Request) -> set[str]:
        return {
            *origin_aliases(self.origin(request)),
            *(r.rstrip("/") for r in self.extra_resources),
        }

    def routes(self) -> list[Route]:
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration),
            Route("/{tenant}/.well-known/openid-configuration", self.openid_configuration),
            Route("/{tenant}/discovery/v2.0/keys", self.keys),
            Route("/{tenant}/discovery/keys", self.keys),
            Route("/{tenant}/oauth2/v2.0/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route("/{tenant}/adminconsent", self.admin_consent, methods=["GET", "POST"]),
            Route("/{tenant}/v2.0/adminconsent", self.admin_consent, methods=["GET", "POST"]),
        ]

    # discovery -------------------------------------------------------------------------

    async def openid_configuration(self, request: Request) -> Response:
        segment = request.path_params["tenant"]
        if not self.known_tenant(segment):
            return self._tenant_not_found(segment)
        base = f"{self.origin(request)}/{self.tenant.tenant_id}"
        return JSONResponse(
            {
                "issuer": self.issuer(request),
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                ],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
                "code_challenge_methods_supported": ["S256", "plain"],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "oid",
                    "tid",
                    "preferred_username",
                    "name",
                ],
                "tenant_region_scope": "NA",
                "cloud_instance_name": "local",
            }
        )

    async def keys(self, request: Request) -> Response:
        segment = request.path_params["tenant"]
        if not self.known_tenant(segment):
            return self._tenant_not_found(segment)
        return JSONResponse(self.issuer_keys.jwks())

    # token endpoint --------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        segment = request.path_params["tenant"]
        if not self.known_tenant(segment):
            return self._tenant_not_found(segment)
        form = {k: str(v) for k, v in (await request.form()).items()}
        try:
            grant_type = form.get("grant_type", "")
            if grant_type == "client_credentials":
                return self._client_credentials(request, form)
            if grant_type == "authorization_code":
                return self._authorization_code(request, form)
            if grant_type == "refresh_token":
                return self._refresh_token(request, form)
            raise GrantError(
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        except GrantError as exc:
            return oauth_error(exc)

    def _client(self, request: Request, form: Mapping[str, str]) -> tuple[AppRegistration, bool]:
        """The calling app and whether it proved its secret (body or HTTP Basic)."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode()
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise GrantError(
                    "invalid_client", 7000215, "Invalid client secret provided.", status=401
                ) from exc
            basic_id, _, basic_secret = decoded.partition(":")
            client_id = urllib.parse.unquote_plus(basic_id)
            secret = urllib.parse.unquote_plus(basic_secret)
        if not client_id:
            raise GrantError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        app = self.directory.app(client_id)
        if app is None:
            raise GrantError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant.display_name}'. This can happen if the application has not "
                "been installed by the administrator of the tenant or consented to by any user "
                "in the tenant. You may have sent your authentication request to the wrong "
                "tenant.",
            )
        if app.is_confidential:
            if not secret:
                raise GrantError(
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' "
                    "or 'client_secret'.",
                    status=401,
                )
            if not self.directory.verify_secret(client_id, secret):
                raise GrantError(
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the "
                    f"request is the client secret value, not the client secret ID, for a "
                    f"secret added to app '{client_id}'.",
                    status=401,
                )
            return app, True
        return app, False

    def _resource_scopes(
        self, request: Request, scope: str, *, app_only: bool
    ) -> tuple[str, tuple[str, ...]]:
        """The one resource the scopes name, and the resource scopes themselves.

        Entra ID allows scopes of a single resource per request; client credentials take
        exactly `<resource>/.default`, delegated flows `.default` or `user_impersonation`.
        """
        scopes = [s for s in scope.split() if s not in OIDC_SCOPES]
        split = [s.rsplit("/", 1) for s in scopes if "/" in s]
        resources = {resource.rstrip("/") for resource, _ in split}
        permissions = {permission for _, permission in split}
        allowed = {".default"} if app_only else {".default", DELEGATED_SCOPE}
        well_formed = bool(scopes) and len(split) == len(scopes) and len(resources) == 1
        if not well_formed or not permissions <= allowed or (app_only and len(scopes) != 1):
            hint = " Client credentials take exactly '<resource>/.default'." if app_only else ""
            raise GrantError(
                "invalid_scope",
                70011,
                "The provided request must include a 'scope' input parameter. The provided "
                f"value for the input parameter 'scope' is not valid. The scope {scope} is not "
                f"valid.{hint}",
            )
        resource = resources.pop()
        if resource not in self.resources(request):
            raise GrantError(
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.tenant.display_name}. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant.",
            )
        return resource, tuple(scopes)

    def _client_credentials(self, request: Request, form: Mapping[str, str]) -> Response:
        app, authenticated = self._client(request, form)
        if not authenticated:
            raise GrantError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
                status=401,
            )
        if app.multi_tenant and not self.directory.has_tenant_consent(app.client_id):
            raise GrantError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{app.client_id}' was not found in the directory "
                f"'{self.tenant.display_name}'. This can happen if the application has not "
                "been installed by the administrator of the tenant or consented to by any user "
                "in the tenant.",
            )
        resource, _ = self._resource_scopes(request, form.get("scope", ""), app_only=True)
        token, lifetime = self.issuer_keys.access_token(
            issuer=self.access_issuer(request),
            audience=resource,
            tenant_id=self.tenant.tenant_id,
            object_id=app.service_principal_id,
            app_id=app.client_id,
        )
        return _token_response(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            }
        )

    def access_issuer(self, request: Request) -> str:
        """Dataverse accepts v1 tokens: `iss` = `https://<authority host>/<tenant id>/`."""
        return f"{self.origin(request)}/{self.tenant.tenant_id}/"

    def _delegated_tokens(
        self,
        request: Request,
        form: Mapping[str, str],
        app: AppRegistration,
        grant: Grant,
        requested_scope: str,
    ) -> Response:
        user = self.directory.user(grant.object_id)
        if user is None or not user.enabled:
            raise GrantError(
                "invalid_grant",
                50057,
                "The user account is disabled. The account has been disabled by an administrator.",
            )
        scope_text = requested_scope or " ".join(grant.scope)
        resource, resource_scopes = self._resource_scopes(request, scope_text, app_only=False)
        token, lifetime = self.issuer_keys.access_token(
            issuer=self.access_issuer(request),
            audience=resource,
            tenant_id=self.tenant.tenant_id,
            object_id=user.object_id,
            app_id=app.client_id,
            scopes=(DELEGATED_SCOPE,),
            upn=user.upn,
            name=user.display_name,
        )
        body: dict[str, object] = {
            "token_type": "Bearer",
            "scope": " ".join(f"{resource}/{DELEGATED_SCOPE}" for _ in resource_scopes[:1]),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }
        granted = set(grant.scope)
        if "offline_access" in granted:
            body["refresh_token"] = self.directory.issue_refresh_token(
                Grant(app.client_id, user.object_id, grant.scope)
            )
        if "openid" in granted:
            body["id_token"] = self.issuer_keys.id_token(
                issuer=self.issuer(request),
                client_id=app.client_id,
                tenant_id=self.tenant.tenant_id,
                object_id=user.object_id,
                upn=user.upn,
                name=user.display_name,
                nonce=grant.nonce,
            )
        if form.get("client_info") == "1":
            body["client_info"] = client_info(user.object_id, self.tenant.tenant_id)
        return _token_response(body)

    def _authorization_code(self, request: Request, form: Mapping[str, str]) -> Response:
        app, _ = self._client(request, form)
        code = form.get("code")
        if not code:
            raise GrantError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'code'.",
            )
        grant = self.directory.redeem_code(
            code,
            client_id=app.client_id,
            redirect_uri=form.get("redirect_uri", ""),
            code_verifier=form.get("code_verifier"),
        )
        return self._delegated_tokens(request, form, app, grant, form.get("scope", ""))

    def _refresh_token(self, request: Request, form: Mapping[str, str]) -> Response:
        app, _ = self._client(request, form)
        token = form.get("refresh_token")
        if not token:
            raise GrantError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'refresh_token'.",
            )
        grant = self.directory.redeem_refresh_token(token, client_id=app.client_id)
        if not self.directory.has_consent(app.client_id, grant.object_id):
            raise GrantError(
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID "
                f"'{app.client_id}' named '{app.display_name}'.",
            )
        return self._delegated_tokens(request, form, app, grant, form.get("scope", ""))

    # authorize -------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        segment = request.path_params["tenant"]
        if not self.known_tenant(segment):
            return self._tenant_not_found(segment)
        params = dict(request.query_params)
        app = self.directory.app(params.get("client_id", ""))
        if app is None:
            return _error_page(
                "AADSTS700016",
                f"Application with identifier '{params.get('client_id', '')}' was not found in "
                f"the directory '{self.tenant.display_name}'.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            return _error_page(
                "AADSTS50011",
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{app.client_id}'. Make sure the "
                "redirect URI sent in the request matches one added to your application.",
            )
        state = params.get("state")
        mode = params.get("response_mode")
        if params.get("response_type") != "code":
            return _redirect(
                redirect_uri,
                state,
                response_mode=mode,
                error="unsupported_response_type",
                error_description="AADSTS70005: response_type 'id_token' is not enabled for the "
                "application. Only 'code' is supported by the local tenant.",
            )
        method = params.get("code_challenge_method")
        if method and method not in {"S256", "plain"}:
            return _redirect(
                redirect_uri,
                state,
                response_mode=mode,
                error="invalid_request",
                error_description="AADSTS501491: Invalid code_challenge_method.",
            )
        try:
            self._resource_scopes(request, params.get("scope", ""), app_only=False)
        except GrantError as exc:
            return _redirect(
                redirect_uri,
                state,
                response_mode=mode,
                error=exc.error,
                error_description=f"AADSTS{exc.aadsts}: {exc.description}",
            )
        if request.method == "GET":
            return self._sign_in_page(request, app, note=None)
        form = {k: str(v) for k, v in (await request.form()).items()}
        user = self.directory.user(form.get("user", ""))
        if user is None or not user.enabled:
            return self._sign_in_page(
                request, app, note="AADSTS50057: That account is disabled or does not exist."
            )
        consented = self.directory.has_consent(app.client_id, user.object_id)
        decision = form.get("consent")
        if decision == "cancel":
            return _redirect(
                redirect_uri,
                state,
                response_mode=mode,
                error="access_denied",
                error_description="AADSTS65004: User declined to consent to access the app.",
            )
        if decision == "accept":
            tenant_wide = form.get("tenant_wide") == "true"
            if tenant_wide and not user.is_global_admin:
                return self._admin_required(redirect_uri, state, app, mode)
            if app.requires_admin_consent and not (tenant_wide or consented):
                return self._admin_required(redirect_uri, state, app, mode)
            self.directory.grant_consent(
                app.client_id, granted_by=user.object_id, tenant_wide=tenant_wide
            )
        elif not consented or params.get("prompt") == "consent":
            if app.requires_admin_consent and not user.is_global_admin and not consented:
                return self._admin_required(redirect_uri, state, app, mode)
            return self._consent_page(request, app, user)
        code = self.directory.create_code(
            client_id=app.client_id,
            object_id=user.object_id,
            redirect_uri=redirect_uri,
            scope=tuple(params.get("scope", "").split()),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method"),
            nonce=params.get("nonce"),
        )
        return _redirect(
            redirect_uri, state, response_mode=mode, code=code, session_state=str(uuid.uuid4())
        )

    def _admin_required(
        self, redirect_uri: str, state: str | None, app: AppRegistration, mode: str | None
    ) -> Response:
        return _redirect(
            redirect_uri,
            state,
            response_mode=mode,
            error="access_denied",
            error_description=(
                f"AADSTS65001: The user or administrator has not consented to use the "
                f"application with ID '{app.client_id}' named '{app.display_name}'. The "
                "application requires admin consent: ask a global administrator of the tenant "
                "to grant consent on behalf of your organization."
            ),
        )

    def _sign_in_page(self, request: Request, app: AppRegistration, note: str | None) -> Response:
        users = self.directory.users(enabled_only=True)
        buttons = "\n".join(
            f'<li><button type="submit" name="user" value="{html.escape(u.object_id)}">'
            f"{html.escape(u.display_name)} <small>{html.escape(u.upn)}</small>"
            f"{' <em>(Global Administrator)</em>' if u.is_global_admin else ''}</button></li>"
            for u in users
        )
        action = html.escape(str(request.url.path) + "?" + request.url.query)
        notice = f'<p class="error">{html.escape(note)}</p>' if note else ""
        body = (
            f"<h1>Pick an account</h1><p>to continue to <strong>{html.escape(app.display_name)}"
            f"</strong> ({html.escape(self.tenant.display_name)})</p>{notice}"
            f'<form method="post" action="{action}" id="signin"><ul>{buttons}</ul></form>'
        )
        return HTMLResponse(_page("Sign in", body), status_code=200 if note is None else 400)

    def _consent_page(self, request: Request, app: AppRegistration, user: EntraUser) -> Response:
        action = html.escape(str(request.url.path) + "?" + request.url.query)
        tenant_box = (
            '<p><label><input type="checkbox" name="tenant_wide" value="true"> Consent on '
            "behalf of your organization</label></p>"
            if user.is_global_admin
            else ""
        )
        body = (
            f"<h1>Permissions requested</h1><p>Signed in as {html.escape(user.upn)}</p>"
            f"<p><strong>{html.escape(app.display_name)}</strong> wants to:</p>"
            "<ul><li>Access Dynamics 365 as organization users (user_impersonation)</li>"
            "<li>Maintain access to data you have given it access to (offline_access)</li></ul>"
            f'<form method="post" action="{action}" id="consent">'
            f'<input type="hidden" name="user" value="{html.escape(user.object_id)}">'
            f"{tenant_box}"
            '<button type="submit" name="consent" value="accept">Accept</button> '
            '<button type="submit" name="consent" value="cancel">Cancel</button></form>'
        )
        return HTMLResponse(_page("Permissions requested", body))

    # admin consent ---------------------------------------------------------------------

    async def admin_consent(self, request: Request) -> Response:
        segment = request.path_params["tenant"]
        if not self.known_tenant(segment):
            return self._tenant_not_found(segment)
        params = dict(request.query_params)
        app = self.directory.app(params.get("client_id", ""))
        if app is None:
            return _error_page(
                "AADSTS700016",
                f"Application with identifier '{params.get('client_id', '')}' was not found.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            return _error_page(
                "AADSTS50011",
                f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                f"redirect URIs configured for the application '{app.client_id}'.",
            )
        state = params.get("state")
        if request.method == "GET":
            return self._sign_in_page(request, app, note=None)
        form = {k: str(v) for k, v in (await request.form()).items()}
        user = self.directory.user(form.get("user", ""))
        if user is None or not user.enabled:
            return self._sign_in_page(
                request, app, note="AADSTS50057: That account is disabled or does not exist."
            )
        if not user.is_global_admin:
            return _redirect(
                redirect_uri,
                state,
                error="permission_denied",
                error_description="AADSTS90094: The grant requires admin permission. Sign in "
                "with a global administrator of the tenant.",
                admin_consent="False",
            )
        decision = form.get("consent")
        if decision is None:
            return self._consent_page(request, app, user)
        if decision != "accept":
            return _redirect(
                redirect_uri,
                state,
                error="access_denied",
                error_description="AADSTS65004: User declined to consent to access the app.",
                admin_consent="False",
            )
        self.directory.grant_consent(app.client_id, granted_by=user.object_id, tenant_wide=True)
        return _redirect(redirect_uri, state, admin_consent="True", tenant=self.tenant.tenant_id)

    def _tenant_not_found(self, segment: str) -> Response:
        return oauth_error(
            GrantError(
                "invalid_tenant",
                90002,
                f"Tenant '{segment}' not found. Check to make sure you have the correct tenant "
                "ID and are signing into the correct cloud.",
            )
        )


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def origin_aliases(origin: str) -> set[str]:
    """The origin plus its other loopback spellings: one local org, like a tenant's two hosts.

    Dataverse answers on `org.crm.dynamics.com` and `org.api.crm.dynamics.com` alike; locally
    a token for `https://localhost:8443` is as good as one for `https://127.0.0.1:8443`.
    """
    parts = urllib.parse.urlsplit(origin)
    host = parts.hostname or ""
    if host not in {"127.0.0.1", "localhost", "::1"}:
        return {origin}
    port = f":{parts.port}" if parts.port else ""
    return {f"https://{alias}{port}" for alias in LOOPBACK_HOSTS}


def oauth_error(exc: GrantError) -> Response:
    """Entra's token-endpoint error body (spec §10.1)."""
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    timestamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    description = (
        f"AADSTS{exc.aadsts}: {exc.description} Trace ID: {trace_id} "
        f"Correlation ID: {correlation_id} Timestamp: {timestamp}"
    )
    return JSONResponse(
        {
            "error": exc.error,
            "error_description": description,
            "error_codes": [exc.aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": "https://login.microsoftonline.com/error?code=" + str(exc.aadsts),
        },
        status_code=exc.status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _token_response(body: Mapping[str, object]) -> Response:
    return JSONResponse(dict(body), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _redirect(
    redirect_uri: str, state: str | None, *, response_mode: str | None = None, **values: str
) -> Response:
    """Send the result to the app: a 302 with a query string, or an auto-posting form.

    `response_mode=form_post` (which MSAL recommends) answers 200 with an HTML form that
    posts the values to the redirect URI, as Entra ID does.
    """
    query = dict(values)
    if state is not None:
        query["state"] = state
    if response_mode == "form_post":
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
        )
        body = (
            f'<form method="post" action="{html.escape(redirect_uri)}" id="response">{inputs}'
            "<noscript><button type=submit>Continue</button></noscript></form>"
            "<script>document.getElementById('response').submit()</script>"
        )
        return HTMLResponse(_page("Working...", body))
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urllib.parse.urlencode(query), 302)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)} - local Entra ID</title>"
        "<style>body{font-family:sans-serif;max-width:36em;margin:3em auto}"
        "ul{list-style:none;padding:0}button{margin:.3em 0;padding:.5em 1em}"
        ".error{color:#a00}</style></head>"
        f"<body>{body}</body></html>"
    )


def _error_page(code: str, message: str) -> Response:
    body = f"<h1>Sign in failed</h1><p class=error>{html.escape(code)}: {html.escape(message)}</p>"
    return HTMLResponse(_page("Error", body), status_code=400)
