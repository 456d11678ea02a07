"""Checks an export mapping against the tenant's live metadata, row by row.

Rules (the seeds' *Configure Export Mapping* and *Test and Save*):

* a blank row (no platform field or no Dynamics attribute) cannot be saved;
* an unknown platform field or Dynamics attribute is refused (custom attributes count: they
  come from live metadata);
* types must fit: text goes into text, memo and choice (picklist, matched by label) attributes;
  numbers into number or text attributes ("number into a string is fine"); dates into date or
  text attributes. Text into a number, anything into a lookup, owner, status or boolean is an
  error on the row;
* attributes Dynamics will not let us set on create are refused;
* every creatable attribute whose required level is ApplicationRequired must be mapped
  (named in the message);
* length: a platform field that can be longer than the Dynamics attribute is a **warning**, not
  an error. Most values are far shorter than the platform's column (names are stored in 250
  characters, Dynamics account names hold 160), so refusing the row would forbid the obvious
  mapping; instead a value that does not fit is reported per record at export time and not
  sent, and the warning tells the admin it can happen.

Intent rows: a topic, one of the five data points and a **custom** attribute whose type fits
(score: number or text; strength, location, ID: text; issue date: date or text), each attribute
used once across intent rows and the account mapping.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gtmsync.dataverse.metadata import AttributeInfo
from gtmsync.export.schemas import ExportObject, IntentMappingRow, MappingRow
from gtmsync.export.sources import SourceField, SourceType, fields_by_key, intent_field

TEXT_TYPES = frozenset({"String", "Memo"})
INTEGER_TYPES = frozenset({"Integer", "BigInt"})
NUMBER_TYPES = frozenset({"Integer", "BigInt", "Decimal", "Double", "Money"})
DATE_TYPES = frozenset({"DateTime"})
CHOICE_TYPES = frozenset({"Picklist"})
MAPPABLE_TYPES = TEXT_TYPES | NUMBER_TYPES | DATE_TYPES | CHOICE_TYPES

_FITS: dict[SourceType, frozenset[str]] = {
    SourceType.TEXT: TEXT_TYPES | CHOICE_TYPES,
    SourceType.INTEGER: TEXT_TYPES | NUMBER_TYPES,
    SourceType.DATE: TEXT_TYPES | DATE_TYPES,
}
# Longest text a number or a date becomes.
_RENDERED_LENGTH = {SourceType.INTEGER: 20, SourceType.DATE: 10}


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Issue:
    """One problem: on a row (`row` = index in its list) or on the whole section (row None)."""

    severity: Severity
    message: str
    section: str  # "mapping", "intent" or "preferences"
    obj: ExportObject | None = None
    row: int | None = None

    @property
    def field(self) -> str:
        if self.section == "intent":
            return "intent_mappings" + (f"[{self.row}]" if self.row is not None else "")
        if self.section == "mapping" and self.obj is not None:
            return f"mappings.{self.obj.value}" + (f"[{self.row}]" if self.row is not None else "")
        return f"preferences.objects.{self.obj.value}" if self.obj else "preferences"

    def as_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "message": self.message,
            "section": self.section,
            "object": self.obj.value if self.obj else None,
            "row": self.row,
            "field": self.field,
        }


def errors(issues: Sequence[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == Severity.ERROR]


def attribute_label(attribute: AttributeInfo) -> str:
    if attribute.display_name and attribute.display_name != attribute.logical_name:
        return f"{attribute.display_name} ({attribute.logical_name})"
    return attribute.logical_name


def settable(attribute: AttributeInfo) -> bool:
    return attribute.creatable and attribute.type in MAPPABLE_TYPES


def fits(source: SourceField, attribute: AttributeInfo) -> bool:
    """Whether values of `source` can be written to `attribute` at all (type only)."""
    return attribute.type in _FITS[source.type]


def offered_attributes(attributes: Mapping[str, AttributeInfo]) -> list[AttributeInfo]:
    """Attributes the mapping dropdown offers: those we can set on create, by name."""
    return sorted(
        (a for a in attributes.values() if settable(a)),
        key=lambda a: (a.display_name or a.logical_name).lower(),
    )


def _row_issues(
    source: SourceField, attribute: AttributeInfo, *, section: str, obj: ExportObject, row: int
) -> list[Issue]:
    def issue(severity: Severity, text: str) -> Issue:
        return Issue(severity, f"Row {row + 1}: {text}", section, obj, row)

    target = attribute_label(attribute)
    if attribute.type not in MAPPABLE_TYPES:
        return [
            issue(
                Severity.ERROR,
                f"{target} is a {attribute.type} attribute, which an export cannot set: "
                "map it to a text, number, date or choice attribute.",
            )
        ]
    if not attribute.creatable:
        return [
            issue(
                Severity.ERROR,
                f"{target} cannot be set when a record is created in Dynamics: pick another "
                "attribute.",
            )
        ]
    if not fits(source, attribute):
        kind = {SourceType.TEXT: "text", SourceType.INTEGER: "a number", SourceType.DATE: "a date"}
        return [
            issue(
                Severity.ERROR,
                f"{source.label} is {kind[source.type]}, but {target} is a {attribute.type} "
                "attribute: map it to a text attribute or pick a field of the right type.",
            )
        ]
    found: list[Issue] = []
    if attribute.type in TEXT_TYPES and attribute.max_length is not None:
        length = source.max_length
        if source.type != SourceType.TEXT:
            length = _RENDERED_LENGTH[source.type]
        if length is None or length > attribute.max_length:
            longest = "unlimited" if length is None else f"up to {length:,}"
            found.append(
                issue(
                    Severity.WARNING,
                    f"{source.label} can be longer ({longest} characters) than {target} holds "
                    f"({attribute.max_length:,}): longer values are reported per record and "
                    "not sent.",
                )
            )
    return found


def validate_mapping(
    obj: ExportObject, rows: Sequence[MappingRow], attributes: Mapping[str, AttributeInfo]
) -> list[Issue]:
    """Every problem of one object's mapping rows, errors and warnings, in row order."""
    sources = fields_by_key(obj)
    issues: list[Issue] = []
    seen: Counter[tuple[str, str]] = Counter()
    for index, row in enumerate(rows):
        source_key, target = row.source_field.strip(), row.target_attribute.strip()
        if not source_key or not target:
            issues.append(
                Issue(
                    Severity.ERROR,
                    f"Row {index + 1} is blank: pick a platform field and a Dynamics attribute, "
                    "or remove the row.",
                    "mapping",
                    obj,
                    index,
                )
            )
            continue
        source = sources.get(source_key)
        if source is None:
            issues.append(
                Issue(
                    Severity.ERROR,
                    f"Row {index + 1}: {source_key!r} is not a platform field for "
                    f"{obj.label.lower()}: pick one from the list.",
                    "mapping",
                    obj,
                    index,
                )
            )
            continue
        attribute = attributes.get(target)
        if attribute is None:
            issues.append(
                Issue(
                    Severity.ERROR,
                    f"Row {index + 1}: Dynamics has no attribute {target!r} on the "
                    f"{obj.logical_name} table: pick one from the list (it is read live from "
                    "Dynamics).",
                    "mapping",
                    obj,
                    index,
                )
            )
            continue
        seen[(source_key, target)] += 1
        if seen[(source_key, target)] > 1:
            issues.append(
                Issue(
                    Severity.ERROR,
                    f"Row {index + 1}: {source.label} is already mapped to "
                    f"{attribute_label(attribute)}: remove the repeated row.",
                    "mapping",
                    obj,
                    index,
                )
            )
            continue
        issues.extend(_row_issues(source, attribute, section="mapping", obj=obj, row=index))
    mapped = {row.target_attribute.strip() for row in rows}
    missing = [
        a
        for a in attributes.values()
        if a.required_level == "ApplicationRequired"
        and a.creatable
        and a.logical_name not in mapped
    ]
    if missing:
        names = ", ".join(attribute_label(a) for a in sorted(missing, key=lambda a: a.logical_name))
        issues.append(
            Issue(
                Severity.ERROR,
                f"Dynamics requires {names} on every {obj.logical_name}: add a row mapping a "
                "platform field to it.",
                "mapping",
                obj,
            )
        )
    return issues


