"""The one-page read-ahead of a run (`crm_import/prefetch.py`) and the import's fast paths.

The prefetch is exercised twice: directly, with a fetch function that records which thread
read which page and when (order, bound, error hand-over, exit), and end to end through the
local Dataverse server, where a backfill killed mid-way must still resume from its last
committed page although the page after it had already been read.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.mapping import domain_of, fast_registrable_domain
from gtmsync.crm_import.models import GtmObject, RunKind, RunStatus
from gtmsync.crm_import.prefetch import WriteBehind, prefetched
from gtmsync.platform.normalise import registrable_domain
from tests.crm_import.conftest import Importer


@dataclass
class Page:
    number: int
    next_link: str | None


class Chain:
    """Pages 1..n linked by `next_link`; records each read and how many overlapped."""

    def __init__(self, n: int, *, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.n = n
        self.fail_at = fail_at
        self.delay = delay
        self.reads: list[int] = []
        self.threads: set[str] = set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.finished: list[int] = []
        self._lock = threading.Lock()

    def fetch(self, link: str | None) -> Page:
        number = 1 if link is None else int(link.removeprefix("page-"))
        with self._lock:
            self.reads.append(number)
            self.threads.add(threading.current_thread().name)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            if number == self.fail_at:
                raise RuntimeError(f"page {number} failed")
            return Page(number, f"page-{number + 1}" if number < self.n else None)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.finished.append(number)


class TestPrefetched:
    def test_pages_arrive_in_order_read_in_one_background_thread(self) -> None:
        chain = Chain(6)
        with prefetched(chain.fetch, None) as pages:
            got = [page.number for page in pages]
        assert got == [1, 2, 3, 4, 5, 6]
        assert chain.reads == [1, 2, 3, 4, 5, 6]  # each page read once
        assert len(chain.threads) == 1
        assert threading.current_thread().name not in chain.threads
        assert chain.most_in_flight == 1  # one read at a time: the client is not shared

    def test_the_next_page_is_read_while_the_current_one_is_stored(self) -> None:
        chain = Chain(3, delay=0.05)
        with prefetched(chain.fetch, None) as pages:
            first = next(pages)
            assert first.number == 1
            time.sleep(0.2)  # "storing" page 1
            assert chain.reads == [1, 2]  # page 2 was read meanwhile, page 3 not yet
            assert 2 in chain.finished
            rest = [page.number for page in pages]
        assert rest == [2, 3]

    def test_resumes_from_a_link(self) -> None:
        chain = Chain(5)
        with prefetched(chain.fetch, "page-4") as pages:
            assert [page.number for page in pages] == [4, 5]

    def test_a_failed_read_surfaces_after_the_pages_before_it(self) -> None:
        chain = Chain(5, fail_at=3)
        stored: list[int] = []

        def store_all() -> None:
            with prefetched(chain.fetch, None) as pages:
                for page in pages:
                    stored.append(page.number)

        with pytest.raises(RuntimeError, match="page 3 failed"):
            store_all()
        assert stored == [1, 2]

    def test_leaving_early_leaves_no_read_behind(self) -> None:
        chain = Chain(10, delay=0.1)

        def stop_at_page_two() -> None:
            with prefetched(chain.fetch, None) as pages:
                for page in pages:
                    if page.number == 2:
                        raise KeyError("stop")  # e.g. the per-object limit

        with pytest.raises(KeyError):
            stop_at_page_two()
        # Page 3 was asked for when page 2 was handed over: it was either cancelled before
        # it started or awaited on the way out. Either way nothing runs after the exit.
        assert chain.in_flight == 0
        assert chain.reads in ([1, 2], [1, 2, 3])
        assert sorted(chain.finished) == sorted(chain.reads)
        time.sleep(0.25)
        assert chain.reads in ([1, 2], [1, 2, 3])


class TestWriteBehind:
    def test_runs_in_another_thread_and_wait_returns_after_it(self) -> None:
        done: list[str] = []

        def work() -> None:
            time.sleep(0.05)
            done.append(threading.current_thread().name)

        with WriteBehind() as writer:
            writer.submit(work)
            assert done == []  # still running: the caller goes on meanwhile
            writer.wait()
            assert len(done) == 1
            assert done[0] != threading.current_thread().name

    def test_an_error_surfaces_on_wait(self) -> None:
        def fail() -> None:
            raise ValueError("constraint failed")

        with WriteBehind() as writer:
            writer.submit(fail)
            with pytest.raises(ValueError, match="constraint failed"):
                writer.wait()
            writer.wait()  # nothing in flight any more

    def test_one_statement_at_a_time(self) -> None:
        with WriteBehind() as writer:
            writer.submit(lambda: time.sleep(0.05))
            with pytest.raises(RuntimeError, match="wait for the statement in flight"):
                writer.submit(lambda: None)
            writer.wait()

    def test_exit_awaits_the_statement_in_flight(self) -> None:
        done: list[int] = []

        def slow() -> None:
            time.sleep(0.05)
            done.append(1)

        with WriteBehind() as writer:
            writer.submit(slow)
        assert done == [1]


class TestKilledBackfillWithReadAhead:
    def test_page_read_ahead_is_read_again_on_resume(self, importer: Importer) -> None:
        """Killed after page 2's commit, with pages 3 and 4 already read: none lost or doubled."""

        class Killed(BaseException):
            pass

        reads = 0

        def count(info: object) -> None:
            nonlocal reads
            if getattr(info, "resource", "") == "accounts":
                reads += 1

        def checkpoint() -> None:
            importer.session.commit()
            if len(importer.stored_ids(GtmObject.ACCOUNT, "account")) == 100:
                # The backfill pipeline: when page 2 is committed, page 3 has been read and
                # prepared, and page 4 asked for. Let that read start, then die.
                deadline = time.monotonic() + 10
                while reads < 4 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert reads == 4
                raise Killed

        with pytest.raises(Killed):
            import_service.run_import(
                importer.session,
                importer.org_id,
                table="account",
                checkpoint=checkpoint,
                settings=importer.cfg,
                on_request=count,
            )
        importer.session.rollback()
        assert len(importer.stored_ids(GtmObject.ACCOUNT, "account")) == 100
        cursor = importer.cursor("account:account")
        assert cursor.backfill_next_link is not None
        cursor.locked_until = None
        importer.session.commit()

        run = importer.one("account")
        assert run.status == RunStatus.SUCCEEDED, run.errors
        assert run.kind == RunKind.BACKFILL
        expected = importer.store_ids("account")
        assert run.records_read == len(expected) - 100  # page 3 read again, from its link
        stored = importer.stored_ids(GtmObject.ACCOUNT, "account")
        assert len(stored) == len(set(stored)) == len(expected)
        assert set(stored) == expected


