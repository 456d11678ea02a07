"""Org B's people call every route of the app with the IDs of org A's objects.

Every route comes from `app.routes` (tests/security/routes.py): a route whose path names an
object answers 403 or 404 to org B, whatever the method, for its admin and its member, over
the API (bearer token) and the portal (session cookie with a valid CSRF token, so the refusal
is the org check, not CSRF). No route, with or without parameters, shows org B anything of org
A's (names carrying the canary, IDs, emails, tokens; in the body or the headers), answers 5xx,
or changes a row org A owns.

A route whose path parameter this suite does not know fails `test_every_path_parameter_is_known`
until someone says which object of org A it should point at.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.web import page_csrf
from tests.security.routes import ROUTES, Route
from tests.security.world import World, bearer

# Everything in this module attacks one world; keep it on one xdist worker.
pytestmark = pytest.mark.xdist_group("security-cross-org")

#: Path parameters that name an object an org owns -> the kind of org A's object to use.
OWNED = {
    "user_id": "user",
    "token_id": "token",
    "export_id": "export",
    "saved_id": "saved",
    "activity_id": "activity",
}
#: Platform records (companies, contacts) are shared by every org: org B may open them, but
#: must not see what org A knows about them (its Dynamics indicators, owners, activities).
SHARED = {"company_id": "company", "contact_id": "contact"}
#: Names in org B's own namespace (settings per object or table): no object of org A's to
#: point at, but the answer must still hold nothing of org A's.
NAMES: dict[str, str] = {
    "object_name": "account",
    "object": "account",
    "table": "account",
    "attribute": "name",
}
#: The same parameter name meaning different things on different routes.
NAMES_BY_PATH: dict[tuple[str, str], str] = {
    ("/api/v1/search/{obj}", "obj"): "companies",
    ("/api/v1/search/filter-settings/fields/{obj}/{attribute}", "obj"): "account",
}

Body = Callable[[World], dict[str, Any]]
#: Valid bodies for routes on org A's objects that take one, so the request reaches the
#: org check instead of stopping at validation (a 422 there proves nothing).
BODIES: dict[tuple[str, str], Body] = {
    ("POST", "/api/v1/exports/{export_id}/decisions"): lambda w: {
        "json": {"decisions": [{"item_id": w.a.ids["export_item"], "duplicate": "do_not_export"}]}
    },
    ("POST", "/exports/{export_id}/decisions"): lambda w: {
        "data": {"item_id": w.a.ids["export_item"], "duplicate": "do_not_export", "account": ""}
    },
}


def _value(world: World, route: Route, param: str) -> str:
    if param in OWNED:
        return world.a.ids[OWNED[param]]
    if param in SHARED:
        return world.a.ids[SHARED[param]]
    return NAMES_BY_PATH.get((route.path, param)) or NAMES[param]


def _concrete(world: World, route: Route) -> str:
    path = route.path
    for param in route.params:
        path = path.replace("{" + param + "}", _value(world, route, param))
    return path


def _owned(route: Route) -> bool:
    return any(p in OWNED for p in route.params)


#: Operator endpoints, not org routes: probes and Prometheus metrics (whose per-org series name
#: orgs by ID; the operator guards them with GTMSYNC_METRICS_TOKEN or the network).
OPERATOR = frozenset({"/healthz", "/readyz", "/metrics"})
ATTACKED = [
    r
    for r in ROUTES
    if r.path not in OPERATOR and not r.path.startswith(("/static", "/api/v1/docs"))
]


def test_every_path_parameter_is_known() -> None:
    known = set(OWNED) | set(SHARED) | set(NAMES) | {p for _, p in NAMES_BY_PATH}
    unknown = {(r.id, p) for r in ROUTES for p in r.params if p not in known}
    assert not unknown, (
        "routes with a path parameter the security suite cannot fill: add it to OWNED (an "
        "object an org owns: create one in org A in tests/security/world.py), SHARED or NAMES",
        sorted(unknown),
    )


def test_the_walk_covers_the_object_routes() -> None:
    owned = {r.id for r in ATTACKED if _owned(r)}
    assert {
        "GET /api/v1/exports/{export_id}",
        "DELETE /api/v1/api-tokens/{token_id}",
        "GET /api/v1/users/{user_id}",
        "DELETE /api/v1/search/saved/{saved_id}",
        "POST /api/v1/activities/{activity_id}/retry",
        "POST /settings/api-tokens/{token_id}/revoke",
        "GET /search/saved/{saved_id}",
    } <= owned
    assert len(ATTACKED) >= 100


def _attack(world: World, client: TestClient, token: str, route: Route) -> Any:
    path = _concrete(world, route)
    extra = BODIES.get((route.method, route.path), lambda _w: {})(world)
    if route.api:
        return client.request(
            route.method, path, headers=bearer(token), follow_redirects=False, **extra
        )
    if route.method == "GET":
        return client.get(path, follow_redirects=False)
    data = {**extra.get("data", {}), "csrf_token": page_csrf(client)}
    return client.request(route.method, path, data=data, follow_redirects=False)


def test_org_a_reaches_its_own_objects(world: World) -> None:
    """The control: the IDs the walk uses are real, so a 404 to org B is the org check."""
    readable = [r for r in ATTACKED if _owned(r) and r.method == "GET"]
    assert readable
    for route in readable:
        if route.api:
            response = world.b_admin.get(
                _concrete(world, route), headers=bearer(world.a.admin_token)
            )
            assert response.status_code == 200, (route.id, response.status_code)


# Org B's admin walks every route; its member walks those that name an object of org A's.
ATTACKS = [(r, "admin") for r in ATTACKED] + [(r, "member") for r in ATTACKED if _owned(r)]


@pytest.mark.parametrize(("route", "who"), ATTACKS, ids=[f"{w} {r.id}" for r, w in ATTACKS])
def test_org_b_cannot_reach_org_a(world: World, route: Route, who: str) -> None:
    client, token = (
        (world.b_admin, world.b_admin_token)
        if who == "admin"
        else (world.b_member, world.b_member_token)
    )
    before = world.org_state()
    response = _attack(world, client, token, route)
    status = response.status_code
    assert status < 500, (route.id, status, response.text[:500])
    if _owned(route):
        assert status in (403, 404), (route.id, status, response.text[:500])
    shown = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    assert not world.leaks(shown), (route.id, status, world.leaks(shown))
    assert world.org_state() == before, f"{route.id} changed org A's rows"


def test_crm_filters_read_only_the_callers_snapshot(world: World) -> None:
    """Org A's company is in A's Dynamics (owner, account); org B filtering by A's owner ID
    or asking for companies in Dynamics finds nothing and sees no indicator of A's."""
    owner = world.a.ids["dynamics_owner"]
    for params in ({"crm_owner__in": owner}, {"crm_owner__in": "all"}):
        response = world.b_member.get(
            "/api/v1/search/companies", params=params, headers=bearer(world.b_member_token)
        )
        assert response.status_code in (200, 400), response.text[:300]
        if response.status_code == 200:
            assert response.json()["hits"] == [], params
        assert not world.leaks(response.text.replace(owner, "")), params
    # The control: org A's own search finds its company through the same filter.
    mine = world.b_member.get(
        "/api/v1/search/companies",
        params={"crm_owner__in": owner},
        headers=bearer(world.a.seller_token),
    )
    assert [h["platform_id"] for h in mine.json()["hits"]] == [world.a.ids["company_platform"]]
