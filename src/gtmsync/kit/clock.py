"""Time in gtmsync is always timezone-aware UTC; Dataverse speaks ISO-8601 with a `Z`."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utc_now() -> datetime:
    """Now, aware, in UTC, truncated to microseconds as databases store it."""
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Treat naive datetimes (SQLite hands them back) as UTC rather than local time."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_dataverse(value: datetime) -> str:
    """Dataverse serialises DateTime columns as `2023-04-07T21:59:01Z` (no fractions)."""
    return ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_dataverse(value: str) -> datetime:
    """Parse Dataverse's `...Z` form (and offsets) into an aware UTC datetime."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return ensure_utc(datetime.fromisoformat(text))


def format_date(value: date) -> str:
    """DateOnly columns are `Edm.Date`: `2024-01-31`."""
    return value.isoformat()
