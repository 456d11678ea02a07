"""Periodic jobs fire once per period however many workers run: three real worker processes
on Redis and PostgreSQL, each with its scheduler on, enqueue every periodic task; one body
runs per period.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from gtmsync.db.engine import create_engine
from gtmsync.jobs.models import ScheduleClaim
from gtmsync.settings import Mode, Settings
from tests.fixtures.processes import WorkerPool, hub_env, redis_queue_url, wait_for

PERIODIC = ("import.schedule", "writeback.sweep")
REDIS_DB = 11  # its own db: concurrent Redis tests must not take each other's jobs


def _events(pool: WorkerPool, message: str) -> list[dict[str, str]]:
    found = []
    for worker in pool.workers:
        for line in worker.log_text().splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if record.get("msg") == message:
                found.append({**record, "worker": worker.name})
    return found


@pytest.mark.xdist_group("redis-db-14")  # the Redis tests flush db 14: one at a time
class TestSchedule:
    def test_three_workers_run_each_periodic_task_once_per_period(
        self, postgres_url: str, tmp_path: Path
    ) -> None:
        """On PostgreSQL, as on several machines (the claim races on SQLite are covered
        by the threads of `test_leases.py`)."""
        database_url = postgres_url
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=database_url,
            secret_key="schedule-test-secret-key-0123456789-abcdefghij",
            mode=Mode.DEVELOPMENT,
            _env_file=None,  # type: ignore[call-arg]
        )
        env = hub_env(settings, queue_url=redis_queue_url(REDIS_DB))
        with WorkerPool(3, env=env, log_dir=tmp_path / "logs", threads=1) as pool:

            def every_worker_ran_its_enqueues() -> bool:
                claimed = _events(pool, "periodic task claimed")
                skipped = _events(pool, "periodic task already claimed")
                return all(sum(e["task"] == t for e in claimed + skipped) >= 3 for t in PERIODIC)

            wait_for(every_worker_ran_its_enqueues, timeout=90, what="3 enqueues of each task")
            claimed = _events(pool, "periodic task claimed")
            skipped = _events(pool, "periodic task already claimed")
            tracebacks = [line for w in pool.workers for line in w.tracebacks()]
        assert not tracebacks, pool.logs()
        engine = create_engine(database_url)
        with engine.connect() as conn:
            rows = conn.execute(select(ScheduleClaim.task, ScheduleClaim.period_start)).all()
        engine.dispose()
        for task in PERIODIC:
            ran = Counter(e["period"] for e in claimed if e["task"] == task)
            # One run per period (the workers may straddle a minute: then two periods).
            assert ran, f"{task} never ran"
            assert set(ran.values()) == {1}, (task, ran)
            assert len(ran) == sum(1 for t, _ in rows if t == task)
            # Three schedulers enqueued it; all but one per period returned at once.
            assert sum(e["task"] == task for e in skipped) >= 3 - len(ran) >= 1
        # Each worker did enqueue and execute the periodic tasks (a real race, not one worker).
        assert len({e["worker"] for e in claimed + skipped}) == 3
