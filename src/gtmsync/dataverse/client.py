"""`DataverseClient`: every call gtmsync makes to one Dataverse org goes through here.

One `httpx.Client` per instance (connection reuse, explicit timeouts, TLS trust), one
`RetryPolicy`, one `on_request` hook called before **every** attempt (retries included) so
the hub can count calls per org and veto one by raising `BudgetExceededError`, one
`on_response` hook called after every attempt with its status (metrics: throttling, failures,
latency), and a
concurrency limit shared by all clients of the same org so parallel jobs stay under
Dataverse's 52-concurrent-requests protection.

Writes carry their idempotency in their shape: `upsert`/`update`/`delete` address a row by
id or alternate key and may be retried after a dropped connection; `create` and
`create_multiple` may not (a resend could create the row twice), except after a 429 or a
failed connect, where Dataverse never ran the request.
"""

from __future__ import annotations

import itertools
import json as jsonlib
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx

from gtmsync.dataverse import batch as batchlib
from gtmsync.dataverse import odata
from gtmsync.dataverse.errors import (
    APIError,
    ConfigurationError,
    DataverseError,
    NotFoundError,
    NotSupportedError,
    TransportError,
    from_response,
)
from gtmsync.dataverse.paging import NextLinkPager
from gtmsync.dataverse.records import Page, Record
from gtmsync.dataverse.retry import RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from gtmsync.dataverse.changes import ChangeFeed
    from gtmsync.dataverse.metadata import MetadataCache

DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
DEFAULT_MAX_CONCURRENCY = 16
MAX_CONCURRENCY_LIMIT = 52
DEFAULT_BULK_CHUNK_SIZE = 1000
MAX_PAGE_SIZE = 5000
ALL_ANNOTATIONS = "*"
USER_AGENT = "gtmsync-dataverse/0.1"


@dataclass(frozen=True)
class RequestInfo:
    """What the `on_request` hook sees: enough to count calls per org and per table."""

    org: str
    method: str
    resource: str
    url: str
    attempt: int
    operations: int = 1

    @property
    def table(self) -> str:
        """The entity set (or function, or `$batch`) the request addresses."""
        return self.resource


@dataclass(frozen=True)
class ResponseInfo:
    """What the `on_response` hook sees after every attempt: the status, or the transport error.

    Seen after each attempt (not each call) so that 429s and 5xx that a retry later hid are
    still counted; `status` is None when no response arrived (`error` names the exception).
    """

    request: RequestInfo
    status: int | None
    error: str | None
    elapsed: float


@dataclass(frozen=True)
class WhoAmI:
    user_id: uuid.UUID
    business_unit_id: uuid.UUID
    organization_id: uuid.UUID


@dataclass(frozen=True)
class UpsertResult:
    created: bool
    record: Record | None
    entity_id: uuid.UUID | None


class _OrgLimiter:
    """Semaphores shared by every client of one org (per limit), process-wide."""

    _lock = threading.Lock()
    _semaphores: dict[tuple[str, int], threading.BoundedSemaphore] = {}

    @classmethod
    def get(cls, org: str, limit: int) -> threading.BoundedSemaphore:
        with cls._lock:
            return cls._semaphores.setdefault((org, limit), threading.BoundedSemaphore(limit))


def _entity_id_from(headers: httpx.Headers) -> uuid.UUID | None:
    link = headers.get("OData-EntityId") or headers.get("Location")
    if not link:
        return None
    inside = link.rstrip(")").rpartition("(")[2]
    try:
        return uuid.UUID(inside)
    except ValueError:
        return None


def _prefer(*parts: str | None) -> dict[str, str]:
    values = [p for p in parts if p]
    return {"Prefer": ",".join(values)} if values else {}


def _duplicate_detection(enabled: bool) -> dict[str, str]:
    return {"MSCRM.SuppressDuplicateDetection": "false"} if enabled else {}


def _annotations(value: str | None) -> str | None:
    return f'odata.include-annotations="{value}"' if value else None


