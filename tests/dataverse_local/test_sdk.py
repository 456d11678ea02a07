"""Microsoft's Python SDK (PowerPlatform-Dataverse-Client 1.1.0), unmodified, over HTTPS.

The SDK builds its own `requests.Session`, so it trusts the local CA only through
`REQUESTS_CA_BUNDLE`, which the fixture points at the combined bundle. Tokens come from the
local identity provider through MSAL client credentials, wrapped in the `TokenCredential`
protocol the SDK expects. Each step checks the store directly, not just the SDK's answer.

This module runs its own server and store (not the shared seeded one) because it defines an
alternate key on `account.accountnumber`, which other tests must not see.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msal
import pytest
import sqlalchemy as sa
from azure.core.credentials import AccessToken
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.models.upsert import UpsertItem

from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.dataverse_local.schema import AlternateKey
from gtmsync.dataverse_local.seed import seed
from gtmsync.dataverse_local.server import ServerHandle, serve_in_thread
from gtmsync.dataverse_local.store import Store


class MsalCredential:
    """A `TokenCredential`: `get_token(*scopes)` through MSAL client credentials."""

    def __init__(self, app: msal.ConfidentialClientApplication) -> None:
        self.app = app
        self.scopes_requested: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes_requested.append(scopes)
        result = self.app.acquire_token_for_client(scopes=list(scopes))
        if "access_token" not in result:
            raise RuntimeError(f"token request failed: {result}")
        return AccessToken(result["access_token"], int(time.time()) + int(result["expires_in"]))


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, Any]]:
    data_dir: Path = tmp_path_factory.mktemp("dataverse-sdk")
    store = Store.open(f"sqlite:///{data_dir / 'dataverse.db'}")
    saved = {name: os.environ.get(name) for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    with serve_in_thread(store, data_dir) as server:
        result = seed(
            store, server.directory, server.security,
            accounts=30, contacts=30, leads=5, opportunities=5, products=2,
        )  # fmt: skip
        with store.write() as conn:
            store.add_key(
                conn, "account", AlternateKey("gtm_accountnumber_key", ("accountnumber",))
            )
        for name in saved:
            os.environ[name] = str(server.ca_bundle)
        try:
            yield server, result
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    store.engine.dispose()


@pytest.fixture(scope="module")
def credential(sdk_server: tuple[ServerHandle, Any]) -> MsalCredential:
    server, result = sdk_server
    return MsalCredential(
        msal.ConfidentialClientApplication(
            result.client_id,
            client_credential=result.client_secret,
            authority=server.authority,
            instance_discovery=False,
        )
    )


@pytest.fixture
def client(sdk_server: tuple[ServerHandle, Any], credential: MsalCredential) -> Iterator[Any]:
    server, _ = sdk_server
    with DataverseClient(server.org_url, credential) as dataverse:
        yield dataverse


def rows_named(server: ServerHandle, prefix: str) -> dict[str, dict[str, Any]]:
    table = server.store.tables["account"]
    with server.store.engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.name.like(f"{prefix}%"))).mappings()
        return {r["name"]: dict(r) for r in rows}


class TestMicrosoftSdk:
    def test_credential_scope_is_the_org_default(
        self, client: Any, sdk_server: tuple[ServerHandle, Any], credential: MsalCredential
    ):
        server, _ = sdk_server
        client.records.create("account", {"name": f"Scope {uuid.uuid4().hex[:6]}"})
        assert (f"{server.org_url}/.default",) in credential.scopes_requested

    def test_create_update_delete(self, client: Any, sdk_server: tuple[ServerHandle, Any]):
        server, result = sdk_server
        name = f"SDK single {uuid.uuid4().hex[:8]}"
        account_id = client.records.create("account", {"name": name, "telephone1": "555-0100"})
        row = server.store.get("account", uuid.UUID(account_id))
        assert row["name"] == name
        assert row["telephone1"] == "555-0100"
        app_user = server.store.find_systemuser(application_id=result.client_id)
        assert row["createdby"] == app_user["systemuserid"]

        client.records.update("account", account_id, {"telephone1": "555-0199"})
        assert server.store.get("account", uuid.UUID(account_id))["telephone1"] == "555-0199"

        fetched = client.records.retrieve("account", account_id, select=["name"])
        assert fetched["name"] == name

        client.records.delete("account", account_id)
        assert server.store.get("account", uuid.UUID(account_id)) is None

    def test_bulk_create(self, client: Any, sdk_server: tuple[ServerHandle, Any]):
        server, _ = sdk_server
        prefix = f"SDK bulk {uuid.uuid4().hex[:6]}"
        ids = client.records.create("account", [{"name": f"{prefix} {i}"} for i in range(25)])
        assert len(ids) == 25
        stored = rows_named(server, prefix)
        assert len(stored) == 25
        assert {str(r["accountid"]) for r in stored.values()} == {str(i) for i in ids}

    def test_upsert_by_alternate_key_single_and_multiple(
        self, client: Any, sdk_server: tuple[ServerHandle, Any]
    ):
        server, _ = sdk_server
        tag = uuid.uuid4().hex[:6]
        client.records.upsert(
            "account",
            [
                UpsertItem(
                    alternate_key={"accountnumber": f"K-{tag}-1"}, record={"name": f"Up {tag} a"}
                )
            ],
        )
        client.records.upsert(
            "account",
            [
                UpsertItem(
                    alternate_key={"accountnumber": f"K-{tag}-1"}, record={"name": f"Up {tag} a2"}
                ),
                UpsertItem(
                    alternate_key={"accountnumber": f"K-{tag}-2"}, record={"name": f"Up {tag} b"}
                ),
            ],
        )
        stored = rows_named(server, f"Up {tag}")
        assert sorted(stored) == [f"Up {tag} a2", f"Up {tag} b"]
        assert stored[f"Up {tag} a2"]["accountnumber"] == f"K-{tag}-1"

    def test_query_with_paging(self, client: Any, sdk_server: tuple[ServerHandle, Any]):
        server, _ = sdk_server
        prefix = f"SDK page {uuid.uuid4().hex[:6]}"
        client.records.create("account", [{"name": f"{prefix} {i:02d}"} for i in range(23)])
        pages = list(
            client.records.list_pages(
                "account",
                filter=f"startswith(name,'{prefix}')",
                select=["name"],
                orderby=["name asc"],
                page_size=10,
            )
        )
        assert [len(list(p)) for p in pages] == [10, 10, 3]
        names = [r["name"] for p in pages for r in p]
        assert names == sorted(rows_named(server, prefix))
        everything = client.records.list(
            "account", filter=f"startswith(name,'{prefix}')", page_size=7
        )
        assert len(list(everything)) == 23


class TestMicrosoftSdkUnderFaults:
    def test_throttling_reaches_the_sdk_with_retry_after_and_request_id(
        self, client: Any, sdk_server: tuple[ServerHandle, Any]
    ):
        from PowerPlatform.Dataverse.core.errors import HttpError

        server, _ = sdk_server
        server.faults.add(FaultRule(kind="throttle", count=1, retry_after=7, method="POST"))
        try:
            with pytest.raises(HttpError) as caught:
                client.records.create("account", {"name": "Throttled"})
        finally:
            server.reset()
        assert caught.value.status_code == 429
        assert caught.value.is_transient
        assert caught.value.details["retry_after"] == 7
        assert caught.value.details["service_error_code"] == "0x80072322"
        assert caught.value.details["service_request_id"]

    def test_sdk_retries_a_dropped_read(self, client: Any, sdk_server: tuple[ServerHandle, Any]):
        server, _ = sdk_server
        account_id = client.records.create("account", {"name": f"Dropped {uuid.uuid4().hex[:6]}"})
        server.faults.add(FaultRule(kind="drop", count=1, method="GET", path=r"/accounts\("))
        try:
            fetched = client.records.retrieve("account", account_id, select=["name"])
        finally:
            injected = server.faults.describe()["injected"]
            server.reset()
        assert injected == {"drop": 1}
        assert fetched["name"].startswith("Dropped")
