"""The platform side of the export mapping: which platform fields exist, and their values.

The catalogue is what the mapping tabs offer in the "Platform field" column (the seeds'
*ZoomInfo Field*, required fields marked with an asterisk) and what validation compares with
the Dynamics attribute's type and length. Company fields are offered on contacts and leads too
(`company_name`, `company_phone`, ...), so a contact's Business Phone can fall back from Direct
Phone to Company Phone in a hierarchy.

Intent data points are sources as well: `intent_key(topic, point)` names them, and
`company_values` fills them from the company's signals (newest signal per topic), so the
mapping resolves intent rows with the same code as ordinary rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from gtmsync.export.schemas import ExportObject, IntentDataPoint
from gtmsync.platform.models import Company, Contact, IntentSignal

INTENT_PREFIX = "intent"


class SourceType(StrEnum):
    """What kind of value a platform field holds (drives type checks against Dynamics)."""

    TEXT = "text"
    INTEGER = "integer"
    DATE = "date"


@dataclass(frozen=True)
class SourceField:
    key: str
    label: str
    type: SourceType
    # The longest value the platform stores; None means unbounded (free text).
    max_length: int | None = None
    # Always present on the platform (shown with an asterisk, like the seeds' required fields).
    required: bool = False

    @property
    def display(self) -> str:
        return f"{self.label} *" if self.required else self.label


_T, _I, _D = SourceType.TEXT, SourceType.INTEGER, SourceType.DATE

COMPANY_FIELDS: tuple[SourceField, ...] = (
    SourceField("company_name", "Company Name", _T, 250, required=True),
    SourceField("company_website", "Website", _T, 250),
    SourceField("company_domain", "Company Domain", _T, 250),
    SourceField("company_phone", "Company Phone", _T, 50),
    SourceField("company_industry", "Industry", _T, 120),
    SourceField("company_employees", "Employees", _I),
    SourceField("company_revenue", "Revenue (USD)", _I),
    SourceField("company_street", "Street", _T, 250),
    SourceField("company_city", "City", _T, 120),
    SourceField("company_state", "State", _T, 120),
    SourceField("company_postal_code", "Zip Code", _T, 30),
    SourceField("company_country", "Country", _T, 120),
    SourceField("company_description", "Company Description", _T, None),
    SourceField("company_platform_id", "Company Platform ID", _T, 64, required=True),
)

PERSON_FIELDS: tuple[SourceField, ...] = (
    SourceField("first_name", "First Name", _T, 100, required=True),
    SourceField("last_name", "Last Name", _T, 100, required=True),
    SourceField("full_name", "Full Name", _T, 201, required=True),
    SourceField("email", "Email Address", _T, 320),
    SourceField("direct_phone", "Direct Phone", _T, 50),
    SourceField("mobile_phone", "Mobile Phone", _T, 50),
    SourceField("job_title", "Job Title", _T, 200),
    SourceField("department", "Department", _T, 100),
    SourceField("management_level", "Management Level", _T, 50),
    SourceField("platform_id", "Platform ID", _T, 64, required=True),
)

# Dynamics leads need a Topic (`subject`, application-required); this one reads well there.
LEAD_FIELDS: tuple[SourceField, ...] = (
    SourceField("lead_subject", "Lead Topic (name at company)", _T, 454, required=True),
)

_ACCOUNT_FIELDS: tuple[SourceField, ...] = (
    *COMPANY_FIELDS,
    SourceField("platform_id", "Platform ID", _T, 64, required=True),
)

_INTENT_TYPES: dict[IntentDataPoint, tuple[str, SourceType, int | None]] = {
    IntentDataPoint.SIGNAL_SCORE: ("Intent Signal Score", _I, None),
    IntentDataPoint.AUDIENCE_STRENGTH: ("Intent Audience Strength", _T, 20),
    IntentDataPoint.SIGNAL_LOCATION: ("Intent Signal Location", _T, 120),
    IntentDataPoint.INTENT_ID: ("Intent ID", _T, 64),
    IntentDataPoint.ISSUE_DATE: ("Intent Issue Date", _D, None),
}


def catalogue(obj: ExportObject) -> tuple[SourceField, ...]:
    """The platform fields an admin may map for `obj`, in display order."""
    if obj == ExportObject.ACCOUNT:
        return _ACCOUNT_FIELDS
    if obj == ExportObject.LEAD:
        return (*PERSON_FIELDS, *LEAD_FIELDS, *COMPANY_FIELDS)
    return (*PERSON_FIELDS, *COMPANY_FIELDS)


def fields_by_key(obj: ExportObject) -> dict[str, SourceField]:
    return {f.key: f for f in catalogue(obj)}


def intent_key(topic: str, point: IntentDataPoint) -> str:
    """The value key of one intent data point for one topic (topics may contain any text)."""
    return f"{INTENT_PREFIX}\x1f{topic}\x1f{point.value}"


def intent_field(topic: str, point: IntentDataPoint) -> SourceField:
    label, type_, length = _INTENT_TYPES[point]
    return SourceField(intent_key(topic, point), f"{label} ({topic})", type_, length)


def company_values(
    company: Company, intent_signals: Iterable[IntentSignal] = ()
) -> dict[str, object]:
    """Platform field key → value for one company (and, for intent, its newest signal/topic)."""
    values: dict[str, object] = {
        "platform_id": company.platform_id,
        "company_platform_id": company.platform_id,
        "company_name": company.name,
        "company_website": company.website,
        "company_domain": company.domain,
        "company_phone": company.phone,
        "company_industry": company.industry,
        "company_employees": company.employee_count,
        "company_revenue": company.revenue,
        "company_street": company.street,
        "company_city": company.city,
        "company_state": company.state,
        "company_postal_code": company.postal_code,
        "company_country": company.country,
        "company_description": company.description,
    }
    values.update(intent_values(intent_signals))
    return values


def intent_values(signals: Iterable[IntentSignal]) -> dict[str, object]:
    """The newest signal per topic (ties: the higher score) as the five data points."""
    newest: dict[str, IntentSignal] = {}
    for signal in signals:
        current = newest.get(signal.topic)
        if current is None or (signal.issue_date, signal.signal_score) > (
            current.issue_date,
            current.signal_score,
        ):
            newest[signal.topic] = signal
    values: dict[str, object] = {}
    for topic, signal in newest.items():
        points: Mapping[IntentDataPoint, object] = {
            IntentDataPoint.SIGNAL_SCORE: signal.signal_score,
            IntentDataPoint.AUDIENCE_STRENGTH: signal.audience_strength,
            IntentDataPoint.SIGNAL_LOCATION: signal.signal_location,
            IntentDataPoint.INTENT_ID: signal.signal_id,
            IntentDataPoint.ISSUE_DATE: signal.issue_date,
        }
        for point, value in points.items():
            values[intent_key(topic, point)] = value
    return values


def contact_values(contact: Contact, company: Company | None) -> dict[str, object]:
    """Platform field key → value for one contact or lead; company fields when it has one.

    `platform_id` is the contact's own ID (the anchor of contacts and leads); the company's is
    `company_platform_id`.
    """
    values = company_values(company) if company is not None else {}
    values.pop("platform_id", None)
    full_name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
    subject = f"{full_name} at {company.name}" if company is not None else full_name
    values.update(
        {
            "platform_id": contact.platform_id,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "full_name": full_name,
            "email": contact.email,
            "direct_phone": contact.direct_phone,
            "mobile_phone": contact.mobile_phone,
            "job_title": contact.job_title,
            "department": contact.department,
            "management_level": contact.management_level,
            "lead_subject": subject,
        }
    )
    return values


def sample_values(obj: ExportObject, topics: Iterable[str] = ()) -> dict[str, object]:
    """A realistic made-up record for Test Mapping (every field filled, names clearly a test);
    accounts get one sample signal per intent topic so every intent row has a value."""
    company = Company(
        platform_id="gtmsync-test-company",
        name="gtmsync Test Mapping Company",
        name_lower="gtmsync test mapping company",
        website="https://www.example.com",
        domain="example.com",
        phone="+1 617 555 0100",
        industry="Business Services",
        employee_count=120,
        revenue=25_000_000,
        street="1 Main Street",
        city="Boston",
        state="MA",
        postal_code="02110",
        country="United States",
        description="A test record created and deleted by gtmsync's Test Mapping.",
    )
    if obj == ExportObject.ACCOUNT:
        signals = [
            IntentSignal(
                signal_id=f"gtmsync-test-signal-{i}",
                topic=topic,
                signal_score=80,
                audience_strength="High",
                signal_location="Boston, MA",
                issue_date=date(2026, 1, 15),
            )
            for i, topic in enumerate(dict.fromkeys(topics), start=1)
        ]
        return company_values(company, signals)
    contact = Contact(
        platform_id="gtmsync-test-contact",
        first_name="Test",
        last_name="Mapping (gtmsync)",
        email="test.mapping@example.com",
        direct_phone="+1 617 555 0101",
        mobile_phone="+1 617 555 0102",
        job_title="Head of Testing",
        department="Operations",
        management_level="Manager",
    )
    return contact_values(contact, company)
