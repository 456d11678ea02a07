"""Leases that expire, and once-per-period claims, kept in the hub database.

ARCHITECTURE.md says jobs that must not overlap "take a lock in the queue". They take a lease
in the hub database instead, on purpose: huey's `lock_task` is a key with **no expiry** (in
Redis and in SQLite alike), so a worker killed with SIGKILL while holding it wedges that export
or import forever, until someone starts a consumer with `--flush-locks`, which also breaks the
locks of workers still alive. A lease here:

- is taken with one conditional statement (UPDATE where expired, else INSERT … ON CONFLICT
  DO NOTHING), each in its own short transaction, so it is atomic on SQLite (one machine) and
  on PostgreSQL (many machines sharing the database);
- is renewed by a heartbeat thread while the job runs (every third of its length);
- lapses on its own `Settings.job_lease_seconds` after its holder died, so another worker
  (or the recovery sweep) takes the job over.

Expiry compares the clocks of the processes involved: machines sharing a database must keep
their clocks in sync (NTP), well within the lease length.

Scheduled tasks use `claim_period`: the periodic task body inserts (task, period start) into
a table with that pair as primary key; whoever inserts runs the period, the others return.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Executable, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gtmsync.jobs.models import JobLease, ScheduleClaim
from gtmsync.kit.clock import ensure_utc, utc_now

log = logging.getLogger(__name__)


class LeaseLostError(RuntimeError):
    """The lease lapsed while its job still ran (no heartbeat for a whole lease length):
    another worker may have taken the job over, so this one stops at its next checkpoint."""


def new_holder() -> str:
    """A holder id that says where the lease is held (host and pid) and is unique."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def _insert_if_absent(
    engine: Engine, model: type[JobLease] | type[ScheduleClaim], keys: list[str], **values: object
) -> Executable:
    """INSERT … ON CONFLICT DO NOTHING RETURNING 1, in the dialect's spelling: a row comes
    back only when it was inserted (psycopg reports no rowcount for this statement)."""
    if engine.dialect.name == "postgresql":
        statement = postgresql.insert(model).values(**values)
        return statement.on_conflict_do_nothing(index_elements=keys).returning(literal(1))
    lite = sqlite.insert(model).values(**values)
    return lite.on_conflict_do_nothing(index_elements=keys).returning(literal(1))


def acquire(engine: Engine, name: str, *, holder: str, seconds: float) -> bool:
    """Take the lease `name` when it is free or expired; true when `holder` now holds it."""
    now = utc_now()
    until = now + timedelta(seconds=seconds)
    with engine.begin() as conn:
        taken = conn.execute(
            update(JobLease)
            .where(JobLease.name == name, JobLease.expires_at < now)
            .values(holder=holder, acquired_at=now, expires_at=until)
        )
        if taken.rowcount == 1:
            return True
        inserted = conn.execute(
            _insert_if_absent(
                engine,
                JobLease,
                ["name"],
                name=name,
                holder=holder,
                acquired_at=now,
                expires_at=until,
            )
        )
        return inserted.first() is not None


def renew(engine: Engine, name: str, *, holder: str, seconds: float) -> bool:
    """Push the expiry out; false when `holder` no longer holds the lease."""
    with engine.begin() as conn:
        result = conn.execute(
            update(JobLease)
            .where(JobLease.name == name, JobLease.holder == holder)
            .values(expires_at=utc_now() + timedelta(seconds=seconds))
        )
        return result.rowcount == 1


def release(engine: Engine, name: str, *, holder: str) -> None:
    """Expire the lease now (only if `holder` still holds it), so the next run need not wait."""
    with engine.begin() as conn:
        conn.execute(
            update(JobLease)
            .where(JobLease.name == name, JobLease.holder == holder)
            .values(expires_at=utc_now() - timedelta(microseconds=1))
        )


def held(session: Session, names: Sequence[str]) -> set[str]:
    """Which of `names` have a lease that has not expired (for the recovery sweep)."""
    if not names:
        return set()
    now = utc_now()
    found: set[str] = set()
    for start in range(0, len(names), 500):
        found.update(
            session.scalars(
                select(JobLease.name).where(
                    JobLease.name.in_(names[start : start + 500]), JobLease.expires_at >= now
                )
            )
        )
    return found


