"""Sessions and API tokens: fixation, server-side sign-out, revocation that takes effect at once.

tests/web/test_sign_in.py and tests/web/test_api.py check the single steps; here each
property is checked the way an attacker would probe it, over every route of the app: a
cookie planted before sign-in, a cookie kept after sign-out, a token kept after revocation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import service as platform_service
from gtmsync.web.security import PRESESSION_COOKIE, SESSION_COOKIE
from tests.fixtures.web import HubServer, WebOrg, csrf_from, page_csrf, sign_in
from tests.security.routes import ROUTES

_PUBLIC = {"/sign-in", "/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/api/v1/docs"}
PROTECTED = [
    r
    for r in ROUTES
    if r.path not in _PUBLIC and r.method == "GET" and not r.path.startswith("/static")
]


def _concrete(path: str) -> str:
    for name in ("export_id", "saved_id", "activity_id", "user_id", "token_id"):
        path = path.replace("{" + name + "}", "00000000-0000-0000-0000-000000000001")
    for name in ("company_id", "contact_id"):
        path = path.replace("{" + name + "}", "1")
    for name, value in {"obj": "companies", "object": "account", "object_name": "account"}.items():
        path = path.replace("{" + name + "}", value)
    return path.replace("{table}", "account").replace("{attribute}", "name")


def _assert_signed_out(client: TestClient) -> None:
    """The cookie `client` holds opens nothing: every page and API route refuses it."""
    for route in PROTECTED:
        response = client.get(_concrete(route.path), follow_redirects=False)
        if route.api:
            assert response.status_code == 401, (route.id, response.status_code)
        else:
            assert response.status_code == 303, (route.id, response.status_code)
            assert response.headers["location"].startswith("/sign-in"), route.id


class TestSessionFixation:
    def test_a_planted_session_cookie_is_replaced_and_never_becomes_the_victims(
        self, make_client: Callable[[], TestClient], make_web_org: Callable[..., WebOrg]
    ) -> None:
        attacker_org, victim_org = make_web_org(), make_web_org()
        attacker = make_client()
        assert sign_in(attacker, attacker_org.member).status_code == 303
        planted = attacker.cookies[SESSION_COOKIE]  # a valid session: the attacker's own

        victim = make_client()
        victim.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
        assert sign_in(victim, victim_org.member).status_code == 303
        assert victim.cookies[SESSION_COOKIE] != planted
        assert victim.get("/api/v1/me").json()["user"]["email"] == victim_org.member.email

        # The planted ID never acts as the victim (it was ended at the victim's sign-in).
        replay = make_client()
        replay.cookies.set(SESSION_COOKIE, planted)
        assert replay.get("/api/v1/me").status_code == 401

    def test_an_unknown_session_id_planted_before_sign_in_is_not_adopted(
        self, app: FastAPI, make_client: Callable[[], TestClient], web_org: WebOrg
    ) -> None:
        # A correctly signed cookie for an ID the attacker chose (as if the key had leaked
        # to a lesser degree than the database): the server must mint its own ID anyway.
        chosen = "attacker-chosen-session-id"
        planted = app.state.signer.sign_session(chosen)
        victim = make_client()
        victim.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
        assert victim.get("/api/v1/me").status_code == 401  # not a session until signed in
        assert sign_in(victim, web_org.member).status_code == 303
        assert victim.cookies[SESSION_COOKIE] != planted
        replay = make_client()
        replay.cookies.set(SESSION_COOKIE, planted)
        assert replay.get("/api/v1/me").status_code == 401

    def test_the_form_token_changes_at_sign_in(
        self, make_client: Callable[[], TestClient], web_org: WebOrg
    ) -> None:
        browser = make_client()
        before = csrf_from(browser.get("/sign-in").text)
        assert sign_in(browser, web_org.member).status_code == 303
        assert PRESESSION_COOKIE not in browser.cookies
        after = page_csrf(browser)
        assert after != before
        # The pre-sign-in token does not pass as the session's.
        response = browser.post("/settings/api-tokens", data={"name": "x", "csrf_token": before})
        assert response.status_code == 403


class TestSignOut:
    def test_the_old_cookie_opens_nothing_after_sign_out(
        self, make_client: Callable[[], TestClient], web_org: WebOrg
    ) -> None:
        browser = make_client()
        assert sign_in(browser, web_org.admin).status_code == 303
        cookie = browser.cookies[SESSION_COOKIE]
        token = page_csrf(browser)
        other_browser = make_client()  # the same person signed in elsewhere
        assert sign_in(other_browser, web_org.admin).status_code == 303

        assert browser.post("/sign-out", data={"csrf_token": token}).status_code == 200
        replay = make_client()
        replay.cookies.set(SESSION_COOKIE, cookie)
        _assert_signed_out(replay)
        # The old form token is dead too, and signing out ended only that one session.
        response = replay.post(
            "/settings/api-tokens", data={"name": "x", "csrf_token": token}, follow_redirects=False
        )
        assert response.status_code in (303, 403)
        assert other_browser.get("/api/v1/me").status_code == 200


class TestApiTokenRevocation:
    @pytest.mark.parametrize("how", ["api", "portal"])
    def test_the_very_next_request_with_a_revoked_token_is_401_everywhere(
        self, app: FastAPI, make_client: Callable[[], TestClient], web_org: WebOrg, how: str
    ) -> None:
        with session_scope(app.state.session_factory) as session:
            admin = platform_service.get_user(session, web_org.org_id, web_org.admin.user_id)
            issued = platform_service.create_api_token(session, admin, name="to revoke")
            token, token_id = issued.token, issued.record.id
        script = make_client()
        headers = {"Authorization": f"Bearer {token}"}
        assert script.get("/api/v1/users", headers=headers).status_code == 200
        if how == "api":
            revoked = script.delete(f"/api/v1/api-tokens/{token_id}", headers=headers)
            assert revoked.status_code == 204
        else:
            browser = make_client()
            assert sign_in(browser, web_org.admin).status_code == 303
            revoked = browser.post(
                f"/settings/api-tokens/{token_id}/revoke",
                data={"csrf_token": page_csrf(browser, "/settings/api-tokens")},
                follow_redirects=False,
            )
            assert revoked.status_code in (200, 303), revoked.text[:300]
        for route in (r for r in ROUTES if r.api and r.path not in _PUBLIC):
            response = script.request(route.method, _concrete(route.path), headers=headers)
            assert response.status_code == 401, (route.id, response.status_code)
            assert "revoked" in response.json()["error"]


def test_revocation_and_sign_out_reach_every_web_process(
    hub_server: HubServer, tmp_path: Path
) -> None:
    """Two web processes behind a load balancer share nothing but the database: a token
    revoked or a session ended through one is refused by the other on the next request."""
    org = hub_server.create_org()
    with (
        HubServer(database_url=hub_server.database_url, data_dir=tmp_path / "second") as second,
        httpx.Client(base_url=hub_server.base_url) as one,
        httpx.Client(base_url=second.base_url) as two,
    ):
        assert sign_in(one, org.admin).status_code == 303  # type: ignore[arg-type]
        created = one.post(
            "/api/v1/api-tokens",
            json={"name": "lb"},
            headers={"X-CSRF-Token": page_csrf(one)},  # type: ignore[arg-type]
        ).json()
        headers = {"Authorization": f"Bearer {created['token']}"}
        assert two.get("/api/v1/me", headers=headers).status_code == 200
        assert one.delete(f"/api/v1/api-tokens/{created['id']}", headers=headers).status_code == 204
        assert two.get("/api/v1/me", headers=headers).status_code == 401

        two.cookies.set(SESSION_COOKIE, one.cookies[SESSION_COOKIE])
        assert two.get("/api/v1/me").status_code == 200  # the same session, other process
        token = page_csrf(one)  # type: ignore[arg-type]
        assert one.post("/sign-out", data={"csrf_token": token}).status_code in (200, 303)
        assert two.get("/api/v1/me").status_code == 401
