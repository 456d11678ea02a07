"""The Dynamics import in a real Chromium: edit a mapping, add an import rule, press Sync Now
and see the run in the Sync History. The hub runs in development mode, where Sync Now runs
the backfill inline in the request (production enqueues it for the worker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.schemas import GtmObject
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from tests.fixtures.connection import connect_org, connection_settings
from tests.fixtures.factories import DEFAULT_PASSWORD
from tests.fixtures.web import TEST_SECRET_KEY, HubServer

pytestmark = pytest.mark.browser


@pytest.fixture
def hub(
    database_url: str, tmp_path: Path, dataverse: ServerHandle, fast_password_hashing: None
) -> Iterator[HubServer]:
    env = {"GTMSYNC_CA_BUNDLE": str(dataverse.ca_bundle)}
    with HubServer(database_url=database_url, data_dir=tmp_path / "hub", env=env) as server:
        yield server


def test_edit_mapping_add_rule_sync_now_and_see_the_run(
    hub: HubServer, dataverse: ServerHandle, page: Page
) -> None:
    settings = connection_settings(dataverse, hub.data_dir, secret_key=TEST_SECRET_KEY)
    with session_scope(hub.session_factory) as session:
        connected = connect_org(session, dataverse, settings)
        org_id, admin_email = connected.org.id, connected.admin.email
        with connected.client(session) as client:
            excluded = client.create("accounts", {"name": "Zzbrowser Excluded Co"})
            kept = client.create("accounts", {"name": "Browser Kept Co", "telephone1": "555-0100"})

    page.goto(hub.url("/sign-in"))
    page.get_by_label("Email").fill(admin_email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(hub.url("/search"))

    # Import Mapping: stop importing the account's main phone (a dropdown change).
    page.get_by_role("link", name="Dynamics Import").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import Mapping")
    account = page.locator('section[data-source="account:account"]')
    phone = account.get_by_label("GTM field for telephone1")
    expect(phone).to_have_value("hq_phone")
    phone.select_option(label="(do not import)")
    phone.locator("xpath=ancestor::form").get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Mapping saved")
    expect(account.get_by_label("GTM field for telephone1")).to_have_count(0)

    # Import Rules: exclude accounts whose name starts with "zzbrowser".
    page.get_by_role("link", name="Import Rules").click()
    rules = page.locator('section[data-source="account:account"]')
    rules.get_by_label("Field").select_option("name")
    rules.get_by_label("Operator").select_option("starts_with")
    rules.get_by_label("Value").fill("zzbrowser")
    rules.get_by_role("button", name="Add rule").click()
    expect(page.get_by_role("status")).to_contain_text("Import rule saved")
    expect(page.locator('section[data-source="account:account"] .rule')).to_contain_text(
        "starts with"
    )

    # Sync History: Sync Now runs a backfill; its runs are listed with their counts.
    page.get_by_role("link", name="Sync History").click()
    page.get_by_role("button", name="Sync Now").click()
    expect(page.get_by_role("status")).to_contain_text("Sync Now finished")
    run = page.locator('tr.run[data-source="account:account"]').first
    expect(run).to_contain_text("backfill (sync now)")
    expect(run).to_contain_text("succeeded")
    expect(page.locator("svg.usage-chart rect.bar").first).to_be_attached()

    with session_scope(hub.session_factory) as session:
        rows = {
            r.dynamics_id: r
            for r in import_service.records(session, org_id, GtmObject.ACCOUNT, "account")
        }
    assert excluded not in rows
    assert kept in rows
    assert rows[kept].hq_phone is None