INTENT_TYPES: dict[SourceType, frozenset[str]] = {
    SourceType.INTEGER: TEXT_TYPES | NUMBER_TYPES,
    SourceType.TEXT: TEXT_TYPES,
    SourceType.DATE: TEXT_TYPES | DATE_TYPES,
}


def intent_fits(source: SourceField, attribute: AttributeInfo) -> bool:
    return (
        attribute.is_custom and attribute.creatable and attribute.type in INTENT_TYPES[source.type]
    )


def validate_intent(
    rows: Sequence[IntentMappingRow],
    attributes: Mapping[str, AttributeInfo],
    account_rows: Sequence[MappingRow] = (),
) -> list[Issue]:
    """Problems of the intent rows (written to accounts only)."""
    obj = ExportObject.ACCOUNT
    issues: list[Issue] = []
    mapped = {row.target_attribute.strip() for row in account_rows}
    used: dict[str, int] = {}
    points: set[tuple[str, str]] = set()

    def error(index: int, text: str) -> None:
        issues.append(
            Issue(Severity.ERROR, f"Intent row {index + 1}: {text}", "intent", obj, index)
        )

    for index, row in enumerate(rows):
        topic, target = row.topic.strip(), row.target_attribute.strip()
        if not topic or not target:
            error(index, "pick a topic and a custom attribute, or remove the row.")
            continue
        source = intent_field(topic, row.data_point)
        attribute = attributes.get(target)
        if attribute is None:
            error(
                index,
                f"Dynamics has no attribute {target!r} on the account table: create the custom "
                "attribute in Dynamics first, then pick it.",
            )
            continue
        if (topic.lower(), row.data_point.value) in points:
            error(index, f"{source.label} is already mapped: remove the repeated row.")
            continue
        points.add((topic.lower(), row.data_point.value))
        if not attribute.is_custom:
            error(
                index,
                f"{attribute_label(attribute)} is a standard attribute: intent data goes to "
                "custom attributes, one per topic and data point.",
            )
            continue
        if not intent_fits(source, attribute):
            error(
                index,
                f"{source.label} does not fit {attribute_label(attribute)} "
                f"({attribute.type}): pick a "
                + {
                    SourceType.INTEGER: "number or text",
                    SourceType.TEXT: "text",
                    SourceType.DATE: "date or text",
                }[source.type]
                + " attribute.",
            )
            continue
        if target in mapped:
            error(index, f"{target} is already filled by the account mapping: pick another.")
            continue
        if target in used:
            error(index, f"{target} is already used by intent row {used[target] + 1}.")
            continue
        used[target] = index
        issues.extend(
            i
            for i in _row_issues(source, attribute, section="intent", obj=obj, row=index)
            if i.severity == Severity.WARNING
        )
    return issues


def hierarchy_numbers(rows: Sequence[MappingRow]) -> list[int | None]:
    """The seeds' hierarchy number per row: 1, 2, ... among rows sharing a Dynamics attribute
    (None when the attribute is mapped once, or the row is blank)."""
    counts = Counter(r.target_attribute.strip() for r in rows if r.target_attribute.strip())
    positions: Counter[str] = Counter()
    numbers: list[int | None] = []
    for row in rows:
        target = row.target_attribute.strip()
        if not target or counts[target] < 2:
            numbers.append(None)
            continue
        positions[target] += 1
        numbers.append(positions[target])
    return numbers
