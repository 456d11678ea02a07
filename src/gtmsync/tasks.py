"""Queue tasks: each is one line into a feature service.

Tasks take IDs, reload state and are enqueued after commit (see `db.unit_of_work.after_commit`).

Running on many workers (see `gtmsync.jobs.leases` for why these live in the database):
- `export.run` holds the lease `export.run:<export id>` and `import.run` the lease
  `import.run:<org>:<table or *>`, renewed by a heartbeat; a second job for the same export or
  org+table finds it held, logs it and returns.
- Every worker's scheduler enqueues each periodic task once a period; the body claims
  (task, period start) first and returns when another worker has it, so it runs once.
- `recover` (every `recovery_interval_seconds`, on one worker) queues again what a killed
  worker left: exports still queued/running without a lease, import runs whose lease lapsed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache
from uuid import UUID

from huey import crontab
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import gtmsync.jobs.observability  # noqa: F401 - job IDs in logs, job metrics
from gtmsync.crm_import import service as import_service
from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import service as export_service
from gtmsync.jobs import leases
from gtmsync.jobs.queue import get_huey
from gtmsync.kit.clock import utc_now
from gtmsync.search import saved as saved_searches
from gtmsync.search import snapshot as search_snapshot
from gtmsync.settings import get_settings
from gtmsync.sharing import service as sharing_service
from gtmsync.writeback import service as writeback_service

log = logging.getLogger(__name__)
huey = get_huey()
MINUTE, DAY = 60, 86_400  # claim periods of the periodic tasks (their crontab's period)


@huey.task(name="system.ping")  # type: ignore[untyped-decorator]
def ping(message: str = "pong") -> str:
    """A no-op used by `gtmsync worker --check` and the tests to prove the worker consumes jobs."""
    log.info("ping task ran", extra={"extra_fields": {"message": message}})
    return message


@lru_cache(maxsize=1)
def _engine() -> Engine:
    return create_engine(get_settings().db_url)


@lru_cache(maxsize=1)
def _sessions() -> sessionmaker[Session]:
    return create_session_factory(_engine())


def _claimed(task: str, period_seconds: int) -> bool:
    """Claim this period of a periodic task; false (logged) when another worker has it."""
    now = utc_now()
    fields = {"task": task, "period": leases.period_start(now, period_seconds).isoformat()}
    if leases.claim_period(_engine(), task, period_seconds=period_seconds, now=now):
        log.info("periodic task claimed", extra={"extra_fields": fields})
        return True
    log.info("periodic task already claimed", extra={"extra_fields": fields})
    return False


def _held_elsewhere(name: str) -> None:
    log.info("job skipped: another worker holds its lease", extra={"extra_fields": {"lease": name}})


def _checkpoint(session: Session, lease: leases.Lease) -> Callable[[], None]:
    """Commit, then stop the run if the heartbeat lost the lease (another worker took over)."""

    def checkpoint() -> None:
        session.commit()
        lease.ensure_held()

    return checkpoint


@huey.task(name="export.run")  # type: ignore[untyped-decorator]
def export_run(org_id: str, export_id: str) -> None:
    """Run (or resume) an export; it commits after every batch, so a killed job resumes.

    A run that raises is left `interrupted` with the error (the runner records most; this
    covers what fails before its first batch), so recovery does not queue it again and
    again. A lost lease is not recorded: another worker runs the export now.
    """
    name = export_service.run_lease(export_id)
    with leases.hold(_engine(), name, seconds=get_settings().job_lease_seconds) as lease:
        if lease is None:
            _held_elsewhere(name)
            return
        try:
            with session_scope(_sessions()) as session:
                export_service.run(
                    session, UUID(org_id), UUID(export_id), checkpoint=_checkpoint(session, lease)
                )
        except leases.LeaseLostError:
            raise
        except Exception as exc:
            with session_scope(_sessions()) as session:
                export_service.record_failure(session, UUID(org_id), UUID(export_id), exc)
            raise


@huey.task(name="writeback.write")  # type: ignore[untyped-decorator]
def write_activity(activity_id: UUID) -> None:
    """One attempt at writing one activity to Dynamics (the outcome is on its row)."""
    with session_scope(_sessions()) as session:
        writeback_service.write_activity(session, activity_id)


@huey.periodic_task(crontab(minute="*"), name="writeback.sweep")  # type: ignore[untyped-decorator]
def sweep_activities() -> None:
    """Retries due activities: failed ones after their backoff, not-in-CRM ones every 15 min."""
    if not _claimed("writeback.sweep", MINUTE):
        return
    with session_scope(_sessions()) as session:
        due = writeback_service.due_activity_ids(session)
    for activity_id in due:
        with session_scope(_sessions()) as session:
            writeback_service.write_activity(session, activity_id)


def _import_lease(org_id: UUID | str, table: str | None) -> str:
    return f"import.run:{org_id}:{table or '*'}"


@huey.task(name="import.run")  # type: ignore[untyped-decorator]
def import_run(org_id: str, table: str | None = None, backfill: bool = False) -> None:
    """Run an org's Dynamics import (one table or all); commits per page, so it resumes.

    The job lease keeps one job per org+table across workers; the cursor leases (one per
    source, shared with the CLI) are held by the same holder and renewed by its heartbeat,
    so both lapse together when the worker dies.
    """
    seconds = get_settings().job_lease_seconds
    name = _import_lease(org_id, table)
    holder = leases.new_holder()

    def renew_cursor_leases() -> None:
        with session_scope(_sessions()) as beat:
            import_service.renew_leases(beat, holder, seconds)

    with leases.hold(
        _engine(), name, seconds=seconds, holder=holder, on_beat=renew_cursor_leases
    ) as lease:
        if lease is None:
            _held_elsewhere(name)
            return
        with session_scope(_sessions()) as session:
            import_service.run_import(
                session,
                UUID(org_id),
                table=table,
                backfill=backfill,
                checkpoint=_checkpoint(session, lease),
                lease_owner=holder,
                lease_seconds=seconds,
            )
            # Data sharing: what the finished runs contributed, if the org shares that category.
            sharing_service.collect_import_contributions(session, UUID(org_id))


@huey.periodic_task(crontab(minute="*"), name="import.schedule")  # type: ignore[untyped-decorator]
def schedule_imports() -> None:
    """Every minute: enqueue the incremental run of each connected org whose interval
    (`import_interval_minutes`) has passed, or that has a Sync Now / backfill waiting."""
    if not _claimed("import.schedule", MINUTE):
        return
    with session_scope(_sessions()) as session:
        due = import_service.orgs_due(session, get_settings().import_interval_minutes)
    for org_id in due:
        import_run(str(org_id))


@huey.periodic_task(crontab(minute="0", hour="3"), name="search.snapshot")  # type: ignore[untyped-decorator]
def refresh_search_snapshots() -> None:
    """Daily: rebuild each org's Dynamics filter snapshot from its imported data (one
    transaction per org, so searches see the old snapshot or the new one, never a mix)."""
    if not _claimed("search.snapshot", DAY):
        return
    with session_scope(_sessions()) as session:
        orgs = search_snapshot.orgs_with_imports(session)
    for org_id in orgs:
        with session_scope(_sessions()) as session:
            search_snapshot.take(session, org_id)


@huey.periodic_task(crontab(minute="0", hour="4"), name="search.saved_alerts")  # type: ignore[untyped-decorator]
def check_saved_searches() -> None:
    """Daily, after the snapshot: record new matches of every saved search with alerts on."""
    if not _claimed("search.saved_alerts", DAY):
        return
    with session_scope(_sessions()) as session:
        saved_searches.check_all(session)


def recover() -> tuple[list[UUID], list[tuple[UUID, str]]]:
    """Queue again what killed workers left behind; returns (exports, (org, table) imports).

    Not a huey task: `gtmsync worker` calls it from a timer thread every
    `recovery_interval_seconds` (a huey periodic task could not run more often than once a
    minute, which would make every recovery test wait a minute), claimed per interval so one
    worker does it.
    """
    settings = get_settings()
    if not _claimed("jobs.recover", settings.recovery_interval_seconds):
        return [], []
    with session_scope(_sessions()) as session:
        idle = timedelta(seconds=settings.job_lease_seconds)
        exports = export_service.recover_stale(session, idle_for=idle)
        imports = import_service.recover_orphaned_runs(session)
        stalled = import_service.stalled_backfills(session, idle)
        busy = leases.held(session, [_import_lease(o, None) for o in stalled])
    for org_id, table in imports:
        import_run(str(org_id), table)
    for org_id in stalled:  # a backfill whose job died with its worker before it started
        if _import_lease(org_id, None) not in busy and all(org_id != o for o, _ in imports):
            import_run(str(org_id))
    leases.prune_claims(_engine())
    if exports or imports:
        log.warning(
            "recovered jobs left by a stopped worker",
            extra={
                "extra_fields": {
                    "exports": [str(e) for e in exports],
                    "imports": [f"{o}:{t}" for o, t in imports],
                }
            },
        )
    return exports, imports


class RecoveryTimer(threading.Thread):
    """Runs `recover` at start and then every `interval` seconds until stopped."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="gtmsync-recovery", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while True:
            try:
                recover()
            except Exception:  # the next tick tries again; a worker must not die of it
                log.exception("job recovery failed")
            if self.stopped.wait(self.interval):
                return

    def stop(self) -> None:
        self.stopped.set()
