"""A real local Dataverse server over HTTPS per test, and clients of it built by the library.

The TLS material and signing key live in one directory per worker (made once), the store is
a fresh SQLite file per test, and each test registers its own app with an application user,
so tests never share rows and run in parallel on free ports. (The shared, seeded
`dataverse` fixture of tests/fixtures/dataverse.py suits readers; these tests count rows in
the store after fault-injected writes, so each needs an empty store of its own.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gtmsync.dataverse import (
    ClientCredentials,
    DataverseClient,
    MsalAuth,
    MsalConfig,
    RequestInfo,
    RetryPolicy,
    org_scope,
)
from gtmsync.dataverse_local.server import ServerHandle, serve_in_thread
from gtmsync.dataverse_local.store import Store


@dataclass
class LocalOrg:
    """The running server, the test's app registration and a way to build clients."""

    server: ServerHandle
    app: Any  # the registration and its application user (server.register_app)
    calls: list[RequestInfo]

    @property
    def msal_config(self) -> MsalConfig:
        return MsalConfig(
            self.app.client_id,
            authority=self.server.authority,
            client_secret=self.app.secret,
            verify=str(self.server.ca_bundle),
            instance_discovery=False,
        )

    def tokens(self) -> ClientCredentials:
        return ClientCredentials(
            self.msal_config, scope=org_scope(self.server.org_url, delegated=False)
        )

    def client(
        self,
        *,
        retry: RetryPolicy | None = None,
        on_request: Callable[[RequestInfo], None] | None = None,
        **kwargs: Any,
    ) -> DataverseClient:
        return DataverseClient(
            self.server.org_url,
            auth=MsalAuth(self.tokens()),
            retry=retry or RetryPolicy(max_attempts=6, backoff_base=0.01, backoff_max=0.05),
            verify=self.server.ssl_context(),
            on_request=on_request or self.calls.append,
            **kwargs,
        )

    def count(self, table: str) -> int:
        return int(self.server.store.count(table))


@pytest.fixture(scope="session")
def dataverse_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dataverse-local")


@pytest.fixture
def local_org(
    tmp_path: Path, dataverse_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalOrg]:
    store = Store.open(f"sqlite:///{tmp_path / 'dataverse.db'}")
    try:
        with serve_in_thread(store, dataverse_data_dir) as server:
            # MSAL's requests session obeys REQUESTS_CA_BUNDLE over verify= (spec §10.3).
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_bundle))
            app = server.register_app("gtmsync tests")
            yield LocalOrg(server, app, [])
    finally:
        store.engine.dispose()


@pytest.fixture
def dv(local_org: LocalOrg) -> Iterator[DataverseClient]:
    with local_org.client() as client:
        yield client
