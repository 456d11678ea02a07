"""CSRF: every unsafe portal route and session-authenticated API write needs the token."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from gtmsync.web.security import CSRF_HEADER
from tests.fixtures.web import WebOrg, csrf_from, page_csrf, sign_in

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def unsafe_portal_routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = []
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if path.startswith(("/api/", "/static")):
            continue
        routes.extend((method, path) for method in sorted((route.methods or set()) & UNSAFE))
    return routes


def _concrete(path: str) -> str:
    return path.replace("{token_id}", str(uuid.uuid4())).replace("{user_id}", str(uuid.uuid4()))


class TestPortalForms:
    def test_the_app_has_unsafe_portal_routes_to_check(self, app: FastAPI) -> None:
        routes = unsafe_portal_routes(app)
        assert ("POST", "/sign-in") in routes
        assert ("POST", "/admin/users") in routes

    @pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
    def test_every_unsafe_portal_route_refuses_a_bad_token(
        self, app: FastAPI, admin_client: TestClient, token: str | None
    ) -> None:
        for method, path in unsafe_portal_routes(app):
            if path == "/sign-in":
                continue  # pre-session; covered below
            data = {"name": "x"} if token is None else {"name": "x", "csrf_token": token}
            response = admin_client.request(
                method, _concrete(path), data=data, follow_redirects=False
            )
            assert response.status_code == 403, (method, path, response.status_code)
            assert "security token" in response.text
        # The session survived all of it: refusing a request does not sign anyone out.
        assert admin_client.get("/search").status_code == 200

    @pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
    def test_sign_in_form_needs_the_pre_session_token(
        self, client: TestClient, web_org: WebOrg, token: str | None
    ) -> None:
        client.get("/sign-in")
        data = {"email": web_org.member.email, "password": web_org.member.password}
        if token is not None:
            data["csrf_token"] = token
        response = client.post("/sign-in", data=data, follow_redirects=False)
        assert response.status_code == 403

    def test_sign_in_token_from_another_browser_is_refused(
        self, client: TestClient, make_client: Callable[[], TestClient], web_org: WebOrg
    ) -> None:
        other = make_client()
        foreign_token = csrf_from(other.get("/sign-in").text)
        client.get("/sign-in")
        data = {
            "email": web_org.member.email,
            "password": web_org.member.password,
            "csrf_token": foreign_token,
        }
        assert client.post("/sign-in", data=data, follow_redirects=False).status_code == 403

    def test_a_valid_token_is_accepted(self, admin_client: TestClient) -> None:
        token = page_csrf(admin_client, "/settings/api-tokens")
        response = admin_client.post(
            "/settings/api-tokens", data={"name": "script", "csrf_token": token}
        )
        assert response.status_code == 201
        assert "gtm_" in response.text

    def test_session_token_of_another_user_is_refused(
        self, signed_in_client: TestClient, admin_client: TestClient
    ) -> None:
        foreign = page_csrf(admin_client)
        response = signed_in_client.post(
            "/settings/api-tokens",
            data={"name": "x", "csrf_token": foreign},
            follow_redirects=False,
        )
        assert response.status_code == 403


class TestApiCsrf:
    def test_session_cookie_write_without_header_is_refused(
        self, signed_in_client: TestClient
    ) -> None:
        response = signed_in_client.post("/api/v1/api-tokens", json={"name": "x"})
        assert response.status_code == 403
        assert response.json()["field"] == "csrf_token"

    def test_session_cookie_write_with_wrong_header_is_refused(
        self, signed_in_client: TestClient
    ) -> None:
        response = signed_in_client.post(
            "/api/v1/api-tokens", json={"name": "x"}, headers={CSRF_HEADER: "nope"}
        )
        assert response.status_code == 403

    def test_session_cookie_write_with_header_is_accepted(
        self, signed_in_client: TestClient
    ) -> None:
        token = page_csrf(signed_in_client)
        response = signed_in_client.post(
            "/api/v1/api-tokens", json={"name": "x"}, headers={CSRF_HEADER: token}
        )
        assert response.status_code == 201

    def test_session_cookie_reads_need_no_header(self, signed_in_client: TestClient) -> None:
        assert signed_in_client.get("/api/v1/api-tokens").status_code == 200

    def test_bearer_tokens_skip_csrf(
        self, signed_in_client: TestClient, client: TestClient
    ) -> None:
        token = page_csrf(signed_in_client)
        created = signed_in_client.post(
            "/api/v1/api-tokens", json={"name": "x"}, headers={CSRF_HEADER: token}
        ).json()
        response = client.post(
            "/api/v1/api-tokens",
            json={"name": "second"},
            headers={"Authorization": f"Bearer {created['token']}"},
        )
        assert response.status_code == 201


def test_sign_in_then_forms_use_the_session_token(client: TestClient, web_org: WebOrg) -> None:
    pre = csrf_from(client.get("/sign-in").text)
    assert sign_in(client, web_org.member).status_code == 303
    assert page_csrf(client) != pre
