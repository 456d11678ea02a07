"""The downloadable CSV of an export's per-record results (export history)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from gtmsync.export.models import ExportItem

COLUMNS = (
    "position",
    "platform_id",
    "record",
    "planned_action",
    "duplicate_of",
    "matched_by",
    "account",
    "status",
    "dynamics_id",
    "message",
    "problems",
)


def _account(item: ExportItem) -> str:
    plan = item.association
    if not plan:
        return ""
    choice = plan.get("choice")
    candidates = plan.get("candidates")
    names = {
        str(c.get("id")): str(c.get("name"))
        for c in (candidates if isinstance(candidates, list) else [])
        if isinstance(c, dict)
    }
    if choice == "create":
        return f"new account: {plan.get('company_name')}"
    if choice in (None, "none"):
        return ""
    return f"{names.get(str(choice), '')} ({choice})"


def results_csv(items: Iterable[ExportItem]) -> str:
    """One row per record, in the export's order; spreadsheet-safe (no formula injection)."""
    out = io.StringIO()
    # RFC 4180 line ends: the writer then quotes any value holding a CR or LF, so a stray
    # carriage return in a record's name cannot split its row (it did with "\n" alone).
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for item in items:
        duplicate = item.duplicate or {}
        row = [
            item.position + 1,
            item.platform_id,
            item.label,
            item.action,
            duplicate.get("id", ""),
            duplicate.get("matched_by", ""),
            _account(item),
            item.status,
            str(item.dynamics_id or ""),
            item.message or "",
            "; ".join(item.problems or []),
        ]
        writer.writerow([_safe(value) for value in row])
    return out.getvalue()


# Cells a spreadsheet reads as a formula: OWASP's list, tab and carriage return included
# (https://owasp.org/www-community/attacks/CSV_Injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: object) -> str:
    text = str(value)
    return "'" + text if text[:1] in _FORMULA_STARTS else text
