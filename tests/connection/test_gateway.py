"""The gateway hands out clients that really authenticate against the local server."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from gtmsync.connection import gateway
from gtmsync.connection.models import ConnectionStatus, ExportPreference
from gtmsync.dataverse import ReconnectRequiredError
from gtmsync.dataverse_local import seed as local_seed
from tests.fixtures.connection import ConnectedOrg


class TestGateway:
    def test_local_app_constants_match_the_seed(self) -> None:
        assert gateway.LOCAL_APP_CLIENT_ID == local_seed.GTMSYNC_CLIENT_ID
        assert gateway.LOCAL_APP_CLIENT_SECRET == local_seed.GTMSYNC_CLIENT_SECRET

    def test_service_account_client_is_the_connected_admin(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        with connected_org.client(db_session) as client:
            me = client.who_am_i()
        assert me.user_id == connected_org.systemuser_id("avery.admin@contoso.local")

    def test_token_cache_is_stored_encrypted(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        sealed = connected_org.integration.token_cache
        assert sealed is not None
        assert "refresh_token" not in sealed.lower()
        assert "secret" not in sealed.lower()

    def test_mapping_by_email_and_caller(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        caller = connected_org.caller(db_session, connected_org.seller)
        assert (
            caller
            == connected_org.server.directory.user_by_upn("sam.seller@contoso.local").object_id
        )
        assert connected_org.caller(db_session, connected_org.unmapped) is None
        with connected_org.client(db_session).with_caller(caller) as client:
            assert client.who_am_i().user_id == connected_org.systemuser_id(
                "sam.seller@contoso.local"
            )

    def test_revoked_refresh_token_marks_reconnect_needed(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        server = connected_org.server
        server.directory.revoke_refresh_tokens(
            object_id=server.directory.user_by_upn("avery.admin@contoso.local").object_id
        )
        server.app.expire_tokens()  # the cached access token is refused: MSAL must refresh
        client = connected_org.client(db_session)
        with client, pytest.raises(ReconnectRequiredError):
            client.who_am_i()
        db_session.expire_all()
        integration = gateway.require_integration(db_session, connected_org.org.id)
        assert integration.status == ConnectionStatus.RECONNECT_NEEDED
        with pytest.raises(gateway.IntegrationUnavailableError) as raised:
            gateway.client_for(db_session, connected_org.org.id, settings=connected_org.settings)
        assert raised.value.reason == "reconnect_needed"

    def test_disabled_and_user_account_messages(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        integration = connected_org.integration
        integration.enabled = False
        db_session.flush()
        with pytest.raises(gateway.IntegrationUnavailableError, match="turned off"):
            connected_org.client(db_session)
        integration.enabled = True
        integration.export_preference = ExportPreference.USER_ACCOUNT
        db_session.flush()
        with pytest.raises(gateway.IntegrationUnavailableError) as raised:
            connected_org.client(db_session, user_id=connected_org.seller.id)
        assert raised.value.reason == "user_not_connected"
        assert "Settings › Integrations › Connect Dynamics" in str(raised.value)
