"""The settings document service against the local Dataverse server over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from gtmsync.dataverse import DataverseClient
from gtmsync.export import settings as export_settings
from gtmsync.export.mapping import MappingInvalidError, default_rows
from gtmsync.export.schemas import (
    DuplicateAction,
    ExportObject,
    ExportSettingsDocument,
    ManyMatchAccount,
    MappingRow,
    NoMatchAccount,
    OneMatchAccount,
    UpdateMode,
)
from gtmsync.kit.errors import ConflictError, UserError
from gtmsync.platform import audit
from tests.fixtures.connection import ConnectedOrg


@pytest.fixture
def client(connected_org: ConnectedOrg, db_session: Session) -> Iterator[DataverseClient]:
    with connected_org.client(db_session) as client:
        yield client


def test_defaults_when_nothing_saved(connected_org: ConnectedOrg, db_session: Session) -> None:
    stored = export_settings.load(db_session, connected_org.org.id)
    assert stored.version == 0
    document = stored.document
    for obj in ExportObject:
        assert document.mappings[obj] == default_rows(obj)
        preference = document.preferences.for_object(obj)
        assert preference.enabled
        assert preference.max_records == 1000
        assert preference.duplicate_default == DuplicateAction.UPDATE
    association = export_settings.get_preferences(db_session, connected_org.org.id).association
    assert association.no_match == NoMatchAccount.MANUAL
    assert association.one_match == OneMatchAccount.MANUAL
    assert association.many_match == ManyMatchAccount.MANUAL


def test_save_bumps_version_and_audits_the_diff(
    connected_org: ConnectedOrg, db_session: Session, client: DataverseClient
) -> None:
    org_id = connected_org.org.id
    document = export_settings.get_document(db_session, org_id)
    document.preferences.objects[ExportObject.LEAD].max_records = 50
    document.mappings[ExportObject.CONTACT][0].update_mode = UpdateMode.OVERWRITE
    saved = export_settings.save_document(db_session, org_id, connected_org.admin, document, client)
    assert saved.version == 1
    assert any("name" in w.message for w in saved.warnings)  # a length warning, not an error
    again = export_settings.save_document(
        db_session, org_id, connected_org.admin, document, client, expected_version=1
    )
    assert again.version == 2
    assert again.changed == {}
    events = audit.list_events(db_session, org_id, action_prefix="export.settings.save")
    assert len(events) == 2
    first = events[-1]
    assert first.actor_email == connected_org.admin.email
    changes = first.detail["changes"]
    assert changes["preferences.objects.lead.max_records"] == {  # type: ignore[index]
        "before": 1000,
        "after": 50,
    }
    assert "mappings.contact" in changes  # type: ignore[operator]
    assert "preferences.objects.lead" in first.summary
    stored = export_settings.get_document(db_session, org_id)
    assert stored.preferences.for_object(ExportObject.LEAD).max_records == 50


def test_stale_version_refused(
    connected_org: ConnectedOrg, db_session: Session, client: DataverseClient
) -> None:
    org_id = connected_org.org.id
    document = export_settings.get_document(db_session, org_id)
    export_settings.save_document(db_session, org_id, connected_org.admin, document, client)
    with pytest.raises(ConflictError):
        export_settings.save_document(
            db_session, org_id, connected_org.admin, document, client, expected_version=0
        )


def test_invalid_rows_refuse_the_whole_save(
    connected_org: ConnectedOrg, db_session: Session, client: DataverseClient
) -> None:
    org_id = connected_org.org.id
    document = export_settings.get_document(db_session, org_id)
    document.preferences.objects[ExportObject.ACCOUNT].max_records = 10
    document.mappings[ExportObject.LEAD] = [
        MappingRow(source_field="last_name", target_attribute="lastname"),
        MappingRow(source_field="", target_attribute="jobtitle"),
    ]
    with pytest.raises(MappingInvalidError) as caught:
        export_settings.save_document(db_session, org_id, connected_org.admin, document, client)
    messages = [i.message for i in caught.value.issues if i.severity == "error"]
    assert any("Row 2 is blank" in m for m in messages)
    assert any("requires subject" in m or "(subject)" in m for m in messages)
    assert export_settings.load(db_session, org_id).version == 0
    assert audit.list_events(db_session, org_id, action_prefix="export.settings") == []


@pytest.mark.parametrize("limit", [0, 10_001])
def test_max_records_outside_the_range_refused(limit: int) -> None:
    data = ExportSettingsDocument().model_dump(mode="json")
    data["preferences"]["objects"]["contact"]["max_records"] = limit
    with pytest.raises(UserError) as caught:
        export_settings.parse_document(data)
    assert caught.value.field == "preferences.objects.contact.max_records"
    assert "between 1 and 10,000" in caught.value.message
    assert "1 to 10,000" in (caught.value.fix or "")


def test_platform_id_attribute_must_be_an_existing_text_attribute(
    connected_org: ConnectedOrg, db_session: Session, client: DataverseClient
) -> None:
    org_id = connected_org.org.id
    document = export_settings.get_document(db_session, org_id)
    document.preferences.objects[ExportObject.ACCOUNT].platform_id_attribute = "numberofemployees"
    document.preferences.objects[ExportObject.CONTACT].platform_id_attribute = "nosuchcolumn"
    with pytest.raises(MappingInvalidError) as caught:
        export_settings.save_document(db_session, org_id, connected_org.admin, document, client)
    messages = [i.message for i in caught.value.issues]
    assert any("'numberofemployees' on account is a Integer attribute" in m for m in messages)
    assert any("'nosuchcolumn' on contact does not exist" in m for m in messages)
    document.preferences.objects[ExportObject.ACCOUNT].platform_id_attribute = "accountnumber"
    document.preferences.objects[ExportObject.CONTACT].platform_id_attribute = None
    saved = export_settings.save_document(db_session, org_id, connected_org.admin, document, client)
    assert saved.document.preferences.for_object(ExportObject.ACCOUNT).platform_id_attribute == (
        "accountnumber"
    )


def _drop_anchor(client: DataverseClient, table: str) -> None:
    """Remove gtmsync_platformid (and any key on it) from `table` through the metadata API."""
    definition = f"EntityDefinitions(LogicalName='{table}')"
    for key in client.metadata.alternate_keys(table):
        if "gtmsync_platformid" in key.attributes:
            keys = client.request("GET", f"{definition}/Keys", idempotent=True).json()["value"]
            for row in keys:
                if row["LogicalName"] == key.logical_name:
                    client.request(
                        "DELETE", f"{definition}/Keys({row['MetadataId']})", idempotent=True
                    )
    if "gtmsync_platformid" in client.metadata.attributes(table):
        client.request(
            "DELETE",
            f"{definition}/Attributes(LogicalName='gtmsync_platformid')",
            idempotent=True,
        )
    client.metadata.refresh(table)


def test_create_platform_id_attribute_on_request(
    connected_org: ConnectedOrg, db_session: Session, client: DataverseClient
) -> None:
    org_id = connected_org.org.id
    _drop_anchor(client, "lead")  # the local server outlives tests: start without the column
    assert "gtmsync_platformid" not in client.metadata.attributes("lead")
    document = export_settings.get_document(db_session, org_id)
    document.preferences.objects[
        ExportObject.LEAD
    ].platform_id_attribute = export_settings.CREATE_ANCHOR
    saved = export_settings.save_document(db_session, org_id, connected_org.admin, document, client)
    client.metadata.refresh("lead")
    created = client.metadata.attributes("lead")["gtmsync_platformid"]
    assert created.type == "String"
    assert created.is_custom
    assert saved.document.preferences.for_object(ExportObject.LEAD).platform_id_attribute == (
        "gtmsync_platformid"
    )


def test_editor_lists_live_attributes_and_topics(
    connected_org: ConnectedOrg, db_session: Session
) -> None:
    data = export_settings.editor(db_session, connected_org.org.id, settings=connected_org.settings)
    names = {c.logical_name for c in data.attributes[ExportObject.ACCOUNT]}
    assert {"name", "industrycode", "websiteurl"} <= names
    assert "parentaccountid" not in names
    industry = next(
        c for c in data.attributes[ExportObject.ACCOUNT] if c.logical_name == "industrycode"
    )
    assert industry.options
    assert all(c.type == "String" for c in data.platform_id_candidates[ExportObject.CONTACT])
    assert [i for i in data.issues if i.severity == "error"] == []
