"""The OAuth round trip: start (→ identity provider) and callback (← code or error).

The MSAL flow dict holds the PKCE verifier and nonce; it never leaves the hub. It is kept
encrypted in `integration_oauth_attempts` under a random `state`, bound to the admin or user
who started it, for `ATTEMPT_TTL`. The callback deletes the row before redeeming the code, so
a state (and the code it vouches for) works once; a replayed or forged callback finds nothing.

Identity-provider errors become messages a person can act on: a tenant without consent to the
app (AADSTS65001 / `consent_required`) gets the admin-consent link to send to a Global admin.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gtmsync.connection import gateway
from gtmsync.connection.models import AttemptPurpose, OAuthAttempt
from gtmsync.dataverse import AuthCodeFlow, AuthenticationError, SignedIn, TransportError
from gtmsync.kit.clock import ensure_utc, utc_now
from gtmsync.kit.crypto import DecryptionError, SecretBox
from gtmsync.kit.errors import TransientError, UserError
from gtmsync.settings import Settings

ATTEMPT_TTL = timedelta(minutes=15)
CALLBACK_PATH = "/connection/callback"
_FLOW_PURPOSE = "dynamics-oauth-flow"


def redirect_uri(settings: Settings) -> str:
    """The redirect URI registered on the app: `<base URL>/connection/callback`."""
    return settings.base_url.rstrip("/") + CALLBACK_PATH


def _box(settings: Settings) -> SecretBox:
    return SecretBox(settings.resolved_secret_key(), purpose=_FLOW_PURPOSE)


def admin_consent_url(settings: Settings, *, org_url: str, authority: str) -> str:
    """The link a Dynamics admin sends to their Global admin to consent for the tenant."""
    client_id, _ = gateway.app_registration(settings, org_url)
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri(settings)})
    return f"{authority.rstrip('/')}/adminconsent?{query}"


class ConsentRequiredError(UserError):
    """The tenant has not consented to the app and this user cannot consent for it."""

    def __init__(self, consent_url: str) -> None:
        super().__init__(
            "Your Microsoft tenant has not consented to gtmsync yet, and the account you "
            "signed in with is not a Global admin, so it cannot consent for your organization.",
            field="consent",
            fix="Send this admin-consent link to your Microsoft Global admin; once they accept, "
            "connect again: " + consent_url,
        )
        self.consent_url = consent_url


class SignInError(UserError):
    """The identity provider refused or the round trip could not be completed."""


@dataclass(frozen=True)
class Completed:
    """A finished sign-in and what it was for."""

    purpose: AttemptPurpose
    org_id: uuid.UUID
    user_id: uuid.UUID
    org_url: str
    authority: str  # the tenant authority to refresh against
    signed_in: SignedIn
    notes: str | None = None  # shown with the outcome (e.g. "We removed '/main.aspx'…")


def _flow(settings: Settings, org_url: str, authority: str) -> AuthCodeFlow:
    config = gateway.msal_config(settings, org_url=org_url, authority=authority)
    return AuthCodeFlow(
        config, scopes=gateway.delegated_scopes(org_url), redirect_uri=redirect_uri(settings)
    )


def start(
    session: Session,
    settings: Settings,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    purpose: AttemptPurpose,
    org_url: str,
    login_hint: str | None = None,
    notes: list[str] | None = None,
) -> str:
    """Keep a new attempt server-side and return the identity provider's sign-in URL."""
    authority = gateway.sign_in_authority(settings, org_url)
    state = secrets.token_urlsafe(32)
    try:
        started: dict[str, Any] = _flow(settings, org_url, authority).start(
            state=state, login_hint=login_hint
        )
    except TransportError as exc:
        raise TransientError(
            f"The Microsoft sign-in service at {authority} could not be reached.",
            field="authority",
            fix="Check this hub's network access (and GTMSYNC_CA_BUNDLE for a private CA), "
            "then try again.",
        ) from exc
    now = utc_now()
    session.execute(delete(OAuthAttempt).where(OAuthAttempt.expires_at < now))
    session.add(
        OAuthAttempt(
            state=state,
            purpose=purpose,
            org_id=org_id,
            user_id=user_id,
            org_url=org_url,
            authority=authority,
            flow=_box(settings).encrypt(json.dumps(started)),
            expires_at=now + ATTEMPT_TTL,
            notes=" ".join(notes) if notes else None,
        )
    )
    session.flush()
    return str(started["auth_uri"])


def _take(session: Session, state: str | None, user_id: uuid.UUID) -> OAuthAttempt:
    """Find and consume the attempt: single use, only by whoever started it, not expired."""
    stale = SignInError(
        "This sign-in has expired or was already used.",
        field="state",
        fix="Start again: it must be finished within 15 minutes, in the browser that started it.",
    )
    if not state:
        raise stale
    attempt = session.scalars(select(OAuthAttempt).where(OAuthAttempt.state == state)).one_or_none()
    if attempt is None or attempt.user_id != user_id:
        raise stale
    session.delete(attempt)
    session.flush()
    if ensure_utc(attempt.expires_at) < utc_now():
        raise stale
    return attempt


def _refusal(settings: Settings, attempt: OAuthAttempt, params: Mapping[str, str]) -> UserError:
    error = params.get("error", "")
    description = params.get("error_description", "")
    if error == "consent_required" or "AADSTS65001" in description:
        return ConsentRequiredError(
            admin_consent_url(settings, org_url=attempt.org_url, authority=attempt.authority)
        )
    if "AADSTS65004" in description:
        return SignInError(
            "You declined the permissions gtmsync asked for, so Dynamics was not connected.",
            field="consent",
            fix="Connect again and click Accept on Microsoft's permissions page.",
        )
    first_line = description.split(" Trace ID:")[0].strip() or error
    return SignInError(
        f"Microsoft sign-in did not complete: {first_line}",
        field="sign_in",
        fix="Try again; if it keeps failing, send this message to your Microsoft admin.",
    )


def complete(
    session: Session, settings: Settings, *, user_id: uuid.UUID, params: Mapping[str, str]
) -> Completed:
    """Redeem the callback's code (or turn its error into a message) for the attempt's owner."""
    attempt = _take(session, params.get("state"), user_id)
    if "error" in params:
        raise _refusal(settings, attempt, params)
    if not params.get("code"):
        raise SignInError(
            "The sign-in reply had no authorization code.",
            field="code",
            fix="Start the connection again.",
        )
    try:
        flow = json.loads(_box(settings).decrypt(attempt.flow))
    except DecryptionError as exc:  # the hub's secret key changed in between
        raise SignInError(
            "This sign-in was started before the hub's secret key changed.",
            field="state",
            fix="Start the connection again.",
        ) from exc
    try:
        signed_in = _flow(settings, attempt.org_url, attempt.authority).finish(flow, dict(params))
    except AuthenticationError as exc:
        raise SignInError(
            "Microsoft did not accept the sign-in reply.",
            field="code",
            fix="Start the connection again (each sign-in link works once).",
        ) from exc
    except TransportError as exc:
        raise TransientError(
            "The Microsoft sign-in service could not be reached to finish signing in.",
            field="authority",
            fix="Try again in a moment.",
        ) from exc
    return Completed(
        purpose=attempt.purpose,
        org_id=attempt.org_id,
        user_id=attempt.user_id,
        org_url=attempt.org_url,
        authority=gateway.tenant_authority(attempt.authority, signed_in.tenant_id),
        signed_in=signed_in,
        notes=attempt.notes,
    )
