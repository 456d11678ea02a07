"""Bearer tokens from MSAL, applied as an `httpx.Auth` flow (httpx `_auth.py` shape).

No call site sets `Authorization`: `MsalAuth.auth_flow` asks a `TokenProvider` for a token,
sends the request, and on a 401 forces one refresh and resends once. A second 401 is an
`AuthenticationError`; a refresh that needs a person (no account in the cache, or
`invalid_grant` because the refresh token was revoked or expired) is a
`ReconnectRequiredError`, which the hub turns into "reconnect Dynamics".

Two providers:

- `ClientCredentials`: the application user (server-to-server), scope `<org>/.default`.
- `DelegatedTokens`: a signed-in admin or user (authorization code with PKCE via
  `AuthCodeFlow`), scope `<org>/user_impersonation`, refreshed silently from a
  `SerializableTokenCache` that the caller supplies as a string and persists through
  `on_cache_change` (the hub encrypts it at rest; this library never logs it).

Authorities: Entra ID by default. A non-Microsoft authority (the local server's identity
endpoints) needs `instance_discovery=False`; MSAL accepts only https authorities. TLS trust
for MSAL's calls comes from `verify` (a CA bundle path) on the `requests.Session` passed as
MSAL's `http_client`; that session keeps its `verify` even where `REQUESTS_CA_BUNDLE` or
`CURL_CA_BUNDLE` is set (requests would otherwise let them win).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx
import msal
import requests

from gtmsync.dataverse.errors import (
    AuthenticationError,
    ConfigurationError,
    ReconnectRequiredError,
    TransportError,
)

ENTRA_AUTHORITY = "https://login.microsoftonline.com/organizations"
_MICROSOFT_HOSTS = ("login.microsoftonline.com", "login.microsoft.com", "login.windows.net")
_RECONNECT_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required"})


def org_scope(org_url: str, *, delegated: bool) -> str:
    """`https://org.crm.dynamics.com/user_impersonation` (delegated) or `/.default` (app)."""
    parts = urlsplit(org_url)
    if parts.scheme != "https" or not parts.netloc:
        raise ConfigurationError(
            f"org_url {org_url!r} must be an https URL such as https://contoso.crm.dynamics.com"
        )
    origin = f"https://{parts.netloc}"
    return f"{origin}/user_impersonation" if delegated else f"{origin}/.default"


@dataclass(frozen=True)
class MsalConfig:
    """How to reach the identity provider as one registered app."""

    client_id: str
    authority: str = ENTRA_AUTHORITY
    client_secret: str | None = None
    verify: str | bool = True
    instance_discovery: bool | None = None

    def __post_init__(self) -> None:
        if urlsplit(self.authority).scheme != "https":
            raise ConfigurationError(
                f"authority {self.authority!r} must be https: MSAL refuses plain-http identity "
                "providers (use the local server's https URL in demo and tests)"
            )
        if not self.client_id:
            raise ConfigurationError("client_id is empty: use the app registration's client id")

    @property
    def discovers_instance(self) -> bool:
        if self.instance_discovery is not None:
            return self.instance_discovery
        return urlsplit(self.authority).hostname in _MICROSOFT_HOSTS

    def http_session(self) -> requests.Session:
        session = _PinnedVerifySession()
        session.verify = self.verify
        return session

    def build_app(
        self, cache: msal.TokenCache | None = None, *, http_client: requests.Session | None = None
    ) -> Any:
        common: dict[str, Any] = {
            "authority": self.authority,
            "token_cache": cache,
            "http_client": http_client or self.http_session(),
            "instance_discovery": self.discovers_instance,
        }
        if self.client_secret is not None:
            return msal.ConfidentialClientApplication(
                self.client_id, client_credential=self.client_secret, **common
            )
        return msal.PublicClientApplication(self.client_id, **common)


class _PinnedVerifySession(requests.Session):
    """A requests session whose `verify` wins over `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE`.

    requests lets those variables replace a session's CA bundle on every request
    (`merge_environment_settings`), so a machine that sets them (many do, pointing at the
    system store) would silently stop trusting the bundle the caller chose. Proxy variables
    still apply.
    """

    def merge_environment_settings(
        self,
        url: str,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> dict[str, Any]:
        merged: dict[str, Any] = super().merge_environment_settings(
            url, proxies, stream, verify, cert
        )
        if verify is None or verify is True:
            merged["verify"] = self.verify
        return merged


@contextmanager
def _identity_provider_errors(authority: str) -> Iterator[None]:
    """An unreachable identity provider is a transient transport failure, not a crash."""
    try:
        yield
    except requests.RequestException as exc:
        raise TransportError(
            f"the identity provider at {authority} could not be reached: {type(exc).__name__}"
        ) from exc


class TokenProvider(Protocol):
    def token(self, *, force_refresh: bool) -> str: ...


def _error_text(result: Mapping[str, Any]) -> str:
    return str(result.get("error_description") or result.get("error") or "no token returned")


class ClientCredentials:
    """Application-user tokens; MSAL caches them in memory until they near expiry."""

    def __init__(self, config: MsalConfig, *, scope: str) -> None:
        if config.client_secret is None:
            raise ConfigurationError(
                "client credentials need MsalConfig.client_secret: add the app's secret"
            )
        self._config = config
        self._scope = scope
        self._app: Any = None
        self._session = config.http_session()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._session.close()

    def token(self, *, force_refresh: bool) -> str:
        with self._lock, _identity_provider_errors(self._config.authority):
            if self._app is None:
                self._app = self._config.build_app(http_client=self._session)
            if force_refresh:
                self._app.remove_tokens_for_client()
            result = self._app.acquire_token_for_client(scopes=[self._scope])
        if "access_token" not in result:
            error = str(result.get("error", ""))
            cls = (
                ReconnectRequiredError
                if error in {"invalid_client", "unauthorized_client"}
                else AuthenticationError
            )
            raise cls(f"client credentials rejected: {_error_text(result)}", code=error or None)
        return str(result["access_token"])


class DelegatedTokens:
    """A signed-in person's tokens, refreshed silently from a caller-supplied cache."""

    def __init__(
        self,
        config: MsalConfig,
        *,
        scopes: list[str],
        cache_state: str | None,
        account_id: str | None = None,
        on_cache_change: Callable[[str], None] | None = None,
    ) -> None:
        self._config = config
        self._scopes = scopes
        self._cache = msal.SerializableTokenCache()
        if cache_state:
            self._cache.deserialize(cache_state)
        self._account_id = account_id
        self._on_cache_change = on_cache_change
        self._app: Any = None
        self._session = config.http_session()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._session.close()

    def cache_state(self) -> str:
        return str(self._cache.serialize())

    def token(self, *, force_refresh: bool) -> str:
        with self._lock, _identity_provider_errors(self._config.authority):
            if self._app is None:
                self._app = self._config.build_app(self._cache, http_client=self._session)
            accounts = self._app.get_accounts()
            if self._account_id is not None:
                accounts = [a for a in accounts if a.get("home_account_id") == self._account_id]
            if not accounts:
                raise ReconnectRequiredError(
                    "no signed-in account in the token cache: sign in to Dynamics again"
                )
            result = self._app.acquire_token_silent_with_error(
                self._scopes, accounts[0], force_refresh=force_refresh
            )
            if self._cache.has_state_changed and self._on_cache_change is not None:
                self._on_cache_change(self.cache_state())
                self._cache.has_state_changed = False
        if not result or "access_token" not in result:
            error = str((result or {}).get("error", ""))
            raise ReconnectRequiredError(
                f"the sign-in can no longer be refreshed ({_error_text(result or {})}): "
                "sign in to Dynamics again",
                code=error or None,
            )
        return str(result["access_token"])