class DataverseClient:
    """A connection to one org's Web API (`https://<org>/api/data/v9.2/`)."""

    def __init__(
        self,
        org_url: str,
        *,
        auth: httpx.Auth | None,
        api_version: str = "v9.2",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        on_request: Callable[[RequestInfo], None] | None = None,
        on_response: Callable[[ResponseInfo], None] | None = None,
        verify: ssl.SSLContext | str | bool = True,
        bulk_chunk_size: int = DEFAULT_BULK_CHUNK_SIZE,
        transport: httpx.BaseTransport | None = None,
        caller_object_id: uuid.UUID | str | None = None,
    ) -> None:
        parts = urlsplit(org_url)
        if parts.scheme != "https" or not parts.netloc:
            raise ConfigurationError(
                f"org_url {org_url!r} must be an https URL such as "
                "https://contoso.crm.dynamics.com (Dataverse only serves https; bearer tokens "
                "must never travel in plain text)"
            )
        if not 1 <= max_concurrency <= MAX_CONCURRENCY_LIMIT:
            raise ConfigurationError(
                f"max_concurrency={max_concurrency} must be between 1 and {MAX_CONCURRENCY_LIMIT} "
                "(Dataverse throttles more than 52 concurrent requests per user)"
            )
        if bulk_chunk_size < 1:
            raise ConfigurationError("bulk_chunk_size must be at least 1")
        self.org = parts.netloc.lower()
        self.org_url = f"https://{parts.netloc}"
        self.api_root = f"{self.org_url}/api/data/{api_version}"
        self.retry = retry or RetryPolicy()
        self.on_request = on_request
        self.on_response = on_response
        self.bulk_chunk_size = bulk_chunk_size
        self.max_concurrency = max_concurrency
        self.caller_object_id = str(caller_object_id) if caller_object_id else None
        self._semaphore = _OrgLimiter.get(self.org, max_concurrency)
        self._auth = auth
        self._http = httpx.Client(
            auth=auth,
            timeout=timeout,
            verify=verify,
            transport=transport,
            headers={
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
                "User-Agent": USER_AGENT,
            },
        )
        self._metadata: MetadataCache | None = None
        self._owns_http = True
        #: Dataverse's recommended degree of parallelism (`x-ms-dop-hint`), once seen.
        self.dop_hint: int | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool and the auth provider's (views leave both open)."""
        if self._owns_http:
            self._http.close()
            close_auth = getattr(self._auth, "close", None)
            if callable(close_auth):
                close_auth()

    def __enter__(self) -> DataverseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def with_caller(self, caller_object_id: uuid.UUID | str | None) -> DataverseClient:
        """A view that impersonates the given Entra object id (`CallerObjectId`) on every call.

        Shares the HTTP connection pool, retry policy, hook and metadata cache.
        """
        view = object.__new__(DataverseClient)
        view.__dict__.update(self.__dict__)
        view.caller_object_id = str(caller_object_id) if caller_object_id else None
        view._owns_http = False
        return view

    # -- the one request path ---------------------------------------------------------------

    def url(self, path: str) -> str:
        """An absolute URL under this org; absolute links (next/delta links) must stay on it,
        because the bearer token goes wherever the request goes."""
        if "://" in path:
            if not path.lower().startswith(self.org_url.lower() + "/"):
                raise ConfigurationError(
                    f"refusing to send this org's token to {urlsplit(path).netloc!r}: links "
                    f"must stay under {self.org_url}"
                )
            return path
        return f"{self.api_root}/{path.lstrip('/')}"

    def _resource(self, url: str) -> str:
        rest = (
            url[len(self.api_root) + 1 :] if url.startswith(self.api_root) else urlsplit(url).path
        )
        for stop in "(/?":
            rest = rest.split(stop, 1)[0]
        return rest

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        operations: int = 1,
        ok_statuses: Iterable[int] = (),
    ) -> httpx.Response:
        """Send with retries, the budget hook and the org's concurrency limit; raise on errors.

        `idempotent` is the caller's declaration that resending cannot duplicate a write.
        """
        url = self.url(path)
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{odata.encode_query(params)}"
        all_headers = dict(headers or {})
        if self.caller_object_id and "CallerObjectId" not in all_headers:
            all_headers["CallerObjectId"] = self.caller_object_id
        if json is not None:
            content = jsonlib.dumps(json, separators=(",", ":"), default=str).encode()
            all_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        method = method.upper()
        if method == "GET":
            all_headers.setdefault("If-None-Match", "null")
        resource = self._resource(url)
        accepted = set(ok_statuses)
        attempt = 0
        while True:
            attempt += 1
            info = RequestInfo(self.org, method, resource, url, attempt, operations)
            if self.on_request is not None:
                self.on_request(info)
            request = self._http.build_request(method, url, content=content, headers=all_headers)
            started = time.monotonic()
            try:
                with self._semaphore:
                    response = self._http.send(request)
            except httpx.TransportError as exc:
                if self.on_response is not None:
                    elapsed = time.monotonic() - started
                    self.on_response(ResponseInfo(info, None, type(exc).__name__, elapsed))
                if self.retry.should_retry_error(exc, attempt, idempotent=idempotent):
                    self.retry.pause(
                        self.retry.backoff(attempt),
                        reason=type(exc).__name__,
                        attempt=attempt,
                        url=url,
                    )
                    continue
                raise TransportError(
                    f"{method} {resource}: {type(exc).__name__}: {exc or 'connection failed'}"
                ) from exc
            if self.on_response is not None:
                elapsed = time.monotonic() - started
                self.on_response(ResponseInfo(info, response.status_code, None, elapsed))
            self._note_dop_hint(response)
            if response.status_code < 400 or response.status_code in accepted:
                return response
            if self.retry.should_retry_response(response, attempt, idempotent=idempotent):
                wait = self.retry.wait_for_response(response, attempt)
                response.close()
                self.retry.pause(
                    wait, reason=f"HTTP {response.status_code}", attempt=attempt, url=url
                )
                continue
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            error = from_response(response, retry_after=retry_after)
            error.attempts = attempt
            raise error

    def _note_dop_hint(self, response: httpx.Response) -> None:
        hint = response.headers.get("x-ms-dop-hint")
        if hint and hint.isdigit():
            self.dop_hint = int(hint)

    # -- functions ----------------------------------------------------------------------

    def who_am_i(self) -> WhoAmI:
        body = self.request("GET", "WhoAmI()", idempotent=True).json()
        return WhoAmI(
            user_id=uuid.UUID(body["UserId"]),
            business_unit_id=uuid.UUID(body["BusinessUnitId"]),
            organization_id=uuid.UUID(body["OrganizationId"]),
        )

    def total_record_count(self, logical_names: Sequence[str]) -> dict[str, int]:
        """Snapshot counts (refreshed by Dataverse within 24 h) from `RetrieveTotalRecordCount`."""
        names = ",".join(odata.string_literal(odata.name(n)) for n in logical_names)
        body = self.request(
            "GET", f"RetrieveTotalRecordCount(EntityNames=[{names}])", idempotent=True
        ).json()
        collection = body.get("EntityRecordCountCollection", body)
        return {
            str(k): int(v) for k, v in zip(collection["Keys"], collection["Values"], strict=True)
        }

    def count(self, entity_set: str, *, filter: str | None = None) -> int:
        """Exact count of matching rows up to 5,000 (`$count=true`, Dataverse's cap)."""
        params = {"$count": "true", "$top": "1"}
        if filter:
            params["$filter"] = filter
        body = self.request("GET", odata.name(entity_set), params=params, idempotent=True).json()
        return int(body.get("@odata.count", 0))

    # -- reads --------------------------------------------------------------------------

    def retrieve(
        self,
        entity_set: str,
        key: uuid.UUID | str | Mapping[str, odata.Scalar],
        *,
        select: Iterable[str] | None = None,
        expand: Iterable[str] | None = None,
        annotations: str | None = ALL_ANNOTATIONS,
    ) -> Record:
        """One row by primary key (GUID) or alternate key (mapping of column → value)."""
        path = odata.name(entity_set) + odata.key_segment(key)
        params = odata.query(select=select, expand=expand)
        response = self.request(
            "GET", path, params=params, headers=_prefer(_annotations(annotations)), idempotent=True
        )
        return Record(response.json())

    def retrieve_by_key(
        self,
        entity_set: str,
        key: Mapping[str, odata.Scalar],
        *,
        select: Iterable[str] | None = None,
        expand: Iterable[str] | None = None,
        annotations: str | None = ALL_ANNOTATIONS,
    ) -> Record:
        return self.retrieve(entity_set, key, select=select, expand=expand, annotations=annotations)

    def pages(
        self,
        entity_set: str,
        *,
        select: Iterable[str] | None = None,
        filter: str | None = None,
        orderby: str | None = None,
        expand: Iterable[str] | None = None,
        top: int | None = None,
        count: bool = False,
        page_size: int | None = None,
        annotations: str | None = ALL_ANNOTATIONS,
    ) -> Iterator[Page]:
        """Pages of a collection read, following `@odata.nextLink` until the last page.

        Arguments are checked now; requests go out lazily as the pages are iterated.
        """
        if page_size is not None and not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ConfigurationError(f"page_size={page_size} must be between 1 and {MAX_PAGE_SIZE}")
        if page_size is not None and top is not None:
            raise ConfigurationError(
                "pass either top or page_size, not both: Dataverse ignores $top with "
                "odata.maxpagesize"
            )
        params = odata.query(
            select=select, filter=filter, orderby=orderby, expand=expand, top=top, count=count
        )
        headers = _prefer(
            f"odata.maxpagesize={page_size}" if page_size else None, _annotations(annotations)
        )
        return self._follow(odata.name(entity_set), params, headers)

    def _follow(
        self, path: str, params: Mapping[str, str] | None, headers: Mapping[str, str]
    ) -> Iterator[Page]:
        pager = NextLinkPager()
        response = self.request("GET", path, params=params, headers=headers, idempotent=True)
        while True:
            body = response.json()
            pager.update_state(body)
            yield Page.from_body(body, response)
            if pager.next_link is None:
                return
            response = self.request("GET", pager.next_link, headers=headers, idempotent=True)

    def query(
        self,
        entity_set: str,
        *,
        select: Iterable[str] | None = None,
        filter: str | None = None,
        orderby: str | None = None,
        expand: Iterable[str] | None = None,
        top: int | None = None,
        page_size: int | None = None,
        annotations: str | None = ALL_ANNOTATIONS,
    ) -> Iterator[Record]:
        """Every matching row, page by page (lazy: stop iterating to stop requesting)."""
        pages = self.pages(
            entity_set,
            select=select,
            filter=filter,
            orderby=orderby,
            expand=expand,
            top=top,
            page_size=page_size,
            annotations=annotations,
        )
        return itertools.chain.from_iterable(page.records for page in pages)

    def query_in(
        self,
        entity_set: str,
        field: str,
        values: Sequence[odata.Scalar],
        *,
        select: Iterable[str] | None = None,
        filter: str | None = None,
        page_size: int | None = None,
        annotations: str | None = ALL_ANNOTATIONS,
        max_url_length: int = odata.DEFAULT_MAX_URL_LENGTH,
    ) -> Iterator[Record]:
        """Bulk look-up: rows whose `field` is one of `values`, in URL-sized `In()` chunks."""
        selected = list(select) if select is not None else None
        other = odata.query(select=selected)
        for chunk in odata.in_chunks(
            field,
            values,
            url_prefix=self.url(odata.name(entity_set)),
            other_params={**other, **({"$filter": f"() and ({filter})"} if filter else {})},
            max_url_length=max_url_length,
        ):
            combined = odata.and_(chunk, filter) if filter else chunk
            yield from self.query(
                entity_set,
                select=selected,
                filter=combined,
                page_size=page_size,
                annotations=annotations,
            )

    # -- single-row writes ----------------------------------------------------------------

    def create(
        self, entity_set: str, data: Mapping[str, Any], *, detect_duplicates: bool = False
    ) -> uuid.UUID:
        """POST a new row; returns its id. Not resent after an ambiguous failure.

        `detect_duplicates=True` runs the org's duplicate detection rules (off by default in
        the Web API); a match raises `DuplicateRecordError` and nothing is written.
        """
        response = self.request(
            "POST",
            odata.name(entity_set),
            json=dict(data),
            headers=_duplicate_detection(detect_duplicates),
            idempotent=False,
        )
        entity_id = _entity_id_from(response.headers)
        if entity_id is None:
            raise APIError(
                f"create in {entity_set} answered without OData-EntityId",
                status=response.status_code,
            )
        return entity_id

    def update(
        self,
        entity_set: str,
        key: uuid.UUID | str | Mapping[str, odata.Scalar],
        data: Mapping[str, Any],
        *,
        etag: str | None = None,
    ) -> None:
        """PATCH an existing row (`If-Match: *`, or the row's ETag for optimistic concurrency)."""
        self.request(
            "PATCH",
            odata.name(entity_set) + odata.key_segment(key),
            json=dict(data),
            headers={"If-Match": etag or "*"},
            idempotent=True,
        )

    def upsert(
        self,
        entity_set: str,
        key: uuid.UUID | str | Mapping[str, odata.Scalar],
        data: Mapping[str, Any],
        *,
        mode: Literal["upsert", "create_only", "update_only"] = "upsert",
        etag: str | None = None,
        select: Iterable[str] | None = None,
        detect_duplicates: bool = False,
    ) -> UpsertResult:
        """PATCH by id or alternate key: creates or updates; `created` says which.

        `mode="create_only"` sends `If-None-Match: *` (existing row → `DuplicateRecordError`),
        `update_only` sends `If-Match` (missing row → `NotFoundError`).
        """
        headers = {"Prefer": "return=representation", **_duplicate_detection(detect_duplicates)}
        if mode == "create_only":
            headers["If-None-Match"] = "*"
        elif mode == "update_only" or etag:
            headers["If-Match"] = etag or "*"
        params = odata.query(select=select) if select is not None else None
        response = self.request(
            "PATCH",
            odata.name(entity_set) + odata.key_segment(key),
            params=params,
            json=dict(data),
            headers=headers,
            idempotent=True,
        )
        record = Record(response.json()) if response.content else None
        return UpsertResult(
            created=response.status_code == 201,
            record=record,
            entity_id=_entity_id_from(response.headers),
        )

    def delete(
        self,
        entity_set: str,
        key: uuid.UUID | str | Mapping[str, odata.Scalar],
        *,
        etag: str | None = None,
        missing_ok: bool = False,
    ) -> bool:
        """DELETE a row; returns False when it was already gone and `missing_ok` is set."""
        try:
            self.request(
                "DELETE",
                odata.name(entity_set) + odata.key_segment(key),
                headers={"If-Match": etag} if etag else None,
                idempotent=True,
            )
        except NotFoundError:
            if missing_ok:
                return False
            raise
        return True

    @staticmethod
    def bind(entity_set: str, key: uuid.UUID | str | Mapping[str, odata.Scalar]) -> str:
        """The value for `"<navigation>@odata.bind"`: `/accounts(<id>)`."""
        return f"/{odata.name(entity_set)}{odata.key_segment(key)}"

    # -- bulk writes ----------------------------------------------------------------------

    def _chunks(self, items: Sequence[Any]) -> Iterator[Sequence[Any]]:
        for start in range(0, len(items), self.bulk_chunk_size):
            yield items[start : start + self.bulk_chunk_size]

    @staticmethod
    def _typed(logical_name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return {"@odata.type": f"Microsoft.Dynamics.CRM.{odata.name(logical_name)}", **data}

    def create_multiple(
        self, entity_set: str, logical_name: str, records: Sequence[Mapping[str, Any]]
    ) -> list[uuid.UUID]:
        """`CreateMultiple` in chunks; ids in input order. Chunks are not resent on 5xx."""
        ids: list[uuid.UUID] = []
        for chunk in self._chunks(records):
            targets = [self._typed(logical_name, r) for r in chunk]
            try:
                response = self.request(
                    "POST",
                    f"{odata.name(entity_set)}/Microsoft.Dynamics.CRM.CreateMultiple",
                    json={"Targets": targets},
                    idempotent=False,
                    operations=len(targets),
                )
            except NotSupportedError:
                ids += self._create_by_batch(entity_set, chunk)
                continue
            ids += [uuid.UUID(i) for i in response.json()["Ids"]]
        return ids

    def _create_by_batch(
        self, entity_set: str, records: Sequence[Mapping[str, Any]]
    ) -> list[uuid.UUID]:
        ops = [batchlib.BatchOperation("POST", odata.name(entity_set), dict(r)) for r in records]
        results = self.batch([batchlib.ChangeSet(ops)], idempotent=False)
        _raise_first_error(results)
        return [r.entity_id for r in results if r.entity_id is not None]

    def update_multiple(
        self,
        entity_set: str,
        logical_name: str,
        records: Sequence[Mapping[str, Any]],
        *,
        primary_key: str,
    ) -> None:
        """`UpdateMultiple` in chunks; every record must carry `primary_key`."""
        for record in records:
            if primary_key not in record:
                raise ConfigurationError(
                    f"update_multiple: a record lacks {primary_key!r}; add the row id to "
                    "every record"
                )
        for chunk in self._chunks(records):
            try:
                self.request(
                    "POST",
                    f"{odata.name(entity_set)}/Microsoft.Dynamics.CRM.UpdateMultiple",
                    json={"Targets": [self._typed(logical_name, r) for r in chunk]},
                    idempotent=True,
                    operations=len(chunk),
                )
            except NotSupportedError:
                ops = [
                    batchlib.BatchOperation(
                        "PATCH",
                        odata.name(entity_set) + odata.key_segment(str(r[primary_key])),
                        {k: v for k, v in r.items() if k != primary_key},
                        {"If-Match": "*"},
                    )
                    for r in chunk
                ]
                _raise_first_error(self.batch(ops, continue_on_error=True, idempotent=True))

    def upsert_multiple(
        self,
        entity_set: str,
        logical_name: str,
        items: Sequence[tuple[uuid.UUID | str | Mapping[str, odata.Scalar], Mapping[str, Any]]],
    ) -> None:
        """`UpsertMultiple` of (key, data) pairs in chunks; safe to resend (keys are anchors).

        Dataverse returns no per-row outcome and rolls a failing chunk back entirely. When
        the table does not support the message the chunk goes through `$batch` PATCH
        upserts with continue-on-error, then the first failure is raised.
        """
        for chunk in self._chunks(items):
            targets = [
                {
                    **self._typed(logical_name, data),
                    "@odata.id": odata.name(entity_set) + odata.key_segment(key),
                }
                for key, data in chunk
            ]
            try:
                self.request(
                    "POST",
                    f"{odata.name(entity_set)}/Microsoft.Dynamics.CRM.UpsertMultiple",
                    json={"Targets": targets},
                    idempotent=True,
                    operations=len(targets),
                )
            except NotSupportedError:
                ops = [
                    batchlib.BatchOperation(
                        "PATCH", odata.name(entity_set) + odata.key_segment(key), dict(data)
                    )
                    for key, data in chunk
                ]
                _raise_first_error(self.batch(ops, continue_on_error=True, idempotent=True))

    # -- $batch -------------------------------------------------------------------------

    def batch(
        self,
        items: Sequence[batchlib.BatchItem],
        *,
        continue_on_error: bool = False,
        idempotent: bool = False,
    ) -> list[batchlib.OperationResult]:
        """Run operations and change sets; one result per operation, in the caller's order.

        Pass `idempotent=True` only when every write is addressed by id or alternate key,
        so a batch resent after a dropped connection cannot duplicate rows. Batches over
        1,000 operations are split between items (never inside a change set).
        """
        results: list[batchlib.OperationResult] = []
        for group in _batch_groups(items):
            content_type, body = batchlib.encode(group, self.api_root)
            headers = {"Content-Type": content_type}
            if continue_on_error:
                headers["Prefer"] = "odata.continue-on-error"
            response = self.request(
                "POST",
                "$batch",
                content=body,
                headers=headers,
                idempotent=idempotent,
                operations=batchlib.count_operations(group),
                ok_statuses=[s for s in range(400, 500) if s != 429],  # 429: retry
            )
            kind = response.headers.get("Content-Type", "")
            if response.status_code >= 400 and not kind.lower().startswith("multipart/"):
                raise from_response(response)
            answers = batchlib.decode(kind, response.content)
            results += batchlib.map_results(group, answers)
        return results

    # -- change tracking and metadata ---------------------------------------------------------

    def changes(
        self,
        entity_set: str,
        *,
        select: Iterable[str] | None = None,
        delta_link: str | None = None,
        page_size: int | None = None,
    ) -> ChangeFeed:
        from gtmsync.dataverse.changes import ChangeFeed

        return ChangeFeed(
            self, entity_set, select=select, delta_link=delta_link, page_size=page_size
        )

    @property
    def metadata(self) -> MetadataCache:
        if self._metadata is None:
            from gtmsync.dataverse.metadata import MetadataCache

            self._metadata = MetadataCache(self)
        return self._metadata


def _batch_groups(items: Sequence[batchlib.BatchItem]) -> Iterator[list[batchlib.BatchItem]]:
    group: list[batchlib.BatchItem] = []
    size = 0
    for item in items:
        n = batchlib.count_operations([item])
        if n > batchlib.MAX_BATCH_OPERATIONS:
            raise ConfigurationError(
                f"a change set holds {n} operations; Dataverse allows "
                f"{batchlib.MAX_BATCH_OPERATIONS} per $batch: split the change set"
            )
        if size + n > batchlib.MAX_BATCH_OPERATIONS:
            yield group
            group, size = [], 0
        group.append(item)
        size += n
    if group:
        yield group


def _raise_first_error(results: Sequence[batchlib.OperationResult]) -> None:
    for result in results:
        if result.error is not None:
            raise result.error
        if result.status is None:
            raise DataverseError(f"{result.operation.method} {result.operation.path} was not run")
