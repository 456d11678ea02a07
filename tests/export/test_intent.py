"""The Intent tab's service side: topics from the platform's signals, fitting custom attributes
from live metadata, and intent data written by Test Mapping (accounts)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy.orm import Session

from gtmsync.dataverse import DataverseClient
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.export import intent
from gtmsync.export import settings as export_settings
from gtmsync.export.mapping import default_rows
from gtmsync.export.schemas import ExportObject, IntentDataPoint, IntentMappingRow
from gtmsync.export.trial import try_mapping
from gtmsync.platform.models import IntentSignal
from tests.fixtures.connection import ConnectedOrg
from tests.fixtures.factories import make_company


@pytest.fixture
def client(connected_org: ConnectedOrg, db_session: Session) -> Iterator[DataverseClient]:
    with connected_org.client(db_session) as client:
        yield client


def _custom(client: DataverseClient, kind: str, schema: str, **extra: object) -> str:
    """A new custom account attribute (unique name: the local server outlives the test)."""
    schema = f"{schema}{uuid.uuid4().hex[:6]}"
    client.request(
        "POST",
        "EntityDefinitions(LogicalName='account')/Attributes",
        json={
            "@odata.type": f"Microsoft.Dynamics.CRM.{kind}AttributeMetadata",
            "SchemaName": schema,
            "DisplayName": {"LocalizedLabels": [{"Label": schema, "LanguageCode": 1033}]},
            **extra,
        },
        idempotent=False,
    )
    client.metadata.refresh("account")
    return schema.lower()


def test_topics_are_the_distinct_signal_topics(db_session: Session) -> None:
    company = make_company(db_session)
    for n, topic in enumerate(["Cloud Security", "CRM Software", "Cloud Security"]):
        db_session.add(
            IntentSignal(
                signal_id=f"topic-test-{n}",
                company_id=company.id,
                topic=topic,
                signal_score=50,
                issue_date=date(2026, 1, 1),
            )
        )
    db_session.flush()
    found = intent.topics(db_session)
    assert found.count("Cloud Security") == 1
    assert {"Cloud Security", "CRM Software"} <= set(found)
    assert found == sorted(found)


def test_only_fitting_custom_attributes_offered(client: DataverseClient) -> None:
    score = _custom(client, "Integer", "gtmsync_CloudScore", MinValue=0, MaxValue=100)
    when = _custom(client, "DateTime", "gtmsync_CloudDate", Format="DateOnly")
    text = _custom(client, "String", "gtmsync_CloudStrength", MaxLength=20)
    attributes = client.metadata.attributes("account")
    offered = {
        point: {a.logical_name for a in intent.offered_attributes(point, attributes)}
        for point in IntentDataPoint
    }
    assert {score, text} <= offered[IntentDataPoint.SIGNAL_SCORE]
    assert when not in offered[IntentDataPoint.SIGNAL_SCORE]
    assert {when, text} <= offered[IntentDataPoint.ISSUE_DATE]
    assert score not in offered[IntentDataPoint.ISSUE_DATE]
    assert text in offered[IntentDataPoint.AUDIENCE_STRENGTH]
    assert not {score, when} & offered[IntentDataPoint.AUDIENCE_STRENGTH]
    assert all(attributes[name].is_custom for names in offered.values() for name in names)
    assert "telephone1" not in offered[IntentDataPoint.SIGNAL_LOCATION]  # standard attribute


def test_test_mapping_writes_intent_points(
    client: DataverseClient, dataverse: ServerHandle
) -> None:
    score = _custom(client, "Integer", "gtmsync_CrmScore", MinValue=0, MaxValue=100)
    when = _custom(client, "DateTime", "gtmsync_CrmDate", Format="DateOnly")
    signal = _custom(client, "String", "gtmsync_CrmSignal", MaxLength=64)
    rows = [
        IntentMappingRow(
            topic="CRM", data_point=IntentDataPoint.SIGNAL_SCORE, target_attribute=score
        ),
        IntentMappingRow(topic="CRM", data_point=IntentDataPoint.ISSUE_DATE, target_attribute=when),
        IntentMappingRow(
            topic="CRM", data_point=IntentDataPoint.INTENT_ID, target_attribute=signal
        ),
    ]
    before = dataverse.store.count("account")
    result = try_mapping(client, ExportObject.ACCOUNT, default_rows(ExportObject.ACCOUNT), rows)
    assert result.ok, result.message
    assert result.sent[score] == 80
    assert result.sent[when] == "2026-01-15"
    assert result.sent[signal] == "gtmsync-test-signal-1"
    assert dataverse.store.count("account") == before


def test_saved_intent_rows_compile_into_the_account_mapping(
    connected_org: ConnectedOrg, db_session: Session, client: DataverseClient
) -> None:
    from gtmsync.export.mapping import compile_mapping

    score = _custom(client, "Integer", "gtmsync_ErpScore", MinValue=0, MaxValue=100)
    org_id = connected_org.org.id
    document = export_settings.get_document(db_session, org_id)
    document.intent_mappings = [
        IntentMappingRow(
            topic="ERP", data_point=IntentDataPoint.SIGNAL_SCORE, target_attribute=score
        )
    ]
    export_settings.save_document(db_session, org_id, connected_org.admin, document, client)
    compiled = compile_mapping(db_session, org_id, ExportObject.ACCOUNT, client)
    assert score in compiled.attributes
    contact = compile_mapping(db_session, org_id, ExportObject.CONTACT, client)
    assert score not in contact.attributes


def test_grid_round_trip() -> None:
    rows = [
        IntentMappingRow(
            topic="Legacy", data_point=IntentDataPoint.SIGNAL_SCORE, target_attribute="x_score"
        )
    ]
    grid = intent.grid(rows, ["Cloud"])
    assert [g.topic for g in grid] == ["Cloud", "Legacy"]
    assert grid[1].targets[IntentDataPoint.SIGNAL_SCORE] == "x_score"
    assert grid[0].targets[IntentDataPoint.SIGNAL_SCORE] == ""
    cells = {(g.topic, point): target for g in grid for point, target in g.targets.items()}
    assert intent.rows_from_grid(cells) == rows


def test_intent_row_refused_by_dynamics_is_named(client: DataverseClient) -> None:
    score = _custom(client, "Integer", "gtmsync_LowScore", MinValue=0, MaxValue=50)
    rows = [
        IntentMappingRow(
            topic="CRM", data_point=IntentDataPoint.SIGNAL_SCORE, target_attribute=score
        )
    ]
    result = try_mapping(client, ExportObject.ACCOUNT, default_rows(ExportObject.ACCOUNT), rows)
    assert not result.ok
    assert [(e.row, e.attribute, e.intent) for e in result.row_errors] == [(0, score, True)]
    assert f"The value 80 of '{score}'" in result.message  # shown in full: not on this tab
