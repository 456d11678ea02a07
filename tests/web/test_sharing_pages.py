"""Data Sharing page and API: toggles, the contract lock, contributions, admin only."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import service as platform_service
from gtmsync.sharing import service as sharing_service
from tests.fixtures.web import WebOrg, csrf_from, page_csrf


class TestPage:
    def test_toggle_off_and_on(self, admin_client: TestClient) -> None:
        page = admin_client.get("/admin/privacy/data-sharing")
        assert page.status_code == 200
        assert 'href="/privacy"' in page.text
        form = {
            "csrf_token": csrf_from(page.text),
            "category_accounts": "on",
            "category_people": "on",
            "category_opportunities": "on",
        }  # activities unchecked -> OFF
        saved = admin_client.post("/admin/privacy/data-sharing", data=form)
        assert saved.status_code == 200
        assert "Data sharing settings were saved." in saved.text
        assert 'id="category-activities" name="category_activities">' in saved.text
        assert 'id="category-accounts" name="category_accounts" checked>' in saved.text

    def test_locked_page_disables_toggles_and_refuses_posts(
        self, admin_client: TestClient, app: FastAPI, web_org: WebOrg
    ) -> None:
        with session_scope(app.state.session_factory) as session:
            platform_service.get_org(session, web_org.org_id).data_sharing_contract_opt_out = True
        page = admin_client.get("/admin/privacy/data-sharing")
        assert "set to OFF and is not editable" in page.text
        assert "<fieldset disabled>" in page.text
        assert "checked" not in page.text
        refused = admin_client.post(
            "/admin/privacy/data-sharing",
            data={"csrf_token": csrf_from(page.text), "category_accounts": "on"},
        )
        assert refused.status_code == 403
        assert "not editable" in refused.text

    def test_contributions_tab(
        self, admin_client: TestClient, app: FastAPI, web_org: WebOrg
    ) -> None:
        assert (
            "No contributions yet."
            in admin_client.get("/admin/privacy/data-sharing?tab=contributions").text
        )
        with session_scope(app.state.session_factory) as session:
            sharing_service.record_contribution(
                session,
                org_id=web_org.org_id,
                table="account",
                records=1234,
                source="run-9/account",
            )
        tab = admin_client.get("/admin/privacy/data-sharing?tab=contributions")
        assert "1,234" in tab.text

    def test_member_gets_403(self, signed_in_client: TestClient) -> None:
        assert signed_in_client.get("/admin/privacy/data-sharing").status_code == 403
        assert signed_in_client.get("/api/v1/data-sharing").status_code == 403


class TestApi:
    def test_get_put_and_contributions(self, admin_client: TestClient) -> None:
        body = admin_client.get("/api/v1/data-sharing").json()
        assert body["locked"] is False
        assert {c["key"] for c in body["categories"]} == {
            "accounts",
            "people",
            "opportunities",
            "activities",
        }
        headers = {"X-CSRF-Token": page_csrf(admin_client)}
        put = admin_client.put(
            "/api/v1/data-sharing", json={"categories": {"people": False}}, headers=headers
        )
        assert put.status_code == 200
        assert {c["key"]: c["enabled"] for c in put.json()["categories"]}["people"] is False
        bad = admin_client.put(
            "/api/v1/data-sharing", json={"categories": {"dna": False}}, headers=headers
        )
        assert bad.status_code == 400
        assert bad.json()["field"] == "categories"
        assert admin_client.get("/api/v1/data-sharing/contributions").json() == []
