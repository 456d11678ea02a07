"""Data Sharing settings and the contributions log (*Admin Portal › Privacy & Security*).

Contributions are recorded at the moment data would be shared (when an import run finishes),
after checking the org's contract opt-out and the category's toggle at that moment: turning a
category off stops contributions immediately, and nothing is ever recorded retroactively.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gtmsync.crm_import import service as import_service
from gtmsync.kit.clock import utc_now
from gtmsync.kit.errors import PermissionDeniedError, UserError
from gtmsync.platform import audit
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import User
from gtmsync.sharing.models import Contribution, SharingSetting

LOCKED_MESSAGE = (
    "As a precaution, this function is set to OFF and is not editable, in order to prevent "
    "unintended changes that may be in conflict with your organization's contractual terms."
)


@dataclass(frozen=True)
class Category:
    key: str
    label: str
    description: str
    # Dynamics tables whose imported records count towards this category.
    tables: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category(
        "accounts",
        "Account data",
        "Firmographics of imported Dynamics accounts, used to improve company matching.",
        ("account",),
    ),
    Category(
        "people",
        "Contact and lead data",
        "Imported contacts and leads, used to verify and refresh people records.",
        ("contact", "lead"),
    ),
    Category(
        "opportunities",
        "Opportunity data",
        "Imported opportunity stages and amounts, aggregated to improve recommendations.",
        ("opportunity",),
    ),
    Category(
        "activities",
        "Activity data",
        "Imported tasks and activities, aggregated to analyse integration usage.",
        ("task", "appointment", "phonecall", "email"),
    ),
)
_BY_KEY = {c.key: c for c in CATEGORIES}
_BY_TABLE = {table: c for c in CATEGORIES for table in c.tables}


@dataclass(frozen=True)
class CategoryState:
    category: Category
    enabled: bool


@dataclass(frozen=True)
class SharingState:
    locked: bool
    categories: list[CategoryState]

    @property
    def message(self) -> str | None:
        return LOCKED_MESSAGE if self.locked else None


def _rows(session: Session, org_id: uuid.UUID) -> dict[str, SharingSetting]:
    rows = session.scalars(select(SharingSetting).where(SharingSetting.org_id == org_id))
    return {row.category: row for row in rows}


def state(session: Session, org_id: uuid.UUID) -> SharingState:
    locked = platform_service.get_org(session, org_id).data_sharing_contract_opt_out
    rows = _rows(session, org_id)
    return SharingState(
        locked=locked,
        categories=[
            CategoryState(c, False if locked else (rows[c.key].enabled if c.key in rows else True))
            for c in CATEGORIES
        ],
    )


def update(
    session: Session, *, org_id: uuid.UUID, actor: User, changes: Mapping[str, bool]
) -> SharingState:
    """Turn categories on or off; refused (and nothing changed) while the contract opts out."""
    current = state(session, org_id)
    if current.locked:
        raise PermissionDeniedError(LOCKED_MESSAGE, field="data_sharing")
    unknown = sorted(set(changes) - set(_BY_KEY))
    if unknown:
        raise UserError(
            f"Unknown data sharing categor{'y' if len(unknown) == 1 else 'ies'}: "
            f"{', '.join(unknown)}.",
            field="categories",
            fix=f"Use {', '.join(_BY_KEY)}.",
        )
    before = {s.category.key: s.enabled for s in current.categories}
    rows = _rows(session, org_id)
    for key, enabled in changes.items():
        row = rows.get(key)
        if row is None:
            row = SharingSetting(org_id=org_id, category=key, enabled=enabled)
            session.add(row)
        row.enabled = bool(enabled)
        row.changed_by_id = actor.id
    session.flush()
    diff = {k: {"from": before[k], "to": bool(v)} for k, v in changes.items() if before[k] != v}
    if diff:
        words = ", ".join(
            f"{_BY_KEY[k].label} {'ON' if d['to'] else 'OFF'}" for k, d in diff.items()
        )
        audit.record(
            session,
            org_id=org_id,
            actor=actor,
            action="sharing.settings.update",
            summary=f"Data sharing changed: {words}.",
            detail={"changes": diff},
        )
    return state(session, org_id)


def category_for_table(table: str) -> Category | None:
    return _BY_TABLE.get(table)


def record_contribution(
    session: Session,
    *,
    org_id: uuid.UUID,
    table: str,
    records: int,
    source: str,
    day: date | None = None,
) -> bool:
    """Record what an import shared; False (nothing recorded) when sharing is off for it."""
    category = category_for_table(table)
    if category is None or records <= 0:
        return False
    current = state(session, org_id)
    if current.locked or not next(s.enabled for s in current.categories if s.category == category):
        return False
    exists = session.scalar(
        select(Contribution.id).where(Contribution.org_id == org_id, Contribution.source == source)
    )
    if exists is not None:
        return False
    now = utc_now()
    session.add(
        Contribution(
            org_id=org_id,
            day=day or now.date(),
            category=category.key,
            records=records,
            source=source,
            recorded_at=now,
        )
    )
    session.flush()
    return True


_CONTRIBUTING_RUNS = frozenset({"succeeded", "paused", "stopped"})  # runs that stored data


def collect_import_contributions(session: Session, org_id: uuid.UUID) -> int:
    """Record what the org's finished import runs shared; returns how many were recorded.

    Called right after a run (the import task) and safe to repeat: each run is recorded at
    most once, and only when its category is ON at this moment.
    """
    recorded = 0
    for run in import_service.list_runs(session, org_id, limit=500):
        if run.status not in _CONTRIBUTING_RUNS or run.finished_at is None:
            continue
        recorded += record_contribution(
            session,
            org_id=org_id,
            table=run.source_table,
            records=run.records_stored,
            source=f"import-run:{run.id}",
            day=run.finished_at.date(),
        )
    return recorded


@dataclass(frozen=True)
class ContributionDay:
    day: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def contributions(
    session: Session, org_id: uuid.UUID, *, days: int = 90
) -> Sequence[ContributionDay]:
    """Counts per day and category over the last `days` days, newest first."""
    since = utc_now().date() - timedelta(days=days - 1)
    rows = session.execute(
        select(Contribution.day, Contribution.category, func.sum(Contribution.records))
        .where(Contribution.org_id == org_id, Contribution.day >= since)
        .group_by(Contribution.day, Contribution.category)
        .order_by(Contribution.day.desc())
    ).all()
    by_day: dict[date, dict[str, int]] = {}
    for day, category, total in rows:
        by_day.setdefault(day, {})[category] = int(total or 0)
    return [ContributionDay(day, counts) for day, counts in by_day.items()]