@dataclass(frozen=True)
class SignedIn:
    """The outcome of a completed authorization-code sign-in."""

    account_id: str
    username: str | None
    object_id: str | None
    tenant_id: str | None
    cache_state: str


class AuthCodeFlow:
    """Authorization code with PKCE: `start()` gives the URL to redirect to, `finish()` redeems."""

    def __init__(
        self,
        config: MsalConfig,
        *,
        scopes: list[str],
        redirect_uri: str,
        response_mode: Literal["query", "form_post"] = "query",
    ) -> None:
        self._config = config
        self._scopes = scopes
        self._redirect_uri = redirect_uri
        self._response_mode = response_mode

    def start(self, *, state: str | None = None, login_hint: str | None = None) -> dict[str, Any]:
        """The flow dict to keep server-side until the callback; `flow["auth_uri"]` is the URL.

        `response_mode="query"` (a GET callback, as in Microsoft's auth-code docs) is the
        default; MSAL warns about it and recommends `form_post` (RFC 9700 §4.3.1), which
        needs a callback that accepts POST. The warning is silenced here because the choice
        is deliberate and configurable, and the PKCE verifier already binds the code.
        """
        with self._config.http_session() as session, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="response_mode='form_post'")
            app = self._config.build_app(http_client=session)
            flow: dict[str, Any] = app.initiate_auth_code_flow(
                self._scopes,
                redirect_uri=self._redirect_uri,
                state=state,
                login_hint=login_hint,
                response_mode=self._response_mode,
            )
        return flow

    def finish(
        self,
        flow: Mapping[str, Any],
        auth_response: Mapping[str, str],
        *,
        cache_state: str | None = None,
    ) -> SignedIn:
        cache = msal.SerializableTokenCache()
        if cache_state:
            cache.deserialize(cache_state)
        with self._config.http_session() as session:
            app = self._config.build_app(cache, http_client=session)
            result = app.acquire_token_by_auth_code_flow(dict(flow), dict(auth_response))
            accounts = app.get_accounts()
        if "access_token" not in result:
            raise AuthenticationError(
                f"sign-in failed: {_error_text(result)}",
                code=str(result.get("error") or "") or None,
            )
        claims = result.get("id_token_claims") or {}
        account = next(
            (a for a in accounts if a.get("local_account_id") == claims.get("oid")),
            accounts[0] if accounts else None,
        )
        if account is None:
            raise AuthenticationError("sign-in returned no account: check the openid scope")
        return SignedIn(
            account_id=str(account["home_account_id"]),
            username=account.get("username") or claims.get("preferred_username"),
            object_id=claims.get("oid"),
            tenant_id=claims.get("tid"),
            cache_state=str(cache.serialize()),
        )


class StaticToken:
    """A fixed token (tests and scripts that already hold one); refresh is impossible."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self, *, force_refresh: bool) -> str:
        if force_refresh:
            raise ReconnectRequiredError("the fixed token was rejected and cannot be refreshed")
        return self._token


class MsalAuth(httpx.Auth):
    """Adds `Authorization: Bearer …`; on 401 refreshes once and resends once."""

    def __init__(self, tokens: TokenProvider) -> None:
        self.tokens = tokens

    def close(self) -> None:
        """Close the token provider's connections to the identity provider, if it has any."""
        close = getattr(self.tokens, "close", None)
        if callable(close):
            close()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.tokens.token(force_refresh=False)}"
        response = yield request
        if response.status_code != 401:
            return
        request.headers["Authorization"] = f"Bearer {self.tokens.token(force_refresh=True)}"
        yield request
