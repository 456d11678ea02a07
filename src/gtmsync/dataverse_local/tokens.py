"""Signed JWTs the local identity provider issues and the Web API verifies.

Access tokens look like Entra ID's v1 tokens for Dynamics: RS256, `aud` = the org URL the
client asked for in its scope, `iss` = the tenant's issuer, `oid`/`tid`/`appid`, `scp`
(`user_impersonation`) for delegated tokens and `idtyp: app` for client credentials. The
signing key is generated once per data directory, so tokens survive a restart of the
server just as they survive a restart of a real tenant's front end. ID tokens carry the
`nonce` from the authorize request: MSAL's auth-code flow compares it with its own hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_ACCESS_TOKEN_SECONDS = 3599
DELEGATED_SCOPE = "user_impersonation"


def load_or_create_signing_key(directory: Path | None) -> rsa.RSAPrivateKey:
    """The RSA key of this data directory (in memory only when `directory` is None)."""
    if directory is not None:
        path = directory / "signing-key.pem"
        if path.is_file():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{path} holds a non-RSA key; delete it to generate a new one")
            return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(directory / "signing-key.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return key


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class AccessClaims:
    """The verified claims of an access token, as the Web API needs them."""

    object_id: str
    tenant_id: str
    app_id: str
    audience: str
    issued_at: float
    expires_at: int
    scopes: tuple[str, ...]
    is_app: bool
    raw: dict[str, Any] = field(default_factory=dict)


class TokenError(Exception):
    """A bearer token the Web API refuses; `expired` selects Dataverse's wording."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class TokenIssuer:
    """Signs and verifies the tenant's tokens with one persistent RSA key."""

    def __init__(
        self,
        key: rsa.RSAPrivateKey,
        *,
        access_token_seconds: int = DEFAULT_ACCESS_TOKEN_SECONDS,
    ) -> None:
        self._key = key
        self._public = key.public_key()
        der = self._public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = (
            base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:20]).decode().rstrip("=")
        )
        self.access_token_seconds = access_token_seconds
        # Tokens issued before this instant are refused as expired (the token-expiry fault).
        self.not_before: float = 0.0

    def jwks(self) -> dict[str, Any]:
        numbers = self._public.public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": self.key_id,
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.key_id, "typ": "JWT"}
        )

    def access_token(
        self,
        *,
        issuer: str,
        audience: str,
        tenant_id: str,
        object_id: str,
        app_id: str,
        scopes: tuple[str, ...] = (),
        upn: str | None = None,
        name: str | None = None,
        now: float | None = None,
    ) -> tuple[str, int]:
        """A signed access token and its lifetime in seconds.

        Delegated tokens (`scopes` given) carry `scp` and the user's names; app tokens carry
        `idtyp: app` and no `scp`, as Entra ID issues them for client credentials.
        """
        issued = time.time() if now is None else now
        lifetime = self.access_token_seconds
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer,
            "iat": int(issued),
            "nbf": int(issued),
            "exp": int(issued) + lifetime,
            "xms_iat_ms": int(issued * 1000),
            "oid": object_id,
            "sub": object_id,
            "tid": tenant_id,
            "appid": app_id,
            "azp": app_id,
            "appidacr": "1",
            "uti": uuid.uuid4().hex,
            "ver": "1.0",
        }
        if scopes:
            claims["scp"] = " ".join(scopes)
            claims["idtyp"] = "user"
            if upn:
                claims["upn"] = upn
                claims["unique_name"] = upn
            if name:
                claims["name"] = name
        else:
            claims["idtyp"] = "app"
        return self._sign(claims), lifetime

    def id_token(
        self,
        *,
        issuer: str,
        client_id: str,
        tenant_id: str,
        object_id: str,
        upn: str,
        name: str,
        nonce: str | None,
        now: float | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": issuer,
            "iat": issued,
            "nbf": issued,
            "exp": issued + 3600,
            "auth_time": issued,
            "oid": object_id,
            "sub": object_id,
            "tid": tenant_id,
            "preferred_username": upn,
            "name": name,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def verify(self, token: str, *, audiences: set[str], now: float | None = None) -> AccessClaims:
        """Check signature, audience and lifetime; raise `TokenError` saying what failed."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(f"Bearer token is not valid: {exc}") from exc
        current = time.time() if now is None else now
        audience = str(claims.get("aud", "")).rstrip("/")
        if audience not in {a.rstrip("/") for a in audiences}:
            raise TokenError(f"Bearer token audience '{claims.get('aud')}' is not this org")
        issued_ms = claims.get("xms_iat_ms", int(claims.get("iat", 0)) * 1000)
        if int(claims.get("exp", 0)) <= current or issued_ms < int(self.not_before * 1000):
            raise TokenError("Bearer token has expired", expired=True)
        scopes = tuple(str(claims.get("scp", "")).split())
        return AccessClaims(
            object_id=str(claims.get("oid", "")),
            tenant_id=str(claims.get("tid", "")),
            app_id=str(claims.get("appid", "")),
            audience=audience,
            issued_at=issued_ms / 1000,
            expires_at=int(claims["exp"]),
            scopes=scopes,
            is_app=claims.get("idtyp") == "app",
            raw=claims,
        )


def client_info(object_id: str, tenant_id: str) -> str:
    """Entra's `client_info` response value: MSAL keys its account cache on it."""
    payload = json.dumps({"uid": object_id, "utid": tenant_id}).encode()
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
