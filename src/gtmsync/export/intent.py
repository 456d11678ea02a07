"""The Intent tab: which topics exist, and which Dynamics attributes each data point may go to.

The seeds (*Map Intent Data to Custom Fields*) have admins create five custom fields per topic
in Dynamics and map the five data points to them. Topics are the distinct topics of the
platform's intent signals; attributes are the account table's **custom** attributes whose type
fits the data point (a score into a number or text attribute, the issue date into a date or
text attribute, strength, location and intent ID into text attributes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gtmsync.dataverse.metadata import AttributeInfo
from gtmsync.export.schemas import IntentDataPoint, IntentMappingRow
from gtmsync.export.sources import intent_field
from gtmsync.export.validation import intent_fits
from gtmsync.platform.models import IntentSignal

DATA_POINT_LABELS: dict[IntentDataPoint, str] = {
    IntentDataPoint.SIGNAL_SCORE: "Intent Signal Score",
    IntentDataPoint.AUDIENCE_STRENGTH: "Intent Audience Strength",
    IntentDataPoint.SIGNAL_LOCATION: "Intent Signal Location",
    IntentDataPoint.INTENT_ID: "Intent ID",
    IntentDataPoint.ISSUE_DATE: "Intent Issue Date",
}


def topics(session: Session) -> list[str]:
    """Distinct intent topics in the platform's signals, alphabetically."""
    return list(session.scalars(select(IntentSignal.topic).distinct().order_by(IntentSignal.topic)))


def offered_attributes(
    point: IntentDataPoint, attributes: Mapping[str, AttributeInfo]
) -> list[AttributeInfo]:
    """Custom account attributes a data point may be written to (type fits), by name."""
    source = intent_field("", point)
    return sorted(
        (a for a in attributes.values() if intent_fits(source, a)),
        key=lambda a: a.logical_name,
    )


@dataclass(frozen=True)
class TopicGrid:
    """One topic's five data points and the attribute chosen for each ("" when unmapped)."""

    topic: str
    targets: dict[IntentDataPoint, str]


def grid(rows: Sequence[IntentMappingRow], known_topics: Sequence[str]) -> list[TopicGrid]:
    """The Intent tab's table: platform topics first, then topics only the saved rows name."""
    chosen: dict[str, dict[IntentDataPoint, str]] = {}
    for row in rows:
        chosen.setdefault(row.topic, {})[row.data_point] = row.target_attribute
    ordered = list(dict.fromkeys([*known_topics, *chosen]))
    return [
        TopicGrid(topic, {p: chosen.get(topic, {}).get(p, "") for p in IntentDataPoint})
        for topic in ordered
    ]


def rows_from_grid(cells: Mapping[tuple[str, IntentDataPoint], str]) -> list[IntentMappingRow]:
    """Intent rows from the tab's cells; empty cells are simply not mapped."""
    return [
        IntentMappingRow(topic=topic, data_point=point, target_attribute=target.strip())
        for (topic, point), target in cells.items()
        if target.strip() and topic.strip()
    ]
