"""Queries of the export runs: exports, their items, and the platform records they export."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gtmsync.db.repository import RepositoryBase
from gtmsync.export.models import Export, ExportItem, ExportStatus, ItemStatus
from gtmsync.platform.models import Company, Contact, IntentSignal

_IN_CHUNK = 500  # bound parameters per IN (): comfortable on SQLite and PostgreSQL


def _chunked(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


class ExportRepository(RepositoryBase[Export]):
    model = Export

    def get_in_org(self, org_id: uuid.UUID, export_id: uuid.UUID) -> Export | None:
        return self.get_one_or_none(
            select(Export).where(Export.org_id == org_id, Export.id == export_id)
        )

    def stale(self, idle_since: datetime) -> Sequence[Export]:
        """Exports queued or running, untouched since `idle_since` (recovery candidates)."""
        return self.get_all(
            select(Export)
            .where(
                Export.status.in_([ExportStatus.QUEUED.value, ExportStatus.RUNNING.value]),
                Export.modified_at < idle_since,
            )
            .order_by(Export.modified_at)
        )

    def history(
        self, org_id: uuid.UUID, *, user_id: uuid.UUID | None = None, limit: int = 50
    ) -> Sequence[Export]:
        statement = select(Export).where(Export.org_id == org_id)
        if user_id is not None:
            statement = statement.where(Export.user_id == user_id)
        return self.get_all(statement.order_by(Export.created_at.desc()).limit(limit))


class ExportItemRepository(RepositoryBase[ExportItem]):
    model = ExportItem

    def for_export(
        self,
        export_id: uuid.UUID,
        *,
        status: str | None = None,
        review_only: bool = False,
        limit: int | None = None,
    ) -> Sequence[ExportItem]:
        statement = select(ExportItem).where(ExportItem.export_id == export_id)
        if status is not None:
            statement = statement.where(ExportItem.status == status)
        if review_only:
            statement = statement.where(ExportItem.needs_review.is_(True))
        statement = statement.order_by(ExportItem.position)
        if limit is not None:
            statement = statement.limit(limit)
        return self.get_all(statement)

    def pending(self, export_id: uuid.UUID, limit: int) -> Sequence[ExportItem]:
        return self.for_export(export_id, status=ItemStatus.PENDING, limit=limit)

    def counts(self, export_id: uuid.UUID) -> dict[str, int]:
        rows = self.session.execute(
            select(ExportItem.status, func.count())
            .where(ExportItem.export_id == export_id)
            .group_by(ExportItem.status)
        ).all()
        return {str(status): int(n) for status, n in rows}

    def action_counts(self, export_id: uuid.UUID) -> dict[str, int]:
        rows = self.session.execute(
            select(ExportItem.action, func.count())
            .where(ExportItem.export_id == export_id)
            .group_by(ExportItem.action)
        ).all()
        return {str(action): int(n) for action, n in rows}

    def by_ids(self, export_id: uuid.UUID, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ExportItem]:
        found: dict[uuid.UUID, ExportItem] = {}
        for chunk in _chunked(sorted(set(ids))):
            statement = select(ExportItem).where(
                ExportItem.export_id == export_id, ExportItem.id.in_(chunk)
            )
            found.update({item.id: item for item in self.get_all(statement)})
        return found


class PlatformReads:
    """The platform records an export reads (platform is below export in the layers)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def companies(self, platform_ids: Sequence[str]) -> list[Company]:
        found: list[Company] = []
        for chunk in _chunked(list(platform_ids)):
            found += self.session.scalars(
                select(Company).where(Company.platform_id.in_(chunk))
            ).all()
        return found

    def contacts(self, platform_ids: Sequence[str]) -> list[Contact]:
        found: list[Contact] = []
        for chunk in _chunked(list(platform_ids)):
            found += self.session.scalars(
                select(Contact).where(Contact.platform_id.in_(chunk))
            ).all()
        return found

    def companies_by_ids(self, ids: Iterable[int]) -> dict[int, Company]:
        found: dict[int, Company] = {}
        for chunk in _chunked(sorted(set(ids))):
            for company in self.session.scalars(select(Company).where(Company.id.in_(chunk))):
                found[company.id] = company
        return found

    def intent_signals(self, company_ids: Iterable[int]) -> dict[int, list[IntentSignal]]:
        found: dict[int, list[IntentSignal]] = {}
        for chunk in _chunked(sorted(set(company_ids))):
            statement = (
                select(IntentSignal)
                .where(IntentSignal.company_id.in_(chunk))
                .order_by(IntentSignal.company_id, IntentSignal.issue_date.desc())
            )
            for signal in self.session.scalars(statement):
                found.setdefault(signal.company_id, []).append(signal)
        return found

    def browse_companies(self, limit: int = 100) -> Sequence[Company]:
        return self.session.scalars(select(Company).order_by(Company.name).limit(limit)).all()

    def browse_contacts(self, limit: int = 100) -> Sequence[Contact]:
        return self.session.scalars(
            select(Contact).order_by(Contact.last_name, Contact.first_name).limit(limit)
        ).all()
