"""Queue tasks: each is one line into a feature service.

Tasks take IDs, reload state and are enqueued after commit (see `db.unit_of_work.after_commit`).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from uuid import UUID

from huey import crontab
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import service as export_service
from gtmsync.jobs.queue import get_huey
from gtmsync.settings import get_settings
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
