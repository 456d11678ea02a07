"""Mapping row rules, checked against attribute metadata shaped like the tenant's.

Pure checks (no server): the same `AttributeInfo` the metadata cache builds from Dataverse."""

from __future__ import annotations

import pytest

from gtmsync.dataverse.metadata import AttributeInfo
from gtmsync.export.schemas import ExportObject, IntentDataPoint, IntentMappingRow, MappingRow
from gtmsync.export.validation import (
    Severity,
    errors,
    hierarchy_numbers,
    offered_attributes,
    validate_intent,
    validate_mapping,
)


def _attr(
    name: str,
    type_: str = "String",
    *,
    max_length: int | None = None,
    required: str = "None",
    custom: bool = False,
    creatable: bool = True,
) -> AttributeInfo:
    return AttributeInfo(
        logical_name=name,
        schema_name=name,
        type=type_,
        required_level=required,
        max_length=max_length if max_length is not None else (100 if type_ == "String" else None),
        readable=True,
        creatable=creatable,
        updatable=creatable,
        is_custom=custom,
        display_name=None,
    )


ACCOUNT = {
    a.logical_name: a
    for a in (
        _attr("name", max_length=160, required="ApplicationRequired"),
        _attr("websiteurl", max_length=200),
        _attr("telephone1", max_length=50),
        _attr("numberofemployees", "Integer"),
        _attr("revenue", "Money"),
        _attr("industrycode", "Picklist"),
        _attr("accountnumber", max_length=20),
        _attr("parentaccountid", "Lookup"),
        _attr("createdon", "DateTime", creatable=False),
        _attr("accountid", "Uniqueidentifier", required="SystemRequired", creatable=False),
        _attr("gtmsync_score", "Integer", custom=True),
        _attr("gtmsync_topicdate", "DateTime", custom=True),
        _attr("gtmsync_strength", max_length=20, custom=True),
        _attr("gtmsync_location", max_length=100, custom=True),
    )
}


def _row(source: str, target: str) -> MappingRow:
    return MappingRow(source_field=source, target_attribute=target)


def _messages(rows: list[MappingRow]) -> list[tuple[int | None, Severity, str]]:
    return [
        (i.row, i.severity, i.message)
        for i in validate_mapping(ExportObject.ACCOUNT, rows, ACCOUNT)
    ]


def _errors(rows: list[MappingRow]) -> list[tuple[int | None, Severity, str]]:
    return [found for found in _messages(rows) if found[1] == Severity.ERROR]


def test_valid_rows_have_no_errors() -> None:
    rows = [
        _row("company_name", "name"),
        _row("company_employees", "numberofemployees"),
        _row("company_revenue", "revenue"),
        _row("company_industry", "industrycode"),
        _row("company_employees", "accountnumber"),  # a number into text is fine
    ]
    assert errors(validate_mapping(ExportObject.ACCOUNT, rows, ACCOUNT)) == []


def test_blank_rows_refused() -> None:
    found = _errors([_row("company_name", "name"), _row("", "websiteurl"), _row("", "")])
    assert [(row, sev) for row, sev, _ in found] == [
        (1, Severity.ERROR),
        (2, Severity.ERROR),
    ]
    assert "Row 2 is blank" in found[0][2]


def test_unknown_source_and_attribute_refused() -> None:
    found = _errors(
        [
            _row("company_name", "name"),
            _row("shoe_size", "websiteurl"),
            _row("company_phone", "fax"),
        ]
    )
    assert "'shoe_size' is not a platform field" in found[0][2]
    assert "Dynamics has no attribute 'fax' on the account table" in found[1][2]


def test_text_into_integer_refused_named_on_the_row() -> None:
    found = _errors([_row("company_name", "name"), _row("company_city", "numberofemployees")])
    assert found == [
        (
            1,
            Severity.ERROR,
            "Row 2: City is text, but numberofemployees is a Integer attribute: map it to a "
            "text attribute or pick a field of the right type.",
        )
    ]


