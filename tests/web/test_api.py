"""The `/api/v1` skeleton: who am I, users (admin), API tokens, org isolation, OpenAPI."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.fixtures.web import WebOrg, page_csrf, sign_in


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue_token(client: TestClient, name: str = "script") -> dict[str, str]:
    response = client.post(
        "/api/v1/api-tokens", json={"name": name}, headers={"X-CSRF-Token": page_csrf(client)}
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


class TestMe:
    def test_session_user(self, signed_in_client: TestClient, web_org: WebOrg) -> None:
        body = signed_in_client.get("/api/v1/me").json()
        assert body["user"]["email"] == web_org.member.email
        assert body["org"]["slug"] == web_org.slug
        assert body["role"] == "user"

    def test_without_credentials_is_401_with_the_error_shape(self, client: TestClient) -> None:
        response = client.get("/api/v1/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert set(body) == {"error", "field", "fix"}
        assert "Bearer" in body["fix"]

    def test_unknown_bearer_token_is_401(self, client: TestClient) -> None:
        response = client.get("/api/v1/me", headers=bearer("gtm_not-a-real-token"))
        assert response.status_code == 401
        assert "revoked" in response.json()["error"]

    def test_a_bad_bearer_token_does_not_fall_back_to_the_cookie(
        self, signed_in_client: TestClient
    ) -> None:
        response = signed_in_client.get("/api/v1/me", headers=bearer("gtm_wrong"))
        assert response.status_code == 401


class TestApiTokens:
    def test_create_use_revoke_then_401_at_once(
        self, signed_in_client: TestClient, client: TestClient, web_org: WebOrg
    ) -> None:
        created = issue_token(signed_in_client)
        assert created["token"].startswith("gtm_")
        assert created["prefix"] == created["token"][:10]
        me = client.get("/api/v1/me", headers=bearer(created["token"]))
        assert me.status_code == 200
        assert me.json()["user"]["email"] == web_org.member.email
        listed = client.get("/api/v1/api-tokens", headers=bearer(created["token"])).json()
        assert [t["id"] for t in listed] == [created["id"]]
        assert "token" not in listed[0]
        revoked = client.delete(
            f"/api/v1/api-tokens/{created['id']}", headers=bearer(created["token"])
        )
        assert revoked.status_code == 204
        assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 401

    def test_revoking_twice_is_404(self, signed_in_client: TestClient) -> None:
        created = issue_token(signed_in_client)
        headers = {"X-CSRF-Token": page_csrf(signed_in_client)}
        url = f"/api/v1/api-tokens/{created['id']}"
        assert signed_in_client.delete(url, headers=headers).status_code == 204
        assert signed_in_client.delete(url, headers=headers).status_code == 404

    def test_blank_name_is_422_naming_the_field(self, signed_in_client: TestClient) -> None:
        response = signed_in_client.post(
            "/api/v1/api-tokens",
            json={"name": ""},
            headers={"X-CSRF-Token": page_csrf(signed_in_client)},
        )
        assert response.status_code == 422
        assert response.json()["field"] == "name"

    def test_malformed_id_is_422(self, signed_in_client: TestClient) -> None:
        response = signed_in_client.delete(
            "/api/v1/api-tokens/not-a-uuid", headers={"X-CSRF-Token": page_csrf(signed_in_client)}
        )
        assert response.status_code == 422
        assert response.json()["field"] == "token_id"


class TestUsers:
    def test_admin_lists_only_their_orgs_users(
        self, admin_client: TestClient, web_org: WebOrg, make_web_org: Callable[..., WebOrg]
    ) -> None:
        other = make_web_org()
        emails = {u["email"] for u in admin_client.get("/api/v1/users").json()}
        assert emails == {web_org.admin.email, web_org.member.email}
        assert other.admin.email not in emails

    def test_member_gets_403(self, signed_in_client: TestClient, web_org: WebOrg) -> None:
        assert signed_in_client.get("/api/v1/users").status_code == 403
        response = signed_in_client.get(f"/api/v1/users/{web_org.admin.user_id}")
        assert response.status_code == 403
        assert response.json()["error"].startswith("Only admins")


class TestOrgIsolation:
    def test_admin_cannot_see_another_orgs_user(
        self, admin_client: TestClient, web_org: WebOrg, make_web_org: Callable[..., WebOrg]
    ) -> None:
        other = make_web_org()
        own = admin_client.get(f"/api/v1/users/{web_org.member.user_id}")
        assert own.status_code == 200
        foreign = admin_client.get(f"/api/v1/users/{other.member.user_id}")
        assert foreign.status_code == 404
        assert foreign.json()["error"] == "User not found."

    def test_admin_cannot_revoke_another_orgs_token(
        self,
        admin_client: TestClient,
        make_client: Callable[[], TestClient],
        make_web_org: Callable[..., WebOrg],
    ) -> None:
        other = make_web_org()
        victim = make_client()
        assert sign_in(victim, other.member).status_code == 303
        victim_token = issue_token(victim)
        response = admin_client.delete(
            f"/api/v1/api-tokens/{victim_token['id']}",
            headers={"X-CSRF-Token": page_csrf(admin_client)},
        )
        assert response.status_code == 404
        portal = admin_client.post(
            f"/settings/api-tokens/{victim_token['id']}/revoke",
            data={"csrf_token": page_csrf(admin_client)},
        )
        assert portal.status_code == 404
        still_works = victim.get("/api/v1/me", headers=bearer(victim_token["token"]))
        assert still_works.status_code == 200

    def test_token_lists_are_per_user(
        self, admin_client: TestClient, signed_in_client: TestClient
    ) -> None:
        issue_token(signed_in_client, "member's")
        assert admin_client.get("/api/v1/api-tokens").json() == []


class TestOpenApi:
    def test_schema_lists_the_api_routes_and_not_the_portal(
        self, client: TestClient, app: FastAPI
    ) -> None:
        schema = client.get("/api/v1/openapi.json").json()
        paths = schema["paths"]
        assert set(paths) >= {
            "/api/v1/me",
            "/api/v1/users",
            "/api/v1/users/{user_id}",
            "/api/v1/api-tokens",
            "/api/v1/api-tokens/{token_id}",
        }
        assert all(path.startswith("/api/v1/") for path in paths)
        assert set(schema["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyCookie"}
        created = paths["/api/v1/api-tokens"]["post"]["responses"]["201"]
        assert created["content"]["application/json"]["schema"]["$ref"].endswith("/ApiTokenCreated")
        assert "401" in paths["/api/v1/me"]["get"]["responses"]
        assert app.openapi()["info"]["title"] == "gtmsync"

    def test_docs_page_is_served(self, client: TestClient) -> None:
        response = client.get("/api/v1/docs")
        assert response.status_code == 200
        assert "swagger-ui" in response.text
        assert "cdn.jsdelivr.net" in response.headers["content-security-policy"]
