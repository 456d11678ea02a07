"""Export → review → run → history in a real Chromium against the hub process, the hub
talking to the local Dataverse server over HTTPS."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import service as export_service
from gtmsync.export.models import Export
from tests.export.exporting import SPECIAL, company, tag
from tests.fixtures.connection import ConnectedOrg, connect_org, connection_settings
from tests.fixtures.factories import DEFAULT_PASSWORD
from tests.fixtures.web import TEST_SECRET_KEY, HubServer

pytestmark = pytest.mark.browser


@pytest.fixture
def export_hub(
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


def test_export_review_run_history(export_hub: tuple[HubServer, ConnectedOrg], page: Page) -> None:
    hub, connected = export_hub
    t = tag()
    with session_scope(hub.session_factory) as session:
        dup = company(session, f"{SPECIAL} {t}")
        new = company(session, f"Browser New {t}")
        dup_name, new_name = dup.name, new.name
        with connected.client(session) as client:
            client.create("accounts", {"name": dup_name})

    page.goto(hub.url("/sign-in"))
    page.get_by_label("Email").fill(connected.seller.email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(hub.url("/search"))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Exports").click()
    page.get_by_role("link", name="New export").click()
    page.get_by_label(f"Select {dup_name}").check()
    page.get_by_label(f"Select {new_name}").check()
    page.get_by_role("button", name="Export selected").click()

    # Review: the duplicate is flagged with the admin's default (update) pre-selected.
    expect(page.locator("#export-status")).to_have_text("planned")
    expect(page.locator("#plan-summary")).to_contain_text("1 to create, 1 to update")
    choice = page.get_by_label(f"Duplicate handling for {dup_name}")
    expect(choice).to_have_value("update")
    choice.select_option("do_not_export")
    page.get_by_role("button", name="Save decisions").click()
    expect(page.get_by_role("status")).to_have_text("Decisions saved.")
    expect(page.locator("#plan-summary")).to_contain_text("1 to create, 1 to skip")

    page.get_by_role("button", name="Run export").click()
    expect(page.locator("#export-status")).to_have_text("queued")
    expect(page.get_by_label("Progress")).to_be_visible()

    # The worker's part (the `export.run` task body), run here; the page refreshes itself.
    with session_scope(hub.session_factory) as session:
        export = session.query(Export).one()
        export_service.run(
            session,
            connected.org.id,
            export.id,
            checkpoint=session.commit,
            settings=connected.settings,
        )
    expect(page.locator("#export-status")).to_have_text("completed", timeout=15_000)
    expect(page.locator("#results-summary")).to_contain_text("1 created, 1 skipped")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Exports").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Export history")
    row = page.locator("#history tbody tr").first
    expect(row.locator(".status")).to_have_text("completed")
    with page.expect_download() as download_info:
        row.get_by_role("link", name="results.csv").click()
    content = Path(download_info.value.path()).read_text(encoding="utf-8")
    rows = {r["record"]: r["status"] for r in csv.DictReader(io.StringIO(content))}
    assert rows == {dup_name: "skipped", new_name: "created"}
