"""Incremental cursor semantics (CONVENTIONS.md §14), kept as pure functions.

- The cursor is the Dataverse delta link; a table with change tracking off falls back to a
  `modifiedon` watermark.
- A **signpost** (upper bound) is frozen when a watermark run starts: rows modified after
  it are left for the next run, so a run finishes even while Dynamics keeps writing.
- The start is **closed** (`modifiedon ge watermark - lag`): rows written in the same second
  as the last one read are not lost; the ones already seen at the boundary are deduplicated
  by primary key (`boundary_ids`).
- The **lag** re-reads a small window for late commits (Dataverse stamps `modifiedon` at
  the start of a transaction that may commit later).
- State advances only after the page's rows are committed (the runner's checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gtmsync.dataverse import odata
from gtmsync.kit.clock import ensure_utc


@dataclass
class WatermarkWindow:
    start: datetime | None
    signpost: datetime
    boundary: set[str] = field(default_factory=set)

    def filter(self) -> str:
        upper = f"modifiedon le {odata.datetime_literal(self.signpost)}"
        if self.start is None:
            return upper
        return f"modifiedon ge {odata.datetime_literal(self.start)} and {upper}"


def window(
    watermark: datetime | None,
    boundary_ids: Iterable[str] | None,
    *,
    now: datetime,
    lag: timedelta,
) -> WatermarkWindow:
    start = None if watermark is None else ensure_utc(watermark) - lag
    return WatermarkWindow(start=start, signpost=now, boundary=set(boundary_ids or ()))


def advance(
    watermark: datetime | None, boundary: set[str], rows: Iterable[tuple[str, datetime | None]]
) -> tuple[datetime | None, set[str]]:
    """The new (watermark, boundary ids) after committing rows of (id, modifiedon)."""
    for row_id, stamp in rows:
        if stamp is None:
            continue
        modified = ensure_utc(stamp)
        if watermark is None or modified > watermark:
            watermark, boundary = modified, {row_id}
        elif modified == watermark:
            boundary.add(row_id)
    return watermark, boundary


def is_duplicate(
    window_: WatermarkWindow, watermark: datetime | None, row_id: str, modified: datetime | None
) -> bool:
    """A row already read at the boundary by the previous run (same id, same modifiedon)."""
    return (
        watermark is not None
        and modified is not None
        and ensure_utc(modified) == ensure_utc(watermark)
        and row_id in window_.boundary
    )
