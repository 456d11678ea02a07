"""Search with Dynamics filters in a real Chromium against the hub process: the admin sets
the filter settings (a live-metadata check on the local Dataverse server), a search with CRM
filters shows the indicator, the profile links to the Dynamics record in a new tab, and the
search is saved."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from gtmsync.crm_import import service as import_service
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.search import snapshot
from tests.fixtures.connection import ConnectedOrg, connect_org, connection_settings
from tests.fixtures.factories import DEFAULT_PASSWORD, make_company
from tests.fixtures.web import TEST_SECRET_KEY, HubServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture
def search_hub(
    dataverse: ServerHandle, database_url: str, tmp_path: Path, fast_password_hashing: None
) -> Iterator[tuple[HubServer, ConnectedOrg]]:
    env = {"GTMSYNC_CA_BUNDLE": str(dataverse.ca_bundle)}
    with HubServer(database_url=database_url, data_dir=tmp_path / "hub", env=env) as hub:
        settings = connection_settings(
            dataverse, tmp_path, database_url=database_url, secret_key=TEST_SECRET_KEY
        )
        with session_scope(hub.session_factory) as session:
            connected = connect_org(session, dataverse, settings)
        yield hub, connected


def test_filter_settings_crm_search_profile_link_and_save(
    search_hub: tuple[HubServer, ConnectedOrg], page: Page, chromium: Browser
) -> None:
    hub, connected = search_hub
    name = f"Searchable Browser {uuid.uuid4().hex[:8]}"
    with session_scope(hub.session_factory) as session:
        make_company(session, name=name, industry="Software")
        with connected.client(session) as client:
            account_id = client.create("accounts", {"name": name})
        import_service.run_import(
            session, connected.org.id, checkpoint=session.flush, settings=connected.settings
        )
        snapshot.take(session, connected.org.id)

    page.goto(hub.url("/sign-in"))
    page.get_by_label("Email").fill(connected.admin.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Filter settings: switch Lead off, add a picklist, see a text column refused.
    page.goto(hub.url("/admin/integrations/dynamics/search-filters"))
    page.get_by_label("Lead").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Search filter settings saved")
    expect(page.get_by_label("Lead")).not_to_be_checked()
    account_section = page.locator("#custom-account")
    account_section.get_by_label("Dynamics field (logical name)").fill("customertypecode")
    account_section.get_by_role("button", name="Add field").click()
    expect(page.locator("#custom-account")).to_contain_text("customertypecode")
    page.locator("#custom-account").get_by_label("Dynamics field (logical name)").fill("name")
    page.locator("#custom-account").get_by_role("button", name="Add field").click()
    expect(page.get_by_role("alert")).to_contain_text("only picklist and lookup columns")

    # Search with CRM filters.
    page.goto(hub.url("/search"))
    page.get_by_label("Company name").fill(name)
    page.get_by_label("Include account owners").fill("all")
    page.get_by_role("button", name="Search", exact=True).click()
    row = page.locator("#results tbody tr", has_text=name)
    expect(row).to_contain_text("In Dynamics (account)")
    page.get_by_label("Exclude account owners").fill("all")
    page.get_by_label("Include account owners").fill("")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#results")).not_to_contain_text(name)
    page.get_by_label("Exclude account owners").fill("")
    page.get_by_label("Include account owners").fill("all")
    page.get_by_role("button", name="Search", exact=True).click()

    # Save the search.
    page.get_by_label("Save this search as").fill("Mine in Dynamics")
    page.get_by_role("button", name="Save search").click()
    expect(page).to_have_url(hub.url("/search/saved"))
    expect(page.locator("#saved-searches")).to_contain_text("Mine in Dynamics")
    page.get_by_role("link", name="Mine in Dynamics").click()
    expect(page.locator("#results tbody tr", has_text=name)).to_be_visible()

    # Profile → the Dynamics record in a new tab.
    page.locator("#results").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    link = page.locator("a.dynamics-link").first
    org_url = connected.integration.org_url.rstrip("/")
    expected = f"{org_url}/main.aspx?etn=account&id={account_id}&pagetype=entityrecord"
    expect(link).to_have_attribute("href", expected)
    expect(link).to_have_attribute("target", "_blank")
    rel = link.get_attribute("rel") or ""
    assert "noopener" in rel.split()
    with page.expect_popup() as popup_info:
        link.click()
    popup = popup_info.value
    popup.wait_for_load_state("domcontentloaded")
    assert popup.url.startswith(org_url) or popup.url.startswith("chrome-error://")
    popup.close()
    # Followed with certificate checks off, the link reaches the local server's org URL.
    trusting = chromium.new_context(ignore_https_errors=True)
    try:
        other = trusting.new_page()
        response = other.goto(expected)
        assert response is not None
        assert other.url.startswith(f"{org_url}/main.aspx")
    finally:
        trusting.close()
