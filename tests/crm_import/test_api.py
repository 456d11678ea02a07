"""`/api/v1/imports` over the app with a connected org (local Dataverse server over HTTPS)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.settings import Mode, Settings
from tests.fixtures.connection import ConnectedOrg, connect_org, connection_settings
from tests.fixtures.factories import DEFAULT_PASSWORD
from tests.fixtures.web import TEST_SECRET_KEY, Login, page_csrf, sign_in


@pytest.fixture
def hub_settings(database_url: str, tmp_path: Path, dataverse: ServerHandle) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        mode=Mode.DEVELOPMENT,
        ca_bundle=dataverse.ca_bundle,
        _env_file=None,
    )


@pytest.fixture
def connected(app: FastAPI, dataverse: ServerHandle, tmp_path: Path) -> ConnectedOrg:
    settings = connection_settings(dataverse, tmp_path, secret_key=TEST_SECRET_KEY)
    with session_scope(app.state.session_factory) as session:
        return connect_org(session, dataverse, settings)


def _client(make_client: Callable[[], TestClient], email: str) -> TestClient:
    client = make_client()
    response = sign_in(client, Login(user_id=None, email=email, password=DEFAULT_PASSWORD, name=""))  # type: ignore[arg-type]
    assert response.status_code == 303, response.text
    client.headers["X-CSRF-Token"] = page_csrf(client)
    return client


class TestImportsApi:
    def test_mapping_rules_sync_now_runs_and_usage(
        self, make_client: Callable[[], TestClient], connected: ConnectedOrg
    ) -> None:
        admin = _client(make_client, connected.admin.email)
        mapping = admin.get("/api/v1/imports/mapping")
        assert mapping.status_code == 200, mapping.text
        doc = mapping.json()
        tables = {s["table"] for s in doc["sources"]}
        assert {"account", "contact", "lead", "opportunity", "systemuser"} <= tables

        bad = {
            "sources": [
                {
                    "table": "account",
                    "object": "account",
                    "fields": [{"attribute": "name", "field": "nope"}],
                }
            ]
        }
        refused = admin.put("/api/v1/imports/mapping", json=bad)
        assert refused.status_code == 400
        assert refused.json()["field"] == "nope"

        rules = {
            "rules": [
                {
                    "source_key": "account:account",
                    "groups": [
                        {
                            "conditions": [
                                {"attribute": "name", "operator": "starts_with", "value": "zz"}
                            ]
                        }
                    ],
                }
            ]
        }
        saved = admin.put("/api/v1/imports/rules", json=rules)
        assert saved.status_code == 200, saved.text
        assert admin.get("/api/v1/imports/rules").json() == saved.json()

        attributes = admin.get("/api/v1/imports/attributes/account").json()
        assert {"name", "telephone1"} <= {a["name"] for a in attributes}

        synced = admin.post("/api/v1/imports/sync-now")
        assert synced.status_code == 200, synced.text
        body = synced.json()
        assert "account:account" in body["queued"]
        assert {r["status"] for r in body["runs"]} == {"succeeded"}

        runs = admin.get("/api/v1/imports/runs").json()
        assert {r["source_key"] for r in runs} >= set(body["queued"])
        usage = admin.get("/api/v1/imports/usage").json()
        assert usage["today"] >= sum(r["api_calls"] for r in runs)
        status = admin.get("/api/v1/imports/status").json()
        assert status["enabled"] is True

        updated = admin.put(
            "/api/v1/imports/settings", json={"daily_budget": 25000, "page_size": 1000}
        )
        assert updated.json()["daily_budget"] == 25000

        seller = _client(make_client, connected.seller.email)
        assert seller.get("/api/v1/imports/my-target-accounts").status_code == 200
        assert seller.get("/api/v1/imports/runs").status_code == 403
        assert seller.post("/api/v1/imports/sync-now").status_code == 403

    def test_portal_pages_render(
        self, make_client: Callable[[], TestClient], connected: ConnectedOrg
    ) -> None:
        admin = _client(make_client, connected.admin.email)
        for path, text in [
            ("/admin/integrations/dynamics/import-mapping", "Create Custom Field"),
            ("/admin/integrations/dynamics/import-rules", "Add rule"),
            ("/admin/integrations/dynamics/sync-history", "<svg"),
            ("/my-target-accounts", "My Target Accounts"),
        ]:
            response = admin.get(path)
            assert response.status_code == 200, (path, response.text[:500])
            assert text in response.text
