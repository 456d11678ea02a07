"""Queue tasks: each is one line into a feature service.

Tasks take IDs, reload state and are enqueued after commit (see `db.unit_of_work.after_commit`).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from uuid import UUID

from huey import crontab
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.crm_import import service as import_service
from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import service as export_service
from gtmsync.jobs.queue import get_huey
from gtmsync.search import saved as saved_searches
from gtmsync.search import snapshot as search_snapshot
from gtmsync.settings import get_settings
from gtmsync.sharing import service as sharing_service
from gtmsync.writeback import service as writeback_service

log = logging.getLogger(__name__)
huey = get_huey()


@huey.task(name="system.ping")  # type: ignore[untyped-decorator]
def ping(message: str = "pong") -> str:
    """A no-op used by `gtmsync worker --check` and the tests to prove the worker consumes jobs."""
    log.info("ping task ran", extra={"extra_fields": {"message": message}})
    return message


@lru_cache(maxsize=1)
def _sessions() -> sessionmaker[Session]:
    return create_session_factory(create_engine(get_settings().db_url))


@huey.task(name="export.run")  # type: ignore[untyped-decorator]
def export_run(org_id: str, export_id: str) -> None:
    """Run (or resume) an export; it commits after every batch, so a killed job resumes."""
    with session_scope(_sessions()) as session:
        export_service.run(session, UUID(org_id), UUID(export_id), checkpoint=session.commit)


@huey.task(name="writeback.write")  # type: ignore[untyped-decorator]
def write_activity(activity_id: UUID) -> None:
    """One attempt at writing one activity to Dynamics (the outcome is on its row)."""
    with session_scope(_sessions()) as session:
        writeback_service.write_activity(session, activity_id)


@huey.periodic_task(crontab(minute="*"), name="writeback.sweep")  # type: ignore[untyped-decorator]
def sweep_activities() -> None:
    """Retries due activities: failed ones after their backoff, not-in-CRM ones every 15 min."""
    with session_scope(_sessions()) as session:
        due = writeback_service.due_activity_ids(session)
    for activity_id in due:
        with session_scope(_sessions()) as session:
            writeback_service.write_activity(session, activity_id)


@huey.task(name="import.run")  # type: ignore[untyped-decorator]
def import_run(org_id: str, table: str | None = None, backfill: bool = False) -> None:
    """Run an org's Dynamics import (one table or all); commits per page, so it resumes.

    The huey lock keeps one run per org+table across workers (the cursor lease backs it up
    for the CLI, which runs outside huey).
    """
    with (
        huey.lock_task(f"import.run:{org_id}:{table or '*'}"),
        session_scope(_sessions()) as session,
    ):
        import_service.run_import(
            session, UUID(org_id), table=table, backfill=backfill, checkpoint=session.commit
        )
        # Data sharing: what the finished runs contributed, if the org shares that category.
        sharing_service.collect_import_contributions(session, UUID(org_id))


@huey.periodic_task(crontab(minute="*"), name="import.schedule")  # type: ignore[untyped-decorator]
def schedule_imports() -> None:
    """Every minute: enqueue the incremental run of each connected org whose interval
    (`import_interval_minutes`) has passed, or that has a Sync Now / backfill waiting."""
    with session_scope(_sessions()) as session:
        due = import_service.orgs_due(session, get_settings().import_interval_minutes)
    for org_id in due:
        import_run(str(org_id))


@huey.periodic_task(crontab(minute="0", hour="3"), name="search.snapshot")  # type: ignore[untyped-decorator]
def refresh_search_snapshots() -> None:
    """Daily: rebuild each org's Dynamics filter snapshot from its imported data (one
    transaction per org, so searches see the old snapshot or the new one, never a mix)."""
    with session_scope(_sessions()) as session:
        orgs = search_snapshot.orgs_with_imports(session)
    for org_id in orgs:
        with session_scope(_sessions()) as session:
            search_snapshot.take(session, org_id)


@huey.periodic_task(crontab(minute="0", hour="4"), name="search.saved_alerts")  # type: ignore[untyped-decorator]
def check_saved_searches() -> None:
    """Daily, after the snapshot: record new matches of every saved search with alerts on."""
    with session_scope(_sessions()) as session:
        saved_searches.check_all(session)
