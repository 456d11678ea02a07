"""The README's main command: `gtmsync demo` starts everything on a fresh data folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gtmsync.db.engine import create_engine
from gtmsync.platform.models import Company, Org, User


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(240)
class TestDemo:
    def test_demo_starts_hub_worker_and_dataverse_then_stops(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GTMSYNC_")}
        port, dv_port = _free_port(), _free_port()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "gtmsync",
                "demo",
                "--port",
                str(port),
                "--dataverse-port",
                str(dv_port),
                "--companies",
                "20",
                "--exit-after-start",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=220,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"open http://127.0.0.1:{port}" in result.stdout
        assert "avery.admin@contoso.local" in result.stdout
        assert f"https://127.0.0.1:{dv_port}" in result.stdout
        # The hub's callback is a redirect URI of the seeded app, so Connect works in the demo.
        assert f"http://127.0.0.1:{port}/connection/callback" in result.stdout
        data = tmp_path / "gtmsync-data"
        assert (data / "dataverse" / "ca.pem").exists()
        engine = create_engine(f"sqlite:///{data / 'gtmsync.db'}")
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Org)).scalar_one() == 2
            assert conn.execute(select(func.count()).select_from(User)).scalar_one() == 6
            assert conn.execute(select(func.count()).select_from(Company)).scalar_one() == 20
        engine.dispose()
