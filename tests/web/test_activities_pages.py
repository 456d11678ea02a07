"""Activities and CRM Writeback settings over the real app (portal and API)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.db.unit_of_work import session_scope
from tests.fixtures.factories import make_contact
from tests.fixtures.web import csrf_from, page_csrf


def contact_id(app: FastAPI) -> str:
    with session_scope(app.state.session_factory) as session:
        return make_contact(session, email="ada@example.com").platform_id


class TestActivitiesApi:
    def test_log_list_and_isolation(
        self, app: FastAPI, signed_in_client: TestClient, admin_client: TestClient
    ) -> None:
        target = contact_id(app)
        headers = {"X-CSRF-Token": page_csrf(signed_in_client)}
        body = {
            "kind": "call",
            "subject": "Intro",
            "target_type": "contact",
            "target_platform_id": target,
            "occurred_at": "2026-11-20T15:30:00Z",
            "duration_minutes": 20,
        }
        created = signed_in_client.post("/api/v1/activities", json=body, headers=headers)
        assert created.status_code == 201, created.text
        activity = created.json()
        assert activity["status"] == "writeback_off"
        assert [a["id"] for a in signed_in_client.get("/api/v1/activities").json()] == [
            activity["id"]
        ]
        assert admin_client.get(f"/api/v1/activities/{activity['id']}").status_code == 200

    def test_bad_target_names_the_field(self, signed_in_client: TestClient) -> None:
        headers = {"X-CSRF-Token": page_csrf(signed_in_client)}
        body = {
            "kind": "email",
            "subject": "Hi",
            "target_type": "contact",
            "target_platform_id": "NOPE",
            "occurred_at": "2026-11-20T15:30:00Z",
        }
        response = signed_in_client.post("/api/v1/activities", json=body, headers=headers)
        assert response.status_code == 400
        assert response.json()["field"] == "target_platform_id"

    def test_writeback_settings_are_admin_only(
        self, admin_client: TestClient, signed_in_client: TestClient
    ) -> None:
        assert signed_in_client.get("/api/v1/writeback-settings").status_code == 403
        assert admin_client.get("/api/v1/writeback-settings").json() == {
            "enabled": False,
            "mode": "tasks",
            "calls_as_phonecalls": False,
        }
        headers = {"X-CSRF-Token": page_csrf(admin_client)}
        put = admin_client.put(
            "/api/v1/writeback-settings",
            json={"enabled": True, "mode": "events", "calls_as_phonecalls": True},
            headers=headers,
        )
        assert put.status_code == 200
        assert put.json() == {"enabled": True, "mode": "events", "calls_as_phonecalls": True}


class TestActivitiesPages:
    def test_log_from_the_form(self, app: FastAPI, signed_in_client: TestClient) -> None:
        target = contact_id(app)
        page = signed_in_client.get("/activities")
        assert "CRM writeback is off" in page.text
        form = {
            "csrf_token": csrf_from(page.text),
            "kind": "meeting",
            "subject": "Demo for O'Brien",
            "target_type": "contact",
            "target_platform_id": target,
            "occurred_at": "2026-11-20T10:00",
            "duration_minutes": "45",
            "participants": "",
            "body": "Went well",
        }
        saved = signed_in_client.post("/activities", data=form)
        assert saved.status_code == 200
        assert "was logged" in saved.text
        assert "Demo for O&#39;Brien" in saved.text
        assert "Waiting (writeback off)" in saved.text

    def test_form_errors_keep_the_input(self, signed_in_client: TestClient) -> None:
        page = signed_in_client.get("/activities")
        form = {
            "csrf_token": csrf_from(page.text),
            "kind": "call",
            "subject": "Keep me",
            "target_type": "contact",
            "target_platform_id": "NOPE",
            "duration_minutes": "ten",
        }
        response = signed_in_client.post("/activities", data=form)
        assert response.status_code == 400
        assert "whole number of minutes" in response.text
        assert 'value="Keep me"' in response.text

    def test_settings_page(self, admin_client: TestClient, signed_in_client: TestClient) -> None:
        assert signed_in_client.get("/admin/integrations/dynamics/writeback").status_code == 403
        page = admin_client.get("/admin/integrations/dynamics/writeback")
        saved = admin_client.post(
            "/admin/integrations/dynamics/writeback",
            data={"csrf_token": csrf_from(page.text), "enabled": "on", "mode": "events"},
        )
        assert "CRM writeback settings were saved." in saved.text
        assert 'id="f-enabled" name="enabled" checked' in saved.text
        assert 'value="events" checked' in saved.text
