"""Managing the connection: admins, toggle, reconnect, preference, user accounts, mapping, delete.

Every test starts from an org Avery connected through the pages against the local server.
"""

from __future__ import annotations

import html
import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from gtmsync.connection import gateway
from gtmsync.connection import service as connection_service
from gtmsync.connection.models import (
    ExportPreference,
    Integration,
    MappingSource,
    UserConnection,
    UserMapping,
)
from gtmsync.dataverse import ReconnectRequiredError
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import AuditEvent
from gtmsync.settings import Settings
from tests.connection.conftest import Connected, authorize, callback, post_form, sign_in_url

GENERAL = "/admin/integrations/dynamics"
MAPPING = "/admin/integrations/dynamics/user-mapping"
CONNECTED_TAB = "/admin/integrations/connections?tab=connected"


def _integration(app: FastAPI, org_id: uuid.UUID) -> Integration | None:
    with session_scope(app.state.session_factory) as session:
        row = gateway.get_integration(session, org_id)
        if row is not None:
            session.expunge(row)
        return row


def _actions(app: FastAPI) -> list[str]:
    with session_scope(app.state.session_factory) as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.at)))


def _text(response: object) -> str:
    return html.unescape(response.text)  # type: ignore[attr-defined]


class TestAdmins:
    def test_non_admin_gets_403_on_pages_and_api(self, connected: Connected) -> None:
        for path in (
            "/admin/integrations/connections",
            GENERAL,
            MAPPING,
            "/admin/integrations/dynamics/connect",
            "/admin/integrations/dynamics/delete",
            "/admin/audit-log",
        ):
            assert connected.sam.get(path).status_code == 403, path
        for path in (
            "/api/v1/connection",
            "/api/v1/connection/user-mappings",
            "/api/v1/audit-events",
        ):
            assert connected.sam.get(path).status_code == 403, path

    def test_secondary_admin_can_view_and_manage_but_not_delete(
        self, app: FastAPI, connected: Connected
    ) -> None:
        dana = connected.dana
        general = dana.get(GENERAL)
        assert general.status_code == 200
        assert "Only the primary connected admin can delete this connection." in general.text
        assert "Avery Admin (avery.admin@contoso.local)" in general.text
        assert "/admin/integrations/dynamics/delete" not in dana.get(CONNECTED_TAB).text
        refused = dana.get("/admin/integrations/dynamics/delete")
        assert refused.status_code == 403
        assert "Only the primary connected admin can delete" in refused.text
        page = dana.get(GENERAL).text
        from tests.fixtures.web import csrf_from

        posted = dana.post(
            "/admin/integrations/dynamics/delete",
            data={"csrf_token": csrf_from(page)},
            follow_redirects=False,
        )
        assert posted.status_code == 403
        assert _integration(app, connected.org.org_id) is not None
        toggled = post_form(
            dana, CONNECTED_TAB, "/admin/integrations/dynamics/toggle", enabled="false"
        )
        assert toggled.status_code == 303
        integration = _integration(app, connected.org.org_id)
        assert integration is not None
        assert integration.enabled is False

    def test_change_user_by_a_secondary_admin_makes_them_primary(
        self, app: FastAPI, dataverse: ServerHandle, connected: Connected
    ) -> None:
        dana = connected.dana
        started = post_form(dana, GENERAL, "/admin/integrations/dynamics/change-user")
        params = authorize(dataverse, sign_in_url(started), connected.org.dana.email)
        reply = callback(dana, params)
        assert reply.status_code == 303
        assert reply.headers["location"] == GENERAL
        integration = _integration(app, connected.org.org_id)
        assert integration is not None
        assert integration.primary_admin_id == connected.org.dana.user_id
        assert integration.service_upn == "dana.dynamics@contoso.local"
        assert "connection.change_user" in _actions(app)
        with (
            session_scope(app.state.session_factory) as session,
            gateway.client_for(
                session, connected.org.org_id, settings=app.state.settings
            ) as client,
        ):
            me = client.who_am_i()
        assert me.user_id == integration.service_systemuser_id
        assert "Only the primary connected admin" in connected.avery.get(GENERAL).text
        assert dana.get("/admin/integrations/dynamics/delete").status_code == 200


