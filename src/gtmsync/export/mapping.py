"""Export mapping: default rows, and a mapping compiled against the tenant's live metadata.

`compile_mapping` reads the org's saved rows (or the defaults) and the tenant's attributes,
types, lengths and option sets once; `CompiledMapping.map` then turns a record's platform values
into Dynamics attribute values without further requests:

* **hierarchy**: rows sharing a target are numbered 1, 2, ... in list order and the first
  non-empty value wins (Direct Phone, then Company Phone → Business Phone);
* **picklists**: platform text is matched to an option by label, case-insensitively; a value
  with no option is a per-record problem and is not sent (nor is a value too long for its
  attribute);
* **update modes**: `payload(mapped, existing)` sends every value on create; on update it sends
  Overwrite attributes always and Complete-if-missing ones only where Dynamics is empty.

Intent rows (accounts only) compile to Overwrite rows: a topic's newest signal replaces the one
written by an earlier export, which is what "write intent data when a company is exported"
means for data that changes week to week.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from gtmsync.dataverse.metadata import AttributeInfo
from gtmsync.export.schemas import ExportObject, IntentMappingRow, MappingRow, UpdateMode
from gtmsync.export.sources import SourceField, SourceType, fields_by_key, intent_field
from gtmsync.export.validation import (
    CHOICE_TYPES,
    DATE_TYPES,
    INTEGER_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    Issue,
    attribute_label,
    errors,
    validate_intent,
    validate_mapping,
)
from gtmsync.kit.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gtmsync.dataverse import DataverseClient

_ADDRESS = [
    ("company_street", "address1_line1"),
    ("company_city", "address1_city"),
    ("company_state", "address1_stateorprovince"),
    ("company_postal_code", "address1_postalcode"),
    ("company_country", "address1_country"),
]
_OVERWRITE_NOTHING = UpdateMode.COMPLETE_IF_MISSING


def _rows(pairs: Sequence[tuple[str, str]]) -> list[MappingRow]:
    return [MappingRow(source_field=s, target_attribute=t) for s, t in pairs]


def default_rows(obj: ExportObject) -> list[MappingRow]:
    """Sensible defaults per object, all Complete if missing (the seeds' default option)."""
    if obj == ExportObject.ACCOUNT:
        return _rows(
            [
                ("company_name", "name"),
                ("company_website", "websiteurl"),
                ("company_phone", "telephone1"),
                *_ADDRESS,
                ("company_industry", "industrycode"),
                ("company_employees", "numberofemployees"),
                ("company_revenue", "revenue"),
                ("company_description", "description"),
            ]
        )
    person = [
        ("first_name", "firstname"),
        ("last_name", "lastname"),
        ("email", "emailaddress1"),
        ("job_title", "jobtitle"),
        ("direct_phone", "telephone1"),
        ("company_phone", "telephone1"),
        ("mobile_phone", "mobilephone"),
        *_ADDRESS,
    ]
    if obj == ExportObject.CONTACT:
        return _rows(person)
    return _rows(
        [
            *person,
            ("lead_subject", "subject"),
            ("company_name", "companyname"),
            ("company_website", "websiteurl"),
            ("company_industry", "industrycode"),
            ("company_employees", "numberofemployees"),
            ("company_revenue", "revenue"),
        ]
    )


class MappingInvalidError(UserError):
    """The rows cannot be used as they are; `issues` says which rows and why."""

    def __init__(self, obj: ExportObject | None, issues: Sequence[Issue]) -> None:
        found = errors(issues)
        where = f"The {obj.label} mapping" if obj else "The export settings"
        first = found[0] if found else None
        super().__init__(
            f"{where} cannot be used: {first.message if first else 'it has errors.'}"
            + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""),
            field=first.field if first else None,
            fix="Correct the rows named under Admin › Integrations › Dynamics 365 › Export "
            "mapping, then save again.",
        )
        self.issues = list(issues)


@dataclass(frozen=True)
class CompiledRow:
    index: int  # position in its list (mapping rows, or intent rows when `intent`)
    source: SourceField
    attribute: AttributeInfo
    mode: UpdateMode
    rank: int  # hierarchy number: 1 for the first row onto this attribute, then 2, ...
    options: Mapping[str, int] | None = None  # lower-cased label -> value, for picklists
    intent: bool = False


@dataclass
class MappedRecord:
    """One record's Dynamics values: `values` and `modes` by attribute, `problems` per value
    that could not be sent, `sources` the platform field each value came from."""

    values: dict[str, object] = field(default_factory=dict)
    modes: dict[str, UpdateMode] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


def is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Skip(Exception):  # noqa: N818 - control flow inside convert(), never escapes
    pass


