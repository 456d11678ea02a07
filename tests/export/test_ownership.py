"""Ownership beyond the mapped-user case: a platform user added after the connection is mapped
on their first export, and under *User Account* each user writes with their own sign-in."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from gtmsync.connection import gateway
from gtmsync.connection import service as connection_service
from gtmsync.connection.models import AttemptPurpose, ExportPreference
from gtmsync.connection.oauth import Completed
from gtmsync.export.schemas import ExportObject
from tests.export.exporting import company, tag
from tests.export.test_runner import by_anchor, plan, run
from tests.fixtures.connection import ConnectedOrg, sign_in
from tests.fixtures.factories import make_user


class TestOwnership:
    def test_a_new_user_is_mapped_by_email_on_their_first_export(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        riley = make_user(db_session, org=connected_org.org, email="Riley.Rep@contoso.local")
        integration = gateway.require_integration(db_session, connected_org.org.id)
        assert riley.id not in connection_service.mappings(db_session, integration)
        acme = company(db_session, f"Riley Co {tag()}")
        run(
            db_session,
            connected_org,
            plan(db_session, connected_org, ExportObject.ACCOUNT, [acme.platform_id], riley),
        )
        mapping = connection_service.mappings(db_session, integration)[riley.id]
        riley_id = connected_org.systemuser_id("riley.rep@contoso.local")
        assert mapping.systemuser_id == riley_id
        [row] = by_anchor(connected_org, db_session, "accounts", acme.platform_id)
        assert uuid.UUID(row["_ownerid_value"]) == riley_id

    def test_user_account_exports_write_with_the_users_own_sign_in(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        server, settings, seller = (
            connected_org.server,
            connected_org.settings,
            connected_org.seller,
        )
        integration = gateway.require_integration(db_session, connected_org.org.id)
        integration.export_preference = ExportPreference.USER_ACCOUNT
        db_session.flush()
        signed_in = sign_in(server, settings, "sam.seller@contoso.local")
        completed = Completed(
            purpose=AttemptPurpose.USER,
            org_id=connected_org.org.id,
            user_id=seller.id,
            org_url=server.org_url,
            authority=server.authority,
            signed_in=signed_in,
        )
        connection_service.accept_user_sign_in(
            db_session, settings, user=seller, completed=completed
        )
        acme = company(db_session, f"Own Token Co {tag()}")
        done = run(
            db_session,
            connected_org,
            plan(db_session, connected_org, ExportObject.ACCOUNT, [acme.platform_id], seller),
        )
        assert done.status.value == "completed", done.error
        [row] = by_anchor(connected_org, db_session, "accounts", acme.platform_id)
        sam = connected_org.systemuser_id("sam.seller@contoso.local")
        assert uuid.UUID(row["_ownerid_value"]) == sam
        assert uuid.UUID(row["_createdby_value"]) == sam
        assert row.get("_createdonbehalfby_value") is None  # no impersonation: Sam's own token
