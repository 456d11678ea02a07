"""The local server's certificate authority and server certificate.

MSAL and Microsoft's SDK refuse plain HTTP, so the local server speaks HTTPS with a CA of
its own. The CA is generated once per data directory and reused, so a client that trusted
it yesterday still trusts it today. Python clients built on `requests` ignore `verify=`
whenever `REQUESTS_CA_BUNDLE` is set, so besides `ca.pem` we write `ca-bundle.pem`: the
system CAs plus ours, safe to export as `REQUESTS_CA_BUNDLE`/`SSL_CERT_FILE` for a whole
process without breaking its other TLS connections.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_IDENTITIES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """Where the TLS material of one data directory lives."""

    directory: Path
    ca_cert: Path  # ca.pem: the local CA alone
    ca_bundle: Path  # ca-bundle.pem: system CAs + the local CA
    server_cert: Path  # server.pem: leaf certificate + chain
    server_key: Path  # server-key.pem


def _system_ca_pem() -> str:
    """The system trust store as PEM text (empty when none can be found)."""
    paths = ssl.get_default_verify_paths()
    candidates = [paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_text(encoding="utf-8")
    return ""


def ensure_tls(directory: Path) -> TlsFiles:
    """Create the CA and server certificate in `directory` on first use; reuse them after.

    The server certificate names 127.0.0.1, localhost and ::1, so every loopback spelling
    of the org URL verifies.
    """
    tls_dir = directory
    files = TlsFiles(
        directory=tls_dir,
        ca_cert=tls_dir / "ca.pem",
        ca_bundle=tls_dir / "ca-bundle.pem",
        server_cert=tls_dir / "server.pem",
        server_key=tls_dir / "server-key.pem",
    )
    if not (files.ca_cert.is_file() and files.server_cert.is_file() and files.server_key.is_file()):
        tls_dir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="gtmsync local Dataverse")
        leaf = ca.issue_cert(
            *SERVER_IDENTITIES,
            common_name="gtmsync local Dataverse",
            not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=825),
        )
        files.ca_cert.write_bytes(ca.cert_pem.bytes())
        files.server_cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        _write_private(files.server_key, leaf.private_key_pem.bytes())
    if not files.ca_bundle.is_file():
        system = _system_ca_pem()
        local = files.ca_cert.read_text(encoding="utf-8")
        separator = "" if not system or system.endswith("\n") else "\n"
        files.ca_bundle.write_text(system + separator + local, encoding="utf-8")
    return files


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """An SSL context that trusts the local CA (for httpx clients in tests and tools)."""
    return ssl.create_default_context(cafile=str(files.ca_cert))
