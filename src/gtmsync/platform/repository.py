"""Queries over platform tables. Every org-owned query takes the org explicitly."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update

from gtmsync.db.repository import RepositoryBase
from gtmsync.platform.models import ApiToken, Company, Contact, LoginSession, Org, User


class OrgRepository(RepositoryBase[Org]):
    model = Org

    def get_by_slug(self, slug: str) -> Org | None:
        return self.get_one_or_none(select(Org).where(Org.slug == slug))

    def list_all(self) -> Sequence[Org]:
        return self.get_all(select(Org).order_by(Org.name))


class UserRepository(RepositoryBase[User]):
    model = User

    def get_in_org(self, org_id: uuid.UUID, user_id: uuid.UUID) -> User | None:
        return self.get_one_or_none(select(User).where(User.org_id == org_id, User.id == user_id))

    def get_by_email(self, org_id: uuid.UUID, email: str) -> User | None:
        return self.get_one_or_none(
            select(User).where(User.org_id == org_id, User.email == email.lower())
        )

    def find_by_email_any_org(self, email: str) -> Sequence[User]:
        return self.get_all(select(User).where(User.email == email.lower(), User.is_active))

    def list_for_org(self, org_id: uuid.UUID) -> Sequence[User]:
        return self.get_all(select(User).where(User.org_id == org_id).order_by(User.name))


class LoginSessionRepository(RepositoryBase[LoginSession]):
    model = LoginSession

    def delete_for_user(self, user_id: uuid.UUID) -> None:
        self.session.execute(delete(LoginSession).where(LoginSession.user_id == user_id))

    def delete_expired(self, now: datetime) -> None:
        self.session.execute(delete(LoginSession).where(LoginSession.expires_at < now))


class ApiTokenRepository(RepositoryBase[ApiToken]):
    model = ApiToken

    def get_active_by_hash(self, token_hash: str) -> ApiToken | None:
        return self.get_one_or_none(
            select(ApiToken).where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        )

    def list_for_user(self, user_id: uuid.UUID) -> Sequence[ApiToken]:
        return self.get_all(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at.desc())
        )

    def revoke(self, user_id: uuid.UUID, token_id: uuid.UUID, now: datetime) -> bool:
        result = self.session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == token_id, ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)
            )
            .values(revoked_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class CompanyRepository(RepositoryBase[Company]):
    model = Company

    def get_by_platform_id(self, platform_id: str) -> Company | None:
        return self.get_one_or_none(select(Company).where(Company.platform_id == platform_id))

    def count(self) -> int:
        return int(self.session.execute(select(func.count()).select_from(Company)).scalar_one())

    def ids_by(self, column: str, values: Sequence[str]) -> dict[str, int]:
        """value → company id for the given platform ids, domains or lower-cased names.

        Bulk look-up for import matching; duplicates resolve to the lowest id (stable).
        """
        col = {
            "platform_id": Company.platform_id,
            "domain": Company.domain,
            "name": Company.name_lower,
        }[column]
        found: dict[str, int] = {}
        items = sorted(set(values))
        for i in range(0, len(items), 500):
            rows = self.session.execute(
                select(col, func.min(Company.id)).where(col.in_(items[i : i + 500])).group_by(col)
            )
            found.update({str(k): int(v) for k, v in rows})
        return found

    def by_ids(self, ids: Sequence[int]) -> Sequence[Company]:
        return self.get_all(select(Company).where(Company.id.in_(list(ids))).order_by(Company.name))


class ContactRepository(RepositoryBase[Contact]):
    model = Contact

    def get_by_platform_id(self, platform_id: str) -> Contact | None:
        return self.get_one_or_none(select(Contact).where(Contact.platform_id == platform_id))

    def count(self) -> int:
        return int(self.session.execute(select(func.count()).select_from(Contact)).scalar_one())

    def ids_by(self, column: str, values: Sequence[str]) -> dict[str, int]:
        """value → contact id for the given platform ids or (lower-cased) emails, in bulk."""
        col = {"platform_id": Contact.platform_id, "email": Contact.email}[column]
        found: dict[str, int] = {}
        items = sorted(set(values))
        for i in range(0, len(items), 500):
            rows = self.session.execute(
                select(col, func.min(Contact.id)).where(col.in_(items[i : i + 500])).group_by(col)
            )
            found.update({str(k): int(v) for k, v in rows})
        return found
