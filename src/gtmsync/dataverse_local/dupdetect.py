"""Duplicate detection rules: Dataverse's defaults for accounts, contacts and leads (spec §8.3).

The Web API skips duplicate detection unless the request sends
`MSCRM.SuppressDuplicateDetection: false`; then a match fails the write with 500 `0x80040333`.
Distinct from alternate keys, which always apply (412).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from gtmsync.dataverse_local import errors
from gtmsync.dataverse_local.context import Call
from gtmsync.dataverse_local.schema import Table

# The published default rules: same account name; same e-mail for contacts and leads.
DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    "account": ("name",),
    "contact": ("emailaddress1",),
    "lead": ("emailaddress1",),
}


def requested(call: Call) -> bool:
    value = call.headers.get("MSCRM.SuppressDuplicateDetection")
    return value is not None and value.strip().lower() == "false"


def check(call: Call, table: Table, row: Mapping[Any, Any], existing_id: str | None) -> None:
    """Raise `DuplicateRecordsFound` when an active rule matches another row."""
    if not requested(call) or not call.settings.duplicate_detection_enabled:
        return
    columns = DEFAULT_RULES.get(table.name)
    if not columns or any(row.get(c) in (None, "") for c in columns):
        return
    sql = call.store.tables[table.name]
    clauses = [sa.func.lower(sql.c[c]) == str(row[c]).lower() for c in columns]
    if existing_id is not None:
        clauses.append(sql.c[table.primary_id] != existing_id)
    found = call.conn.execute(sa.select(sql.c[table.primary_id]).where(*clauses).limit(1)).first()
    if found is not None:
        raise errors.duplicates_found()
