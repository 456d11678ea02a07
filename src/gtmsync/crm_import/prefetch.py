"""Read the next page while the current one is stored: a bounded prefetch of one page.

A backfill alternates between waiting for Dataverse (query, JSON, network) and storing a
page in the hub database; done one after the other, each side idles while the other works.
`prefetched` asks for page N+1 in one background thread as soon as page N's `nextLink` is
known, and hands pages over in order. At most two pages are alive at once (the one being
stored and the one being read), so memory stays flat however large the table.

Resumability is unchanged: the caller's cursor still advances only after it has stored and
committed a page, so a page read ahead and lost with a killed process is read again on the
resume. An error of the read-ahead (budget used up, expired delta link, network) surfaces
when the caller asks for that page, after every earlier page was stored. On exit (normal,
error, or limit stop) the read in flight is awaited, so no request of a run outlives it and
the run's request count is complete.

Hand-written on a `ThreadPoolExecutor` rather than a library: the one-page look-ahead with
ordered hand-over and an awaited exit is a dozen lines, and the fetch must stay on one
thread at a time (the Dataverse client and its token cache are used by one caller at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Protocol, TypeVar


class Linked(Protocol):
    @property
    def next_link(self) -> str | None: ...


PageT = TypeVar("PageT", bound=Linked)


@contextmanager
def prefetched(
    fetch: Callable[[str | None], PageT], first: str | None
) -> Iterator[Iterator[PageT]]:
    """Pages `fetch(first)`, `fetch(page.next_link)`, … in order, each read one page ahead.

    `fetch(None)` reads the first page of a fresh query; a link reads that page. Use as
    `with prefetched(fetch, link) as pages: for page in pages: …`.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-prefetch")
    pending: Future[PageT] | None = None

    def pages() -> Iterator[PageT]:
        nonlocal pending
        pending = pool.submit(fetch, first)
        while pending is not None:
            page = pending.result()  # re-raises the read's error here, in order
            pending = pool.submit(fetch, page.next_link) if page.next_link else None
            yield page

    try:
        yield pages()
    finally:
        if pending is not None and not pending.cancel():
            # Let the read in flight finish; its page (or error) is never handed over.
            with suppress(Exception):
                pending.result()
        pool.shutdown(wait=True)
