"""Tables that let many workers share one schedule and never run one job twice at once.

They live in the hub database (not in the queue) because the database is the one store every
web and worker process already shares, on one machine (SQLite) or many (PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from gtmsync.db.base import Base


class JobLease(Base):
    """A named lease (`export.run:<id>`, `import.run:<org>:<table>`) held until `expires_at`.

    A row stays after release (with `expires_at` in the past): acquiring is then one
    conditional UPDATE, and the table holds at most one row per export or org+table.
    """

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class ScheduleClaim(Base):
    """One row per periodic task and period: the worker that inserts it runs the period.

    The primary key (task, period_start) is the unique constraint that makes the claim atomic
    on SQLite and PostgreSQL alike.
    """

    __tablename__ = "schedule_claims"

    task: Mapped[str] = mapped_column(String(100), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    claimed_by: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime]
