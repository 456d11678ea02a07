"""Job leases and schedule claims on a real database (SQLite, and PostgreSQL when configured).

Processes race here through threads with their own connections, which is what workers on
several machines sharing the database do.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from gtmsync.db.engine import create_engine
from gtmsync.jobs import leases
from gtmsync.jobs.models import JobLease
from tests.fixtures.processes import race


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


class TestLease:
    def test_one_holder_at_a_time_then_free_after_release(self, engine: Engine) -> None:
        assert leases.acquire(engine, "export.run:a", holder="w1", seconds=60)
        assert not leases.acquire(engine, "export.run:a", holder="w2", seconds=60)
        assert leases.acquire(engine, "export.run:b", holder="w2", seconds=60)
        assert leases.renew(engine, "export.run:a", holder="w1", seconds=60)
        assert not leases.renew(engine, "export.run:a", holder="w2", seconds=60)
        leases.release(engine, "export.run:a", holder="w2")  # not the holder: no effect
        assert not leases.acquire(engine, "export.run:a", holder="w2", seconds=60)
        leases.release(engine, "export.run:a", holder="w1")
        assert leases.acquire(engine, "export.run:a", holder="w2", seconds=60)

    def test_a_dead_holders_lease_lapses_and_is_taken_over(self, engine: Engine) -> None:
        assert leases.acquire(engine, "import.run:o:account", holder="dead", seconds=1)
        assert not leases.acquire(engine, "import.run:o:account", holder="next", seconds=60)
        time.sleep(1.2)
        assert leases.acquire(engine, "import.run:o:account", holder="next", seconds=60)
        # The old holder, come back to life, cannot renew what is no longer its lease.
        assert not leases.renew(engine, "import.run:o:account", holder="dead", seconds=60)

    @pytest.mark.parametrize("existing", [False, True], ids=["new-row", "expired-row"])
    def test_exactly_one_of_many_racers_wins(self, engine: Engine, existing: bool) -> None:
        if existing:
            assert leases.acquire(engine, "race", holder="old", seconds=0.01)
            time.sleep(0.05)
        wins = race(8, lambda i: leases.acquire(engine, "race", holder=f"w{i}", seconds=60))
        assert sum(wins) == 1

    def test_held_lists_only_live_leases(self, engine: Engine) -> None:
        assert leases.acquire(engine, "live", holder="w", seconds=60)
        assert leases.acquire(engine, "gone", holder="w", seconds=60)
        leases.release(engine, "gone", holder="w")
        with Session(engine) as session:
            assert leases.held(session, ["live", "gone", "never"]) == {"live"}


class TestHold:
    def test_heartbeat_keeps_the_lease_past_its_length(self, engine: Engine) -> None:
        with leases.hold(engine, "long-job", seconds=1) as lease:
            assert lease is not None
            time.sleep(2.5)
            assert not leases.acquire(engine, "long-job", holder="other", seconds=60)
            lease.ensure_held()
            with leases.hold(engine, "long-job", seconds=1) as second:
                assert second is None  # the second run of the same job exits quietly
        assert leases.acquire(engine, "long-job", holder="other", seconds=60)

    def test_on_beat_runs_with_each_renewal(self, engine: Engine) -> None:
        beats: list[float] = []
        with leases.hold(engine, "beat", seconds=0.6, on_beat=lambda: beats.append(1)):
            time.sleep(1.0)
        assert len(beats) >= 2

    def test_a_lease_taken_over_is_reported_lost(self, engine: Engine) -> None:
        with leases.hold(engine, "stolen", seconds=0.6) as lease:
            assert lease is not None
            with engine.begin() as conn:  # what another worker does once the lease lapsed
                conn.execute(
                    update(JobLease).where(JobLease.name == "stolen").values(holder="thief")
                )
            assert lease.lost.wait(3)
            with pytest.raises(leases.LeaseLostError, match="GTMSYNC_JOB_LEASE_SECONDS"):
                lease.ensure_held()
        # The release at the end leaves the new holder's lease alone.
        assert not leases.acquire(engine, "stolen", holder="third", seconds=60)


class TestClaimPeriod:
    def test_once_per_period(self, engine: Engine) -> None:
        at = datetime(2026, 11, 23, 12, 0, 10, tzinfo=UTC)
        assert leases.claim_period(engine, "import.schedule", period_seconds=60, now=at)
        later = at + timedelta(seconds=40)  # another worker's scheduler, same minute
        assert not leases.claim_period(engine, "import.schedule", period_seconds=60, now=later)
        assert leases.claim_period(engine, "writeback.sweep", period_seconds=60, now=later)
        next_minute = at + timedelta(seconds=55)
        assert leases.claim_period(engine, "import.schedule", period_seconds=60, now=next_minute)

    def test_exactly_one_of_many_racers_claims(self, engine: Engine) -> None:
        at = datetime(2026, 11, 23, 3, 0, 5, tzinfo=UTC)
        wins = race(
            8, lambda _i: leases.claim_period(engine, "daily", period_seconds=86_400, now=at)
        )
        assert sum(wins) == 1

    def test_period_start_is_aligned_on_the_epoch(self) -> None:
        at = datetime(2026, 11, 23, 3, 7, 59, 999, tzinfo=UTC)
        assert leases.period_start(at, 60) == datetime(2026, 11, 23, 3, 7, tzinfo=UTC)
        assert leases.period_start(at, 86_400) == datetime(2026, 11, 23, tzinfo=UTC)

    def test_old_claims_are_pruned(self, engine: Engine) -> None:
        old = datetime.now(UTC) - timedelta(days=3)
        assert leases.claim_period(engine, "t", period_seconds=60, now=old)
        assert leases.claim_period(engine, "t", period_seconds=60)
        assert leases.prune_claims(engine) == 1
