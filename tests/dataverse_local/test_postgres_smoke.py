"""The data plane on PostgreSQL (needs GTMSYNC_TEST_DATABASE_URL)."""

from __future__ import annotations

import json
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


def test_metadata_batch_and_query_functions(pg_store: Store) -> None:
    admin = system_administrator(uuid.uuid4())
    app = create_webapi_app(pg_store, principal_resolver=lambda _r: admin)
    with DataverseTestClient(app, base_url=BASE + "/") as client:
        column = {
            "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
            "SchemaName": "new_Score",
        }
        assert (
            client.post(
                "EntityDefinitions(LogicalName='account')/Attributes", json=column
            ).status_code
            == 204
        )
        root = client.post("accounts", json={"name": "root", "new_score": 1}).headers[
            "OData-EntityId"
        ]

        def part(content_id: int, url: str, payload: dict[str, str]) -> str:
            return (
                "--changeset_PG\r\nContent-Type: application/http\r\n"
                f"Content-Transfer-Encoding: binary\r\nContent-ID: {content_id}\r\n\r\n"
                f"POST {url} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
                f"{json.dumps(payload)}\r\n"
            )

        child = {"name": "child", "new_score": 5, "parentaccountid@odata.bind": root}
        task = {"subject": "t", "regardingobjectid_account_task@odata.bind": "$1"}
        body = (
            "--batch_PG\r\nContent-Type: multipart/mixed; boundary=changeset_PG\r\n\r\n"
            + part(1, "accounts", child)
            + part(2, "tasks", task)
            + "--changeset_PG--\r\n--batch_PG--\r\n"
        )
        response = client.post(
            "$batch",
            content=body.encode(),
            headers={"Content-Type": "multipart/mixed; boundary=batch_PG"},
        )
        assert response.status_code == 200, response.text
        root_id = root.rsplit("(", 1)[1].rstrip(")")
        under = client.get(
            "accounts?$select=name&$filter=Microsoft.Dynamics.CRM.Under("
            f"PropertyName='accountid',PropertyValue='{root_id}')"
        ).json()["value"]
        assert [r["name"] for r in under] == ["child"]
        with_tasks = client.get("accounts?$select=name&$filter=Account_Tasks/any()").json()["value"]
        assert [r["name"] for r in with_tasks] == ["child"]
        total = client.get("accounts?$apply=aggregate(new_score with sum as total)").json()["value"]
        assert total == [{"total": 6}]
