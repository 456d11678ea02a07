"""`gtmsync dataverse serve` and `seed` as a user runs them (subprocess and CliRunner)."""

from __future__ import annotations

import json
import os
import queue
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msal
import pytest
from typer.testing import CliRunner

from gtmsync.dataverse_local.cli import app
from gtmsync.dataverse_local.server import free_port
from gtmsync.dataverse_local.store import Store


class TestSeedCommand:
    def test_seed_twice_is_idempotent(self, tmp_path: Path):
        runner = CliRunner()
        first = runner.invoke(app, ["seed", "--data", str(tmp_path)])
        assert first.exit_code == 0, first.output
        assert "Tenant seeded" in first.output
        assert "gtmsync app client secret" in first.output
        store = Store.open(f"sqlite:///{tmp_path / 'dataverse.db'}")
        counts = {t: store.count(t) for t in ("account", "contact", "systemuser", "task")}
        store.engine.dispose()
        second = runner.invoke(app, ["seed", "--data", str(tmp_path)])
        assert second.exit_code == 0, second.output
        assert "already seeded" in second.output
        store = Store.open(f"sqlite:///{tmp_path / 'dataverse.db'}")
        assert {t: store.count(t) for t in counts} == counts
        store.engine.dispose()
        assert counts["account"] == 200


class TestRedirectUris:
    def test_hub_callback_env_and_option_are_registered_once(self, tmp_path: Path):
        runner = CliRunner()
        env = {"GTMSYNC_BASE_URL": "http://127.0.0.1:8123/", "GTMSYNC_DATAVERSE_REDIRECT_URIS": ""}
        args = ["seed", "--data", str(tmp_path), "--redirect-uri", "https://hub.example/cb"]
        for _ in range(2):
            result = runner.invoke(app, args, env=env)
            assert result.exit_code == 0, result.output
        store = Store.open(f"sqlite:///{tmp_path / 'dataverse.db'}")
        try:
            from gtmsync.dataverse_local.directory import Directory
            from gtmsync.dataverse_local.seed import GTMSYNC_CLIENT_ID

            uris = Directory(store.engine).app(GTMSYNC_CLIENT_ID).redirect_uris
        finally:
            store.engine.dispose()
        assert "http://127.0.0.1:8123/connection/callback" in uris
        assert "https://hub.example/cb" in uris
        assert len(uris) == len(set(uris))


def _reader(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    sock = free_port()
    port = sock.getsockname()[1]
    sock.close()
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"kind": "throttle", "count": 1, "path": "WhoAmI"}]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable, "-m", "gtmsync", "dataverse", "serve", "--port", str(port),
        "--data", str(tmp_path / "dv"), "--seed", "--faults", str(faults),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    printed: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while not any(line.startswith("  export SSL_CERT_FILE") for line in printed):
            assert process.poll() is None, "".join(printed)
            assert time.monotonic() < deadline, "".join(printed)
            try:
                printed.append(lines.get(timeout=1))
            except queue.Empty:
                continue
        output = "".join(printed)
        values = {
            "org": re.search(r"Organization URL: (\S+)", output).group(1),  # type: ignore[union-attr]
            "authority": re.search(r"Authority \(MSAL\): (\S+)", output).group(1),  # type: ignore[union-attr]
            "bundle": re.search(r"export REQUESTS_CA_BUNDLE=(\S+)", output).group(1),  # type: ignore[union-attr]
            "client_id": re.search(r"client id:\s+(\S+)", output).group(1),  # type: ignore[union-attr]
            "secret": re.search(r"client secret:\s+(\S+)", output).group(1),  # type: ignore[union-attr]
        }
        while True:
            try:
                httpx.get(
                    f"{values['authority']}/v2.0/.well-known/openid-configuration",
                    verify=ssl.create_default_context(cafile=values["bundle"]),
                    timeout=2,
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.2)
        yield output, values
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class TestServeCommand:
    def test_serve_prints_how_to_connect_and_works_with_msal(
        self, served: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
    ):
        output, values = served
        assert values["org"].startswith("https://127.0.0.1:")
        assert values["authority"].startswith(values["org"] + "/")
        assert "export SSL_CERT_FILE=" in output
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", values["bundle"])
        client = msal.ConfidentialClientApplication(
            values["client_id"],
            client_credential=values["secret"],
            authority=values["authority"],
            instance_discovery=False,
        )
        token = client.acquire_token_for_client([f"{values['org']}/.default"])
        assert "access_token" in token, token
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        url = f"{values['org']}/api/data/v9.2/WhoAmI"
        trust = ssl.create_default_context(cafile=values["bundle"])
        throttled = httpx.get(url, headers=headers, verify=trust)
        answered = httpx.get(url, headers=headers, verify=trust)
        assert throttled.status_code == 429  # the --faults file's one-shot rule
        assert answered.status_code == 200
        assert answered.json()["UserId"]

    def test_bad_fault_file_names_the_option(self, tmp_path: Path):
        bad = tmp_path / "faults.json"
        bad.write_text('[{"kind": "meteor"}]')
        result = CliRunner().invoke(
            app, ["serve", "--data", str(tmp_path / "dv"), "--faults", str(bad)]
        )
        assert result.exit_code == 2
        assert "--faults" in result.output
