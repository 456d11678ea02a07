"""Connection web tests: the hub in-process, trusting the local Dataverse server's CA.

`hub_settings` is overridden so the app under test reaches the local server's identity and
Web API endpoints over real HTTPS. `dynamics_org` is an org whose people match the seeded
tenant by email (Avery is a Global admin; Dana is a Dynamics System Administrator but not a
Global admin). The "browser" half of the sign-in (`authorize`) posts the local server's
account picker and consent forms over HTTPS, exactly what a person's clicks send.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.connection import gateway
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import Role
from gtmsync.settings import Mode, Settings
from tests.fixtures.web import PASSWORD, TEST_SECRET_KEY, Login, csrf_from, page_csrf, sign_in

CALLBACK = "http://127.0.0.1:8000/connection/callback"


@pytest.fixture
def hub_settings(database_url: str, tmp_path: Path, dataverse: ServerHandle) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        mode=Mode.DEVELOPMENT,
        ca_bundle=dataverse.ca_bundle,
        _env_file=None,
    )


@dataclass(frozen=True)
class DynamicsOrg:
    org_id: uuid.UUID
    avery: Login  # admin, Global admin in the tenant
    dana: Login  # admin, Dynamics System Administrator, not a Global admin
    sam: Login  # member, a Salesperson in Dynamics
    uma: Login  # member with no Dynamics user


@pytest.fixture
def dynamics_org(app: FastAPI, dataverse: ServerHandle) -> DynamicsOrg:
    domain = dataverse.directory.tenant().domain
    tag = uuid.uuid4().hex[:6]
    people = {
        "avery": (f"avery.admin@{domain}", "Avery Admin", Role.ADMIN),
        "dana": (f"dana.dynamics@{domain}", "Dana Dynamics", Role.ADMIN),
        "sam": (f"sam.seller@{domain}", "Sam Seller", Role.USER),
        "uma": ("uma.unmapped@example.com", "Uma Unmapped", Role.USER),
    }
    with session_scope(app.state.session_factory) as session:
        org = platform_service.create_org(session, name=f"Contoso {tag}", slug=f"contoso-{tag}")
        logins = {}
        for key, (email, name, role) in people.items():
            user = platform_service.create_user(
                session, org=org, email=email, name=name, password=PASSWORD, role=role
            )
            logins[key] = Login(user.id, user.email, PASSWORD, user.name)
        return DynamicsOrg(org.id, **logins)


@pytest.fixture
def login_as(
    make_client: Callable[[], TestClient], dynamics_org: DynamicsOrg
) -> Callable[[Login], TestClient]:
    def make(login: Login) -> TestClient:
        client = make_client()
        response = sign_in(client, login)
        assert response.status_code == 303, response.text
        return client

    return make


def authorize(
    server: ServerHandle,
    auth_uri: str,
    upn: str,
    *,
    consent: str | None = None,
    tenant_wide: bool = False,
    callback: str = CALLBACK,
) -> dict[str, str]:
    """The browser at the identity provider: pick `upn`, optionally answer the consent page.

    Returns the query the provider redirects back with (`code`+`state` or `error`+…);
    `callback` is the hub's redirect URI (another one for a hub on another port).
    """
    user = server.directory.user_by_upn(upn)
    assert user is not None
    data = {"user": user.object_id}
    if consent is not None:
        data["consent"] = consent
        if tenant_wide:
            data["tenant_wide"] = "true"
    with httpx.Client(verify=server.ssl_context()) as browser:
        assert browser.get(auth_uri).status_code == 200  # the account picker
        response = browser.post(auth_uri, data=data, follow_redirects=False)
    if response.status_code == 200 and consent is None:
        return {"consent_page": response.text}
    assert response.status_code in (302, 303), response.text[:500]
    location = response.headers["location"]
    assert location.startswith(callback), location
    return dict(parse_qsl(urlsplit(location).query))


def post_form(client: TestClient, page: str, action: str, **data: str) -> httpx2.Response:
    """Submit a portal form the way the browser does (the page's CSRF field included)."""
    html = client.get(page)
    assert html.status_code == 200, html.text[:500]
    return client.post(
        action, data={**data, "csrf_token": csrf_from(html.text)}, follow_redirects=False
    )


def start_connect(client: TestClient, org_url: str) -> str:
    response = post_form(
        client,
        "/admin/integrations/dynamics/connect",
        "/admin/integrations/dynamics/connect",
        org_url=org_url,
    )
    return sign_in_url(response)


def sign_in_url(response: httpx2.Response) -> str:
    """Where the hub sends the browser to sign in (its "continue to Microsoft" page)."""
    assert response.status_code == 200, response.text[:1000]
    match = re.search(r'<a href="([^"]+)" id="continue"', response.text)
    assert match is not None, response.text[:1000]
    return html.unescape(match.group(1))


def callback(client: TestClient, params: dict[str, str]) -> httpx2.Response:
    return client.get("/connection/callback", params=params, follow_redirects=False)


def connect_as(
    client: TestClient, server: ServerHandle, upn: str, *, org_url: str | None = None
) -> httpx2.Response:
    """Connect with consent already granted: the callback's reply."""
    auth_uri = start_connect(client, org_url or server.org_url)
    return callback(client, authorize(server, auth_uri, upn))


@pytest.fixture
def no_consent(dataverse: ServerHandle) -> Iterator[None]:
    """The tenant without consent to gtmsync; the seed's tenant-wide consent comes back after."""
    client_id = gateway.LOCAL_APP_CLIENT_ID
    admin = dataverse.directory.user_by_upn(f"avery.admin@{dataverse.directory.tenant().domain}")
    dataverse.directory.revoke_consents(client_id)
    try:
        yield
    finally:
        dataverse.directory.revoke_consents(client_id)
        dataverse.directory.grant_consent(client_id, granted_by=admin.object_id, tenant_wide=True)


@dataclass(frozen=True)
class Connected:
    """`dynamics_org` after Avery connected it through the pages (Avery is primary)."""

    org: DynamicsOrg
    avery: TestClient
    dana: TestClient
    sam: TestClient


@pytest.fixture
def connected(
    dataverse: ServerHandle,
    dynamics_org: DynamicsOrg,
    login_as: Callable[[Login], TestClient],
) -> Connected:
    avery = login_as(dynamics_org.avery)
    reply = connect_as(avery, dataverse, dynamics_org.avery.email)
    assert reply.status_code == 303, reply.text[:1000]
    return Connected(dynamics_org, avery, login_as(dynamics_org.dana), login_as(dynamics_org.sam))


def api_headers(client: TestClient) -> dict[str, str]:
    """The header a cookie-authenticated API write needs (the page's CSRF token)."""
    return {"X-CSRF-Token": page_csrf(client)}