class TestLifecycle:
    def test_toggle_off_keeps_settings_and_blocks_exports(
        self, app: FastAPI, connected: Connected
    ) -> None:
        avery = connected.avery
        off = post_form(
            avery, CONNECTED_TAB, "/admin/integrations/dynamics/toggle", enabled="false"
        )
        assert off.status_code == 303
        page = avery.get(CONNECTED_TAB).text
        assert "Exports are blocked" in page or "exports are blocked" in page
        assert "The Dynamics 365 integration is turned off." in page
        with session_scope(app.state.session_factory) as session:
            with pytest.raises(gateway.IntegrationUnavailableError) as raised:
                gateway.client_for(session, connected.org.org_id, settings=app.state.settings)
            assert raised.value.reason == "disabled"
            mapped = session.scalar(select(func.count()).select_from(UserMapping))
        assert mapped == 4  # the mapping survived
        on = post_form(avery, CONNECTED_TAB, "/admin/integrations/dynamics/toggle", enabled="true")
        assert on.status_code == 303
        assert _actions(app).count("connection.toggle") == 2

    def test_reconnect_needed_shows_everywhere(
        self, app: FastAPI, dataverse: ServerHandle, connected: Connected
    ) -> None:
        avery_oid = dataverse.directory.user_by_upn("avery.admin@contoso.local").object_id
        dataverse.directory.revoke_refresh_tokens(object_id=avery_oid)
        dataverse.app.expire_tokens()
        with session_scope(app.state.session_factory) as session:
            client = gateway.client_for(session, connected.org.org_id, settings=app.state.settings)
            with client, pytest.raises(ReconnectRequiredError):
                client.who_am_i()
        with (
            session_scope(app.state.session_factory) as session,
            pytest.raises(gateway.IntegrationUnavailableError) as raised,
        ):
            gateway.client_for(session, connected.org.org_id, settings=app.state.settings)
        assert raised.value.reason == "reconnect_needed"
        assert "needs to be reconnected" in str(raised.value)  # the export's error message
        tab = connected.avery.get(CONNECTED_TAB).text
        assert "Reconnect needed" in tab
        assert "Reconnect needed." in connected.avery.get(GENERAL).text
        assert "Reconnect needed." in connected.sam.get("/settings/integrations").text
        api = connected.avery.get("/api/v1/connection").json()
        assert api["status"] == "reconnect_needed"
        assert "needs to be reconnected" in api["problem"]
        mapping = connected.avery.get(MAPPING)
        assert mapping.status_code == 200
        assert "needs to be reconnected" in mapping.text

    def test_delete_by_primary_removes_settings_mappings_and_credentials(
        self, app: FastAPI, connected: Connected
    ) -> None:
        avery = connected.avery
        assert avery.get("/admin/integrations/dynamics/delete").status_code == 200
        gone = post_form(
            avery, "/admin/integrations/dynamics/delete", "/admin/integrations/dynamics/delete"
        )
        assert gone.status_code == 303
        assert _integration(app, connected.org.org_id) is None
        with session_scope(app.state.session_factory) as session:
            assert session.scalar(select(func.count()).select_from(UserMapping)) == 0
            assert session.scalar(select(func.count()).select_from(UserConnection)) == 0
        assert "connection.delete" in _actions(app)
        assert (
            "/admin/integrations/dynamics/connect"
            in avery.get("/admin/integrations/connections").text
        )


