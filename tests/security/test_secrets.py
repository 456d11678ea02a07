"""Secrets never reach the hub process's log, its pages, its API answers or its database in
clear: the Entra ID client secret, the access/refresh/ID tokens the identity provider issued
(before and after a refresh rotates them), the authorization code, API tokens, session IDs and
the cookie signing key.

Everything runs in the real `gtmsync serve` process at DEBUG level (its stdout and stderr are
the log we grep), driven over HTTP: sign in, connect Dynamics through the local server's
sign-in page, create and use an API token, force a token refresh, then read every page a crawl
reaches and every API list. The one sanctioned showing is the new API token on the page that
creates it, once. (tests/connection/test_secrets.py checks the issued tokens in-process.)
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gtmsync.dataverse_local.seed import SeedResult
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.engine import create_engine
from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import Role
from gtmsync.settings import Mode, Settings
from gtmsync.web.security import SESSION_COOKIE, CookieSigner
from tests.connection.conftest import CALLBACK, authorize
from tests.fixtures.web import PASSWORD, TEST_SECRET_KEY, HubServer, Login, csrf_from, sign_in
from tests.security.crawl import crawl
from tests.security.leaks import database_dump, issued_tokens
from tests.security.routes import ROUTES

_API_TOKEN = re.compile(r"gtm_[A-Za-z0-9_\-]{20,}")
_CONTINUE = re.compile(r'<a href="([^"]+)" id="continue"')


@pytest.fixture
def hub(
    database_url: str,
    tmp_path: Path,
    dataverse: ServerHandle,
    dataverse_seed: SeedResult,
    fast_password_hashing: None,
) -> Iterator[HubServer]:
    server = HubServer(
        database_url=database_url,
        data_dir=tmp_path / "hub",
        env={
            "GTMSYNC_LOG_LEVEL": "DEBUG",
            # The redirect URI the local tenant's app registration knows (the demo's); the
            # test's browser carries the code back to this hub's real port itself.
            "GTMSYNC_BASE_URL": CALLBACK.removesuffix("/connection/callback"),
            "GTMSYNC_CA_BUNDLE": str(dataverse.ca_bundle),
            "GTMSYNC_ENTRA_CLIENT_ID": dataverse_seed.client_id,
            "GTMSYNC_ENTRA_CLIENT_SECRET": dataverse_seed.client_secret,
        },
    )
    with server:
        yield server


def _connect(browser: httpx.Client, server: ServerHandle, upn: str) -> str:
    """Connect through the pages and the local sign-in page; returns the authorization code."""
    page = browser.get("/admin/integrations/dynamics/connect")
    started = browser.post(
        "/admin/integrations/dynamics/connect",
        data={"org_url": server.org_url, "csrf_token": csrf_from(page.text)},
    )
    assert started.status_code == 200, started.text[:500]
    match = _CONTINUE.search(started.text)
    assert match is not None, started.text[:1000]
    params = authorize(server, html.unescape(match.group(1)), upn)
    done = browser.get("/connection/callback", params=params, follow_redirects=False)
    assert done.status_code == 303, done.text[:500]
    return params["code"]


def test_no_secret_in_the_log_pages_api_or_database(
    hub: HubServer, dataverse: ServerHandle, dataverse_seed: SeedResult
) -> None:
    domain = dataverse.directory.tenant().domain
    with session_scope(hub.session_factory) as session:
        org = platform_service.create_org(
            session, name="Secrets Org", slug=f"sec-{uuid.uuid4().hex[:8]}"
        )
        admin = platform_service.create_user(
            session,
            org=org,
            email=f"avery.admin@{domain}",
            name="Avery Admin",
            password=PASSWORD,
            role=Role.ADMIN,
        )
        org_id, login = org.id, Login(admin.id, admin.email, PASSWORD, admin.name)
    hub_settings = Settings(
        database_url=hub.database_url,
        secret_key=TEST_SECRET_KEY,
        mode=Mode.DEVELOPMENT,
        _env_file=None,  # type: ignore[call-arg]
    )

    shown: list[str] = []  # every page and API answer once the secrets exist
    with httpx.Client(base_url=hub.base_url, timeout=60) as browser:
        assert sign_in(browser, login).status_code == 303  # type: ignore[arg-type]
        session_id = CookieSigner(TEST_SECRET_KEY).session_id(browser.cookies[SESSION_COOKIE])
        assert session_id is not None
        code = _connect(browser, dataverse, login.email)

        page = browser.get("/settings/api-tokens")
        created = browser.post(
            "/settings/api-tokens", data={"name": "script", "csrf_token": csrf_from(page.text)}
        )
        assert created.status_code == 201
        [api_token] = set(_API_TOKEN.findall(created.text))
        api = {"Authorization": f"Bearer {api_token}"}

        tokens = issued_tokens(hub_settings, hub.session_factory, org_id)
        dataverse.app.expire_tokens()  # the next Dynamics call refreshes, inside the hub
        mapping = browser.get("/admin/integrations/dynamics/user-mapping")
        assert mapping.status_code == 200, mapping.text[:500]
        rotated = issued_tokens(hub_settings, hub.session_factory, org_id)
        assert rotated - tokens, "the refresh should have issued new tokens"
        tokens |= rotated

        crawl(browser, pages=shown)  # type: ignore[arg-type]
        for route in ROUTES:
            if route.api and route.method == "GET" and not route.params:
                answer = browser.get(route.path, headers=api)
                assert answer.status_code < 500, (route.id, answer.text[:300])
                shown.append(answer.text)
    assert len(shown) > 40

    hub.stop()  # flushes the log
    log = hub.log_path.read_text(errors="replace")
    engine = create_engine(hub.database_url)
    try:
        dump = database_dump(engine)
    finally:
        engine.dispose()
    secrets = {
        "client secret": [dataverse_seed.client_secret],
        "issued token": sorted(tokens),
        "authorization code": [code],
        "API token": [api_token],
        "session ID": [session_id],
        "cookie signing key": [TEST_SECRET_KEY],
    }
    assert f"avery.admin@{domain}" in dump  # the dump holds the connection rows
    assert log.count("\n") > 20, log[-2000:]  # the log is the real DEBUG log
    pages = "\n".join(shown)
    found = sorted(
        {
            (kind, where)
            for kind, values in secrets.items()
            for value in values
            for where, text in (("log", log), ("database", dump), ("pages/API", pages))
            if value in text
        }
    )
    assert not found, found
