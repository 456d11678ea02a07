"""What people type is shown as text, never as markup: a crawl of the portal after org B's
member saved a search, logged an activity and named an API token with HTML payloads finds
each payload escaped on every page (and the CSP forbids inline script on top of that)."""

from __future__ import annotations

import pytest

from tests.fixtures.web import page_csrf
from tests.security.crawl import crawl
from tests.security.world import World, bearer

pytestmark = pytest.mark.xdist_group("security-xss")

PAYLOADS = [
    "<script>alert('xss')</script>",
    '"><img src=x onerror=alert(1)>',
    "</textarea><svg onload=alert(1)>",
]


def test_typed_html_is_escaped_on_every_page(world: World) -> None:
    client, headers = world.b_member, bearer(world.b_member_token)
    contact = world.a.ids["contact_platform"]
    for payload in PAYLOADS:
        assert (
            client.post(
                "/api/v1/search/saved",
                json={
                    "name": payload,
                    "object": "companies",
                    "params": [["name__contains", payload]],
                },
                headers=headers,
            ).status_code
            == 201
        )
        assert (
            client.post(
                "/api/v1/activities",
                json={
                    "kind": "email",
                    "subject": payload,
                    "body": payload,
                    "target_type": "contact",
                    "target_platform_id": contact,
                    "occurred_at": "2026-11-20T15:30:00Z",
                },
                headers=headers,
            ).status_code
            == 201
        )
        assert (
            client.post(
                "/settings/api-tokens", data={"name": payload, "csrf_token": page_csrf(client)}
            ).status_code
            == 201
        )
    pages: list[str] = []
    crawl(client, pages=pages)
    shown = "\n".join(pages)
    assert "&lt;script&gt;alert(" in shown  # the payloads are on the pages, as text
    for payload in PAYLOADS:
        assert payload not in shown, payload
