"""The real hub process (`gtmsync serve`) over loopback HTTP, as browser tests use it."""

from __future__ import annotations

import re

import httpx2

from tests.fixtures.web import HubServer


def test_hub_server_serves_the_portal_and_api(hub_server: HubServer) -> None:
    org = hub_server.create_org()
    with httpx2.Client(base_url=hub_server.base_url, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json()["status"] == "ok"
        assert (
            http.get("/healthz", headers={"X-Request-ID": "hub-1"}).headers["x-request-id"]
            == "hub-1"
        )

        form = http.get("/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        signed_in = http.post(
            "/sign-in",
            data={
                "email": org.admin.email,
                "password": org.admin.password,
                "csrf_token": token.group(1),
            },
        )
        assert signed_in.status_code == 303
        assert http.get("/api/v1/me").json()["user"]["email"] == org.admin.email
        assert http.get("/admin/users").status_code == 200


def test_hub_server_stops_cleanly(hub_server: HubServer) -> None:
    url = hub_server.url("/healthz")
    assert httpx2.get(url, timeout=10).status_code == 200
    hub_server.stop()
    try:
        httpx2.get(url, timeout=2)
    except httpx2.TransportError:
        return
    raise AssertionError("the hub still answers after stop()")
