"""Connect, consent and privileges through the hub's own pages, against the local server."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from gtmsync.connection import gateway
from gtmsync.connection.models import Integration, OAuthAttempt
from gtmsync.dataverse_local.principal import Access
from gtmsync.dataverse_local.security import SALESPERSON, Role
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.kit.clock import utc_now
from gtmsync.platform.models import AuditEvent
from tests.connection.conftest import (
    DynamicsOrg,
    authorize,
    callback,
    connect_as,
    start_connect,
)
from tests.fixtures.web import Login


def _integration(app: FastAPI, org: DynamicsOrg) -> Integration | None:
    with session_scope(app.state.session_factory) as session:
        row = gateway.get_integration(session, org.org_id)
        if row is not None:
            session.expunge(row)
        return row


class TestConnect:
    def test_connect_as_global_admin_maps_users_and_audits(
        self,
        app: FastAPI,
        dataverse: ServerHandle,
        dynamics_org: DynamicsOrg,
        login_as: Callable[[Login], TestClient],
    ) -> None:
        avery = login_as(dynamics_org.avery)
        reply = connect_as(
            avery,
            dataverse,
            dynamics_org.avery.email,
            org_url=dataverse.org_url + "/main.aspx?appid=1",
        )
        assert reply.status_code == 303, reply.text[:2000]
        assert reply.headers["location"] == "/admin/integrations/connections?tab=connected"
        page = avery.get("/admin/integrations/connections?tab=connected")
        assert "Dynamics 365 is connected as avery.admin@contoso.local" in page.text
        assert "We removed '/main.aspx?appid=1'" in html.unescape(page.text)
        integration = _integration(app, dynamics_org)
        assert integration is not None
        assert integration.org_url == dataverse.org_url
        assert integration.primary_admin_id == dynamics_org.avery.user_id
        assert integration.authority.endswith("/" + dataverse.tenant_id)
        assert integration.service_systemuser_id is not None
        mapping = avery.get("/admin/integrations/dynamics/user-mapping")
        assert mapping.status_code == 200
        assert "✔ User mapped" in mapping.text
        assert "User not mapped" in mapping.text
        with session_scope(app.state.session_factory) as session:
            actions = session.scalars(select(AuditEvent.action)).all()
        assert "connection.connect" in actions

    def test_state_is_single_use_and_bound_to_the_user(
        self,
        app: FastAPI,
        dataverse: ServerHandle,
        dynamics_org: DynamicsOrg,
        login_as: Callable[[Login], TestClient],
    ) -> None:
        avery = login_as(dynamics_org.avery)
        dana = login_as(dynamics_org.dana)
        auth_uri = start_connect(avery, dataverse.org_url)
        params = authorize(dataverse, auth_uri, dynamics_org.avery.email)
        stolen = callback(dana, params)  # another admin's browser cannot use it
        assert stolen.status_code == 400
        assert "expired or was already used" in stolen.text
        first = callback(avery, params)
        assert first.status_code == 303
        again = callback(avery, params)
        assert again.status_code == 400
        assert "expired or was already used" in again.text
        with session_scope(app.state.session_factory) as session:
            assert session.scalars(select(OAuthAttempt)).all() == []


class TestConsent:
    def test_non_global_admin_without_tenant_consent_gets_admin_consent_link(
        self,
        app: FastAPI,
        dataverse: ServerHandle,
        dynamics_org: DynamicsOrg,
        login_as: Callable[[Login], TestClient],
        no_consent: None,
    ) -> None:
        dana = login_as(dynamics_org.dana)
        auth_uri = start_connect(dana, dataverse.org_url)
        params = authorize(dataverse, auth_uri, dynamics_org.dana.email)
        assert params["error"] == "access_denied"
        reply = callback(dana, params)
        assert reply.status_code == 400
        assert "has not consented to gtmsync" in reply.text
        assert "not a Global admin" in reply.text
        link = f"{dataverse.authority.rsplit('/', 1)[0]}/organizations/adminconsent?client_id="
        assert link in reply.text.replace("&amp;", "&")
        assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fconnection%2Fcallback" in reply.text
        assert _integration(app, dynamics_org) is None

    def test_global_admin_consents_for_the_tenant(
        self,
        app: FastAPI,
        dataverse: ServerHandle,
        dynamics_org: DynamicsOrg,
        login_as: Callable[[Login], TestClient],
        no_consent: None,
    ) -> None:
        avery = login_as(dynamics_org.avery)
        auth_uri = start_connect(avery, dataverse.org_url)
        shown = authorize(dataverse, auth_uri, dynamics_org.avery.email)
        assert "Consent on behalf of your organization" in shown["consent_page"]
        params = authorize(
            dataverse, auth_uri, dynamics_org.avery.email, consent="accept", tenant_wide=True
        )
        assert callback(avery, params).status_code == 303
        assert dataverse.directory.has_tenant_consent(gateway.LOCAL_APP_CLIENT_ID)
        assert _integration(app, dynamics_org) is not None

    def test_declined_consent_says_so(
        self,
        dataverse: ServerHandle,
        dynamics_org: DynamicsOrg,
        login_as: Callable[[Login], TestClient],
        no_consent: None,
    ) -> None:
        avery = login_as(dynamics_org.avery)
        auth_uri = start_connect(avery, dataverse.org_url)
        params = authorize(dataverse, auth_uri, dynamics_org.avery.email, consent="cancel")
        reply = callback(avery, params)
        assert reply.status_code == 400
        assert "You declined the permissions" in reply.text


class TestPrivileges:
    def test_missing_privileges_are_listed_and_nothing_is_stored(
        self,
        app: FastAPI,
        dataverse: ServerHandle,
        dynamics_org: DynamicsOrg,
        login_as: Callable[[Login], TestClient],
    ) -> None:
        # A role like Salesperson without Lead write, Product read and activities.
        role = dataverse.define_role(
            Role(
                "gtmsync tests: partial",
                frozenset(
                    {
                        (t, a)
                        for t in ("account", "contact")
                        for a in (Access.CREATE, Access.READ, Access.WRITE)
                    }
                    | {
                        ("lead", Access.READ),
                        ("opportunity", Access.READ),
                        ("systemuser", Access.READ),
                    }
                ),
            )
        )
        partial = dataverse.add_user("Parker", "Partial", roles=(role.name,))
        avery = login_as(dynamics_org.avery)
        auth_uri = start_connect(avery, dataverse.org_url)
        reply = callback(avery, authorize(dataverse, auth_uri, partial.entra.upn))
        assert reply.status_code == 400, reply.text[:1000]
        text = reply.text
        assert "does not have every privilege" in text
        missing = text.split("Missing: ", 1)[1].split(".", 1)[0]
        assert missing == (
            "Create Lead, Write Lead, Read Product, Read Task and Event (activities)"
        )
        assert _integration(app, dynamics_org) is None

    def test_salesperson_role_has_everything_required(
        self,
        dataverse: ServerHandle,
        dynamics_org: DynamicsOrg,
        login_as: Callable[[Login], TestClient],
    ) -> None:
        seller = dataverse.add_user("Sally", "Sufficient", roles=(SALESPERSON,))
        avery = login_as(dynamics_org.avery)
        reply = connect_as(avery, dataverse, seller.entra.upn)
        assert reply.status_code == 303, reply.text[:1000]


class TestAttempts:
    def test_expired_attempt_is_refused(
        self,
        app: FastAPI,
        dataverse: ServerHandle,
        dynamics_org: DynamicsOrg,
        login_as: Callable[[Login], TestClient],
    ) -> None:
        avery = login_as(dynamics_org.avery)
        auth_uri = start_connect(avery, dataverse.org_url)
        params = authorize(dataverse, auth_uri, dynamics_org.avery.email)
        with session_scope(app.state.session_factory) as session:
            attempt = session.scalars(select(OAuthAttempt)).one()
            attempt.expires_at = utc_now() - timedelta(seconds=1)
        reply = callback(avery, params)
        assert reply.status_code == 400
        assert "This sign-in has expired or was already used." in reply.text
        assert _integration(app, dynamics_org) is None

    def test_global_admin_grants_consent_from_the_admin_consent_link(
        self,
        dataverse: ServerHandle,
        dynamics_org: DynamicsOrg,
        login_as: Callable[[Login], TestClient],
        no_consent: None,
    ) -> None:
        dana = login_as(dynamics_org.dana)
        params = authorize(
            dataverse, start_connect(dana, dataverse.org_url), dynamics_org.dana.email
        )
        refused = callback(dana, params)
        found = re.search(r'<a href="([^"]+)" id="admin-consent-link"', refused.text)
        assert found is not None
        consent_url = html.unescape(found.group(1))
        assert "/adminconsent?" in consent_url
        avery = dataverse.directory.user_by_upn("avery.admin@contoso.local")
        with httpx.Client(verify=dataverse.ssl_context()) as browser:
            picked = browser.post(consent_url, data={"user": avery.object_id, "consent": "accept"})
        assert picked.status_code == 302
        back = dict(parse_qsl(urlsplit(picked.headers["location"]).query))
        assert back["admin_consent"] == "True"
        landing = callback(login_as(dynamics_org.avery), back)
        assert landing.status_code == 200
        assert "Consent granted" in landing.text
        assert dataverse.directory.has_tenant_consent(gateway.LOCAL_APP_CLIENT_ID)
        again = callback(
            dana,
            authorize(dataverse, start_connect(dana, dataverse.org_url), dynamics_org.dana.email),
        )
        assert again.status_code == 303  # Dana can connect now