class TestPreference:
    def test_user_account_to_service_account_needs_the_toggle_off(
        self, app: FastAPI, connected: Connected
    ) -> None:
        avery = connected.avery
        to_user = post_form(
            avery,
            GENERAL,
            "/admin/integrations/dynamics/general",
            name="Dynamics",
            export_preference="user_account",
        )
        assert to_user.status_code == 303
        assert "Edit User Mapping" not in avery.get(GENERAL).text
        refused = post_form(
            avery,
            GENERAL,
            "/admin/integrations/dynamics/general",
            name="Dynamics",
            export_preference="service_account",
        )
        assert refused.status_code == 409
        assert (
            "Turn the integration off before switching to the Service Account option."
            in refused.text
        )
        post_form(avery, CONNECTED_TAB, "/admin/integrations/dynamics/toggle", enabled="false")
        switched = post_form(
            avery,
            GENERAL,
            "/admin/integrations/dynamics/general",
            name="Dynamics (prod)",
            export_preference="service_account",
        )
        assert switched.status_code == 303
        page = avery.get(GENERAL).text
        assert "Edit User Mapping" in page
        integration = _integration(app, connected.org.org_id)
        assert integration is not None
        assert integration.export_preference == ExportPreference.SERVICE_ACCOUNT
        assert integration.name == "Dynamics (prod)"
        assert _actions(app).count("connection.settings") == 2

    def test_user_account_users_connect_themselves(
        self, app: FastAPI, dataverse: ServerHandle, connected: Connected
    ) -> None:
        post_form(
            connected.avery,
            GENERAL,
            "/admin/integrations/dynamics/general",
            name="Dynamics",
            export_preference="user_account",
        )
        sam = connected.sam
        page = sam.get("/settings/integrations").text
        assert "connect your own Dynamics 365 account to export" in page
        with (
            session_scope(app.state.session_factory) as session,
            pytest.raises(gateway.IntegrationUnavailableError) as raised,
        ):
            gateway.client_for(
                session,
                connected.org.org_id,
                user_id=connected.org.sam.user_id,
                settings=app.state.settings,
            )
        assert raised.value.reason == "user_not_connected"
        assert "Connect it under Settings › Integrations › Connect Dynamics" in str(raised.value)
        started = post_form(
            sam, "/settings/integrations", "/settings/integrations/dynamics/connect"
        )
        reply = callback(sam, authorize(dataverse, sign_in_url(started), connected.org.sam.email))
        assert reply.status_code == 303
        assert "Connected as sam.seller@contoso.local." in sam.get("/settings/integrations").text
        with (
            session_scope(app.state.session_factory) as session,
            gateway.client_for(
                session,
                connected.org.org_id,
                user_id=connected.org.sam.user_id,
                settings=app.state.settings,
            ) as client,
        ):
            me = client.who_am_i()
        sam_id = dataverse.store.find_systemuser(
            aad_object_id=dataverse.directory.user_by_upn("sam.seller@contoso.local").object_id
        )["systemuserid"]
        assert str(me.user_id) == str(sam_id)


