"""Cookies, CSRF tokens and redirect targets: the browser-facing half of sign-in.

The session cookie carries only a random ID signed with the hub's secret; the row it names
(`LoginSession`, keyed by a SHA-256 of the ID) is the source of truth, so signing out or an
expired row ends the session whatever the browser still holds. The signature lets us reject
forged or tampered cookies before touching the database.

CSRF uses the synchroniser-token pattern: the session row holds a random token that every
form carries back in a hidden `csrf_token` field (API calls made with the session cookie send
it as `X-CSRF-Token`). Before sign-in there is no row, so the sign-in form uses a signed
double-submit cookie instead: https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from gtmsync.kit.crypto import tokens_equal
from gtmsync.settings import Settings

SESSION_COOKIE = "gtmsync_session"
PRESESSION_COOKIE = "gtmsync_presession"
FLASH_COOKIE = "gtmsync_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
DEFAULT_LANDING = "/search"

# A sign-in form left open longer than this must be reloaded.
PRESESSION_MAX_AGE_SECONDS = 2 * 3600
FLASH_MAX_AGE_SECONDS = 120

_SESSION_SALT = "gtmsync.web.session-cookie"
_PRESESSION_SALT = "gtmsync.web.presession-csrf"
_FLASH_SALT = "gtmsync.web.flash"


@dataclass(frozen=True)
class PresessionToken:
    raw: str  # goes into the form
    signed: str  # goes into the cookie


class CookieSigner:
    """Signs and checks every cookie the hub sets; each purpose has its own salt.

    Separate salts mean a value signed for one cookie can never be replayed as another
    (a flash message cannot pose as a session ID).
    """

    def __init__(self, secret_key: str) -> None:
        self._session = URLSafeTimedSerializer(secret_key, salt=_SESSION_SALT)
        self._presession = URLSafeTimedSerializer(secret_key, salt=_PRESESSION_SALT)
        self._flash = URLSafeTimedSerializer(secret_key, salt=_FLASH_SALT)

    def sign_session(self, session_id: str) -> str:
        return self._session.dumps(session_id)

    def session_id(self, cookie: str | None) -> str | None:
        """The session ID in a cookie, or None when it is missing, forged or tampered with.

        No max age here: the server-side row carries the (sliding) expiry.
        """
        return _loads_str(self._session, cookie, max_age=None)

    def new_presession(self) -> PresessionToken:
        raw = secrets.token_urlsafe(32)
        return PresessionToken(raw=raw, signed=self._presession.dumps(raw))

    def presession_token(self, cookie: str | None) -> str | None:
        return _loads_str(self._presession, cookie, max_age=PRESESSION_MAX_AGE_SECONDS)

    def sign_flash(self, message: str) -> str:
        return self._flash.dumps(message)

    def flash(self, cookie: str | None) -> str | None:
        return _loads_str(self._flash, cookie, max_age=FLASH_MAX_AGE_SECONDS)


def _loads_str(
    serializer: URLSafeTimedSerializer, value: str | None, *, max_age: int | None
) -> str | None:
    if not value:
        return None
    try:
        loaded = serializer.loads(value, max_age=max_age)
    except BadSignature:  # also covers SignatureExpired
        return None
    return loaded if isinstance(loaded, str) else None


def set_cookie(
    response: Response, name: str, value: str, settings: Settings, *, max_age: int | None = None
) -> None:
    """Every hub cookie: HttpOnly, SameSite=Lax, Path=/, Secure when served over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


def clear_cookie(response: Response, name: str, settings: Settings) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies
    )


def csrf_matches(expected: str | None, submitted: str | None) -> bool:
    """Constant-time, and never true when either side is missing."""
    if not expected or not submitted:
        return False
    return tokens_equal(expected, submitted)


def safe_next(value: str | None, default: str = DEFAULT_LANDING) -> str:
    """A same-site relative path to go to after sign-in, else `default` (no open redirect).

    Refuses absolute URLs, scheme-relative `//host` and `/\\host` (browsers read a backslash
    as a slash), and anything with control characters that could split a header.
    """
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value) or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value
