"""Connect Dynamics in a real Chromium, through a real hub process, against the local server.

The hub process trusts the local server through GTMSYNC_CA_BUNDLE and talks to its identity
and Web API endpoints over HTTPS, as it would to Microsoft. The *browser* contexts use
`ignore_https_errors=True` for the local server's sign-in pages (Chromium has no way to trust
a per-test CA without a system store change); nothing in the hub's own TLS is relaxed.

One story, in order: Dana (a Dynamics System Administrator, not a Global admin) tries first
and is stopped with the admin-consent link; Avery (Global admin) connects and consents for the
tenant; the mapping is shown and edited; the integration is toggled off and on; Dana uses
Change User and becomes primary; Avery can no longer delete; Dana deletes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from gtmsync.connection import gateway
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import Role
from tests.fixtures.web import PASSWORD, HubServer

pytestmark = pytest.mark.browser


@pytest.fixture
def hub(
    database_url: str, tmp_path: Path, dataverse: ServerHandle, fast_password_hashing: None
) -> Iterator[HubServer]:
    with HubServer(
        database_url=database_url,
        data_dir=tmp_path / "hub",
        env={"GTMSYNC_CA_BUNDLE": str(dataverse.ca_bundle)},
    ) as server:
        callback = server.url("/connection/callback")
        app = dataverse.directory.app(gateway.LOCAL_APP_CLIENT_ID)
        if callback not in app.redirect_uris:
            dataverse.directory.add_redirect_uri(gateway.LOCAL_APP_CLIENT_ID, callback)
        yield server


@pytest.fixture
def no_tenant_consent(dataverse: ServerHandle) -> Iterator[None]:
    client_id = gateway.LOCAL_APP_CLIENT_ID
    avery = dataverse.directory.user_by_upn("avery.admin@contoso.local")
    dataverse.directory.revoke_consents(client_id)
    try:
        yield
    finally:
        dataverse.directory.revoke_consents(client_id)
        dataverse.directory.grant_consent(client_id, granted_by=avery.object_id, tenant_wide=True)


def _people(hub: HubServer) -> None:
    tag = uuid.uuid4().hex[:6]
    with session_scope(hub.session_factory) as session:
        org = platform_service.create_org(session, name="Contoso", slug=f"contoso-{tag}")
        for email, name, role in (
            ("avery.admin@contoso.local", "Avery Admin", Role.ADMIN),
            ("dana.dynamics@contoso.local", "Dana Dynamics", Role.ADMIN),
            ("sam.seller@contoso.local", "Sam Seller", Role.USER),
            ("uma.unmapped@example.com", "Uma Unmapped", Role.USER),
        ):
            platform_service.create_user(
                session, org=org, email=email, name=name, password=PASSWORD, role=role
            )


def _browser(chromium: Browser) -> BrowserContext:
    context = chromium.new_context(
        ignore_https_errors=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    return context


def _sign_in(page: Page, hub: HubServer, email: str) -> None:
    page.goto(hub.url("/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(hub.url("/search"))


def _pick_account(page: Page, upn: str) -> None:
    expect(page.get_by_role("heading", name="Pick an account")).to_be_visible(timeout=20_000)
    page.get_by_role("button", name=re.compile(re.escape(upn))).click()


def _start_connect(page: Page, hub: HubServer, org_url: str) -> None:
    page.goto(hub.url("/admin/integrations/connections"))
    page.get_by_label("Search integrations").fill("dynamics")
    page.get_by_label("Filters").select_option("CRM")
    page.get_by_role("button", name="Apply").click()
    tile = page.locator("[data-integration=dynamics]")
    tile.get_by_role("link", name="Connect").click()
    page.get_by_label("Organization URL").fill(org_url)
    page.get_by_role("button", name="Connect").click()


def test_connect_consent_mapping_toggle_change_user_delete(
    hub: HubServer, dataverse: ServerHandle, chromium: Browser, no_tenant_consent: None
) -> None:
    _people(hub)
    avery_ctx, dana_ctx = _browser(chromium), _browser(chromium)
    errors: list[str] = []
    try:
        avery, dana = avery_ctx.new_page(), dana_ctx.new_page()
        for page in (avery, dana):
            page.on("pageerror", lambda error: errors.append(str(error)))
        _sign_in(avery, hub, "avery.admin@contoso.local")
        _sign_in(dana, hub, "dana.dynamics@contoso.local")

        # Dana is not a Global admin and the tenant has not consented: stopped, with the link.
        _start_connect(dana, hub, dataverse.org_url + "/main.aspx?appid=1")
        _pick_account(dana, "dana.dynamics@contoso.local")
        expect(dana.locator("#connection-error")).to_contain_text(
            "has not consented to gtmsync yet"
        )
        link = dana.get_by_label("Admin-consent link").input_value()
        assert link.startswith(f"{dataverse.org_url}/organizations/adminconsent?client_id=")
        assert "redirect_uri=" in link

        # Avery, a Global admin, connects and consents for the whole tenant.
        _start_connect(avery, hub, dataverse.org_url + "/main.aspx?appid=1")
        _pick_account(avery, "avery.admin@contoso.local")
        expect(avery.get_by_role("heading", name="Permissions requested")).to_be_visible()
        avery.get_by_label("Consent on behalf of your organization").check()
        avery.get_by_role("button", name="Accept").click()
        expect(avery).to_have_url(hub.url("/admin/integrations/connections?tab=connected"))
        flash = avery.get_by_role("status")
        expect(flash).to_contain_text("Dynamics 365 is connected as avery.admin@contoso.local")
        expect(flash).to_contain_text("We removed '/main.aspx?appid=1'")
        expect(avery.locator("#connection-status")).to_have_text("Connected")

        # Settings › Edit User Mapping: shown by email, then Sam remapped by hand.
        avery.locator("#connected").get_by_role("link", name="Dynamics").click()
        expect(avery.locator("#service-user")).to_have_text("avery.admin@contoso.local")
        avery.get_by_role("link", name="Edit User Mapping").click()
        sam_row = avery.locator("tr[data-email='sam.seller@contoso.local']")
        uma_row = avery.locator("tr[data-email='uma.unmapped@example.com']")
        expect(sam_row.locator(".mapping-status")).to_have_text("✔ User mapped")
        expect(uma_row.locator(".mapping-status")).to_have_text("User not mapped")
        options = sam_row.get_by_role("combobox").locator("option").all_inner_texts()
        assert not any("Former Employee" in o for o in options)  # disabled users never offered
        sam_row.get_by_role("combobox").select_option(label="Riley Rep (riley.rep@contoso.local)")
        sam_row.get_by_role("button", name="Save").click()
        expect(avery.get_by_role("status")).to_have_text("Mapping saved: Riley Rep.")
        expect(
            avery.locator("tr[data-email='sam.seller@contoso.local']").get_by_role("combobox")
        ).to_have_value(re.compile(".+"))

        # Toggle off (settings kept, exports blocked) and back on.
        avery.goto(hub.url("/admin/integrations/connections?tab=connected"))
        avery.get_by_role("switch", name="Turn Dynamics off").click()
        expect(avery.get_by_role("status")).to_contain_text("exports are blocked")
        expect(avery.locator("#connection-status")).to_have_text("Off")
        expect(avery.locator("#connection-problem")).to_contain_text("turned off")
        avery.get_by_role("switch", name="Turn Dynamics on").click()
        expect(avery.locator("#connection-status")).to_have_text("Connected")

        # Dana, a secondary admin, cannot delete but can Change User and becomes primary.
        dana.goto(hub.url("/admin/integrations/dynamics"))
        expect(dana.locator("#not-primary")).to_be_visible()
        dana.get_by_role("button", name="Change User").click()
        _pick_account(dana, "dana.dynamics@contoso.local")
        expect(dana).to_have_url(hub.url("/admin/integrations/dynamics"))
        expect(dana.get_by_role("status")).to_contain_text(
            "The service account is now dana.dynamics@contoso.local"
        )
        expect(dana.locator("#primary-admin")).to_contain_text("dana.dynamics@contoso.local")

        # Avery is secondary now: no Delete; Dana (primary) deletes, confirmed.
        avery.goto(hub.url("/admin/integrations/connections?tab=connected"))
        avery.locator("details.menu summary").click()
        expect(avery.get_by_role("link", name="Delete")).to_have_count(0)
        dana.goto(hub.url("/admin/integrations/connections?tab=connected"))
        dana.locator("details.menu summary").click()
        dana.get_by_role("link", name="Delete").click()
        expect(dana.get_by_role("heading", level=1)).to_have_text(
            "Delete the Dynamics 365 connection?"
        )
        dana.get_by_role("button", name="Delete connection").click()
        expect(dana.get_by_role("status")).to_contain_text("was deleted")
        expect(
            dana.locator("[data-integration=dynamics]").get_by_role("link", name="Connect")
        ).to_be_visible()

        # Every admin action is in the audit log.
        dana.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
        log = dana.locator("#audit-log")
        for action in (
            "connection.connect",
            "connection.mapping_edit",
            "connection.toggle",
            "connection.change_user",
            "connection.delete",
        ):
            expect(log).to_contain_text(action)
    finally:
        avery_ctx.close()
        dana_ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
