"""The local CA and server certificate: generated once, reused, trusted through the bundle."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
import pytest

from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.dataverse_local.tls import ensure_tls


class TestFiles:
    def test_generated_once_and_reused(self, tmp_path: Path):
        first = ensure_tls(tmp_path)
        ca, cert = first.ca_cert.read_bytes(), first.server_cert.read_bytes()
        second = ensure_tls(tmp_path)
        assert second.ca_cert.read_bytes() == ca
        assert second.server_cert.read_bytes() == cert
        assert oct(first.server_key.stat().st_mode & 0o777) == "0o600"

    def test_bundle_is_system_cas_plus_local_ca(self, tmp_path: Path):
        files = ensure_tls(tmp_path)
        bundle = files.ca_bundle.read_text()
        assert bundle.endswith(files.ca_cert.read_text())
        assert bundle.count("BEGIN CERTIFICATE") > 1


class TestHandshake:
    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    def test_certificate_names_loopback(self, dataverse: ServerHandle, host: str):
        port = dataverse.org_url.rsplit(":", 1)[1]
        url = f"https://{host}:{port}/common/v2.0/.well-known/openid-configuration"
        reply = httpx.get(url, verify=dataverse.ssl_context())
        assert reply.status_code == 200

    def test_untrusted_without_the_bundle(self, dataverse: ServerHandle):
        import certifi

        with pytest.raises(httpx.ConnectError):
            httpx.get(dataverse.org_url, verify=ssl.create_default_context(cafile=certifi.where()))

    def test_bundle_from_env_is_used_by_requests(self, dataverse: ServerHandle):
        import requests

        reply = requests.get(
            f"{dataverse.authority}/v2.0/.well-known/openid-configuration", timeout=10
        )
        assert reply.json()["issuer"] == f"{dataverse.authority}/v2.0"

    def test_ipv6_loopback(self, tmp_path: Path):
        if not socket.has_ipv6:
            pytest.skip("no IPv6 on this machine")
        from gtmsync.dataverse_local.server import serve_in_thread
        from gtmsync.dataverse_local.store import Store

        store = Store.open(f"sqlite:///{tmp_path / 'dv.db'}")
        try:
            with serve_in_thread(store, tmp_path, host="::1") as server:
                port = server.base_url.rsplit(":", 1)[1]
                reply = httpx.get(
                    f"https://[::1]:{port}/common/v2.0/.well-known/openid-configuration",
                    verify=server.ssl_context(),
                )
        except OSError as exc:
            pytest.skip(f"IPv6 loopback unavailable: {exc}")
        finally:
            store.engine.dispose()
        assert reply.status_code == 200
