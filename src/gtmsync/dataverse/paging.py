"""Following `@odata.nextLink`, as an object (dlt's `JSONLinkPaginator` shape).

Dataverse paging is cursor-only (`$skip` is not supported): the server returns an opaque
`$skiptoken` link that must be followed unchanged, with the same `Prefer:
odata.maxpagesize` header, until a page has no link.
"""

from __future__ import annotations

from typing import Any

import httpx


class NextLinkPager:
    """init_request → (send) → update_state → has_next_page → update_request → …"""

    def __init__(self) -> None:
        self.next_link: str | None = None
        self.delta_link: str | None = None
        self.pages = 0

    def init_request(self, request: httpx.Request) -> httpx.Request:
        self.next_link = None
        self.delta_link = None
        self.pages = 0
        return request

    def update_state(self, body: dict[str, Any]) -> None:
        self.pages += 1
        self.next_link = body.get("@odata.nextLink") or body.get("odata.nextLink")
        self.delta_link = body.get("@odata.deltaLink") or body.get("odata.deltaLink")

    @property
    def has_next_page(self) -> bool:
        return self.next_link is not None

    def update_request(self, request: httpx.Request) -> httpx.Request:
        if self.next_link is None:
            raise RuntimeError("no next page: check has_next_page before update_request")
        return httpx.Request(
            request.method,
            httpx.URL(self.next_link),
            headers=request.headers,
            extensions=request.extensions,
        )
