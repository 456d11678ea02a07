"""The portal shell in a real Chromium against the real hub process."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.web import HubServer, Login

pytestmark = pytest.mark.browser

MEMBER_MENU = [
    ("Search", "/search", "Advanced Search"),
    ("Saved searches", "/search/saved", "Saved searches"),
    ("My Target Accounts", "/my-target-accounts", "My Target Accounts"),
    ("Exports", "/exports", "Export history"),
    ("Activities", "/activities", "Activities"),
    ("Integrations", "/settings/integrations", "Integrations"),
    ("API tokens", "/settings/api-tokens", "API tokens"),
]
ADMIN_MENU = [
    ("Connections", "/admin/integrations/connections", "Connections"),
    ("Export Settings", "/admin/integrations/dynamics/export", "Export Preferences"),
    ("Dynamics Import", "/admin/integrations/dynamics/import-mapping", "Import Mapping"),
    (
        "Search Filters",
        "/admin/integrations/dynamics/search-filters",
        "Advanced Search Filter Settings",
    ),
    ("CRM Writeback", "/admin/integrations/dynamics/writeback", "CRM Writeback"),
    ("Data Sharing", "/admin/privacy/data-sharing", "Data Sharing"),
    ("Users", "/admin/users", "Users"),
    ("Audit log", "/admin/audit-log", "Audit log"),
]


def sign_in(page: Page, hub: HubServer, login: Login) -> None:
    page.goto(hub.url("/sign-in"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.get_by_label("Email").fill(login.email)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(hub.url("/search"))


def sign_out(page: Page, hub: HubServer) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(hub.url("/sign-in"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")


def test_admin_walks_every_menu_entry_creates_a_token_and_signs_out(
    hub_server: HubServer, page: Page
) -> None:
    org = hub_server.create_org()
    sign_in(page, hub_server, org.admin)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_text("Admin Portal")).to_be_visible()

    for link_text, path, heading in [*MEMBER_MENU, *ADMIN_MENU]:
        nav.get_by_role("link", name=link_text, exact=True).click()
        expect(page).to_have_url(hub_server.url(path))
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(nav.get_by_role("link", name=link_text, exact=True)).to_have_attribute(
            "aria-current", "page"
        )

    nav.get_by_role("link", name="API tokens").click()
    page.get_by_label("Token name").fill("Browser test token")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("Your new token").input_value()
    assert re.fullmatch(r"gtm_[A-Za-z0-9_\-]{20,}", token)
    expect(page.locator("#tokens")).to_contain_text("Browser test token")
    expect(page.locator("#tokens")).to_contain_text("active")

    page.get_by_role("button", name="Revoke Browser test token").click()
    expect(page.get_by_role("status")).to_have_text("The token was revoked.")
    expect(page.locator("#tokens")).to_contain_text("revoked")

    sign_out(page, hub_server)
    page.goto(hub_server.url("/admin/users"))
    expect(page).to_have_url(re.compile(re.escape(hub_server.url("/sign-in?next="))))


def test_member_has_no_admin_portal_and_gets_the_403_page(
    hub_server: HubServer, page: Page
) -> None:
    org = hub_server.create_org()
    sign_in(page, hub_server, org.member)
    nav = page.get_by_role("navigation", name="Main")
    for link_text, path, heading in MEMBER_MENU:
        nav.get_by_role("link", name=link_text, exact=True).click()
        expect(page).to_have_url(hub_server.url(path))
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(nav.get_by_text("Admin Portal")).to_have_count(0)
    expect(nav.get_by_role("link", name="Connections")).to_have_count(0)

    for _, path, _ in ADMIN_MENU:
        response = page.goto(hub_server.url(path))
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "You don't have access to this page"
        )
        expect(page.get_by_text("Only admins of your org can open this.")).to_be_visible()
    sign_out(page, hub_server)


def test_admin_adds_a_user_who_then_signs_in(hub_server: HubServer, page: Page) -> None:
    org = hub_server.create_org()
    sign_in(page, hub_server, org.admin)
    page.goto(hub_server.url("/admin/users"))
    page.get_by_label("Name").fill("Grace Hopper")
    page.get_by_label("Email").fill(org.member.email)  # taken: refused by the server
    page.get_by_label("Initial password").fill("a-long-password")
    page.get_by_role("button", name="Add user").click()
    email_field = page.get_by_label("Email")
    expect(email_field).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("already exists in this org")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Grace Hopper")  # the form kept its input

    email_field.fill(f"grace.{org.slug}@example.com")
    page.get_by_label("Initial password").fill("a-long-password")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text("Grace Hopper")
    expect(page.locator("#users")).to_contain_text(f"grace.{org.slug}@example.com")
    sign_out(page, hub_server)

    newcomer = Login(org.admin.user_id, f"grace.{org.slug}@example.com", "a-long-password", "")
    sign_in(page, hub_server, newcomer)
    expect(page.get_by_role("banner")).to_contain_text("Grace Hopper")
