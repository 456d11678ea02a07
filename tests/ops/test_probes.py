"""`/healthz` (liveness) and `/readyz` (readiness: the database and the job queue answer)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gtmsync.settings import Settings
from gtmsync.web.app import create_app

REDIS = ("127.0.0.1", 6379)
OPS_REDIS_DB = 12  # this suite's Redis database (others use their own numbers)


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=0.5):
            return True
    except OSError:
        return False


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(
        data_dir=tmp_path,
        secret_key="ops-probe-tests-secret-key-0123456789abcdef",
        _env_file=None,  # type: ignore[call-arg]
        **values,  # type: ignore[arg-type]
    )


def _get(settings: Settings, path: str) -> tuple[int, dict[str, object]]:
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            response = client.get(path)
            return response.status_code, response.json()
    finally:
        app.state.engine.dispose()


class TestReadiness:
    def test_ready_on_the_embedded_defaults(self, tmp_path: Path) -> None:
        status, body = _get(_settings(tmp_path), "/readyz")
        assert (status, body) == (
            200,
            {"status": "ok", "checks": {"database": "ok", "queue": "ok"}},
        )

    def test_ready_on_redis(self, tmp_path: Path) -> None:
        if not _redis_up():
            if os.environ.get("CI") == "true":
                pytest.fail("Redis must run on 127.0.0.1:6379 in CI")
            pytest.skip("Redis is not running on 127.0.0.1:6379")
        settings = _settings(tmp_path, queue_url=f"redis://127.0.0.1:6379/{OPS_REDIS_DB}")
        status, body = _get(settings, "/readyz")
        assert (status, body["checks"]) == (200, {"database": "ok", "queue": "ok"})

    def test_unreachable_redis_is_503_naming_the_queue(self, tmp_path: Path) -> None:
        settings = _settings(tmp_path, queue_url=f"redis://127.0.0.1:{_closed_port()}/0")
        status, body = _get(settings, "/readyz")
        assert status == 503
        assert body["status"] == "unavailable"
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["database"] == "ok"
        assert checks["queue"] == "ConnectionError"

    def test_unreachable_database_is_503_without_its_url(self, tmp_path: Path) -> None:
        url = f"postgresql+psycopg://hub:s3cret-pw@127.0.0.1:{_closed_port()}/hub"
        settings = _settings(tmp_path, database_url=url)
        status, body = _get(settings, "/readyz")
        assert status == 503
        checks = body["checks"]
        assert isinstance(checks, dict)
        assert checks["database"] == "OperationalError"
        assert checks["queue"] == "ok"
        assert "s3cret-pw" not in str(body)


class TestLiveness:
    def test_healthz_is_up_while_dependencies_are_down(self, tmp_path: Path) -> None:
        settings = _settings(tmp_path, queue_url=f"redis://127.0.0.1:{_closed_port()}/0")
        assert _get(settings, "/healthz") == (200, {"status": "ok"})
