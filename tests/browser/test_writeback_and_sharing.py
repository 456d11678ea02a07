"""CRM Writeback and Data Sharing settings, and an activity logged in the portal that a real
worker process writes to the local Dataverse server as a task, all in a real Chromium."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from gtmsync.dataverse import odata
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.writeback.service import ANCHOR_ATTRIBUTE
from tests.fixtures.connection import ConnectedOrg, connect_org, connection_settings
from tests.fixtures.factories import DEFAULT_PASSWORD, make_contact
from tests.fixtures.web import TEST_SECRET_KEY, HubServer

pytestmark = pytest.mark.browser


@pytest.fixture
def hub(
    database_url: str, tmp_path: Path, dataverse: ServerHandle, fast_password_hashing: None
) -> Iterator[HubServer]:
    env = {"GTMSYNC_CA_BUNDLE": str(dataverse.ca_bundle)}
    with HubServer(database_url=database_url, data_dir=tmp_path / "hub", env=env) as server:
        yield server


@pytest.fixture
def worker(hub: HubServer) -> Iterator[subprocess.Popen[bytes]]:
    log = (hub.data_dir / "worker.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "gtmsync", "worker", "--threads", "1", "--no-scheduler"],
        env=hub._env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def test_settings_pages_and_an_activity_written_to_dynamics(
    hub: HubServer, worker: subprocess.Popen[bytes], dataverse: ServerHandle, page: Page
) -> None:
    settings = connection_settings(dataverse, hub.data_dir, secret_key=TEST_SECRET_KEY)
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    with session_scope(hub.session_factory) as session:
        connected: ConnectedOrg = connect_org(session, dataverse, settings)
        person = make_contact(session, first_name="Grace", last_name="O'Neil", email=email)
        platform_id, admin_email = person.platform_id, connected.admin.email
        with connected.client(session) as client:
            client.create(
                "contacts", {"firstname": "Grace", "lastname": "O'Neil", "emailaddress1": email}
            )

    page.goto(hub.url("/sign-in"))
    page.get_by_label("Email").fill(admin_email)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(hub.url("/search"))

    # CRM Writeback settings: on, as tasks.
    page.goto(hub.url("/admin/integrations/dynamics/writeback"))
    expect(page.get_by_role("heading", level=1)).to_have_text("CRM Writeback")
    page.get_by_role("switch", name="CRM writeback").check()
    page.get_by_label("Tasks").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("CRM writeback settings were saved.")
    expect(page.get_by_role("switch", name="CRM writeback")).to_be_checked()

    # Data Sharing: turn activity data off; the Contributions tab is there.
    page.goto(hub.url("/admin/privacy/data-sharing"))
    page.get_by_role("switch", name="Activity data").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Data sharing settings were saved.")
    expect(page.get_by_role("switch", name="Activity data OFF")).not_to_be_checked()
    expect(page.get_by_role("switch", name="Account data ON")).to_be_checked()
    page.get_by_role("link", name="Contributions").click()
    expect(page.locator("#no-contributions")).to_be_visible()

    # Log a call; the worker writes it to Dynamics as a task linked to Grace.
    page.goto(hub.url("/activities"))
    page.get_by_label("Type").select_option("call")
    subject = f"Renewal call {uuid.uuid4().hex[:8]}"  # the local server outlives this test
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("Platform ID of the contact or company").fill(platform_id)
    page.get_by_label("Duration (minutes)").fill("15")
    page.get_by_role("button", name="Log activity").click()
    expect(page.get_by_role("status")).to_contain_text("was logged")
    row = page.locator("#activities tbody tr").first
    expect(row).to_contain_text(subject)
    for _ in range(60):
        if "Written as task" in (row.text_content() or ""):
            break
        page.wait_for_timeout(500)
        page.reload()
        row = page.locator("#activities tbody tr").first
    expect(row).to_contain_text("Written as task")

    with session_scope(hub.session_factory) as session, connected.client(session) as client:
        tasks = list(
            client.query(
                "tasks",
                select=["subject", ANCHOR_ATTRIBUTE],
                filter=odata.eq("subject", f"Call: {subject}"),
            )
        )
    assert len(tasks) == 1
