"""Walks every route registered on the app, so routes added by later issues are checked too.

- An anonymous client gets 200 only from the public allow-list (sign-in, health, docs,
  static); everything else redirects to sign-in (portal) or answers 401 (API).
- A signed-in non-admin gets 403 from every `/admin` page and every admin API route (any route
  whose dependency tree holds `require_admin`, so a new admin API is covered without a list).

Neither kind of request changes anything, so one app on one migrated SQLite database serves
the whole module: the walk covers hundreds of routes and must stay cheap as they grow.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.db import migrate
from gtmsync.settings import Mode, Settings
from gtmsync.web.app import create_app
from tests.fixtures.web import TEST_SECRET_KEY, create_web_org, page_csrf, sign_in
from tests.security.routes import ROUTES as APP_ROUTES

PUBLIC = {
    ("GET", "/sign-in"),
    ("POST", "/sign-in"),  # answers 403 without the pre-session token, never 200
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),  # operator endpoint; GTMSYNC_METRICS_TOKEN guards it (tests/ops)
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
}


# Read from an app built at import time (tests/security/routes.py): parametrisation needs them.
_ALL = sorted({(r.method, r.path, r.admin) for r in APP_ROUTES if not r.path.startswith("/static")})
ROUTES = [(m, p) for m, p, _admin in _ALL]


@pytest.fixture(scope="module")
def walk_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    folder = tmp_path_factory.mktemp("route-walk")
    url = f"sqlite:///{folder / 'hub.db'}"
    migrate.upgrade(url)
    app = create_app(
        Settings(
            data_dir=folder,
            database_url=url,
            secret_key=TEST_SECRET_KEY,
            mode=Mode.DEVELOPMENT,
            _env_file=None,  # type: ignore[call-arg]
        )
    )
    yield app
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def anonymous(walk_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(walk_app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def member(walk_app: FastAPI) -> Iterator[TestClient]:
    org = create_web_org(walk_app.state.session_factory)
    with TestClient(walk_app) as test_client:
        assert sign_in(test_client, org.member).status_code == 303
        yield test_client


def _concrete(path: str) -> str:
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + str(uuid.uuid4()) + path[end + 1 :]
    return path


def test_the_walk_sees_the_routes() -> None:
    assert ("GET", "/api/v1/me") in ROUTES
    assert ("GET", "/admin/users") in ROUTES
    assert len(ROUTES) >= 20


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_anonymous_access(anonymous: TestClient, method: str, path: str) -> None:
    response = anonymous.request(method, _concrete(path), follow_redirects=False)
    if (method, path) in PUBLIC:
        assert response.status_code in (200, 403)
        return
    assert response.status_code != 200
    if path.startswith("/api/"):
        assert response.status_code == 401, response.text
    else:
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sign-in")


def test_static_is_public(anonymous: TestClient) -> None:
    response = anonymous.get("/static/gtmsync.css")
    assert response.status_code == 200
    assert "text/css" in response.headers["content-type"]


ADMIN_ROUTES = [(m, p) for m, p, admin in _ALL if admin]


def test_every_admin_portal_path_has_the_admin_dependency() -> None:
    portal_admin = {(m, p) for m, p in ROUTES if p == "/admin" or p.startswith("/admin/")}
    assert portal_admin <= set(ADMIN_ROUTES)


@pytest.mark.parametrize(
    ("method", "path"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p in ADMIN_ROUTES]
)
def test_non_admins_get_403(member: TestClient, method: str, path: str) -> None:
    token = page_csrf(member)  # a valid token: the refusal must be the admin check
    response = member.request(
        method,
        _concrete(path),
        headers={"X-CSRF-Token": token},
        data={"csrf_token": token} if method == "POST" and not path.startswith("/api/") else None,
        follow_redirects=False,
    )
    assert response.status_code == 403, (method, path, response.status_code)
    if path.startswith("/api/"):
        assert response.json()["error"] == "Only admins of your org can open this."
    else:
        assert "Only admins of your org can open this." in response.text
        assert "You don&#39;t have access to this page" in response.text
        assert "Admin Portal" not in response.text


def test_every_admin_page_is_in_the_admin_list() -> None:
    assert {p for _, p in ADMIN_ROUTES} >= {
        "/admin/integrations/connections",
        "/admin/privacy/data-sharing",
        "/admin/users",
        "/api/v1/users",
        "/api/v1/connection",
        "/api/v1/export-settings",
        "/api/v1/data-sharing",
        "/api/v1/writeback-settings",
    }
