"""The platform field catalogue and the values read from platform records."""

from __future__ import annotations

from datetime import date

import pytest

from gtmsync.export.schemas import ExportObject, IntentDataPoint
from gtmsync.export.sources import (
    catalogue,
    company_values,
    contact_values,
    intent_key,
    sample_values,
)
from gtmsync.platform.models import Company, Contact, IntentSignal


def _company() -> Company:
    return Company(
        platform_id="C1",
        name="Acme",
        name_lower="acme",
        phone="+1 555 0100",
        street="1 Main St",
        city="Boston",
        employee_count=50,
    )


@pytest.mark.parametrize("obj", list(ExportObject))
def test_catalogue_keys_unique_and_required_marked(obj: ExportObject) -> None:
    fields = catalogue(obj)
    keys = [f.key for f in fields]
    assert len(keys) == len(set(keys))
    assert "platform_id" in keys
    required = {f.key for f in fields if f.required}
    assert "platform_id" in required
    if obj != ExportObject.ACCOUNT:
        assert {"first_name", "last_name"} <= required
        # Company fields are offered on contacts and leads (for hierarchies and addresses).
        assert {"company_name", "company_phone", "company_city"} <= set(keys)
    assert all(f.display.endswith(" *") == f.required for f in fields)


def test_contact_values_carry_company_fields_and_own_platform_id() -> None:
    contact = Contact(
        platform_id="P1", first_name="Ann", last_name="O'Hara", email="ann@acme.example"
    )
    values = contact_values(contact, _company())
    assert values["platform_id"] == "P1"
    assert values["company_platform_id"] == "C1"
    assert values["company_phone"] == "+1 555 0100"
    assert values["full_name"] == "Ann O'Hara"
    assert values["lead_subject"] == "Ann O'Hara at Acme"
    assert values["direct_phone"] is None
    alone = contact_values(contact, None)
    assert "company_name" not in alone
    assert alone["lead_subject"] == "Ann O'Hara"


def test_intent_values_use_the_newest_signal_per_topic() -> None:
    signals = [
        IntentSignal(
            signal_id="old",
            topic="CRM",
            signal_score=90,
            audience_strength="High",
            signal_location="NYC",
            issue_date=date(2026, 1, 1),
        ),
        IntentSignal(
            signal_id="new",
            topic="CRM",
            signal_score=40,
            audience_strength="Low",
            signal_location="Boston",
            issue_date=date(2026, 3, 1),
        ),
        IntentSignal(
            signal_id="erp",
            topic="ERP",
            signal_score=70,
            audience_strength=None,
            signal_location=None,
            issue_date=date(2026, 2, 1),
        ),
    ]
    values = company_values(_company(), signals)
    assert values[intent_key("CRM", IntentDataPoint.SIGNAL_SCORE)] == 40
    assert values[intent_key("CRM", IntentDataPoint.INTENT_ID)] == "new"
    assert values[intent_key("CRM", IntentDataPoint.ISSUE_DATE)] == date(2026, 3, 1)
    assert values[intent_key("ERP", IntentDataPoint.AUDIENCE_STRENGTH)] is None
    assert values[intent_key("ERP", IntentDataPoint.SIGNAL_SCORE)] == 70


@pytest.mark.parametrize("obj", list(ExportObject))
def test_sample_values_fill_every_field(obj: ExportObject) -> None:
    values = sample_values(obj, ["Cloud"])
    missing = [f.key for f in catalogue(obj) if values.get(f.key) in (None, "")]
    assert missing == []
    if obj == ExportObject.ACCOUNT:
        assert values[intent_key("Cloud", IntentDataPoint.SIGNAL_SCORE)] == 80
