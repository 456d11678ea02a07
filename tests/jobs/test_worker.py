"""The worker consumes jobs from the embedded (SQLite) queue and from Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gtmsync.jobs.queue import build_huey
from gtmsync.settings import Settings


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    if not _redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return "redis://127.0.0.1:6379/15"


class TestWorker:
    def test_worker_process_runs_an_enqueued_job(self, queue_url: str, tmp_path: Path) -> None:
        import gtmsync.tasks as tasks

        huey = build_huey(Settings(data_dir=tmp_path, queue_url=queue_url))
        if queue_url.startswith("redis"):
            huey.flush()
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
