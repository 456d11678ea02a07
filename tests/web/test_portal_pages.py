"""Portal pages over the real app: navigation, placeholders, API tokens and adding users."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import service as platform_service
from tests.fixtures.web import Login, WebOrg, page_csrf, sign_in

MEMBER_PAGES = {
    "/search": "<h1>Advanced Search</h1>",
    "/search/saved": "<h1>Saved searches</h1>",
    "/my-target-accounts": "<h1>My Target Accounts</h1>",
    "/exports": "<h1>Export history</h1>",
    "/activities": "<h1>Activities</h1>",
    "/settings/integrations": "<h1>Integrations</h1>",
    "/settings/api-tokens": "<h1>API tokens</h1>",
}
ADMIN_PAGES = {
    "/admin/integrations/connections": "<h1>Connections</h1>",
    "/admin/integrations/dynamics/export": "<h1>Export Preferences</h1>",
    "/admin/integrations/dynamics/import-mapping": "<h1>Import Mapping</h1>",
    "/admin/integrations/dynamics/search-filters": "<h1>Advanced Search Filter Settings</h1>",
    "/admin/integrations/dynamics/writeback": "<h1>CRM Writeback</h1>",
    "/admin/privacy/data-sharing": "<h1>Data Sharing</h1>",
    "/admin/users": "<h1>Users</h1>",
    "/admin/audit-log": "<h1>Audit log</h1>",
}


def nav_links(html: str) -> list[str]:
    nav = html.split('<nav class="sidenav" aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'href="([^"]+)"', nav)


class TestNavigation:
    def test_admin_sees_every_entry(self, admin_client: TestClient) -> None:
        html = admin_client.get("/search").text
        assert nav_links(html) == [*MEMBER_PAGES, *ADMIN_PAGES]
        assert "Admin Portal" in html
        assert "Privacy &amp; Security" in html

    def test_member_sees_no_admin_portal(self, signed_in_client: TestClient) -> None:
        html = signed_in_client.get("/search").text
        assert nav_links(html) == list(MEMBER_PAGES)
        assert "Admin Portal" not in html

    @pytest.mark.parametrize("path", [*MEMBER_PAGES, *ADMIN_PAGES])
    def test_each_page_has_its_heading_and_marks_itself_current(
        self, admin_client: TestClient, path: str
    ) -> None:
        response = admin_client.get(path)
        assert response.status_code == 200
        assert ({**MEMBER_PAGES, **ADMIN_PAGES})[path] in response.text
        assert f'<a href="{path}" aria-current="page">' in response.text

    def test_home_and_admin_root_redirect(self, admin_client: TestClient) -> None:
        assert admin_client.get("/", follow_redirects=False).headers["location"] == "/search"
        admin_root = admin_client.get("/admin", follow_redirects=False)
        assert admin_root.headers["location"] == "/admin/integrations/connections"

    def test_placeholders_say_what_arrives_later(self, admin_client: TestClient) -> None:
        assert "Connect Dynamics" in admin_client.get("/settings/integrations").text
        connections = admin_client.get("/admin/integrations/connections", params={"q": "<b>"})
        assert "No integration matches these filters." in connections.text
        assert 'value="&lt;b&gt;"' in connections.text  # echoed, escaped


class TestDataSharing:
    def test_contract_opt_out_locks_the_page(
        self, admin_client: TestClient, app: FastAPI, web_org: WebOrg
    ) -> None:
        assert "not editable" not in admin_client.get("/admin/privacy/data-sharing").text
        with session_scope(app.state.session_factory) as session:
            platform_service.get_org(session, web_org.org_id).data_sharing_contract_opt_out = True
        assert "not editable" in admin_client.get("/admin/privacy/data-sharing").text


class TestApiTokenPage:
    def test_create_shows_the_token_once_then_lists_and_revokes(
        self, signed_in_client: TestClient, client: TestClient
    ) -> None:
        created = signed_in_client.post(
            "/settings/api-tokens",
            data={"name": "Nightly export", "csrf_token": page_csrf(signed_in_client)},
        )
        assert created.status_code == 201
        token_match = re.search(r'id="new-token" type="text" value="(gtm_[^"]+)"', created.text)
        assert token_match is not None
        token = token_match.group(1)
        assert "shown only once" in created.text
        listing = signed_in_client.get("/settings/api-tokens").text
        assert "Nightly export" in listing
        assert token not in listing
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).is_success

        action = re.search(r'action="(/settings/api-tokens/[^"]+/revoke)"', listing)
        assert action is not None
        revoked = signed_in_client.post(
            action.group(1), data={"csrf_token": page_csrf(signed_in_client)}
        )
        assert revoked.status_code == 200
        assert "The token was revoked." in revoked.text
        assert "revoked" in revoked.text
        assert (
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code
            == 401
        )

    def test_blank_name_re_renders_with_the_message(self, signed_in_client: TestClient) -> None:
        response = signed_in_client.post(
            "/settings/api-tokens", data={"name": "  ", "csrf_token": page_csrf(signed_in_client)}
        )
        assert response.status_code == 400
        assert "Give the token a name." in response.text
        assert 'aria-invalid="true"' in response.text


class TestAddUser:
    def _post(self, client: TestClient, **fields: str) -> str:
        data = {"name": "Grace Hopper", "email": "grace@example.com", "role": "user"}
        data |= {"password": "a-long-password", "csrf_token": page_csrf(client, "/admin/users")}
        data |= fields
        response = client.post("/admin/users", data=data)
        return f"{response.status_code} {response.text}"

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"name": " "}, "Enter the person&#39;s name."),
            ({"email": "not-an-email"}, "is not an email address"),
            ({"password": "short"}, "The password is too short."),
            ({"role": "owner"}, "&#39;owner&#39; is not a role."),
        ],
    )
    def test_bad_input_is_shown_next_to_the_field(
        self, admin_client: TestClient, fields: dict[str, str], message: str
    ) -> None:
        result = self._post(admin_client, **fields)
        assert result.startswith("400 ")
        assert message in result
        assert "a-long-password" not in result  # never echo a password back

    def test_duplicate_email_is_409(self, admin_client: TestClient, web_org: WebOrg) -> None:
        result = self._post(admin_client, email=web_org.member.email)
        assert result.startswith("409 ")
        assert "already exists" in result

    def test_added_user_is_listed_and_can_sign_in(
        self,
        admin_client: TestClient,
        make_client: Callable[[], TestClient],
    ) -> None:
        result = self._post(admin_client, role="admin")
        assert result.startswith("200 ")
        assert "Grace Hopper (grace@example.com) was added." in result
        assert "<td>grace@example.com</td>" in result
        newcomer = make_client()
        login = Login(uuid.UUID(int=0), "grace@example.com", "a-long-password", "Grace Hopper")
        assert sign_in(newcomer, login).status_code == 303
        assert newcomer.get("/api/v1/me").json()["role"] == "admin"


class TestPortalEdges:
    def test_htmx_requests_get_hx_redirect(self, signed_in_client: TestClient) -> None:
        response = signed_in_client.get("/", headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert response.headers["hx-redirect"] == "/search"

    def test_malformed_path_parameter_renders_an_error_page(
        self, signed_in_client: TestClient
    ) -> None:
        response = signed_in_client.post(
            "/settings/api-tokens/not-a-uuid/revoke",
            data={"csrf_token": page_csrf(signed_in_client)},
        )
        assert response.status_code == 400
        assert "Check your input" in response.text
        assert "token_id" in response.text
