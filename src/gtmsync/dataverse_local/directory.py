"""The Entra ID side of the local tenant: users, app registrations, consents and grants.

Kept in its own tables (`idp_*`, a MetaData of its own) on the store's engine, so the
directory persists with the Dataverse data of the same data directory yet never mixes
with the Dataverse tables the Web API serves. The Dataverse side knows users only as
`systemuser` rows linked by `azureactivedirectoryobjectid`, exactly as in a real tenant.

Consent model (a documented simplification of Entra ID's):
- an app registration either `requires_admin_consent` for Dynamics' `user_impersonation`
  scope (the default for multi-tenant apps, which come from another tenant) or lets each
  user consent for themselves;
- a global admin may consent for the whole tenant (a tenant-wide grant); otherwise a
  user's consent covers that user only.

Authorization codes live 10 minutes and redeem once; refresh tokens rotate on every use
(the old one stops working) and can be revoked per user and/or app.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

CODE_SECONDS = 600
REFRESH_TOKEN_SECONDS = 90 * 24 * 3600

metadata = MetaData()

tenant_table = Table(
    "idp_tenant",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("domain", String(200), nullable=False),
    Column("display_name", String(200), nullable=False),
)
users_table = Table(
    "idp_users",
    metadata,
    Column("object_id", String(36), primary_key=True),
    Column("upn", String(320), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("is_global_admin", Boolean, nullable=False, default=False),
    Column("enabled", Boolean, nullable=False, default=True),
)
apps_table = Table(
    "idp_apps",
    metadata,
    Column("client_id", String(36), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=True),
    Column("redirect_uris", Text, nullable=False, default="[]"),
    Column("multi_tenant", Boolean, nullable=False, default=False),
    Column("requires_admin_consent", Boolean, nullable=False, default=False),
    Column("service_principal_id", String(36), nullable=False),
)
consents_table = Table(
    "idp_consents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(36), nullable=False, index=True),
    # NULL object id = a tenant-wide grant given by a global admin.
    Column("object_id", String(36), nullable=True),
    Column("granted_by", String(36), nullable=False),
    Column("granted_at", Float, nullable=False),
)
codes_table = Table(
    "idp_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(36), nullable=False),
    Column("object_id", String(36), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(200), nullable=True),
    Column("code_challenge_method", String(10), nullable=True),
    Column("nonce", String(200), nullable=True),
    Column("expires_at", Float, nullable=False),
    Column("used", Boolean, nullable=False, default=False),
)
refresh_table = Table(
    "idp_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("client_id", String(36), nullable=False, index=True),
    Column("object_id", String(36), nullable=False, index=True),
    Column("scope", Text, nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("status", String(10), nullable=False, default="active"),  # active|rotated|revoked
)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    domain: str
    display_name: str


@dataclass(frozen=True)
class EntraUser:
    object_id: str
    upn: str
    display_name: str
    is_global_admin: bool
    enabled: bool


@dataclass(frozen=True)
class AppRegistration:
    client_id: str
    display_name: str
    redirect_uris: tuple[str, ...]
    multi_tenant: bool
    requires_admin_consent: bool
    service_principal_id: str
    is_confidential: bool


@dataclass(frozen=True)
class Grant:
    """What a redeemed code or refresh token entitles its holder to."""

    client_id: str
    object_id: str
    scope: tuple[str, ...]
    nonce: str | None = None


class GrantError(Exception):
    """An OAuth error the token endpoint answers as `{"error", "error_description", …}`."""

    def __init__(self, error: str, aadsts: int, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.aadsts = aadsts
        self.description = description
        self.status = status


class Directory:
    """The tenant's identities on `engine`; every method is its own short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    def tenant(self, *, default_id: str | None = None, domain: str = "contoso.local") -> Tenant:
        """The one tenant of this directory, created on first call (with `default_id` if given)."""
        with self.engine.begin() as conn:
            row = conn.execute(select(tenant_table)).mappings().first()
            if row is None:
                tenant_id = default_id or str(uuid.uuid4())
                conn.execute(
                    insert(tenant_table).values(
                        tenant_id=tenant_id, domain=domain, display_name="Contoso (local)"
                    )
                )
                return Tenant(tenant_id, domain, "Contoso (local)")
        return Tenant(row["tenant_id"], row["domain"], row["display_name"])

    # users ---------------------------------------------------------------------------

    def add_user(
        self,
        display_name: str,
        upn: str,
        *,
        object_id: str | None = None,
        global_admin: bool = False,
        enabled: bool = True,
    ) -> EntraUser:
        """Create a user, or return the existing one with this UPN (seeding is idempotent)."""
        existing = self.user_by_upn(upn)
        if existing is not None:
            return existing
        user = EntraUser(
            object_id=object_id or str(uuid.uuid4()),
            upn=upn,
            display_name=display_name,
            is_global_admin=global_admin,
            enabled=enabled,
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert(users_table).values(
                    object_id=user.object_id,
                    upn=upn,
                    display_name=display_name,
                    is_global_admin=global_admin,
                    enabled=enabled,
                )
            )
        return user

    def set_user_enabled(self, object_id: str, enabled: bool) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(users_table)
                .where(users_table.c.object_id == object_id)
                .values(enabled=enabled)
            )

    def users(self, *, enabled_only: bool = False) -> list[EntraUser]:
        query = select(users_table).order_by(users_table.c.display_name)
        if enabled_only:
            query = query.where(users_table.c.enabled.is_(True))
        with self.engine.connect() as conn:
            return [_user(row) for row in conn.execute(query).mappings()]

    def user(self, object_id: str) -> EntraUser | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(users_table).where(users_table.c.object_id == object_id))
                .mappings()
                .first()
            )
        return None if row is None else _user(row)

    def user_by_upn(self, upn: str) -> EntraUser | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(users_table).where(users_table.c.upn == upn)).mappings().first()
            )
        return None if row is None else _user(row)

    # app registrations ---------------------------------------------------------------

    def register_app(
        self,
        display_name: str,
        *,
        client_id: str | None = None,
        secret: str | None = None,
        confidential: bool = True,
        redirect_uris: Iterable[str] = (),
        multi_tenant: bool = False,
        requires_admin_consent: bool | None = None,
    ) -> tuple[AppRegistration, str | None]:
        """Register an app; returns it with its client secret (generated unless given).

        Re-registering an existing client id returns it unchanged and no secret, so seeding
        twice keeps the secret printed the first time.
        """
        if client_id is not None:
            existing = self.app(client_id)
            if existing is not None:
                return existing, None
        plain = (secret or secrets.token_urlsafe(30)) if confidential else None
        needs_admin = multi_tenant if requires_admin_consent is None else requires_admin_consent
        app = AppRegistration(
            client_id=client_id or str(uuid.uuid4()),
            display_name=display_name,
            redirect_uris=tuple(redirect_uris),
            multi_tenant=multi_tenant,
            requires_admin_consent=needs_admin,
            service_principal_id=str(uuid.uuid4()),
            is_confidential=plain is not None,
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert(apps_table).values(
                    client_id=app.client_id,
                    display_name=display_name,
                    secret_hash=None if plain is None else _hash(plain),
                    redirect_uris=json.dumps(list(app.redirect_uris)),
                    multi_tenant=multi_tenant,
                    requires_admin_consent=needs_admin,
                    service_principal_id=app.service_principal_id,
                )
            )
        return app, plain

    def add_redirect_uri(self, client_id: str, redirect_uri: str) -> None:
        app = self.app(client_id)
        if app is None:
            raise KeyError(client_id)
        uris = [*app.redirect_uris, redirect_uri]
        with self.engine.begin() as conn:
            conn.execute(
                update(apps_table)
                .where(apps_table.c.client_id == client_id)
                .values(redirect_uris=json.dumps(uris))
            )

    def app(self, client_id: str) -> AppRegistration | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(apps_table).where(apps_table.c.client_id == client_id))
                .mappings()
                .first()
            )
        if row is None:
            return None
        return AppRegistration(
            client_id=row["client_id"],
            display_name=row["display_name"],
            redirect_uris=tuple(json.loads(row["redirect_uris"])),
            multi_tenant=bool(row["multi_tenant"]),
            requires_admin_consent=bool(row["requires_admin_consent"]),
            service_principal_id=row["service_principal_id"],
            is_confidential=row["secret_hash"] is not None,
        )

    def verify_secret(self, client_id: str, secret: str) -> bool:
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(apps_table.c.secret_hash).where(apps_table.c.client_id == client_id)
            ).scalar()
        return stored is not None and hmac.compare_digest(stored, _hash(secret))

    # consent -------------------------------------------------------------------------

    def grant_consent(self, client_id: str, *, granted_by: str, tenant_wide: bool) -> None:
        """Record consent for `granted_by` alone, or for everyone when `tenant_wide`."""
        if self.has_consent(client_id, granted_by) and not tenant_wide:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(consents_table).values(
                    id=str(uuid.uuid4()),
                    client_id=client_id,
                    object_id=None if tenant_wide else granted_by,
                    granted_by=granted_by,
                    granted_at=time.time(),
                )
            )

    def has_tenant_consent(self, client_id: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(consents_table.c.id).where(
                    consents_table.c.client_id == client_id, consents_table.c.object_id.is_(None)
                )
            ).first()
        return found is not None

    def has_consent(self, client_id: str, object_id: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(consents_table.c.id).where(
                    consents_table.c.client_id == client_id,
                    (consents_table.c.object_id.is_(None))
                    | (consents_table.c.object_id == object_id),
                )
            ).first()
        return found is not None

    def revoke_consents(self, client_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(consents_table).where(consents_table.c.client_id == client_id))

    # authorization codes -------------------------------------------------------------

    def create_code(
        self,
        *,
        client_id: str,
        object_id: str,
        redirect_uri: str,
        scope: tuple[str, ...],
        code_challenge: str | None,
        code_challenge_method: str | None,
        nonce: str | None,
    ) -> str:
        code = secrets.token_urlsafe(48)
        with self.engine.begin() as conn:
            conn.execute(
                insert(codes_table).values(
                    code_hash=_hash(code),
                    client_id=client_id,
                    object_id=object_id,
                    redirect_uri=redirect_uri,
                    scope=" ".join(scope),
                    code_challenge=code_challenge,
                    code_challenge_method=code_challenge_method,
                    nonce=nonce,
                    expires_at=time.time() + CODE_SECONDS,
                    used=False,
                )
            )
        return code

    def redeem_code(
        self, code: str, *, client_id: str, redirect_uri: str, code_verifier: str | None
    ) -> Grant:
        """Redeem a code once, checking client, redirect URI and PKCE (RFC 7636)."""
        with self.engine.begin() as conn:
            row = (
                conn.execute(select(codes_table).where(codes_table.c.code_hash == _hash(code)))
                .mappings()
                .first()
            )
            if row is None:
                raise GrantError(
                    "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
                )
            if row["used"]:
                raise GrantError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, "
                    "please retry with a new valid code or use an existing refresh token.",
                )
            conn.execute(
                update(codes_table)
                .where(codes_table.c.code_hash == row["code_hash"])
                .values(used=True)
            )
        if row["expires_at"] < time.time():
            raise GrantError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has "
                "expired due to inactivity. Send a new interactive authorization request for "
                "this user and resource.",
            )
        if row["client_id"] != client_id:
            raise GrantError(
                "invalid_grant",
                70002,
                "The provided authorization code was issued to a different client.",
            )
        if row["redirect_uri"] != redirect_uri:
            raise GrantError(
                "invalid_grant",
                500117,
                "The reply uri specified in the request does not match "
                "the reply uri used to request the authorization code.",
            )
        challenge = row["code_challenge"]
        if challenge:
            if not code_verifier:
                raise GrantError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge "
                    "supplied in the authorization request.",
                )
            method = (row["code_challenge_method"] or "plain").upper()
            expected = pkce_s256(code_verifier) if method == "S256" else code_verifier
            if not hmac.compare_digest(expected, challenge):
                raise GrantError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge "
                    "supplied in the authorization request.",
                )
        return Grant(
            client_id=row["client_id"],
            object_id=row["object_id"],
            scope=tuple(row["scope"].split()),
            nonce=row["nonce"],
        )

    # refresh tokens ------------------------------------------------------------------

    def issue_refresh_token(self, grant: Grant) -> str:
        token = "0.local." + secrets.token_urlsafe(64)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                insert(refresh_table).values(
                    token_hash=_hash(token),
                    client_id=grant.client_id,
                    object_id=grant.object_id,
                    scope=" ".join(grant.scope),
                    issued_at=now,
                    expires_at=now + REFRESH_TOKEN_SECONDS,
                    status="active",
                )
            )
        return token

    def redeem_refresh_token(self, token: str, *, client_id: str) -> Grant:
        """Spend a refresh token (it rotates: the caller issues the next one)."""
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    select(refresh_table).where(refresh_table.c.token_hash == _hash(token))
                )
                .mappings()
                .first()
            )
            if row is None or row["status"] == "rotated":
                raise GrantError(
                    "invalid_grant",
                    70000,
                    "The provided value for the 'refresh_token' is not "
                    "valid. The grant is invalid or malformed.",
                )
            if row["status"] == "revoked":
                raise GrantError(
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being "
                    "revoked, a fresh auth token is needed. The user might have changed or reset "
                    "their password.",
                )
            if row["expires_at"] < time.time():
                raise GrantError(
                    "invalid_grant", 700082, "The refresh token has expired due to inactivity."
                )
            if row["client_id"] != client_id:
                raise GrantError(
                    "invalid_grant", 70000, "The refresh token was issued to a different client."
                )
            conn.execute(
                update(refresh_table)
                .where(refresh_table.c.token_hash == row["token_hash"])
                .values(status="rotated")
            )
        return Grant(
            client_id=client_id, object_id=row["object_id"], scope=tuple(row["scope"].split())
        )

    def revoke_refresh_tokens(
        self, *, object_id: str | None = None, client_id: str | None = None
    ) -> int:
        """Revoke every active refresh token of a user and/or app; returns how many."""
        query = update(refresh_table).where(refresh_table.c.status == "active")
        if object_id is not None:
            query = query.where(refresh_table.c.object_id == object_id)
        if client_id is not None:
            query = query.where(refresh_table.c.client_id == client_id)
        with self.engine.begin() as conn:
            return conn.execute(query.values(status="revoked")).rowcount


def pkce_s256(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _user(row: RowMapping) -> EntraUser:
    return EntraUser(
        object_id=row["object_id"],
        upn=row["upn"],
        display_name=row["display_name"],
        is_global_admin=bool(row["is_global_admin"]),
        enabled=bool(row["enabled"]),
    )
