"""Change tracking: an initial tracked read, then deltas from `@odata.deltaLink`.

The first run sends `Prefer: odata.track-changes` and receives every row; the last page
carries the delta link. Later runs follow that link and receive created/updated rows plus
`$deletedEntity` entries for removals. `$filter`/`$orderby`/`$expand`/`$top` are not
allowed with change tracking, so only `$select` is offered.

A delta link can die (Dataverse keeps changes for `expirechangetrackingindays`, 7 days by
default, and a token can be malformed). Any client error while following a delta link
becomes `ChangeTokenExpiredError`, the caller's cue to fall back to a `modifiedon`
backfill. The new delta link is only known once the last page has been read, so the
caller stores it after committing that page's rows, never before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from gtmsync.dataverse import odata
from gtmsync.dataverse.errors import (
    ChangeTokenExpiredError,
    ConfigurationError,
    NotFoundError,
    ValidationError,
)
from gtmsync.dataverse.records import Record

if TYPE_CHECKING:
    from gtmsync.dataverse.client import DataverseClient


@dataclass(frozen=True)
class Deletion:
    id: uuid.UUID
    reason: str | None


@dataclass(frozen=True)
class ChangePage:
    upserts: list[Record]
    deletions: list[Deletion]
    next_link: str | None
    delta_link: str | None
    response: httpx.Response = field(repr=False)


def _is_deletion(row: dict[str, Any]) -> bool:
    context = str(row.get("@odata.context", ""))
    return context.endswith("$deletedEntity") or (
        "reason" in row and "id" in row and len([k for k in row if not k.startswith("@")]) <= 2
    )


def parse_page(response: httpx.Response) -> ChangePage:
    body = response.json()
    upserts: list[Record] = []
    deletions: list[Deletion] = []
    for row in body.get("value", []):
        if _is_deletion(row):
            deletions.append(Deletion(uuid.UUID(str(row["id"])), row.get("reason")))
        else:
            upserts.append(Record(row))
    return ChangePage(
        upserts=upserts,
        deletions=deletions,
        next_link=body.get("@odata.nextLink"),
        delta_link=body.get("@odata.deltaLink"),
        response=response,
    )


class ChangeFeed:
    """Pages of changes; after the last page, `delta_link` holds the link for the next run."""

    def __init__(
        self,
        client: DataverseClient,
        entity_set: str,
        *,
        select: Iterable[str] | None = None,
        delta_link: str | None = None,
        page_size: int | None = None,
    ) -> None:
        if delta_link is not None and not delta_link.startswith("https://"):
            raise ConfigurationError(
                "delta_link must be the full @odata.deltaLink URL returned by the previous run"
            )
        self._client = client
        self._entity_set = odata.name(entity_set)
        self._select = list(select) if select is not None else None
        self._start_link = delta_link
        self._page_size = page_size
        self.delta_link: str | None = None
        self.finished = False

    @property
    def is_initial(self) -> bool:
        return self._start_link is None

    def _headers(self) -> dict[str, str]:
        prefer = ["odata.track-changes"]
        if self._page_size:
            prefer.append(f"odata.maxpagesize={self._page_size}")
        return {"Prefer": ",".join(prefer)}

    def _follow(self, link: str) -> httpx.Response:
        try:
            return self._client.request("GET", link, headers=self._headers(), idempotent=True)
        except ChangeTokenExpiredError:
            raise
        except (ValidationError, NotFoundError) as exc:
            raise ChangeTokenExpiredError(
                f"the delta link for {self._entity_set} can no longer be followed "
                f"({exc.message}): run a backfill",
                status=exc.status,
                code=exc.code,
                request_id=exc.request_id,
                body=exc.body,
            ) from exc

    def pages(self) -> Iterator[ChangePage]:
        if self._start_link is None:
            response = self._client.request(
                "GET",
                self._entity_set,
                params=odata.query(select=self._select),
                headers=self._headers(),
                idempotent=True,
            )
        else:
            response = self._follow(self._start_link)
        while True:
            page = parse_page(response)
            yield page
            if page.next_link is None:
                self.delta_link = page.delta_link
                self.finished = True
                return
            if self.is_initial:
                response = self._client.request(
                    "GET", page.next_link, headers=self._headers(), idempotent=True
                )
            else:
                response = self._follow(page.next_link)

    def __iter__(self) -> Iterator[Record | Deletion]:
        for page in self.pages():
            yield from page.upserts
            yield from page.deletions
