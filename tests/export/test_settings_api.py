"""`/api/v1/export-settings` over the real app and database, against the local Dataverse
server over HTTPS (the org is connected through the real sign-in)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.settings import Settings
from tests.export.settings_web import (
    ConnectedWeb,
    connect_web_org,
    tenant_client,
    trusting_settings,
)
from tests.fixtures.web import page_csrf, sign_in


@pytest.fixture
def hub_settings(database_url: str, tmp_path: Path, dataverse: ServerHandle) -> Settings:
    return trusting_settings(database_url, tmp_path, dataverse)


@pytest.fixture
def connected(app: FastAPI, dataverse: ServerHandle, tmp_path: Path) -> ConnectedWeb:
    return connect_web_org(app, dataverse, tmp_path)


@pytest.fixture
def admin_api(make_client: Callable[[], TestClient], connected: ConnectedWeb) -> TestClient:
    client = make_client()
    assert sign_in(client, connected.admin).status_code == 303
    client.headers["X-CSRF-Token"] = page_csrf(client)
    return client


def test_get_defaults_then_put_bumps_version(admin_api: TestClient) -> None:
    body = admin_api.get("/api/v1/export-settings").json()
    assert body["version"] == 0
    rows = body["document"]["mappings"]["contact"]
    assert {"source_field": "direct_phone", "target_attribute": "telephone1"}.items() <= rows[
        4
    ].items()
    document = body["document"]
    document["preferences"]["objects"]["lead"]["max_records"] = 250
    saved = admin_api.put("/api/v1/export-settings", json=document)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1
    assert (
        admin_api.get("/api/v1/export-settings").json()["document"]["preferences"]["objects"][
            "lead"
        ]["max_records"]
        == 250
    )
    stale = admin_api.put("/api/v1/export-settings?version=0", json=document)
    assert stale.status_code == 409


@pytest.mark.parametrize("limit", [0, 10_001])
def test_limits_outside_the_range_refused(admin_api: TestClient, limit: int) -> None:
    document = admin_api.get("/api/v1/export-settings").json()["document"]
    document["preferences"]["objects"]["account"]["max_records"] = limit
    response = admin_api.put("/api/v1/export-settings", json=document)
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "preferences.objects.account.max_records"
    assert "between 1 and 10,000" in body["error"]


def test_invalid_rows_refused_with_issues(admin_api: TestClient) -> None:
    document = admin_api.get("/api/v1/export-settings").json()["document"]
    document["mappings"]["account"] = [
        {"source_field": "company_website", "target_attribute": "websiteurl"},
        {"source_field": "", "target_attribute": ""},
        {"source_field": "company_name", "target_attribute": "numberofemployees"},
    ]
    response = admin_api.put("/api/v1/export-settings", json=document)
    assert response.status_code == 422
    issues = response.json()["issues"]
    messages = [(i["row"], i["message"]) for i in issues if i["severity"] == "error"]
    assert any(row == 1 and "blank" in text for row, text in messages)
    assert any(row == 2 and "Integer attribute" in text for row, text in messages)
    assert any(row is None and "requires" in text and "name" in text for row, text in messages)
    assert admin_api.get("/api/v1/export-settings").json()["version"] == 0


def test_custom_attribute_offered_after_it_is_created_in_the_tenant(
    admin_api: TestClient, connected: ConnectedWeb, app: FastAPI
) -> None:
    listed = {
        a["logical_name"]: a
        for a in admin_api.get("/api/v1/export-settings/attributes/account").json()
    }
    assert listed["name"]["required_level"] == "ApplicationRequired"
    assert any(o["label"] == "Consulting" for o in listed["industrycode"]["options"])
    tag = uuid.uuid4().hex[:6]  # the local server outlives the test: a new attribute each run
    assert f"gtmsync_tier{tag}" not in listed
    with tenant_client(app, connected.org_id) as tenant:
        tenant.metadata.create_string_attribute(
            "account", schema_name=f"gtmsync_Tier{tag}", label="Tier", max_length=40
        )
    listed = {
        a["logical_name"]: a
        for a in admin_api.get("/api/v1/export-settings/attributes/account").json()
    }
    assert listed[f"gtmsync_tier{tag}"]["is_custom"] is True


def test_test_mapping_creates_and_deletes(admin_api: TestClient, dataverse: ServerHandle) -> None:
    before = dataverse.store.count("account")
    rows = admin_api.get("/api/v1/export-settings").json()["document"]["mappings"]["account"]
    response = admin_api.post(
        "/api/v1/export-settings/test-mapping", json={"object": "account", "rows": rows}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True, body
    assert body["deleted"] is True
    assert body["sent"]["name"] == "gtmsync Test Mapping Company"
    assert dataverse.store.count("account") == before


def test_non_admin_gets_403(make_client: Callable[[], TestClient], connected: ConnectedWeb) -> None:
    client = make_client()
    assert sign_in(client, connected.seller).status_code == 303
    client.headers["X-CSRF-Token"] = page_csrf(client)
    assert client.get("/api/v1/export-settings").status_code == 403
    assert client.get("/api/v1/export-settings/attributes/account").status_code == 403
    assert client.put("/api/v1/export-settings", json={}).status_code == 403
    assert (
        client.post(
            "/api/v1/export-settings/test-mapping", json={"object": "account", "rows": []}
        ).status_code
        == 403
    )


def test_test_mapping_failure_names_the_row(
    admin_api: TestClient, app: FastAPI, connected: ConnectedWeb, dataverse: ServerHandle
) -> None:
    tag = uuid.uuid4().hex[:6]  # the local server outlives the test: a new attribute each run
    with tenant_client(app, connected.org_id) as tenant:
        tenant.request(
            "POST",
            "EntityDefinitions(LogicalName='contact')/Attributes",
            json={
                "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
                "SchemaName": f"gtmsync_TeamSize{tag}",
                "MinValue": 0,
                "MaxValue": 10,
                "DisplayName": {"LocalizedLabels": [{"Label": "Team size", "LanguageCode": 1033}]},
            },
            idempotent=False,
        )
    rows = admin_api.get("/api/v1/export-settings").json()["document"]["mappings"]["contact"]
    rows.append({"source_field": "company_employees", "target_attribute": f"gtmsync_teamsize{tag}"})
    before = dataverse.store.count("contact")
    response = admin_api.post(
        "/api/v1/export-settings/test-mapping", json={"object": "contact", "rows": rows}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is False
    assert body["created_id"] is None
    assert [(e["row"], e["attribute"]) for e in body["row_errors"]] == [
        (len(rows) - 1, f"gtmsync_teamsize{tag}")
    ]
    assert "outside the valid range" in body["row_errors"][0]["message"]
    assert dataverse.store.count("contact") == before
