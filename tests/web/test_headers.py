"""Security headers, request IDs, health probes and error shapes on every kind of response."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gtmsync.web.security import safe_next
from tests.fixtures.web import WebOrg, sign_in

BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


class TestSecurityHeaders:
    @pytest.mark.parametrize(
        "path", ["/sign-in", "/search", "/api/v1/me", "/healthz", "/static/gtmsync.css", "/nope"]
    )
    def test_present_everywhere(self, client: TestClient, path: str) -> None:
        response = client.get(path, follow_redirects=False)
        for name, value in BASE_HEADERS.items():
            assert response.headers[name] == value, (path, name)
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]

    def test_portal_csp_is_strict(self, client: TestClient) -> None:
        csp = client.get("/sign-in").headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "http" not in csp  # no CDN anywhere on portal pages

    def test_pages_are_not_cached(self, signed_in_client: TestClient) -> None:
        assert signed_in_client.get("/search").headers["cache-control"] == "no-store"

    def test_portal_pages_load_nothing_from_elsewhere(self, admin_client: TestClient) -> None:
        for path in [
            "/search",
            "/settings/integrations",
            "/settings/api-tokens",
            "/admin/integrations/connections",
            "/admin/privacy/data-sharing",
            "/admin/users",
        ]:
            html = admin_client.get(path).text
            assert 'src="http' not in html, path
            assert 'href="http' not in html, path
            assert "<script" not in html, path


class TestRequestId:
    def test_generated_when_absent(self, client: TestClient) -> None:
        first = client.get("/healthz").headers["x-request-id"]
        second = client.get("/healthz").headers["x-request-id"]
        assert len(first) == len(second) == 32
        assert first != second

    def test_echoed_when_given(self, client: TestClient) -> None:
        response = client.get("/healthz", headers={"X-Request-ID": "abc-123.x_y"})
        assert response.headers["x-request-id"] == "abc-123.x_y"

    def test_unsafe_ids_are_replaced(self, client: TestClient) -> None:
        response = client.get("/healthz", headers={"X-Request-ID": "a b\tinjected"})
        assert response.headers["x-request-id"] != "a b\tinjected"
        assert " " not in response.headers["x-request-id"]

    def test_error_pages_show_it(self, signed_in_client: TestClient) -> None:
        response = signed_in_client.get("/admin/users", headers={"X-Request-ID": "trace-42"})
        assert response.status_code == 403
        assert "trace-42" in response.text


class TestProbes:
    def test_healthz(self, client: TestClient) -> None:
        assert client.get("/healthz").json() == {"status": "ok"}

    def test_readyz_reaches_the_database_and_the_queue(self, client: TestClient) -> None:
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "checks": {"database": "ok", "queue": "ok"}}


class TestNotFound:
    def test_api_404_has_the_error_shape(self, signed_in_client: TestClient) -> None:
        response = signed_in_client.get("/api/v1/nothing-here")
        assert response.status_code == 404
        assert response.json() == {"error": "Not found.", "field": None, "fix": None}

    def test_portal_404_is_a_page(self, signed_in_client: TestClient) -> None:
        response = signed_in_client.get("/nothing-here")
        assert response.status_code == 404
        assert "Page not found" in response.text


class TestOpenRedirect:
    @pytest.mark.parametrize(
        "target",
        [
            "https://evil.example/",
            "//evil.example/path",
            "/\\evil.example",
            "\\\\evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            "/search\r\nSet-Cookie: x=1",
            "",
        ],
    )
    def test_foreign_next_values_fall_back_to_search(
        self, client: TestClient, web_org: WebOrg, target: str
    ) -> None:
        response = sign_in(client, web_org.member, next_path=target)
        assert response.status_code == 303
        assert response.headers["location"] == "/search"

    def test_sign_in_form_drops_a_foreign_next(self, client: TestClient) -> None:
        html = client.get("/sign-in", params={"next": "https://evil.example/"}).text
        assert "evil.example" not in html

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("/admin/users?x=1#top", "/admin/users?x=1#top"),
            ("/", "/"),
            ("//x", "/search"),
            ("/%2F%2Fx", "/%2F%2Fx"),  # stays a path on this site
            ("search", "/search"),
        ],
    )
    def test_safe_next(self, value: str, expected: str) -> None:
        assert safe_next(value) == expected
