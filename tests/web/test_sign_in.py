"""Sign-in, sign-out, cookies and session fixation over the real app and database."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import service as platform_service
from gtmsync.web.security import PRESESSION_COOKIE, SESSION_COOKIE
from tests.fixtures.web import Login, WebOrg, csrf_from, page_csrf, sign_in


def _set_cookie_header(response_headers: list[str], name: str) -> str:
    matches = [h for h in response_headers if h.startswith(f"{name}=")]
    assert matches, f"no Set-Cookie for {name}"
    return matches[-1]


class TestSignIn:
    def test_success_redirects_to_search_and_sets_a_hardened_cookie(
        self, client: TestClient, web_org: WebOrg
    ) -> None:
        response = sign_in(client, web_org.member)
        assert response.status_code == 303
        assert response.headers["location"] == "/search"
        cookie = _set_cookie_header(response.headers.get_list("set-cookie"), SESSION_COOKIE)
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
        assert "path=/" in attributes
        assert "secure" not in attributes  # secure_cookies is off in tests (plain HTTP)
        page = client.get("/search")
        assert page.status_code == 200
        assert web_org.member.name in page.text

    def test_secure_flag_follows_the_setting(self, app: FastAPI, web_org: WebOrg) -> None:
        app.state.settings.secure_cookies = True
        with TestClient(app, base_url="https://testserver") as https_client:
            response = sign_in(https_client, web_org.member)
            cookie = _set_cookie_header(response.headers.get_list("set-cookie"), SESSION_COOKIE)
            assert "secure" in {part.strip().lower() for part in cookie.split(";")[1:]}

    def test_unknown_email_and_wrong_password_get_the_same_message(
        self, client: TestClient, web_org: WebOrg
    ) -> None:
        wrong_password = Login(web_org.member.user_id, web_org.member.email, "not-it-at-all", "")
        unknown = Login(web_org.member.user_id, "nobody@example.com", web_org.member.password, "")
        first = sign_in(client, wrong_password)
        second = sign_in(client, unknown)
        assert first.status_code == second.status_code == 400
        assert "Email or password is incorrect." in first.text
        assert "Email or password is incorrect." in second.text
        assert SESSION_COOKIE not in client.cookies

    def test_email_in_several_orgs_asks_for_the_org(
        self, client: TestClient, make_web_org: Callable[..., WebOrg], app: FastAPI
    ) -> None:
        first, second = make_web_org(), make_web_org()
        with session_scope(app.state.session_factory) as session:
            org = platform_service.get_org(session, second.org_id)
            platform_service.create_user(
                session, org=org, email=first.member.email, name="Twin", password="another-password"
            )
        ambiguous = sign_in(client, first.member)
        assert ambiguous.status_code == 400
        assert 'name="org"' in ambiguous.text
        chosen = sign_in(client, first.member, org=first.slug)
        assert chosen.status_code == 303
        me = client.get("/api/v1/me").json()
        assert me["org"]["slug"] == first.slug

    def test_signed_out_pages_redirect_to_sign_in_with_next(self, client: TestClient) -> None:
        response = client.get("/settings/api-tokens?x=1", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in?next=%2Fsettings%2Fapi-tokens%3Fx%3D1"

    def test_next_is_followed_when_same_site(self, client: TestClient, web_org: WebOrg) -> None:
        response = sign_in(client, web_org.member, next_path="/settings/integrations?tab=1")
        assert response.headers["location"] == "/settings/integrations?tab=1"


class TestSessionLifecycle:
    def test_tampered_cookie_is_rejected(self, signed_in_client: TestClient) -> None:
        value = signed_in_client.cookies[SESSION_COOKIE]
        forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
        signed_in_client.cookies.set(SESSION_COOKIE, forged)
        response = signed_in_client.get("/search", follow_redirects=False)
        assert response.status_code == 303
        assert signed_in_client.get("/api/v1/me").status_code == 401

    def test_sign_in_issues_a_new_session_and_kills_the_old_one(
        self, make_client: Callable[[], TestClient], web_org: WebOrg
    ) -> None:
        browser = make_client()
        assert sign_in(browser, web_org.member).status_code == 303
        old_cookie = browser.cookies[SESSION_COOKIE]
        assert sign_in(browser, web_org.member).status_code == 303
        new_cookie = browser.cookies[SESSION_COOKIE]
        assert new_cookie != old_cookie
        replay = make_client()
        replay.cookies.set(SESSION_COOKIE, old_cookie)
        assert replay.get("/api/v1/me").status_code == 401

    def test_pre_sign_in_cookie_is_not_reused_as_a_session(
        self, client: TestClient, web_org: WebOrg
    ) -> None:
        client.get("/sign-in")
        presession = client.cookies[PRESESSION_COOKIE]
        response = sign_in(client, web_org.member)
        assert response.status_code == 303
        assert client.cookies[SESSION_COOKIE] != presession
        assert PRESESSION_COOKIE not in client.cookies  # cleared at sign-in

    def test_sign_out_deletes_the_server_session(
        self, signed_in_client: TestClient, make_client: Callable[[], TestClient]
    ) -> None:
        cookie = signed_in_client.cookies[SESSION_COOKIE]
        token = page_csrf(signed_in_client)
        response = signed_in_client.post(
            "/sign-out", data={"csrf_token": token}, follow_redirects=False
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/sign-in"
        assert SESSION_COOKIE not in signed_in_client.cookies
        replay = make_client()
        replay.cookies.set(SESSION_COOKIE, cookie)
        assert replay.get("/search", follow_redirects=False).status_code == 303
        assert replay.get("/api/v1/me").status_code == 401

    def test_sign_out_is_post_only(self, signed_in_client: TestClient) -> None:
        assert signed_in_client.get("/sign-out").status_code == 405
        assert signed_in_client.get("/search").status_code == 200

    def test_sign_out_shows_a_message_on_the_sign_in_page(
        self, signed_in_client: TestClient
    ) -> None:
        token = page_csrf(signed_in_client)
        page = signed_in_client.post("/sign-out", data={"csrf_token": token})
        assert page.status_code == 200
        assert "You are signed out." in page.text
        assert csrf_from(page.text)
