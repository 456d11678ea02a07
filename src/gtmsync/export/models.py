"""Export tables: the org's export settings document, and export runs with per-record results.

Settings are one JSON document per org validated by `export.schemas.ExportSettingsDocument`:
they are read whole and saved whole (Save is refused until every row is valid), and a
document keeps that all-or-nothing shape without a table per tab.
"""

from __future__ import annotations

import uuid

from sqlalchemy import JSON, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from gtmsync.db.base import UUIDPK, Base, TimestampMixin


class ExportSettings(UUIDPK, TimestampMixin, Base):
    __tablename__ = "export_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), unique=True
    )
    document: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every save
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