@dataclass
class Lease:
    """A lease held by this process, kept alive by `Heartbeat` until released."""

    engine: Engine
    name: str
    holder: str
    seconds: float
    lost: threading.Event = field(default_factory=threading.Event)

    def ensure_held(self) -> None:
        """Raise `LeaseLostError` when the heartbeat could not keep the lease."""
        if self.lost.is_set():
            raise LeaseLostError(
                f"The lease {self.name!r} lapsed while the job ran (no heartbeat for "
                f"{self.seconds:g} s); another worker may have taken the job over, so this "
                "one stopped. Raise GTMSYNC_JOB_LEASE_SECONDS if the database is slow to answer."
            )


class Heartbeat(threading.Thread):
    """Renews a lease every third of its length; `on_beat` renews leases that go with it
    (an import's cursor leases). A failed renewal is retried at the next beat; the lease is
    marked lost when it was not renewed for its whole length or another holder has it."""

    def __init__(self, lease: Lease, on_beat: Callable[[], None] | None = None) -> None:
        super().__init__(name=f"lease-heartbeat:{lease.name}", daemon=True)
        self.lease = lease
        self.on_beat = on_beat
        self.stopped = threading.Event()

    def run(self) -> None:
        lease = self.lease
        last_ok = utc_now()
        interval = max(lease.seconds / 3, 0.2)
        while not self.stopped.wait(interval):
            try:
                if not renew(lease.engine, lease.name, holder=lease.holder, seconds=lease.seconds):
                    log.warning(
                        "lease taken over by another holder",
                        extra={"extra_fields": {"lease": lease.name}},
                    )
                    lease.lost.set()
                    return
                last_ok = utc_now()
                if self.on_beat is not None:
                    self.on_beat()
            except Exception:
                log.exception(
                    "lease heartbeat failed", extra={"extra_fields": {"lease": lease.name}}
                )
                if utc_now() - last_ok > timedelta(seconds=lease.seconds):
                    lease.lost.set()
                    return

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=30)


@contextmanager
def hold(
    engine: Engine,
    name: str,
    *,
    seconds: float,
    holder: str | None = None,
    on_beat: Callable[[], None] | None = None,
) -> Iterator[Lease | None]:
    """Hold the lease `name` for the block, renewed by a heartbeat; yields None when another
    holder has it (the caller logs and returns: a second run of the same job is not an error).
    """
    lease = Lease(engine, name, holder or new_holder(), seconds)
    if not acquire(engine, name, holder=lease.holder, seconds=seconds):
        yield None
        return
    heartbeat = Heartbeat(lease, on_beat)
    heartbeat.start()
    try:
        yield lease
    finally:
        heartbeat.stop()
        try:
            release(engine, name, holder=lease.holder)
        except Exception:  # it lapses on its own; a failed release only delays the next run
            log.exception("lease release failed", extra={"extra_fields": {"lease": name}})


# -- once per period -------------------------------------------------------------------------


def period_start(now: datetime, period_seconds: int) -> datetime:
    """The start of the period `now` falls in, periods aligned on the Unix epoch (UTC)."""
    stamp = int(ensure_utc(now).timestamp())
    return datetime.fromtimestamp(stamp - stamp % period_seconds, UTC)


def claim_period(
    engine: Engine,
    task: str,
    *,
    period_seconds: int,
    holder: str | None = None,
    now: datetime | None = None,
) -> bool:
    """True for exactly one caller per (task, period); the others should return at once.

    Workers' schedulers each enqueue a periodic task once per period (huey's scheduler wakes
    every 60 s from the consumer's start, not on the minute), so N workers enqueue it N times;
    the claim makes one of them run it.
    """
    start = period_start(now or utc_now(), period_seconds)
    with engine.begin() as conn:
        result = conn.execute(
            _insert_if_absent(
                engine,
                ScheduleClaim,
                ["task", "period_start"],
                task=task,
                period_start=start,
                claimed_by=holder or new_holder(),
                claimed_at=utc_now(),
            )
        )
        return result.first() is not None


def prune_claims(engine: Engine, *, older_than: timedelta = timedelta(days=2)) -> int:
    """Drop claims of long-past periods (a minute task leaves 1,440 rows a day)."""
    with engine.begin() as conn:
        result = conn.execute(
            delete(ScheduleClaim).where(ScheduleClaim.period_start < utc_now() - older_than)
        )
        return int(result.rowcount or 0)
