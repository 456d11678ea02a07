"""Search: the portal page and `/api/v1/search` share one service and one filter grammar."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.db.unit_of_work import session_scope
from tests.fixtures.factories import make_company, make_contact


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
