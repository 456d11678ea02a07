"""Orgs, users, sign-in sessions and API tokens.

Passwords are argon2id hashes. Sessions and API tokens are random strings of which only a
SHA-256 is stored: a database dump never yields something that signs a person in.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from gtmsync.kit.clock import utc_now
from gtmsync.kit.crypto import hash_token
from gtmsync.kit.errors import ConflictError, NotFoundError, UserError
from gtmsync.platform.models import ApiToken, Company, LoginSession, Org, Role, User
from gtmsync.platform.repository import (
    ApiTokenRepository,
    CompanyRepository,
    ContactRepository,
    LoginSessionRepository,
    OrgRepository,
    UserRepository,
)

_hasher = PasswordHasher()
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
API_TOKEN_PREFIX = "gtm_"  # noqa: S105 - a prefix, not a secret
# A constant hash so an unknown email costs as much time as a wrong password (no user probing).
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def normalise_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL_RE.match(value):
        raise UserError(
            f"'{email}' is not an email address.",
            field="email",
            fix="Use the form name@example.com.",
        )
    return value


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise UserError(
            "The password is too short.", field="password", fix="Use at least 8 characters."
        )
    return _hasher.hash(password)


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "org"


def create_org(session: Session, *, name: str, slug: str | None = None) -> Org:
    repo = OrgRepository.from_session(session)
    slug = slug or _slugify(name)
    if repo.get_by_slug(slug) is not None:
        raise ConflictError(f"An org with slug '{slug}' already exists.", field="slug")
    return repo.create(Org(name=name, slug=slug), flush=True)


def get_org(session: Session, org_id: uuid.UUID) -> Org:
    org = OrgRepository.from_session(session).get(org_id)
    if org is None:
        raise NotFoundError("Org not found.")
    return org


def get_org_by_slug(session: Session, slug: str) -> Org | None:
    return OrgRepository.from_session(session).get_by_slug(slug)


def create_user(
    session: Session,
    *,
    org: Org,
    email: str,
    name: str,
    password: str,
    role: Role = Role.USER,
) -> User:
    repo = UserRepository.from_session(session)
    address = normalise_email(email)
    if repo.get_by_email(org.id, address) is not None:
        raise ConflictError(
            f"A user with email {address} already exists in this org.",
            field="email",
            fix="Use another email address.",
        )
    user = User(
        org_id=org.id,
        email=address,
        name=name.strip(),
        role=role,
        password_hash=hash_password(password),
    )
    return repo.create(user, flush=True)


def list_users(session: Session, org_id: uuid.UUID) -> Sequence[User]:
    return UserRepository.from_session(session).list_for_org(org_id)


def get_user(session: Session, org_id: uuid.UUID, user_id: uuid.UUID) -> User:
    """A user of this org; another org's user is reported as not found, never as forbidden."""
    user = UserRepository.from_session(session).get_in_org(org_id, user_id)
    if user is None:
        raise NotFoundError("User not found.")
    return user


def authenticate(
    session: Session, *, email: str, password: str, org_slug: str | None = None
) -> User:
    """Check a password; the same message for an unknown email and a wrong password."""
    failure = UserError("Email or password is incorrect.", field="password")
    try:
        address = normalise_email(email)
    except UserError:
        raise failure from None
    users = list(UserRepository.from_session(session).find_by_email_any_org(address))
    if org_slug is not None:
        users = [u for u in users if u.org.slug == org_slug]
    if len(users) != 1:
        # Unknown email (or the same email in several orgs without an org given): spend the
        # same time as a real check so response times do not reveal which emails exist.
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        if len(users) > 1:
            raise UserError(
                "This email belongs to several orgs.",
                field="org",
                fix="Choose the org to sign in to.",
            )
        raise failure
    user = users[0]
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise failure from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


@dataclass(frozen=True)
class NewSession:
    cookie_value: str
    csrf_token: str
    record: LoginSession


def start_session(session: Session, user: User, *, max_age_seconds: int) -> NewSession:
    """Always a fresh random ID: a session ID known before sign-in is never reused."""
    cookie_value = secrets.token_urlsafe(32)
    now = utc_now()
    record = LoginSession(
        id=hash_token(cookie_value),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=now + timedelta(seconds=max_age_seconds),
        last_seen_at=now,
    )
    LoginSessionRepository.from_session(session).create(record, flush=True)
    return NewSession(cookie_value=cookie_value, csrf_token=record.csrf_token, record=record)


def resolve_session(
    session: Session, cookie_value: str, *, max_age_seconds: int
) -> tuple[LoginSession, User] | None:
    """The live session and its active user, sliding the expiry forward; None when invalid."""
    repo = LoginSessionRepository.from_session(session)
    record = repo.get(hash_token(cookie_value))
    now = utc_now()
    if record is None:
        return None
    if record.expires_at < now:
        repo.delete(record)
        return None
    user = UserRepository.from_session(session).get(record.user_id)
    if user is None or not user.is_active:
        return None
    if (now - record.last_seen_at).total_seconds() > 60:
        record.last_seen_at = now
        record.expires_at = now + timedelta(seconds=max_age_seconds)
    return record, user


def end_session(session: Session, cookie_value: str) -> None:
    repo = LoginSessionRepository.from_session(session)
    record = repo.get(hash_token(cookie_value))
    if record is not None:
        repo.delete(record, flush=True)


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown to the user once, never stored
    record: ApiToken


def create_api_token(session: Session, user: User, *, name: str) -> IssuedToken:
    label = name.strip()
    if not label:
        raise UserError("Give the token a name.", field="name", fix="For example: 'CRM script'.")
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        user_id=user.id, name=label[:100], token_hash=hash_token(token), prefix=token[:10]
    )
    ApiTokenRepository.from_session(session).create(record, flush=True)
    return IssuedToken(token=token, record=record)


def list_api_tokens(session: Session, user: User) -> Sequence[ApiToken]:
    return ApiTokenRepository.from_session(session).list_for_user(user.id)


def revoke_api_token(session: Session, user: User, token_id: uuid.UUID) -> None:
    if not ApiTokenRepository.from_session(session).revoke(user.id, token_id, utc_now()):
        raise NotFoundError("API token not found.")


def user_for_api_token(session: Session, token: str) -> User | None:
    """Revocation takes effect at once: every request looks the hash up again."""
    if not token.startswith(API_TOKEN_PREFIX):
        return None
    record = ApiTokenRepository.from_session(session).get_active_by_hash(hash_token(token))
    if record is None:
        return None
    user = UserRepository.from_session(session).get(record.user_id)
    if user is None or not user.is_active:
        return None
    now = utc_now()
    if record.last_used_at is None or (now - record.last_used_at).total_seconds() > 60:
        record.last_used_at = now
    return user


def company_ids_by(session: Session, column: str, values: Sequence[str]) -> dict[str, int]:
    """Bulk match keys → company id; `column` is platform_id, domain or name (lower-cased)."""
    return CompanyRepository.from_session(session).ids_by(column, values)


def contact_ids_by(session: Session, column: str, values: Sequence[str]) -> dict[str, int]:
    """Bulk match keys → contact id; `column` is platform_id or email (lower-cased)."""
    return ContactRepository.from_session(session).ids_by(column, values)


def companies_by_ids(session: Session, ids: Sequence[int]) -> Sequence[Company]:
    return CompanyRepository.from_session(session).by_ids(ids)


def list_orgs(session: Session) -> Sequence[Org]:
    """Every org (the scheduler walks them to start each connected org's import)."""
    return OrgRepository.from_session(session).list_all()
