from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from gtmsync.kit.errors import ConflictError, NotFoundError, UserError
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import Org, Role
from tests.fixtures.factories import DEFAULT_PASSWORD, make_org, make_user


class TestUsers:
    def test_email_is_unique_per_org_case_insensitively(
        self, db_session: Session, org: Org
    ) -> None:
        make_user(db_session, org=org, email="Ann@Example.com")
        with pytest.raises(ConflictError) as exc:
            make_user(db_session, org=org, email="ann@example.com")
        assert exc.value.field == "email"
        other = make_org(db_session)
        assert make_user(db_session, org=other, email="ann@example.com").email == "ann@example.com"

    def test_malformed_email_names_the_field(self, db_session: Session, org: Org) -> None:
        with pytest.raises(UserError) as exc:
            make_user(db_session, org=org, email="not-an-email")
        assert exc.value.field == "email"

    def test_password_is_hashed_with_argon2(self, db_session: Session, org: Org) -> None:
        user = make_user(db_session, org=org)
        assert user.password_hash.startswith("$argon2id$")
        assert DEFAULT_PASSWORD not in user.password_hash

    def test_authenticate(self, db_session: Session, org: Org) -> None:
        user = make_user(db_session, org=org, email="bo@example.com", role=Role.ADMIN)
        assert (
            platform_service.authenticate(
                db_session, email="BO@example.com", password=DEFAULT_PASSWORD
            ).id
            == user.id
        )
        with pytest.raises(UserError, match="incorrect"):
            platform_service.authenticate(
                db_session, email="bo@example.com", password="wrong-password"
            )
        with pytest.raises(UserError, match="incorrect"):
            platform_service.authenticate(
                db_session, email="nobody@example.com", password="whatever1"
            )

    def test_another_orgs_user_is_not_found(self, db_session: Session, org: Org) -> None:
        other = make_org(db_session)
        stranger = make_user(db_session, org=other)
        with pytest.raises(NotFoundError):
            platform_service.get_user(db_session, org.id, stranger.id)


class TestSessionsAndTokens:
    def test_session_round_trip_and_end(self, db_session: Session, org: Org) -> None:
        user = make_user(db_session, org=org)
        new = platform_service.start_session(db_session, user, max_age_seconds=60)
        resolved = platform_service.resolve_session(
            db_session, new.cookie_value, max_age_seconds=60
        )
        assert resolved is not None
        assert resolved[1].id == user.id
        # Only the hash is stored.
        assert resolved[0].id != new.cookie_value
        platform_service.end_session(db_session, new.cookie_value)
        assert (
            platform_service.resolve_session(db_session, new.cookie_value, max_age_seconds=60)
            is None
        )

    def test_each_sign_in_gets_a_new_session_id(self, db_session: Session, org: Org) -> None:
        user = make_user(db_session, org=org)
        a = platform_service.start_session(db_session, user, max_age_seconds=60)
        b = platform_service.start_session(db_session, user, max_age_seconds=60)
        assert a.cookie_value != b.cookie_value
        assert a.csrf_token != b.csrf_token

    def test_api_token_revocation_is_immediate(self, db_session: Session, org: Org) -> None:
        user = make_user(db_session, org=org)
        issued = platform_service.create_api_token(db_session, user, name="script")
        assert issued.record.token_hash != issued.token
        assert platform_service.user_for_api_token(db_session, issued.token) is not None
        platform_service.revoke_api_token(db_session, user, issued.record.id)
        assert platform_service.user_for_api_token(db_session, issued.token) is None

    def test_cannot_revoke_another_users_token(self, db_session: Session, org: Org) -> None:
        owner = make_user(db_session, org=org)
        intruder = make_user(db_session, org=make_org(db_session))
        issued = platform_service.create_api_token(db_session, owner, name="mine")
        with pytest.raises(NotFoundError):
            platform_service.revoke_api_token(db_session, intruder, issued.record.id)
