"""Read the next page while the current one is stored: a bounded prefetch of one page,
and a write-behind of one upsert.

A backfill alternates between waiting for Dataverse (query, JSON, network) and storing a
page in the hub database; done one after the other, each side idles while the other works.
`prefetched` asks for page N+1 in one background thread as soon as page N's `nextLink` is
known, and hands pages over in order. With the write-behind below, at most three pages are
alive at once (one being upserted, one being prepared, one being read), so memory stays
flat however large the table.

Resumability is unchanged: the caller's cursor still advances only after it has stored and
committed a page, so a page read ahead and lost with a killed process is read again on the
resume. An error of the read-ahead (budget used up, expired delta link, network) surfaces
when the caller asks for that page, after every earlier page was stored. On exit (normal,
error, or limit stop) a read not started yet is cancelled and one in flight is awaited, so
no request of a run outlives it and the run's request count is complete.

`WriteBehind` runs a page's upsert statement in one background thread while the runner
prepares the next page: SQLite (and psycopg) release the GIL while a statement executes,
so the database work overlaps the Python work. One statement at most is in flight, and the
runner waits for it before any other use of the connection and before committing.

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


class WriteBehind:
    """One database statement at a time in a background thread (see the module docstring).

    The caller owns the connection: between `submit` and `wait` it must not use it. On
    exit a statement still running is awaited (its error is dropped: the caller is already
    leaving with an error of its own, and rolls back).
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-write")
        self._pending: Future[None] | None = None

    def submit(self, work: Callable[[], None]) -> None:
        if self._pending is not None:
            raise RuntimeError("WriteBehind.submit: wait for the statement in flight first")
        self._pending = self._pool.submit(work)

    def wait(self) -> None:
        """Block until the statement in flight (if any) finished; re-raise its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            with suppress(Exception):
                pending.result()
        self._pool.shutdown(wait=True)
