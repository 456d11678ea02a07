"""The export settings tabs in the portal: real app, real database, the local Dataverse server
over HTTPS; forms posted the way the browser posts them (CSRF field included)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import settings as export_settings
from gtmsync.platform import audit
from gtmsync.settings import Settings
from tests.export.settings_web import (
    ConnectedWeb,
    connect_web_org,
    tenant_client,
    trusting_settings,
)
from tests.fixtures.web import csrf_from, sign_in

EXPORT = "/admin/integrations/dynamics/export"


@pytest.fixture
def hub_settings(database_url: str, tmp_path: Path, dataverse: ServerHandle) -> Settings:
    return trusting_settings(database_url, tmp_path, dataverse)


@pytest.fixture
def connected(app: FastAPI, dataverse: ServerHandle, tmp_path: Path) -> ConnectedWeb:
    return connect_web_org(app, dataverse, tmp_path)


@pytest.fixture
def admin(make_client: Callable[[], TestClient], connected: ConnectedWeb) -> TestClient:
    client = make_client()
    assert sign_in(client, connected.admin).status_code == 303
    return client


def _preferences_form(html: str, **changes: str) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {"csrf_token": csrf_from(html)}
    form["version"] = re.search(r'name="version" value="(\d+)"', html).group(1)  # type: ignore[union-attr]
    for obj in ("account", "contact", "lead"):
        form[f"{obj}_enabled"] = "on"
        form[f"{obj}_max_records"] = "1000"
        form[f"{obj}_duplicate_default"] = "update"
        form[f"{obj}_duplicate_options"] = ["update", "create_duplicate", "do_not_export"]
        form[f"{obj}_platform_id_attribute"] = ""
    form.update({"no_match": "manual", "one_match": "manual", "many_match": "manual"})
    form.update(changes)
    return form


def _mapping_form(html: str, action: str) -> dict[str, str | list[str]]:
    """The rows as the page shows them (selected options), plus `action`."""
    rows = re.findall(r'<tr data-row="\d+".*?</tr>', html, flags=re.S)
    sources, targets, modes = [], [], []
    for row in rows:
        selected = [
            (m.group(1), m.group(2))
            for m in re.finditer(
                r'<select id="(source|target|mode)-\d+".*?'
                r'(?:<option value="([^"]*)" selected|</select>)',
                row,
                flags=re.S,
            )
        ]
        values = {kind: value or "" for kind, value in selected}
        sources.append(values["source"])
        targets.append(values["target"])
        modes.append(values["mode"] or "complete_if_missing")
    return {
        "csrf_token": csrf_from(html),
        "version": re.search(r'name="version" value="(\d+)"', html).group(1),  # type: ignore[union-attr]
        "action": action,
        "source_field": sources,
        "target_attribute": targets,
        "update_mode": modes,
    }


def test_export_tab_shows_defaults_and_the_seed_association_options(admin: TestClient) -> None:
    page = admin.get(EXPORT)
    assert page.status_code == 200, page.text
    html = page.text
    assert "Manually create and associate with a new Account" in html
    assert "Allow automatic Account association" in html
    assert "according to last modified date" in html
    # Manual is the default for all three situations.
    for name in ("no_match", "one_match", "many_match"):
        assert f'name="{name}" value="manual" checked' in html
    assert 'href="/admin/integrations/dynamics"' in html  # the General tab (connection pages)


@pytest.mark.parametrize("limit", ["0", "10001", "ten"])
def test_export_tab_refuses_limits_outside_the_range(admin: TestClient, limit: str) -> None:
    html = admin.get(EXPORT).text
    response = admin.post(EXPORT, data=_preferences_form(html, lead_max_records=limit))
    assert response.status_code == 400
    assert "1 to 10,000" in response.text or "between 1 and 10,000" in response.text
    assert 'id="max-lead-error"' in response.text


def test_export_tab_saves_and_audits(
    admin: TestClient, app: FastAPI, connected: ConnectedWeb
) -> None:
    html = admin.get(EXPORT).text
    form = _preferences_form(
        html, contact_max_records="2500", many_match="automatic", lead_enabled=""
    )
    response = admin.post(EXPORT, data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    with session_scope(app.state.session_factory) as session:
        document = export_settings.get_document(session, connected.org_id)
        assert document.preferences.objects["contact"].max_records == 2500  # type: ignore[index]
        assert document.preferences.association.many_match == "automatic"
        assert document.preferences.objects["lead"].enabled is False  # type: ignore[index]
        events = audit.list_events(session, connected.org_id, action_prefix="export.settings")
        assert len(events) == 1
        changes = events[0].detail["changes"]
        assert changes["preferences.objects.contact.max_records"] == {  # type: ignore[index]
            "before": 1000,
            "after": 2500,
        }


def test_mapping_add_remove_hierarchy_test_and_save(
    admin: TestClient, dataverse: ServerHandle, app: FastAPI, connected: ConnectedWeb
) -> None:
    url = f"{EXPORT}/mapping/contact"
    html = admin.get(url).text
    # Default hierarchy: Direct Phone (1) then Company Phone (2) onto Business Phone.
    numbers = re.findall(r'<td class="hierarchy">(\d*)</td>', html)
    assert numbers[4:6] == ["1", "2"]
    added = admin.post(url, data=_mapping_form(html, "add"))
    assert added.status_code == 200
    assert len(re.findall(r'<tr data-row="', added.text)) == len(numbers) + 1
    # A blank row cannot be saved: refused, named on the row.
    refused = admin.post(url, data=_mapping_form(added.text, "save"))
    assert refused.status_code == 400
    assert "is blank" in refused.text
    # Remove it (trash), then test with the rows on screen: created and deleted in Dynamics.
    last = len(numbers)
    removed = admin.post(url, data=_mapping_form(refused.text, f"remove-{last}"))
    assert len(re.findall(r'<tr data-row="', removed.text)) == len(numbers)
    before = dataverse.store.count("contact")
    tested = admin.post(url, data=_mapping_form(removed.text, "test"))
    assert 'data-ok="true"' in tested.text, tested.text
    assert dataverse.store.count("contact") == before
    saved = admin.post(url, data=_mapping_form(tested.text, "save"), follow_redirects=False)
    assert saved.status_code == 303
    with session_scope(app.state.session_factory) as session:
        assert export_settings.load(session, connected.org_id).version == 1


def test_mapping_type_mismatch_and_required_named_on_the_page(admin: TestClient) -> None:
    url = f"{EXPORT}/mapping/account"
    html = admin.get(url).text
    form = _mapping_form(html, "refresh")
    sources = list(form["source_field"])
    targets = list(form["target_attribute"])
    # Row 1 (company_name -> name) becomes company_name -> numberofemployees: text into integer.
    targets[0] = "numberofemployees"
    form["target_attribute"] = targets
    form["source_field"] = sources
    page = admin.post(url, data=form)
    assert "Company Name is text, but numberofemployees" in page.text
    assert "Dynamics requires name on every account" in page.text


def test_test_mapping_failure_shows_dynamics_error_on_the_row(
    admin: TestClient, app: FastAPI, connected: ConnectedWeb
) -> None:
    tag = uuid.uuid4().hex[:6]  # the local server outlives the test: a new attribute each run
    with tenant_client(app, connected.org_id) as tenant:
        tenant.request(
            "POST",
            "EntityDefinitions(LogicalName='account')/Attributes",
            json={
                "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
                "SchemaName": f"gtmsync_Headcount{tag}",
                "MinValue": 0,
                "MaxValue": 100,
                "DisplayName": {"LocalizedLabels": [{"Label": "Headcount", "LanguageCode": 1033}]},
            },
            idempotent=False,
        )
    url = f"{EXPORT}/mapping/account"
    html = admin.get(url).text
    assert f"gtmsync_headcount{tag}" in html  # offered as soon as it exists in the tenant
    form = _mapping_form(html, "test")
    form["source_field"] = [*form["source_field"], "company_employees"]
    form["target_attribute"] = [*form["target_attribute"], f"gtmsync_headcount{tag}"]
    form["update_mode"] = [*form["update_mode"], "overwrite"]
    tested = admin.post(url, data=form)
    assert 'data-ok="false"' in tested.text
    row = re.search(
        rf'<tr data-row="{len(form["source_field"]) - 1}".*?</tr>', tested.text, flags=re.S
    )
    assert row is not None
    assert "dynamics-error" in row.group(0)
    assert "outside the valid range" in row.group(0)


def test_non_admin_gets_403(make_client: Callable[[], TestClient], connected: ConnectedWeb) -> None:
    client = make_client()
    assert sign_in(client, connected.seller).status_code == 303
    for path in (EXPORT, f"{EXPORT}/mapping/account", f"{EXPORT}/intent"):
        assert client.get(path).status_code == 403


def test_intent_tab_maps_a_topic_to_custom_attributes(
    admin: TestClient, app: FastAPI, connected: ConnectedWeb
) -> None:
    tag = uuid.uuid4().hex[:6]
    with tenant_client(app, connected.org_id) as tenant:
        tenant.metadata.create_string_attribute(
            "account", schema_name=f"gtmsync_CloudStrength{tag}", label="Cloud strength"
        )
    strength = f"gtmsync_cloudstrength{tag}"
    url = f"{EXPORT}/intent"
    page = admin.get(url)
    assert page.status_code == 200
    added = admin.post(
        url,
        data={
            "csrf_token": csrf_from(page.text),
            "action": "add-topic",
            "new_topic": "Cloud Security",
        },
    )
    assert 'data-topic="Cloud Security"' in added.text
    assert strength in added.text  # a custom text attribute is offered
    assert '<option value="telephone1"' not in added.text  # standard attributes are not
    form = {
        "csrf_token": csrf_from(added.text),
        "version": "0",
        "action": "save",
        "topic": ["Cloud Security"],
        "signal_score": [""],
        "audience_strength": [strength],
        "signal_location": [""],
        "intent_id": [""],
        "issue_date": [""],
    }
    saved = admin.post(url, data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    with session_scope(app.state.session_factory) as session:
        rows = export_settings.get_document(session, connected.org_id).intent_mappings
    assert [(r.topic, r.data_point.value, r.target_attribute) for r in rows] == [
        ("Cloud Security", "audience_strength", strength)
    ]
    # A standard attribute is refused on save, named on the intent row.
    form["signal_location"] = ["telephone1"]
    form["version"] = "1"
    refused = admin.post(url, data=form)
    assert refused.status_code == 400
    assert "is a standard attribute" in refused.text
