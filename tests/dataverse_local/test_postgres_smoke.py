"""The data plane on PostgreSQL (needs GTMSYNC_TEST_DATABASE_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from gtmsync.dataverse_local.principal import system_administrator
from gtmsync.dataverse_local.store import Store
from gtmsync.dataverse_local.webapi import create_webapi_app
from tests.fixtures.dataverse_store import BASE, DataverseTestClient

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store() -> Iterator[Store]:
    url = os.environ.get("GTMSYNC_TEST_DATABASE_URL")
    if not url:
        pytest.skip("GTMSYNC_TEST_DATABASE_URL is not set")
    name = f"dv_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    store = Store.open(make_url(url).set(database=name).render_as_string(hide_password=False))
    try:
        yield store
    finally:
        store.engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}"')
        admin.dispose()


def test_crud_query_paging_batch_and_changes(pg_store: Store) -> None:
    admin = system_administrator(uuid.uuid4())
    app = create_webapi_app(pg_store, principal_resolver=lambda _r: admin)
    with DataverseTestClient(app, base_url=BASE + "/") as client:
        for i in range(7):
            created = client.post("accounts", json={"name": f"Acct {i}", "revenue": i * 10})
            assert created.status_code == 204, created.text
        rows = client.get("accounts?$select=name&$filter=name eq 'ACCT 3'").json()["value"]
        assert [r["name"] for r in rows] == ["Acct 3"]
        seen: list[str] = []
        url: str | None = "accounts?$select=name,revenue&$orderby=revenue desc"
        while url:
            body = client.get(url, headers={"Prefer": "odata.maxpagesize=3"}).json()
            seen.extend(r["name"] for r in body["value"])
            url = body.get("@odata.nextLink")
        assert seen == [f"Acct {i}" for i in reversed(range(7))]
        first = client.get(
            "accounts?$select=name", headers={"Prefer": "odata.track-changes"}
        ).json()
        delta_link = first["@odata.deltaLink"]
        key = client.post(
            "EntityDefinitions(LogicalName='account')/Keys",
            json={"SchemaName": "new_num", "KeyAttributes": ["accountnumber"]},
        )
        assert key.status_code == 204
        assert (
            client.patch("accounts(accountnumber='K-1')", json={"name": "Keyed"}).status_code == 204
        )
        duplicate = client.post("accounts", json={"name": "Dup", "accountnumber": "K-1"})
        assert duplicate.status_code == 412
        delta = client.get(delta_link).json()
        assert [r["name"] for r in delta["value"]] == ["Keyed"]
