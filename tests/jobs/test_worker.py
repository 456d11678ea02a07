"""The worker consumes jobs from the embedded (SQLite) queue and from Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gtmsync.jobs.queue import build_huey
from gtmsync.settings import Settings
from tests.fixtures.processes import redis_queue_url


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The embedded queue, and Redis (skipped locally without it, a failure under CI=true)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    return redis_queue_url(15)


class TestWorker:
    def test_worker_process_runs_an_enqueued_job(self, queue_url: str, tmp_path: Path) -> None:
        import gtmsync.tasks as tasks

        huey = build_huey(Settings(data_dir=tmp_path, queue_url=queue_url))
        message = f"hello-{uuid.uuid4().hex[:8]}"
        # The worker process registers the same task by name from gtmsync.tasks.
        ping = huey.task(name="system.ping")(tasks.ping.func)
        result = ping(message)
        env = dict(os.environ)
        env.update(
            GTMSYNC_QUEUE_URL=queue_url,
            GTMSYNC_DATA_DIR=str(tmp_path),
            GTMSYNC_DATABASE_URL=f"sqlite:///{tmp_path / 'hub.db'}",
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "gtmsync", "worker", "--threads", "1", "--no-scheduler"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert result.get(blocking=True, timeout=60) == message
        finally:
            worker.terminate()
            _, stderr = worker.communicate(timeout=30)
        assert worker.returncode is not None
        assert b"Traceback" not in stderr
