"""Request dependencies: the unit of work, who is asking, and what they may do.

Use the `Annotated` aliases in endpoint signatures:

    def page(db: SessionDep, user: CurrentUser, org: CurrentOrg) -> ...

`SessionDep` is one session per request inside `session_scope`, closed (committed or rolled
back) *before* the response is sent, so a client that gets a 2xx can rely on the write and
the next request sees it. FastAPI caches dependencies per request, so the auth lookup, the CSRF
check and the endpoint all share that one session and one lookup.

Every org-owned read goes through `user.org_id`; another org's rows are reported as not
found (404), never as forbidden, so IDs do not leak which orgs exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from gtmsync.db.unit_of_work import session_scope
from gtmsync.kit.errors import PermissionDeniedError
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import LoginSession, Org, User
from gtmsync.settings import Settings
from gtmsync.web.errors import CsrfError, NotAuthenticatedError
from gtmsync.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    PRESESSION_COOKIE,
    SAFE_METHODS,
    SESSION_COOKIE,
    CookieSigner,
    csrf_matches,
)


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_signer(request: Request) -> CookieSigner:
    signer: CookieSigner = request.app.state.signer
    return signer


def get_db(request: Request) -> Iterator[Session]:
    with session_scope(request.app.state.session_factory) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SignerDep = Annotated[CookieSigner, Depends(get_signer)]
SessionDep = Annotated[Session, Depends(get_db, scope="function")]

# Declared as security schemes so the OpenAPI document (and the docs' Authorize button) shows
# both ways in; neither raises by itself, `resolve_auth` decides.
_bearer_scheme = HTTPBearer(auto_error=False, description="A `gtm_…` API token from Settings.")
_cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The portal's session cookie; unsafe methods also need X-CSRF-Token.",
)


@dataclass(frozen=True)
class Viewer:
    """A detached snapshot of who is signed in, safe to render after the session has closed."""

    user_id: uuid.UUID
    name: str
    email: str
    is_admin: bool
    org_name: str


@dataclass(frozen=True)
class Auth:
    user: User
    via: Literal["session", "token"]
    login_session: LoginSession | None = None


def resolve_auth(
    request: Request,
    *,
    db: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
    cookie: Annotated[str | None, Depends(_cookie_scheme)],
) -> Auth | None:
    """Who sent this request: an API token if one is presented, else the session cookie.

    A presented but unknown or revoked token is an error rather than a fall-back to the
    cookie, so a script never silently acts as whoever is signed in in the browser.
    """
    auth: Auth | None = None
    if bearer is not None:
        user = platform_service.user_for_api_token(db, bearer.credentials)
        if user is None:
            raise NotAuthenticatedError(
                "The API token is unknown or has been revoked.",
                fix="Create a new token in Settings > API tokens.",
            )
        auth = Auth(user=user, via="token")
    elif (session_id := signer.session_id(cookie)) is not None:
        resolved = platform_service.resolve_session(
            db, session_id, max_age_seconds=settings.session_max_age_seconds
        )
        if resolved is not None:
            record, user = resolved
            auth = Auth(user=user, via="session", login_session=record)
            request.state.csrf_token = record.csrf_token
    if auth is not None:
        request.state.viewer = Viewer(
            user_id=auth.user.id,
            name=auth.user.name,
            email=auth.user.email,
            is_admin=auth.user.is_admin,
            org_name=auth.user.org.name,
        )
    return auth


AuthDep = Annotated[Auth | None, Depends(resolve_auth)]


def require_user(auth: AuthDep) -> User:
    if auth is None:
        raise NotAuthenticatedError()
    return auth.user


CurrentUser = Annotated[User, Depends(require_user)]


def require_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise PermissionDeniedError(
            "Only admins of your org can open this.",
            fix="Ask an admin of your org if you need access.",
        )
    return user


AdminUser = Annotated[User, Depends(require_admin)]


def current_org(user: CurrentUser, db: SessionDep) -> Org:
    return platform_service.get_org(db, user.org_id)


CurrentOrg = Annotated[Org, Depends(current_org)]


async def verify_portal_csrf(request: Request, auth: AuthDep, signer: SignerDep) -> None:
    """Every unsafe portal request carries the form token of the session (or pre-session)."""
    if request.method in SAFE_METHODS:
        return
    if auth is not None and auth.login_session is not None:
        expected: str | None = auth.login_session.csrf_token
    else:
        expected = signer.presession_token(request.cookies.get(PRESESSION_COOKIE))
    submitted: str | None = None
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    else:
        submitted = request.headers.get(CSRF_HEADER)
    if not csrf_matches(expected, submitted):
        raise CsrfError()


def verify_api_csrf(request: Request, auth: AuthDep) -> None:
    """Cookie-authenticated API writes need `X-CSRF-Token`; bearer tokens are not ambient."""
    if request.method in SAFE_METHODS or auth is None or auth.via != "session":
        return
    assert auth.login_session is not None
    if not csrf_matches(auth.login_session.csrf_token, request.headers.get(CSRF_HEADER)):
        raise CsrfError(header=True)