class TestMapping:
    def test_manual_override_survives_rebuilds_until_reset(
        self, app: FastAPI, dataverse: ServerHandle, connected: Connected
    ) -> None:
        avery = connected.avery
        page = _text(avery.get(MAPPING))
        assert "Former Employee" not in page  # disabled Dynamics users are never offered
        assert "Left Company" not in page
        assert "Riley Rep (riley.rep@contoso.local)" in page
        riley = dataverse.store.find_systemuser(
            aad_object_id=dataverse.directory.user_by_upn("riley.rep@contoso.local").object_id
        )["systemuserid"]
        saved = post_form(
            avery,
            MAPPING,
            MAPPING,
            user_id=str(connected.org.sam.user_id),
            systemuser_id=str(riley),
        )
        assert saved.status_code == 303
        settings: Settings = app.state.settings
        with session_scope(app.state.session_factory) as session:
            integration = connection_service.require_connected(session, connected.org.org_id)
            candidates = connection_service.offered_users(
                session, connected.org.org_id, settings=settings
            )
            rows = connection_service.rebuild_user_mapping(session, integration, candidates)
            sam = rows[connected.org.sam.user_id]
            assert str(sam.systemuser_id) == str(riley)
            assert sam.source == MappingSource.MANUAL
        reset = post_form(avery, MAPPING, f"{MAPPING}/reset")
        assert reset.status_code == 303
        with session_scope(app.state.session_factory) as session:
            integration = connection_service.require_connected(session, connected.org.org_id)
            sam = connection_service.mappings(session, integration)[connected.org.sam.user_id]
            assert sam.dynamics_email == "sam.seller@contoso.local"
            assert sam.source == MappingSource.AUTO
        actions = _actions(app)
        assert "connection.mapping_edit" in actions
        assert "connection.mapping_reset" in actions
        log = _text(avery.get("/admin/audit-log"))
        assert "Mapped sam.seller@contoso.local to Riley Rep (riley.rep@contoso.local)." in log

    def test_unmapped_user_is_shown_not_mapped_and_can_be_cleared(
        self, app: FastAPI, connected: Connected
    ) -> None:
        rows = connected.avery.get("/api/v1/connection/user-mappings").json()
        by_email = {row["email"]: row for row in rows}
        assert by_email["uma.unmapped@example.com"]["status"] == "not_mapped"
        assert by_email["sam.seller@contoso.local"]["status"] == "mapped"
        from tests.connection.conftest import api_headers

        cleared = connected.avery.put(
            "/api/v1/connection/user-mappings",
            json={"user_id": str(connected.org.sam.user_id), "systemuser_id": None},
            headers=api_headers(connected.avery),
        )
        assert cleared.status_code == 200, cleared.text
        rows = {row["email"]: row for row in cleared.json()}
        assert rows["sam.seller@contoso.local"]["status"] == "not_mapped"
        with session_scope(app.state.session_factory) as session:
            assert (
                gateway.caller_for(session, connected.org.org_id, connected.org.sam.user_id) is None
            )

    def test_new_platform_user_is_mapped_on_first_use(
        self, app: FastAPI, connected: Connected
    ) -> None:
        with session_scope(app.state.session_factory) as session:
            org = platform_service.get_org(session, connected.org.org_id)
            riley = platform_service.create_user(
                session, org=org, email="Riley.Rep@contoso.local", name="Riley", password="x" * 12
            )
            riley_id = riley.id
        with session_scope(app.state.session_factory) as session:
            mapping = connection_service.ensure_user_mapped(
                session, connected.org.org_id, riley_id, settings=app.state.settings
            )
            assert mapping is not None
            assert mapping.dynamics_email == "riley.rep@contoso.local"
            assert mapping.source == MappingSource.AUTO
            again = connection_service.ensure_user_mapped(
                session, connected.org.org_id, riley_id, settings=app.state.settings
            )
            assert again is not None
            assert again.id == mapping.id


class TestApi:
    def test_connection_api_round_trip(self, app: FastAPI, connected: Connected) -> None:
        from tests.connection.conftest import api_headers

        avery = connected.avery
        body = avery.get("/api/v1/connection").json()
        assert body["status"] == "connected"
        assert body["enabled"] is True
        assert body["export_preference"] == "service_account"
        assert set(body) == {
            "id",
            "name",
            "org_url",
            "tenant_id",
            "export_preference",
            "enabled",
            "status",
            "status_detail",
            "primary_admin_id",
            "service_upn",
            "service_systemuser_id",
            "connected_at",
            "problem",
        }
        off = avery.patch(
            "/api/v1/connection",
            json={"enabled": False, "export_preference": "user_account"},
            headers=api_headers(avery),
        )
        assert off.status_code == 200, off.text
        assert off.json()["problem"].startswith("The Dynamics 365 integration is turned off.")
        refused = connected.dana.delete("/api/v1/connection", headers=api_headers(connected.dana))
        assert refused.status_code == 403
        assert refused.json()["error"].startswith("Only the primary connected admin")
        events = avery.get("/api/v1/audit-events", params={"action_prefix": "connection."}).json()
        assert {e["action"] for e in events} >= {
            "connection.connect",
            "connection.toggle",
            "connection.settings",
        }
        reset = avery.post("/api/v1/connection/user-mappings/reset", headers=api_headers(avery))
        assert reset.status_code == 200
        deleted = avery.delete("/api/v1/connection", headers=api_headers(avery))
        assert deleted.status_code == 204
        assert avery.get("/api/v1/connection").status_code == 404
        assert _integration(app, connected.org.org_id) is None
