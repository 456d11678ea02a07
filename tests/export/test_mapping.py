"""Compiled export mappings against the local Dataverse server's live metadata over HTTPS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy.orm import Session

from gtmsync.dataverse import DataverseClient
from gtmsync.export.mapping import (
    MappingInvalidError,
    compile_mapping,
    compile_rows,
    default_rows,
)
from gtmsync.export.schemas import (
    ExportObject,
    IntentDataPoint,
    IntentMappingRow,
    MappingRow,
    UpdateMode,
)
from gtmsync.export.sources import company_values, contact_values
from gtmsync.platform.models import Company, Contact, IntentSignal
from tests.fixtures.connection import ConnectedOrg


@pytest.fixture
def client(connected_org: ConnectedOrg, db_session: Session) -> Iterator[DataverseClient]:
    with connected_org.client(db_session) as client:
        yield client


def _company(**overrides: object) -> Company:
    values: dict[str, object] = {
        "platform_id": "C000000001",
        "name": "O'Brien & Sons",
        "name_lower": "o'brien & sons",
        "website": "https://obrien.example",
        "phone": "+1 555 0100",
        "industry": "consulting",
        "employee_count": 40,
        "revenue": 5_000_000,
        "city": "Boston",
    }
    values.update(overrides)
    return Company(**values)


def _contact(**overrides: object) -> Contact:
    values: dict[str, object] = {
        "platform_id": "P000000001",
        "first_name": "Siobhan",
        "last_name": "O'Neil",
        "email": "siobhan@obrien.example",
        "direct_phone": None,
        "mobile_phone": "+1 555 0199",
        "job_title": "CFO",
    }
    values.update(overrides)
    return Contact(**values)


def test_defaults_compile_for_every_object(
    connected_org: ConnectedOrg, db_session: Session, client: DataverseClient
) -> None:
    for obj in ExportObject:
        compiled = compile_mapping(db_session, connected_org.org.id, obj, client)
        assert [r.source.key for r in compiled.rows] == [r.source_field for r in default_rows(obj)]
    account = compile_mapping(db_session, connected_org.org.id, ExportObject.ACCOUNT, client)
    assert {"name", "websiteurl", "telephone1", "industrycode", "revenue"} <= set(
        account.attributes
    )


def test_hierarchy_direct_phone_empty_uses_company_phone(client: DataverseClient) -> None:
    compiled = compile_rows(ExportObject.CONTACT, default_rows(ExportObject.CONTACT), client)
    phone_rows = compiled.rows_for("telephone1")
    assert [(r.source.key, r.rank) for r in phone_rows] == [
        ("direct_phone", 1),
        ("company_phone", 2),
    ]
    mapped = compiled.map(contact_values(_contact(), _company()))
    assert mapped.values["telephone1"] == "+1 555 0100"
    assert mapped.sources["telephone1"] == "company_phone"
    mapped = compiled.map(contact_values(_contact(direct_phone="+1 555 0142"), _company()))
    assert mapped.values["telephone1"] == "+1 555 0142"
    assert mapped.values["lastname"] == "O'Neil"


def test_picklist_translated_by_label_and_miss_reported(client: DataverseClient) -> None:
    compiled = compile_rows(ExportObject.ACCOUNT, default_rows(ExportObject.ACCOUNT), client)
    options = {o.label: o.value for o in client.metadata.options("account", "industrycode")}
    mapped = compiled.map(company_values(_company()))
    assert mapped.values["industrycode"] == options["Consulting"]
    assert mapped.problems == []
    missed = compiled.map(company_values(_company(industry="Space Mining")))
    assert "industrycode" not in missed.values
    assert len(missed.problems) == 1
    assert "'Space Mining' is not an option of" in missed.problems[0]


def test_payload_complete_if_missing_vs_overwrite(client: DataverseClient) -> None:
    rows = [
        MappingRow(source_field="company_name", target_attribute="name"),
        MappingRow(
            source_field="company_phone",
            target_attribute="telephone1",
            update_mode=UpdateMode.OVERWRITE,
        ),
        MappingRow(source_field="company_website", target_attribute="websiteurl"),
        MappingRow(source_field="company_city", target_attribute="address1_city"),
    ]
    compiled = compile_rows(ExportObject.ACCOUNT, rows, client)
    mapped = compiled.map(company_values(_company()))
    assert compiled.payload(mapped, None) == {
        "name": "O'Brien & Sons",
        "telephone1": "+1 555 0100",
        "websiteurl": "https://obrien.example",
        "address1_city": "Boston",
    }
    existing = {"name": "OBrien", "telephone1": "old", "websiteurl": None, "address1_city": " "}
    assert compiled.payload(mapped, existing) == {
        "telephone1": "+1 555 0100",
        "websiteurl": "https://obrien.example",
        "address1_city": "Boston",
    }


def test_required_attribute_unmapped_refused(client: DataverseClient) -> None:
    rows = [MappingRow(source_field="company_website", target_attribute="websiteurl")]
    with pytest.raises(MappingInvalidError) as caught:
        compile_rows(ExportObject.ACCOUNT, rows, client)
    assert "requires name" in caught.value.message or "(name)" in caught.value.message


def test_intent_points_written_to_custom_attributes(client: DataverseClient) -> None:
    tag = uuid.uuid4().hex[:6]  # the local server outlives the test: new attributes each run
    for schema in (f"gtmsync_CloudScore{tag}", f"gtmsync_CloudDate{tag}"):
        client.metadata.create_string_attribute("account", schema_name=schema, label=schema)
    score, issued = f"gtmsync_cloudscore{tag}", f"gtmsync_clouddate{tag}"
    intent = [
        IntentMappingRow(
            topic="Cloud Security", data_point=IntentDataPoint.SIGNAL_SCORE, target_attribute=score
        ),
        IntentMappingRow(
            topic="Cloud Security", data_point=IntentDataPoint.ISSUE_DATE, target_attribute=issued
        ),
    ]
    compiled = compile_rows(
        ExportObject.ACCOUNT, default_rows(ExportObject.ACCOUNT), client, intent_rows=intent
    )
    signals = [
        IntentSignal(
            signal_id="S1",
            topic="Cloud Security",
            signal_score=61,
            audience_strength="Low",
            signal_location="Boston",
            issue_date=date(2026, 1, 5),
        ),
        IntentSignal(
            signal_id="S2",
            topic="Cloud Security",
            signal_score=88,
            audience_strength="High",
            signal_location="Boston",
            issue_date=date(2026, 2, 9),
        ),
    ]
    mapped = compiled.map(company_values(_company(), signals))
    assert mapped.values[score] == "88"
    assert mapped.values[issued] == "2026-02-09"
    assert mapped.modes[score] == UpdateMode.OVERWRITE
