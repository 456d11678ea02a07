"""Export mapping in a real Chromium against a real hub process and the local Dataverse
server: edit the Contacts mapping (Add Row), Test Mapping (a record created and deleted in
Dynamics), then Save Changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.engine import create_engine
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import settings as export_settings
from gtmsync.export.schemas import ExportObject
from tests.export.settings_web import connect_on
from tests.fixtures.web import HubServer

pytestmark = pytest.mark.browser


@pytest.fixture
def hub(
    database_url: str, tmp_path: Path, dataverse: ServerHandle, fast_password_hashing: None
) -> Iterator[HubServer]:
    env = {"GTMSYNC_CA_BUNDLE": str(dataverse.ca_bundle)}
    with HubServer(database_url=database_url, data_dir=tmp_path / "hub", env=env) as server:
        yield server


def test_mapping_edit_test_mapping_and_save(
    hub: HubServer, dataverse: ServerHandle, page: Page, database_url: str, tmp_path: Path
) -> None:
    engine = create_engine(database_url)
    try:
        connected = connect_on(engine, dataverse, tmp_path)
    finally:
        engine.dispose()

    page.goto(hub.url("/sign-in"))
    page.get_by_label("Email").fill(connected.admin.email)
    page.get_by_label("Password").fill(connected.admin.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(hub.url("/search"))

    page.goto(hub.url("/admin/integrations/dynamics/export/mapping/contact"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Export mapping: Contacts")
    rows = page.locator("#mapping-rows tbody tr")
    count = rows.count()
    # The default hierarchy: Direct Phone 1, Company Phone 2 onto Business Phone.
    expect(rows.nth(4).locator(".hierarchy")).to_have_text("1")
    expect(rows.nth(5).locator(".hierarchy")).to_have_text("2")

    page.get_by_role("button", name="Add Row").click()
    expect(rows).to_have_count(count + 1)
    page.get_by_label(f"Platform field, row {count + 1}").select_option("department")
    page.get_by_label(f"Dynamics field, row {count + 1}").select_option("description")
    page.get_by_label(f"Update option, row {count + 1}").select_option("overwrite")

    before = dataverse.store.count("contact")
    page.get_by_role("button", name="Test Mapping").click()
    result = page.locator("#trial-result")
    expect(result).to_have_attribute("data-ok", "true")
    expect(result).to_contain_text("Test Mapping succeeded")
    assert dataverse.store.count("contact") == before
    # The unsaved rows survive the test run.
    expect(page.get_by_label(f"Dynamics field, row {count + 1}")).to_have_value("description")

    page.get_by_role("button", name="Save Changes").click()
    expect(page.get_by_role("status")).to_have_text("Contacts mapping saved.")
    expect(page.get_by_label(f"Platform field, row {count + 1}")).to_have_value("department")

    # The Export tab: the seeds' three association situations, manual by default.
    page.get_by_role("link", name="Export", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Export Preferences")
    expect(page.get_by_label("Manually create and associate with a new Account")).to_be_checked()
    expect(page.get_by_label("Manually confirm Account association")).to_be_checked()
    expect(page.get_by_label("User must manually associate Contacts with Accounts")).to_be_checked()

    with session_scope(hub.session_factory) as session:
        stored = export_settings.load(session, connected.org_id)
        assert stored.version == 1
        last = stored.document.mappings[ExportObject.CONTACT][-1]
        assert (last.source_field, last.target_attribute, last.update_mode) == (
            "department",
            "description",
            "overwrite",
        )
