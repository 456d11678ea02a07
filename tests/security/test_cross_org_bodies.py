"""Org A's IDs carried in bodies, forms and OAuth callbacks rather than paths.

test_cross_org.py walks the paths; here org B (connected to Dynamics too, so the requests
reach the code that reads the IDs) sends org A's user IDs in user-mapping writes, org A's
export item IDs in decisions on its own export, and org A's OAuth `state` to the callback.
Each is refused, shows nothing of org A's, and leaves org A's rows as they were.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gtmsync.connection import gateway
from gtmsync.connection import service as connection_service
from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import service as platform_service
from tests.fixtures.connection import sign_in as idp_sign_in
from tests.fixtures.factories import make_company
from tests.fixtures.web import csrf_from, page_csrf, sign_in
from tests.security.world import World, bearer

pytestmark = pytest.mark.xdist_group("security-cross-org-bodies")


@pytest.fixture(scope="module")
def b_connected(world: World) -> World:
    """Org B connects the same tenant (its own integration, users mapped by email)."""
    domain = world.server.directory.tenant().domain
    with session_scope(world.factory) as session:
        org = platform_service.get_org(session, world.b.org_id)
        admin = platform_service.get_user(session, world.b.org_id, world.b.admin.user_id)
        integration = connection_service.record_service_connection(
            session,
            org=org,
            admin=admin,
            org_url=world.server.org_url,
            authority=world.server.authority,
            signed_in=idp_sign_in(world.server, world.settings, f"avery.admin@{domain}"),
            settings=world.settings,
        )
        with gateway.client_for(session, org.id, settings=world.settings) as client:
            candidates = connection_service.dynamics_users(client)
        connection_service.rebuild_user_mapping(session, integration, candidates)
    # Both orgs now see the tenant's Dynamics users (Avery, Sam...) by design.
    world.forbidden -= {world.a.admin.email, world.a.seller.email}
    return world


@pytest.fixture
def b_company(b_connected: World) -> str:
    """A platform company for org B to export (platform data: created before the snapshot)."""
    with session_scope(b_connected.factory) as session:
        return make_company(session, name="B's pick").platform_id


@pytest.fixture
def unchanged(b_connected: World) -> Iterator[World]:
    before = b_connected.org_state()
    yield b_connected
    assert b_connected.org_state() == before, "org A's rows changed"


def test_user_mapping_api_refuses_org_a_users(unchanged: World) -> None:
    w = unchanged
    response = w.b_admin.put(
        "/api/v1/connection/user-mappings",
        json={"user_id": w.a.ids["user"], "systemuser_id": None},
        headers=bearer(w.b_admin_token),
    )
    assert response.status_code == 404, response.text
    assert not w.leaks(response.text)


def test_user_mapping_form_refuses_org_a_users(unchanged: World) -> None:
    w = unchanged
    page = w.b_admin.get("/admin/integrations/dynamics/user-mapping")
    assert page.status_code == 200
    response = w.b_admin.post(
        "/admin/integrations/dynamics/user-mapping",
        data={"user_id": w.a.ids["user"], "systemuser_id": "", "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code in (400, 404), response.status_code
    assert not w.leaks(response.text)


def test_decisions_on_own_export_refuse_org_a_items(b_company: str, unchanged: World) -> None:
    w, pid = unchanged, b_company
    planned = w.b_member.post(
        "/api/v1/exports",
        json={"object": "account", "platform_ids": [pid]},
        headers=bearer(w.b_member_token),
    )
    assert planned.status_code == 201, planned.text
    response = w.b_member.post(
        f"/api/v1/exports/{planned.json()['id']}/decisions",
        json={"decisions": [{"item_id": w.a.ids["export_item"], "duplicate": "do_not_export"}]},
        headers=bearer(w.b_member_token),
    )
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "item_id"
    assert not w.leaks(response.text.replace(w.a.ids["export_item"], ""))  # beyond the echo


def test_org_a_oauth_state_is_useless_to_org_b(b_connected: World) -> None:
    """A's admin starts a connection; B's admin replays A's state at the callback."""
    w = b_connected
    with TestClient(w.app) as a_admin:
        assert sign_in(a_admin, w.a.admin).status_code == 303
        started = a_admin.post(
            "/admin/integrations/dynamics/change-user",
            data={"csrf_token": page_csrf(a_admin, "/admin/integrations/dynamics")},
        )
        assert started.status_code == 200, started.text[:500]
        match = re.search(r'<a href="([^"]+)" id="continue"', started.text)
        assert match is not None
        state = re.search(r"[?&]state=([^&]+)", html.unescape(match.group(1)))
        assert state is not None
        before = w.org_state()  # A's pending attempt included
        response = w.b_admin.get(
            "/connection/callback",
            params={"state": state.group(1), "code": "stolen-code"},
            follow_redirects=False,
        )
        assert response.status_code != 303 or "error" in response.headers.get("location", "")
        assert not w.leaks(response.text + response.headers.get("location", ""))
        assert w.org_state() == before, "B's replay consumed or changed A's sign-in attempt"
