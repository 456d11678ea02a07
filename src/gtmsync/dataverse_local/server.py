"""Run the local Dataverse server over HTTPS: as a process, or in a thread for tests.

`run(...)` serves until interrupted (the CLI uses it). `serve_in_thread(...)` starts the same
server on a free loopback port in a background thread and yields a `ServerHandle`: the org
URL, the MSAL `authority`, the CA bundle to trust, and the in-process objects (store,
directory, security, faults, limits, usage) plus helpers to provision users, apps and roles.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from gtmsync.dataverse_local.app import (
    DroppedConnection,
    LocalDataverseApp,
    ProvisionedApp,
    ProvisionedUser,
    ServerConfig,
    create_app,
)

__all__ = ["ProvisionedApp", "ProvisionedUser", "ServerHandle", "run", "serve_in_thread"]
from gtmsync.dataverse_local.security import SALESPERSON, SYSTEM_ADMINISTRATOR, Role
from gtmsync.dataverse_local.tls import TlsFiles, ensure_tls


class _QuietDrops(logging.Filter):
    """Injected connection drops are the plan, not server errors worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


def _uvicorn_config(app: LocalDataverseApp, tls: TlsFiles, **kwargs: Any) -> uvicorn.Config:
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    return uvicorn.Config(
        app,
        ssl_certfile=str(tls.server_cert),
        ssl_keyfile=str(tls.server_key),
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        # TLS connections a client keeps open idle would hold shutdown for the SSL close
        # timeout (30 s); give in-flight requests a moment, then stop.
        timeout_graceful_shutdown=3,
        **kwargs,
    )


def run(app: LocalDataverseApp, tls: TlsFiles, *, host: str, port: int) -> None:
    """Serve `app` over HTTPS until interrupted."""
    sock = listening_socket(host, port)
    uvicorn.Server(_uvicorn_config(app, tls)).run(sockets=[sock])


@dataclass
class ServerHandle:
    """A running server and its in-process controls."""

    base_url: str  # the org URL: https://127.0.0.1:PORT
    app: LocalDataverseApp
    tls: TlsFiles

    @property
    def org_url(self) -> str:
        return self.base_url

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/data/v9.2"

    @property
    def tenant_id(self) -> str:
        return self.app.tenant.tenant_id

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def ca_bundle(self) -> Path:
        return self.tls.ca_bundle

    @property
    def ca_cert(self) -> Path:
        return self.tls.ca_cert

    @property
    def admin_token(self) -> str:
        return self.app.config.admin_token

    @property
    def store(self) -> Any:
        return self.app.store

    @property
    def directory(self) -> Any:
        return self.app.directory

    @property
    def security(self) -> Any:
        return self.app.security

    @property
    def faults(self) -> Any:
        return self.app.faults

    @property
    def limits(self) -> Any:
        return self.app.limits

    @property
    def usage(self) -> Any:
        return self.app.usage

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.tls.ca_cert))

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client that trusts the local CA, based at the org URL."""
        return httpx.Client(base_url=self.base_url, verify=self.ssl_context(), **kwargs)

    def admin(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """Call `/_admin/…` with the harness token (the way out-of-process harnesses do)."""
        with self.client() as client:
            return client.request(
                method,
                path,
                json=json,
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )

    def add_user(
        self,
        first: str,
        last: str,
        *,
        roles: tuple[str, ...] = (SALESPERSON,),
        global_admin: bool = False,
        disabled: bool = False,
    ) -> ProvisionedUser:
        """See `LocalDataverseApp.add_user`."""
        return self.app.add_user(
            first, last, roles=roles, global_admin=global_admin, disabled=disabled
        )

    def register_app(
        self,
        name: str,
        *,
        redirect_uris: tuple[str, ...] = (),
        multi_tenant: bool = False,
        requires_admin_consent: bool | None = None,
        confidential: bool = True,
        application_user_roles: tuple[str, ...] | None = (SYSTEM_ADMINISTRATOR,),
    ) -> ProvisionedApp:
        """See `LocalDataverseApp.register_app`."""
        return self.app.register_app(
            name,
            redirect_uris=redirect_uris,
            multi_tenant=multi_tenant,
            requires_admin_consent=requires_admin_consent,
            confidential=confidential,
            application_user_roles=application_user_roles,
        )

    def define_role(self, role: Role) -> Role:
        return self.security.define_role(role)  # type: ignore[no-any-return]

    def reset(self) -> None:
        """Clear faults, limit windows, usage counters and the token-expiry cut-off."""
        self.app.reset()


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound socket (port 0 = a free one) whose connections send without Nagle's delay.

    Responses leave as several small TLS records; with Nagle on, the second waits for the
    client's delayed ACK (40 ms on Linux) on every request. Accepted sockets inherit
    TCP_NODELAY from the listener.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    return sock


def free_port(host: str = "127.0.0.1") -> socket.socket:
    return listening_socket(host, 0)


@contextmanager
def serve_in_thread(
    store: Any,
    data_dir: Path,
    *,
    config: ServerConfig | None = None,
    host: str = "127.0.0.1",
) -> Iterator[ServerHandle]:
    """Start the HTTPS server on a free port of `host` in a thread; stop it on exit."""
    config = config or ServerConfig(data_dir=data_dir)
    if config.data_dir is None:
        config.data_dir = data_dir
    tls = ensure_tls(data_dir)
    app = create_app(store, config=config)
    sock = free_port(host)
    port = sock.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(app, tls))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"dataverse-local-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the local Dataverse server did not start; see the log above")
        time.sleep(0.01)
    try:
        yield ServerHandle(base_url=f"https://{host}:{port}", app=app, tls=tls)
    finally:
        server.should_exit = True
        server.force_exit = True  # tests are over: do not wait for idle keep-alive clients
        thread.join(timeout=10)
        sock.close()
