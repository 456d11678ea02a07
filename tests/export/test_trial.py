"""Test Mapping against the local Dataverse server over HTTPS: one record created with the
rows as they are, deleted again; Dynamics' own refusal shown on the row it names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from gtmsync.dataverse import DataverseClient
from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.export.mapping import default_rows
from gtmsync.export.schemas import ExportObject, MappingRow, UpdateMode
from gtmsync.export.trial import try_mapping
from tests.fixtures.connection import ConnectedOrg


@pytest.fixture
def client(connected_org: ConnectedOrg, db_session: Session) -> Iterator[DataverseClient]:
    with connected_org.client(db_session) as client:
        yield client


@pytest.mark.parametrize("obj", list(ExportObject))
def test_defaults_create_and_delete_a_record(
    client: DataverseClient, dataverse: ServerHandle, obj: ExportObject
) -> None:
    before = dataverse.store.count(obj.logical_name)
    result = try_mapping(client, obj, default_rows(obj))
    assert result.ok, result.message
    assert result.deleted
    assert result.created_id is not None
    assert dataverse.store.get(obj.logical_name, result.created_id) is None
    assert dataverse.store.count(obj.logical_name) == before
    assert "succeeded" in result.message


def test_dynamics_refusal_shown_on_the_row_it_names(
    client: DataverseClient, dataverse: ServerHandle
) -> None:
    tag = uuid.uuid4().hex[:6]  # the local server outlives the test: a new attribute each run
    client.request(
        "POST",
        "EntityDefinitions(LogicalName='account')/Attributes",
        json={
            "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
            "SchemaName": f"gtmsync_Headcount{tag}",
            "MinValue": 0,
            "MaxValue": 100,
            "DisplayName": {"LocalizedLabels": [{"Label": "Headcount", "LanguageCode": 1033}]},
        },
        idempotent=False,
    )
    client.metadata.refresh("account")
    rows = [
        *default_rows(ExportObject.ACCOUNT),
        MappingRow(
            source_field="company_employees",
            target_attribute=f"gtmsync_headcount{tag}",
            update_mode=UpdateMode.OVERWRITE,
        ),
    ]
    before = dataverse.store.count("account")
    result = try_mapping(client, ExportObject.ACCOUNT, rows)
    assert not result.ok
    assert result.created_id is None
    assert [(e.row, e.attribute) for e in result.row_errors] == [
        (len(rows) - 1, f"gtmsync_headcount{tag}")
    ]
    assert f"The value 120 of 'gtmsync_headcount{tag}'" in result.row_errors[0].message
    assert "outside the valid range" in result.row_errors[0].message
    assert dataverse.store.count("account") == before


def test_refusal_naming_no_row_shown_at_the_top(
    client: DataverseClient, dataverse: ServerHandle
) -> None:
    dataverse.faults.add(FaultRule(kind="error", status=500, method="POST", path=r"/leads$"))
    result = try_mapping(client, ExportObject.LEAD, default_rows(ExportObject.LEAD))
    assert not result.ok
    assert result.row_errors == []
    assert result.message.startswith("Dynamics refused the test lead: ")


def test_picklist_miss_reported_not_sent(client: DataverseClient) -> None:
    rows = [
        *default_rows(ExportObject.ACCOUNT),
        MappingRow(source_field="company_industry", target_attribute="customertypecode"),
    ]
    result = try_mapping(client, ExportObject.ACCOUNT, rows)
    assert result.ok, result.message
    assert "customertypecode" not in result.sent
    assert any("'Business Services' is not an option of" in p for p in result.problems)
    assert isinstance(result.sent["industrycode"], int)


def test_invalid_rows_are_not_sent(client: DataverseClient) -> None:
    rows = [MappingRow(source_field="first_name", target_attribute="firstname")]
    result = try_mapping(client, ExportObject.CONTACT, rows)
    assert not result.ok
    assert result.created_id is None
    assert any("requires" in i.message and "lastname" in i.message for i in result.issues)
    assert result.message.startswith("Test Mapping did not run")