def test_length_mismatch_is_a_warning_naming_both_lengths() -> None:
    found = _messages([_row("company_name", "name")])
    assert len(found) == 1
    row, severity, message = found[0]
    assert (row, severity) == (0, Severity.WARNING)
    assert "up to 250 characters" in message
    assert "(160)" in message


def test_lookups_and_read_only_attributes_refused() -> None:
    found = _messages(
        [
            _row("company_name", "name"),
            _row("company_name", "parentaccountid"),
            _row("company_name", "createdon"),
        ]
    )
    errs = [(row, message) for row, severity, message in found if severity == Severity.ERROR]
    assert errs[0][0] == 1
    assert "Lookup attribute, which an export cannot set" in errs[0][1]
    assert errs[1][0] == 2
    assert "cannot be set when a record is created" in errs[1][1]


def test_required_attribute_unmapped_named() -> None:
    found = _errors([_row("company_website", "websiteurl")])
    assert found == [
        (
            None,
            Severity.ERROR,
            "Dynamics requires name on every account: add a row mapping a platform field to it.",
        )
    ]


def test_repeated_row_refused() -> None:
    found = _messages([_row("company_name", "name"), _row("company_name", "name")])
    assert any(row == 1 and "already mapped" in message for row, _, message in found)


def test_hierarchy_numbers_count_rows_per_target_in_order() -> None:
    rows = [
        _row("direct_phone", "telephone1"),
        _row("company_name", "name"),
        _row("company_phone", "telephone1"),
        _row("mobile_phone", "telephone1"),
        _row("", ""),
    ]
    assert hierarchy_numbers(rows) == [1, None, 2, 3, None]


def test_offered_attributes_exclude_lookups_and_read_only() -> None:
    offered = {a.logical_name for a in offered_attributes(ACCOUNT)}
    assert "parentaccountid" not in offered
    assert "createdon" not in offered
    assert "accountid" not in offered
    assert {"name", "industrycode", "gtmsync_score"} <= offered


@pytest.mark.parametrize(
    ("point", "target", "fits"),
    [
        (IntentDataPoint.SIGNAL_SCORE, "gtmsync_score", True),
        (IntentDataPoint.SIGNAL_SCORE, "gtmsync_location", True),  # number into text
        (IntentDataPoint.ISSUE_DATE, "gtmsync_topicdate", True),
        (IntentDataPoint.AUDIENCE_STRENGTH, "gtmsync_strength", True),
        (IntentDataPoint.AUDIENCE_STRENGTH, "gtmsync_score", False),  # text into integer
        (IntentDataPoint.ISSUE_DATE, "gtmsync_score", False),
        (IntentDataPoint.SIGNAL_LOCATION, "telephone1", False),  # standard attribute
    ],
)
def test_intent_rows_need_a_fitting_custom_attribute(
    point: IntentDataPoint, target: str, fits: bool
) -> None:
    rows = [IntentMappingRow(topic="Cloud Security", data_point=point, target_attribute=target)]
    assert (errors(validate_intent(rows, ACCOUNT)) == []) is fits


def test_intent_attribute_used_once() -> None:
    rows = [
        IntentMappingRow(
            topic="CRM", data_point=IntentDataPoint.SIGNAL_SCORE, target_attribute="gtmsync_score"
        ),
        IntentMappingRow(
            topic="ERP", data_point=IntentDataPoint.SIGNAL_SCORE, target_attribute="gtmsync_score"
        ),
    ]
    found = errors(validate_intent(rows, ACCOUNT))
    assert [i.row for i in found] == [1]
    assert "already used by intent row 1" in found[0].message
    clash = errors(validate_intent(rows[:1], ACCOUNT, [_row("company_employees", "gtmsync_score")]))
    assert "already filled by the account mapping" in clash[0].message
