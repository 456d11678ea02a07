"""Test Mapping (the seeds' *Test and Save*): create one record with the current, unsaved rows
in Dynamics, delete it again, and say what happened.

The record is built from made-up sample data (`sources.sample_values`) mapped exactly the way an
export maps a real record, so a success means the rows, the types and the tenant's own rules
(ranges, field security, plug-ins) all accept it. When Dynamics refuses, its own message is
shown: on the row whose attribute it names (Dataverse quotes attribute logical names:
"The length of the 'name' attribute...", "property 'numberofemployees'"), otherwise at the top.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from gtmsync.dataverse import DataverseClient, DataverseError
from gtmsync.export.mapping import CompiledMapping, MappingInvalidError, compile_rows
from gtmsync.export.schemas import ExportObject, IntentMappingRow, MappingRow
from gtmsync.export.sources import sample_values
from gtmsync.export.validation import Issue, Severity

_QUOTED = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)'")


@dataclass
class RowError:
    """Dynamics' message about one row (`intent` rows index the intent list)."""

    row: int
    attribute: str
    message: str
    intent: bool = False


@dataclass
class TrialResult:
    ok: bool
    obj: ExportObject
    message: str  # what to show at the top
    created_id: uuid.UUID | None = None
    deleted: bool = False
    sent: dict[str, object] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)  # our own validation (errors, warnings)
    row_errors: list[RowError] = field(default_factory=list)  # Dynamics' message per row
    problems: list[str] = field(default_factory=list)  # sample values not sent (picklists)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "object": self.obj.value,
            "message": self.message,
            "created_id": str(self.created_id) if self.created_id else None,
            "deleted": self.deleted,
            "sent": self.sent,
            "issues": [i.as_dict() for i in self.issues],
            "row_errors": [
                {"row": e.row, "attribute": e.attribute, "message": e.message, "intent": e.intent}
                for e in self.row_errors
            ],
            "problems": self.problems,
        }


def _named_attributes(message: str, compiled: CompiledMapping) -> list[str]:
    """Attribute logical names Dataverse quotes in its message that this mapping writes."""
    written = set(compiled.attributes)
    names: list[str] = []
    for match in _QUOTED.finditer(message):
        name = match.group(1).lower()
        if name in written and name not in names:
            names.append(name)
    return names


def _row_errors(
    message: str, compiled: CompiledMapping, sent_from: dict[str, str]
) -> list[RowError]:
    found: list[RowError] = []
    for attribute in _named_attributes(message, compiled):
        rows = compiled.rows_for(attribute)
        source = sent_from.get(attribute)
        # The row whose value was sent is at fault; otherwise every row onto the attribute.
        culprits = [r for r in rows if r.source.key == source] or rows
        found.extend(RowError(r.index, attribute, message, r.intent) for r in culprits)
    return found


def try_mapping(
    client: DataverseClient,
    obj: ExportObject,
    rows: Sequence[MappingRow],
    intent_rows: Sequence[IntentMappingRow] = (),
) -> TrialResult:
    """Create and delete one sample record with `rows`; never raises for Dynamics' refusals."""
    try:
        compiled = compile_rows(obj, rows, client, intent_rows=intent_rows)
    except MappingInvalidError as invalid:
        return TrialResult(
            ok=False,
            obj=obj,
            message="Test Mapping did not run: correct the rows marked below first.",
            issues=invalid.issues,
        )
    topics = [r.topic.strip() for r in intent_rows] if obj == ExportObject.ACCOUNT else []
    mapped = compiled.map(sample_values(obj, topics))
    payload = compiled.payload(mapped, None)
    result = TrialResult(
        ok=False,
        obj=obj,
        message="",
        sent=payload,
        issues=list(compiled.issues),
        problems=mapped.problems,
    )
    try:
        created = client.create(obj.entity_set, payload)
    except DataverseError as refused:
        text = refused.message
        result.row_errors = _row_errors(text, compiled, mapped.sources)
        on_rows = [e for e in result.row_errors if not e.intent]
        # Intent rows live on their own tab: their message is shown in full at the top.
        result.message = (
            f"Dynamics refused the test {obj.logical_name}: see the rows marked below."
            if on_rows and len(on_rows) == len(result.row_errors)
            else f"Dynamics refused the test {obj.logical_name}: {text}"
        )
        return result
    result.created_id = created
    try:
        client.delete(obj.entity_set, created, missing_ok=True)
    except DataverseError as failed:
        result.ok = True
        result.message = (
            f"The test {obj.logical_name} was created, but deleting it failed: {failed.message} "
            f"Delete record {created} in Dynamics by hand."
        )
        result.issues.append(Issue(Severity.WARNING, result.message, "mapping", obj))
        return result
    result.ok = True
    result.deleted = True
    result.message = (
        f"Test Mapping succeeded: a test {obj.logical_name} was created in Dynamics with "
        f"{len(payload)} mapped values and deleted again."
    )
    return result
