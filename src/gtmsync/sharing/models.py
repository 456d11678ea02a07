"""Data sharing: per-category toggles and the log of what the org contributed.

A category with no row is ON unless the org has contractually opted out (`Org.
data_sharing_contract_opt_out`), which forces every category OFF whatever the rows say.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gtmsync.db.base import UUIDPK, Base, TimestampMixin


class SharingSetting(UUIDPK, TimestampMixin, Base):
    __tablename__ = "data_sharing_settings"
    __table_args__ = (UniqueConstraint("org_id", "category"),)

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(Boolean)
    changed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class Contribution(UUIDPK, Base):
    """One source's contribution (e.g. one import run of one table), counted per day.

    `source` is unique per org so recording the same run twice (a retried job) counts once.
    """

    __tablename__ = "data_contributions"
    __table_args__ = (UniqueConstraint("org_id", "source"),)

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, index=True)
    category: Mapped[str] = mapped_column(String(40))
    records: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(120))
    recorded_at: Mapped[datetime]