class TestFastDomain:
    @pytest.mark.parametrize(
        "value",
        [
            "https://www.bench5.example.com",
            "http://a.co.uk/",
            "a.co.uk",
            "co.uk",
            "https://1.2.3.4",
            "HTTPS://WWW.Example.COM",
            "  example.com  ",
            "https://-a.com",
            "https://a-.com",
            "https://x.y.z.example.co.jp/",
            "https://ex--ample.com",
            "https://exämple.com",
            "https://example.com:8080",
            "https://u@example.com",
            "ftp://example.com",
            "example",
            "https://example.com/path?x",
            "https://example.com.",
            "https://" + "a" * 63 + ".com",
            "https://" + "a" * 64 + ".com",
            "www.example.com//",
            "https://a.b.123",
            "https://a..com",
            "https://example.com\n/x",
            "",
        ],
    )
    def test_agrees_with_the_platform_parser(self, value: str) -> None:
        def outcome(parse: object) -> str:
            try:
                return parse(value)  # type: ignore[operator, no-any-return]
            except ValueError as exc:
                return f"error: {exc}"

        assert outcome(fast_registrable_domain) == outcome(registrable_domain)

    def test_domain_of_falls_back_to_the_email(self) -> None:
        assert domain_of("not a site", "ann@mail.example.org") == "example.org"
        assert domain_of(None, None) is None