def _convert(row: CompiledRow, value: object) -> object:
    """The value as Dynamics wants it for the row's attribute; raises _Skip(problem)."""
    attribute, target = row.attribute, attribute_label(row.attribute)
    kind = attribute.type
    if kind in CHOICE_TYPES:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and row.options is not None
            and value in row.options.values()
        ):
            return value
        text = str(value).strip().lower()
        if row.options is not None and text in row.options:
            return row.options[text]
        raise _Skip(
            f"{row.source.label} {str(value)!r} is not an option of {target}: it was not sent "
            "(add the option in Dynamics or map another field)."
        )
    if kind in TEXT_TYPES:
        text = value.isoformat() if isinstance(value, date | datetime) else str(value).strip()
        if attribute.max_length is not None and len(text) > attribute.max_length:
            raise _Skip(
                f"{row.source.label} is {len(text):,} characters, more than {target} holds "
                f"({attribute.max_length:,}): it was not sent."
            )
        return text
    if kind in NUMBER_TYPES:
        try:
            number = int(str(value)) if kind in INTEGER_TYPES else float(str(value))
        except ValueError:
            raise _Skip(
                f"{row.source.label} {str(value)!r} is not a number for {target}: not sent."
            ) from None
        if isinstance(number, float) and number.is_integer():
            return int(number)
        return number
    if kind in DATE_TYPES:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return str(value)
    raise _Skip(f"{target} is a {kind} attribute: not sent.")  # pragma: no cover - validated


class CompiledMapping:
    """A mapping bound to the tenant's metadata: maps values, builds create/update payloads."""

    def __init__(self, obj: ExportObject, rows: Sequence[CompiledRow], issues: Sequence[Issue]):
        self.obj = obj
        self.rows = list(rows)
        self.issues = list(issues)  # warnings (compiling refuses errors)
        self._by_target: dict[str, list[CompiledRow]] = {}
        for row in self.rows:
            self._by_target.setdefault(row.attribute.logical_name, []).append(row)

    @property
    def attributes(self) -> list[str]:
        """The Dynamics attributes this mapping writes (what to $select on existing rows)."""
        return list(self._by_target)

    def rows_for(self, attribute: str) -> list[CompiledRow]:
        return list(self._by_target.get(attribute, []))

    def map(self, values: Mapping[str, object]) -> MappedRecord:
        record = MappedRecord()
        for target, rows in self._by_target.items():
            for row in rows:
                raw = values.get(row.source.key)
                if is_empty(raw):
                    continue
                try:
                    record.values[target] = _convert(row, raw)
                except _Skip as skip:
                    record.problems.append(str(skip))
                else:
                    record.modes[target] = row.mode
                    record.sources[target] = row.source.key
                break  # the first non-empty value wins, sent or not
        return record

    def payload(
        self, mapped: MappedRecord, existing: Mapping[str, object] | None
    ) -> dict[str, object]:
        """What to send: everything on create; on update Overwrite values always and
        Complete-if-missing values only where `existing` (the Dynamics row) is empty."""
        if existing is None:
            return dict(mapped.values)
        return {
            attribute: value
            for attribute, value in mapped.values.items()
            if mapped.modes.get(attribute, _OVERWRITE_NOTHING) == UpdateMode.OVERWRITE
            or is_empty(existing.get(attribute))
        }


def compile_rows(
    obj: ExportObject,
    rows: Sequence[MappingRow],
    client: DataverseClient,
    *,
    intent_rows: Sequence[IntentMappingRow] = (),
) -> CompiledMapping:
    """Compile rows (saved or not, e.g. Test Mapping's) against live metadata; errors raise
    `MappingInvalidError` with every issue."""
    table = obj.logical_name
    attributes = client.metadata.attributes(table)
    issues = validate_mapping(obj, rows, attributes)
    if obj == ExportObject.ACCOUNT and intent_rows:
        issues += validate_intent(intent_rows, attributes, rows)
    if errors(issues):
        raise MappingInvalidError(obj, issues)
    sources = fields_by_key(obj)
    ranks: dict[str, int] = {}
    compiled: list[CompiledRow] = []

    def options(attribute: AttributeInfo) -> dict[str, int] | None:
        if attribute.type not in CHOICE_TYPES:
            return None
        return {
            o.label.strip().lower(): o.value
            for o in client.metadata.options(table, attribute.logical_name)
            if o.label
        }

    for index, row in enumerate(rows):
        attribute = attributes[row.target_attribute.strip()]
        ranks[attribute.logical_name] = ranks.get(attribute.logical_name, 0) + 1
        compiled.append(
            CompiledRow(
                index=index,
                source=sources[row.source_field.strip()],
                attribute=attribute,
                mode=row.update_mode,
                rank=ranks[attribute.logical_name],
                options=options(attribute),
            )
        )
    if obj == ExportObject.ACCOUNT:
        for index, intent in enumerate(intent_rows):
            attribute = attributes[intent.target_attribute.strip()]
            compiled.append(
                CompiledRow(
                    index=index,
                    source=intent_field(intent.topic.strip(), intent.data_point),
                    attribute=attribute,
                    mode=UpdateMode.OVERWRITE,
                    rank=1,
                    intent=True,
                )
            )
    return CompiledMapping(obj, compiled, issues)


def compile_mapping(
    session: Session, org_id: uuid.UUID, obj: ExportObject, client: DataverseClient
) -> CompiledMapping:
    """The org's saved mapping for `obj` (defaults when never saved), intent rows included for
    accounts, compiled against the tenant's live metadata."""
    from gtmsync.export.settings import get_document

    document = get_document(session, org_id)
    return compile_rows(
        obj,
        document.mappings.get(obj) or default_rows(obj),
        client,
        intent_rows=document.intent_mappings if obj == ExportObject.ACCOUNT else (),
    )


__all__ = [
    "CompiledMapping",
    "CompiledRow",
    "MappedRecord",
    "MappingInvalidError",
    "SourceType",
    "compile_mapping",
    "compile_rows",
    "default_rows",
    "is_empty",
]
