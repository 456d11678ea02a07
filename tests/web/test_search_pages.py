"""Search: the portal page and `/api/v1/search` share one service and one filter grammar."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.crm_import.models import ImportedAccount, ImportedUser
from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import audit
from gtmsync.search import snapshot
from tests.fixtures.factories import make_company, make_contact
from tests.fixtures.web import WebOrg, csrf_from, page_csrf


def seed(app: FastAPI) -> None:
    with session_scope(app.state.session_factory) as session:
        acme = make_company(session, name="Acme O'Brien", industry="Software", employee_count=300)
        make_company(session, name="Bolt Retail", industry="Retail", employee_count=20)
        make_contact(
            session,
            company_id=acme.id,
            first_name="Ada",
            last_name="Lovelace",
            department="Engineering",
        )


class TestSearchApi:
    def test_filters_and_shape(self, app: FastAPI, signed_in_client: TestClient) -> None:
        seed(app)
        response = signed_in_client.get(
            "/api/v1/search/companies", params={"industry__in": "Software", "employees__gte": "100"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert [h["name"] for h in body["hits"]] == ["Acme O'Brien"]
        assert body["total"] == 1
        assert body["total_label"] == "1"
        assert body["filters"] == ["Industry is one of Software", "Employees is at least 100"]
        contacts = signed_in_client.get(
            "/api/v1/search/contacts", params={"company_name__contains": "o'brien"}
        )
        assert [h["last_name"] for h in contacts.json()["hits"]] == ["Lovelace"]
        assert contacts.json()["hits"][0]["company_name"] == "Acme O'Brien"

    def test_bad_filter_is_a_400_naming_the_field(self, signed_in_client: TestClient) -> None:
        response = signed_in_client.get(
            "/api/v1/search/companies", params={"employees__gte": "many"}
        )
        assert response.status_code == 400
        assert response.json()["field"] == "employees__gte"
        assert response.json()["fix"]

    def test_unknown_object_is_422(self, signed_in_client: TestClient) -> None:
        assert signed_in_client.get("/api/v1/search/planets").status_code == 422

    def test_needs_sign_in(self, client: TestClient) -> None:
        assert client.get("/api/v1/search/companies").status_code == 401


class TestSearchPage:
    def test_results_with_selection_form(self, app: FastAPI, signed_in_client: TestClient) -> None:
        seed(app)
        page = signed_in_client.get(
            "/search", params={"object": "companies", "industry__in": "Software"}
        )
        assert page.status_code == 200
        assert "Acme O&#39;Brien" in page.text
        assert "Bolt Retail" not in page.text
        assert 'name="platform_ids"' in page.text
        assert 'action="/exports/new"' in page.text

    def test_bad_filter_is_shown_not_crashed(self, signed_in_client: TestClient) -> None:
        page = signed_in_client.get("/search", params={"object": "companies", "revenue__gte": "x"})
        assert page.status_code == 400
        assert "whole number" in page.text


def seed_crm(app: FastAPI, org_id: uuid.UUID) -> dict[str, Any]:
    """Two companies, one in Dynamics (owned by Olivia), and a snapshot of that."""
    owner = uuid.uuid4()
    with session_scope(app.state.session_factory) as session:
        inside = make_company(session, name="Inside Dynamics Inc", industry="Software")
        outside = make_company(session, name="Outside Dynamics Inc", industry="Software")
        session.add(
            ImportedUser(
                org_id=org_id, source_table="systemuser", dynamics_id=owner, full_name="Olivia"
            )
        )
        session.add(
            ImportedAccount(
                org_id=org_id,
                source_table="account",
                dynamics_id=uuid.uuid4(),
                owner_id=owner,
                name="Inside Dynamics Inc",
                matched_company_id=inside.id,
            )
        )
        session.flush()
        snapshot.take(session, org_id)
        return {"owner": owner, "inside": inside.id, "outside": outside.id}


class TestCrmSearch:
    def test_api_filters_and_indicators(
        self, app: FastAPI, web_org: WebOrg, signed_in_client: TestClient
    ) -> None:
        ids = seed_crm(app, web_org.org_id)
        body = signed_in_client.get(
            "/api/v1/search/companies", params={"crm_owner__in": str(ids["owner"])}
        ).json()
        assert [h["name"] for h in body["hits"]] == ["Inside Dynamics Inc"]
        mark = body["hits"][0]["dynamics"]
        assert mark["in_dynamics"] is True
        assert mark["owner_name"] == "Olivia"
        assert mark["as_of"]
        assert "Dynamics account owner is one of Olivia" in body["filters"]
        excluded = signed_in_client.get(
            "/api/v1/search/companies", params={"crm_owner__exclude": "all"}
        ).json()
        assert [(h["name"], h["dynamics"]["in_dynamics"]) for h in excluded["hits"]] == [
            ("Outside Dynamics Inc", False)
        ]
        too_many = ",".join(str(uuid.uuid4()) for _ in range(11))
        refused = signed_in_client.get(
            "/api/v1/search/companies", params={"crm_owner__in": too_many}
        )
        assert refused.status_code == 400
        assert refused.json()["field"] == "crm_owner__in"

    def test_page_shows_indicators_snapshot_note_and_profile(
        self, app: FastAPI, web_org: WebOrg, signed_in_client: TestClient
    ) -> None:
        ids = seed_crm(app, web_org.org_id)
        page = signed_in_client.get("/search", params={"crm_owner__in": "all"})
        assert page.status_code == 200
        assert "Inside Dynamics Inc" in page.text
        assert "Outside Dynamics Inc" not in page.text
        assert "In Dynamics (account)" in page.text
        assert "Owner: Olivia" in page.text
        assert "Sync Now does not update these filters until the next refresh" in page.text
        assert f'href="/search/companies/{ids["inside"]}"' in page.text
        profile = signed_in_client.get(f"/search/companies/{ids['inside']}")
        assert profile.status_code == 200
        assert "Olivia" in profile.text
        assert "Org chart" in profile.text
        assert signed_in_client.get("/search/companies/999999999").status_code == 404

    def test_save_search_and_list_it(
        self, app: FastAPI, web_org: WebOrg, signed_in_client: TestClient
    ) -> None:
        seed_crm(app, web_org.org_id)
        page = signed_in_client.get("/search", params={"crm_owner__in": "all"})
        response = signed_in_client.post(
            "/search/saved",
            data={
                "csrf_token": csrf_from(page.text),
                "name": "Everything in Dynamics",
                "query": "object=companies&crm_owner__in=all",
            },
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        listing = signed_in_client.get("/search/saved")
        assert "Everything in Dynamics" in listing.text
        api = signed_in_client.get("/api/v1/search/saved").json()
        assert [(s["name"], s["params"], s["new_matches"]) for s in api] == [
            ("Everything in Dynamics", [["crm_owner__in", "all"]], 0)
        ]


class TestFilterSettingsAdmin:
    def test_admin_only(self, signed_in_client: TestClient, admin_client: TestClient) -> None:
        assert (
            signed_in_client.get("/admin/integrations/dynamics/search-filters").status_code == 403
        )
        page = admin_client.get("/admin/integrations/dynamics/search-filters")
        assert page.status_code == 200
        assert "↳ Opportunity" in page.text
        assert "every 24 hours" in page.text
        denied = signed_in_client.put(
            "/api/v1/search/filter-settings",
            json={"lead": False},
            headers={"X-CSRF-Token": page_csrf(signed_in_client)},
        )
        assert denied.status_code == 403

    def test_toggles_hide_filters_and_are_audited(
        self, app: FastAPI, web_org: WebOrg, admin_client: TestClient
    ) -> None:
        page = admin_client.get("/admin/integrations/dynamics/search-filters")
        response = admin_client.post(
            "/admin/integrations/dynamics/search-filters",
            data={"csrf_token": csrf_from(page.text), "account": "on", "contact": "on"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        settings = admin_client.get("/api/v1/search/filter-settings").json()
        assert (settings["account"], settings["opportunity"], settings["lead"]) == (
            True,
            False,
            False,
        )
        companies = admin_client.get("/search")
        assert 'name="crm_owner__in"' in companies.text
        assert 'name="crm_opp_stage__exclude"' not in companies.text
        contacts = admin_client.get("/search", params={"object": "contacts"})
        assert 'name="crm_lead_status__in"' not in contacts.text
        refused = admin_client.get("/api/v1/search/companies", params={"crm_opp_stage__in": "x"})
        assert refused.status_code == 400
        api = admin_client.put(
            "/api/v1/search/filter-settings",
            json={"opportunity": True},
            headers={"X-CSRF-Token": page_csrf(admin_client)},
        )
        assert api.json()["opportunity"] is True
        with session_scope(app.state.session_factory) as session:
            actions = [e.action for e in audit.list_events(session, web_org.org_id)]
        assert actions.count("search.filters.toggles") == 2
