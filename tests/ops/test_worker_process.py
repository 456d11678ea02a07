"""A real `gtmsync worker` process: its job log lines carry job ID and task, and it serves
its metrics on `GTMSYNC_WORKER_METRICS_PORT` (embedded queue and Redis)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from gtmsync.jobs.queue import build_huey, enqueue
from gtmsync.settings import Settings
from tests.ops.test_probes import OPS_REDIS_DB, _redis_up


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _scrape(port: int, wanted: str, *, timeout: float = 60) -> str:
    """The worker's metrics text once it contains `wanted` (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            text = ""
        if wanted in text:
            return text
        time.sleep(0.2)
    pytest.fail(f"{wanted!r} never appeared in the worker's metrics:\n{text[-2000:]}")


@pytest.fixture(params=["sqlite", "redis"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    if not _redis_up():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis must run on 127.0.0.1:6379 in CI")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    return f"redis://127.0.0.1:6379/{OPS_REDIS_DB}"


class TestWorkerProcess:
    def test_job_lines_and_metrics_port(self, queue_url: str, tmp_path: Path) -> None:
        settings = Settings(data_dir=tmp_path, queue_url=queue_url, _env_file=None)  # type: ignore[call-arg]
        huey = build_huey(settings)
        if queue_url.startswith("redis"):
            huey.flush()
        message = f"ops-{uuid.uuid4().hex[:8]}"
        job_id = enqueue("system.ping", message, huey=huey)
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GTMSYNC_")}
        env.update(
            GTMSYNC_QUEUE_URL=queue_url,
            GTMSYNC_DATA_DIR=str(tmp_path),
            GTMSYNC_DATABASE_URL=f"sqlite:///{tmp_path / 'hub.db'}",
            GTMSYNC_SECRET_KEY="ops-worker-secret-key-0123456789abcdef",
            GTMSYNC_WORKER_METRICS_PORT=str(port),
            GTMSYNC_LOG_LEVEL="INFO",
        )
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "gtmsync", "worker", "--threads", "2", "--no-scheduler"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            assert huey.result(job_id, blocking=True, timeout=90) == message
            text = _scrape(
                port, 'gtmsync_jobs_finished_total{outcome="succeeded",task="system.ping"}'
            )
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        assert 'gtmsync_jobs_started_total{task="system.ping"} 1.0' in text
        assert 'gtmsync_job_duration_seconds_count{task="system.ping"} 1.0' in text

        lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.startswith("{")]
        mine = [x for x in lines if x.get("job_id") == job_id]
        messages = {x["msg"] for x in mine}
        assert {"job started", "ping task ran", "job finished"} <= messages, log_path.read_text()
        assert all(x["task"] == "system.ping" for x in mine)
        served = [x for x in lines if x["msg"] == "worker metrics served"]
        assert len(served) == 1  # one server per process, though two threads started
        assert served[0]["port"] == port
        assert "Traceback" not in log_path.read_text()
