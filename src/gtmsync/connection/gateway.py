"""The one place that builds an org's `DataverseClient` (ARCHITECTURE.md: connection.gateway).

Export, import, search and writeback ask `client_for(session, org_id, user_id=...)` and get a
client that is authenticated as the right Dynamics identity:

- *Service Account*: the primary connected admin's delegated sign-in; callers impersonate the
  acting user's mapped Dynamics user with `client.with_caller(caller_for(...))`.
- *User Account*: the acting user's own sign-in (no impersonation).

It refuses, with a message a person can act on, when the integration is missing, toggled off,
needs reconnecting, or (user account) the user has not connected yet.

Token caches rotate on refresh. The new cache is written in its own short transaction, not the
caller's: a job that fails and rolls back must not take the rotated refresh token with it (the
identity provider may already have spent the old one). A refresh that fails is re-tried once
with the cache as stored now, because another worker may have rotated it first; only then is
the integration marked "reconnect needed" (also in its own transaction, so the mark sticks).
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import threading
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from gtmsync.connection import token_store
from gtmsync.connection.models import (
    ConnectionStatus,
    ExportPreference,
    Integration,
    UserConnection,
    UserMapping,
)
from gtmsync.dataverse import (
    DataverseClient,
    DelegatedTokens,
    MsalAuth,
    MsalConfig,
    ReconnectRequiredError,
    RequestInfo,
    ResponseInfo,
    org_scope,
)
from gtmsync.kit import metrics
from gtmsync.kit.errors import TerminalError, UserError
from gtmsync.settings import Mode, Settings, get_settings

log = logging.getLogger(__name__)

# The app registration that `gtmsync dataverse serve --seed` creates (kept equal to
# `gtmsync.dataverse_local.seed` by a test; this package may not import the local server).
LOCAL_APP_CLIENT_ID = "3d2c6a8e-5f0b-4c1e-9a7d-6b8e2f4a1c90"
LOCAL_APP_CLIENT_SECRET = "gtmsync-local-dev-secret-not-for-production"  # noqa: S105
_SQLITE_WAIT_MS = 2000
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/organizations"

CONNECTIONS_PAGE = "Admin Portal › Integrations › Connections"
USER_CONNECT_PAGE = "Settings › Integrations › Connect Dynamics"


class IntegrationUnavailableError(TerminalError):
    """Dynamics cannot be used right now, for a reason a person must fix (never retried)."""

    def __init__(self, message: str, *, reason: str, fix: str | None = None) -> None:
        super().__init__(message, field="integration", fix=fix)
        self.reason = reason  # not_connected | disabled | reconnect_needed | user_not_connected


def is_loopback(org_url: str) -> bool:
    host = urlsplit(org_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_org_allowed(settings: Settings) -> bool:
    return settings.mode in (Mode.DEVELOPMENT, Mode.DEMO)


def app_registration(settings: Settings, org_url: str) -> tuple[str, str | None]:
    """(client id, client secret) of the app that signs in to this org."""
    if settings.entra_client_id:
        secret = settings.entra_client_secret
        return settings.entra_client_id, secret.get_secret_value() if secret else None
    if is_loopback(org_url) and local_org_allowed(settings):
        return LOCAL_APP_CLIENT_ID, LOCAL_APP_CLIENT_SECRET
    raise UserError(
        "gtmsync has no Entra ID app registration configured.",
        field="GTMSYNC_ENTRA_CLIENT_ID",
        fix="Register an app in Entra ID (redirect URI <base URL>/connection/callback) and set "
        "GTMSYNC_ENTRA_CLIENT_ID and GTMSYNC_ENTRA_CLIENT_SECRET.",
    )


def sign_in_authority(settings: Settings, org_url: str) -> str:
    """Where to send the admin to sign in: the local server serves its own identity endpoints."""
    if (
        is_loopback(org_url)
        and local_org_allowed(settings)
        and settings.entra_authority == MICROSOFT_AUTHORITY
    ):
        parts = urlsplit(org_url)
        return f"https://{parts.netloc}/organizations"
    return settings.entra_authority


def tls_verify(settings: Settings) -> str | bool:
    """For MSAL (requests): a CA bundle path, or the system store."""
    return str(settings.ca_bundle) if settings.ca_bundle else True


def ssl_context(settings: Settings) -> ssl.SSLContext | bool:
    """For httpx, which wants an SSLContext rather than a path."""
    if settings.ca_bundle is None:
        return True
    return ssl.create_default_context(cafile=str(settings.ca_bundle))


def msal_config(settings: Settings, *, org_url: str, authority: str) -> MsalConfig:
    client_id, secret = app_registration(settings, org_url)
    return MsalConfig(
        client_id=client_id,
        authority=authority,
        client_secret=secret,
        verify=tls_verify(settings),
    )


def delegated_scopes(org_url: str) -> list[str]:
    return [org_scope(org_url, delegated=True)]


def get_integration(session: Session, org_id: uuid.UUID) -> Integration | None:
    return session.scalars(select(Integration).where(Integration.org_id == org_id)).one_or_none()


def require_integration(session: Session, org_id: uuid.UUID) -> Integration:
    integration = get_integration(session, org_id)
    if integration is None:
        raise IntegrationUnavailableError(
            "Dynamics 365 is not connected for your organization.",
            reason="not_connected",
            fix=f"An admin connects it under {CONNECTIONS_PAGE}.",
        )
    return integration


def ensure_usable(integration: Integration) -> None:
    """Raise the message to show when the integration is off or needs reconnecting."""
    if not integration.enabled:
        raise IntegrationUnavailableError(
            "The Dynamics 365 integration is turned off.",
            reason="disabled",
            fix=f"An admin turns it back on under {CONNECTIONS_PAGE} (settings were kept).",
        )
    ensure_signed_in(integration)


def ensure_signed_in(integration: Integration) -> None:
    """Raise "reconnect needed" when the stored sign-in can no longer be refreshed."""
    if integration.status == ConnectionStatus.RECONNECT_NEEDED:
        raise IntegrationUnavailableError(
            "Dynamics 365 needs to be reconnected: its sign-in has expired or was revoked.",
            reason="reconnect_needed",
            fix=f"An admin reconnects it under {CONNECTIONS_PAGE} (Settings › Change User).",
        )


def user_connection(
    session: Session, integration: Integration, user_id: uuid.UUID
) -> UserConnection | None:
    return session.scalars(
        select(UserConnection).where(
            UserConnection.integration_id == integration.id, UserConnection.user_id == user_id
        )
    ).one_or_none()


def caller_for(session: Session, org_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """The Entra object id to impersonate for this user's writes (service account only).

    None when the integration uses user accounts (the user's own token already is the user)
    or when the user is not mapped: their records then fall to the service account.
    """
    integration = get_integration(session, org_id)
    if integration is None or integration.export_preference != ExportPreference.SERVICE_ACCOUNT:
        return None
    mapping = session.scalars(
        select(UserMapping).where(
            UserMapping.integration_id == integration.id, UserMapping.user_id == user_id
        )
    ).one_or_none()
    if mapping is None or mapping.systemuser_id is None:
        return None
    return mapping.entra_object_id


def mapped_systemuser(session: Session, org_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID | None:
    """The Dynamics systemuserid a platform user is mapped to (owner filters, My Target
    Accounts); in user-account mode, the systemuser the user connected as."""
    integration = get_integration(session, org_id)
    if integration is None:
        return None
    if integration.export_preference == ExportPreference.USER_ACCOUNT:
        connection = user_connection(session, integration, user_id)
        if connection is not None and connection.systemuser_id is not None:
            return connection.systemuser_id
    mapping = session.scalars(
        select(UserMapping).where(
            UserMapping.integration_id == integration.id, UserMapping.user_id == user_id
        )
    ).one_or_none()
    return mapping.systemuser_id if mapping is not None else None


class _StoredTokens:
    """A `TokenProvider` over a token cache kept encrypted in one row of the hub database.

    It starts from the caller's row (which may not be committed yet: a connection being
    recorded uses its client at once) and writes rotations in an independent transaction,
    falling back to the caller's when the row is not visible outside it yet.
    """

    def __init__(
        self,
        session: Session,
        settings: Settings,
        config: MsalConfig,
        *,
        row: Integration | UserConnection,
        scopes: list[str],
    ) -> None:
        self._caller = session
        self._bind = session.get_bind()
        self._settings = settings
        self._config = config
        self._model: type[Integration] | type[UserConnection] = type(row)
        self._row_id = row.id
        self._scopes = scopes
        self._lock = threading.Lock()
        # The caller's session and (in a test's shared-connection setup) its connection
        # belong to the thread that built this provider. Requests may come from another
        # thread (the import's page prefetch): writes from there never touch the caller's
        # session; what cannot be written independently waits in `_pending` for this thread.
        self._owner_thread = threading.get_ident()
        self._pending: dict[str, object] = {}
        self._account_id = row.account_id
        self._sealed = row.token_cache
        self._tokens = self._build(self._sealed)

    def _session(self) -> Session:
        return Session(bind=self._bind, join_transaction_mode="create_savepoint")

    def _row(self, session: Session) -> Integration | UserConnection | None:
        if self._model is Integration:
            return session.get(Integration, self._row_id)
        return session.get(UserConnection, self._row_id)

    def _foreign_thread(self) -> bool:
        return threading.get_ident() != self._owner_thread

    def _load(self) -> str | None:
        """The cache as stored now (another worker may have rotated it)."""
        if self._foreign_thread() and not isinstance(self._bind, Engine):
            return self._sealed
        with self._session() as session:
            row = self._row(session)
            if row is not None:
                return row.token_cache
        return self._sealed

    def _build(self, sealed: str | None) -> DelegatedTokens:
        return DelegatedTokens(
            self._config,
            scopes=self._scopes,
            cache_state=token_store.unseal(self._settings, sealed) if sealed else None,
            account_id=self._account_id,
            on_cache_change=self._persist,
        )

    def _write(self, **values: object) -> None:
        if self._foreign_thread():
            if not isinstance(self._bind, Engine):  # the caller's own connection: not ours
                self._pending.update(values)
                return
        elif self._pending:
            values = {**self._pending, **values}
            self._pending.clear()
        with self._session() as session:
            sqlite = session.get_bind().dialect.name == "sqlite"
            if sqlite:  # fail fast when this very process holds the lock (see below)
                session.connection().exec_driver_sql(f"PRAGMA busy_timeout={_SQLITE_WAIT_MS}")
            try:
                row = self._row(session)
                if row is not None:
                    for key, value in values.items():
                        setattr(row, key, value)
                    session.commit()
            except OperationalError:
                session.rollback()
                row = None
            finally:
                if sqlite:
                    session.connection().exec_driver_sql("PRAGMA busy_timeout=30000")
        if row is not None:
            return
        if self._foreign_thread():  # the caller's session is busy in its own thread
            self._pending.update(values)
            log.info("token rotation kept for the caller's thread to save")
            return
        # The row is not committed yet, or (SQLite) the caller's transaction holds the write
        # lock: the caller's transaction is then the only way in, and the value lands with it.
        caller_row = self._row(self._caller)
        if caller_row is not None:
            for key, value in values.items():
                setattr(caller_row, key, value)
            self._caller.flush()

    def _persist(self, cache_state: str) -> None:
        sealed = token_store.seal(self._settings, cache_state)
        self._sealed = sealed
        self._write(token_cache=sealed)

    def token(self, *, force_refresh: bool) -> str:
        with self._lock:
            try:
                return self._tokens.token(force_refresh=force_refresh)
            except ReconnectRequiredError as first:
                stored = self._load()
                if stored and stored != self._sealed:  # another process rotated it first
                    self._sealed = stored
                    self._tokens.close()
                    self._tokens = self._build(stored)
                    try:
                        return self._tokens.token(force_refresh=force_refresh)
                    except ReconnectRequiredError as second:
                        self._mark_reconnect(second)
                        raise
                self._mark_reconnect(first)
                raise

    def _mark_reconnect(self, error: ReconnectRequiredError) -> None:
        log.warning(
            "Dynamics sign-in can no longer be refreshed; marked reconnect needed",
            extra={"extra_fields": {"row": str(self._row_id), "code": error.code}},
        )
        self._write(status=ConnectionStatus.RECONNECT_NEEDED, status_detail=str(error))

    def close(self) -> None:
        if self._pending and not self._foreign_thread():
            self._write()  # what a prefetch thread's refresh could not save itself
        self._tokens.close()


def _metered(org_id: uuid.UUID) -> Callable[[ResponseInfo], None]:
    """The `on_response` hook of an org's clients: API calls by status, 429s, retries, latency.

    Labelled by the hub's org id (one series per customer), never by host or URL.
    """
    org = str(org_id)

    def observe(response: ResponseInfo) -> None:
        status = "error" if response.status is None else str(response.status)
        metrics.DATAVERSE_REQUESTS.labels(org=org, status=status).inc()
        metrics.DATAVERSE_REQUEST_SECONDS.labels(org=org).observe(response.elapsed)
        if response.status == 429:  # HTTP Too Many Requests: service protection
            metrics.DATAVERSE_THROTTLED.labels(org=org).inc()
        if response.request.attempt > 1:
            metrics.DATAVERSE_RETRIES.labels(org=org).inc()

    return observe


def client_for(
    session: Session,
    org_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    settings: Settings | None = None,
    on_request: Callable[[RequestInfo], None] | None = None,
    require_enabled: bool = True,
) -> DataverseClient:
    """A client for the org, authenticated as the service account or as `user_id` (user mode).

    The caller owns the client: use it as a context manager. Service-account callers that
    write on behalf of a user wrap it with `client.with_caller(caller_for(...))`.
    """
    settings = settings or get_settings()
    integration = require_integration(session, org_id)
    if require_enabled:
        ensure_usable(integration)
    row: Integration | UserConnection = integration
    if integration.export_preference == ExportPreference.USER_ACCOUNT and user_id is not None:
        connection = user_connection(session, integration, user_id)
        if connection is None or connection.token_cache is None:
            raise IntegrationUnavailableError(
                "You have not connected your Dynamics 365 account yet.",
                reason="user_not_connected",
                fix=f"Connect it under {USER_CONNECT_PAGE}, then try again.",
            )
        if connection.status == ConnectionStatus.RECONNECT_NEEDED:
            raise IntegrationUnavailableError(
                "Your Dynamics 365 sign-in has expired or was revoked.",
                reason="reconnect_needed",
                fix=f"Connect again under {USER_CONNECT_PAGE}.",
            )
        row = connection
    elif integration.token_cache is None:
        raise IntegrationUnavailableError(
            "Dynamics 365 has no stored sign-in for your organization.",
            reason="reconnect_needed",
            fix=f"An admin reconnects it under {CONNECTIONS_PAGE}.",
        )
    config = msal_config(settings, org_url=integration.org_url, authority=integration.authority)
    tokens = _StoredTokens(
        session,
        settings,
        config,
        row=row,
        scopes=delegated_scopes(integration.org_url),
    )
    return DataverseClient(
        integration.org_url,
        auth=MsalAuth(tokens),
        on_request=on_request,
        on_response=_metered(org_id),
        verify=ssl_context(settings),
    )


def tenant_authority(sign_in_authority_url: str, tenant_id: str | None) -> str:
    """`https://<authority host>/<tid>`: where a sign-in's refresh tokens are redeemed.

    The sign-in goes to `/organizations` (any work account); refreshes name the tenant the
    account signed in to, as Entra ID expects for a multi-tenant app.
    """
    parts = urlsplit(sign_in_authority_url)
    if not tenant_id:
        return sign_in_authority_url
    return f"https://{parts.netloc}/{tenant_id}"


def client_for_sign_in(
    settings: Settings,
    *,
    org_url: str,
    authority: str,
    cache_state: str,
    account_id: str,
    on_cache_change: Callable[[str], None] | None = None,
) -> DataverseClient:
    """A client on a sign-in that is not stored yet (checks run before it is accepted)."""
    config = msal_config(settings, org_url=org_url, authority=authority)
    tokens = DelegatedTokens(
        config,
        scopes=delegated_scopes(org_url),
        cache_state=cache_state,
        account_id=account_id,
        on_cache_change=on_cache_change,
    )
    return DataverseClient(org_url, auth=MsalAuth(tokens), verify=ssl_context(settings))
