"""What the recovery sweep picks up after a killed worker, on a real database.

The end-to-end proof (workers SIGKILLed mid-run) is `tests/reliability/test_kills.py`; these
pin the rules: only work whose lease lapsed (or was never taken) is queued again, the
interrupted import run says why it stopped, and live work is left alone.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import ImportCursor, ImportRun, RunStatus
from gtmsync.export import service as export_service
from gtmsync.export.models import Export, ExportStatus
from gtmsync.jobs.models import JobLease
from gtmsync.kit.clock import utc_now
from gtmsync.platform.models import Org
from tests.fixtures.factories import make_org

LEASE = timedelta(seconds=30)


def _export(session: Session, org: Org, status: ExportStatus, idle: timedelta) -> Export:
    export = Export(
        org_id=org.id,
        object_type="contact",
        status=status,
        anchor_attribute="gtmsync_platformid",
        modified_at=utc_now() - idle,
        state={"runs": 1},
    )
    session.add(export)
    session.flush()
    return export


def _run(session: Session, org: Org, source: str, locked_until: timedelta | None) -> ImportRun:
    session.add(
        ImportCursor(
            org_id=org.id,
            source_key=source,
            locked_by="dead-worker",
            locked_until=None if locked_until is None else utc_now() + locked_until,
        )
    )
    run = ImportRun(
        org_id=org.id,
        source_key=source,
        source_table=source,
        kind="backfill",
        status=RunStatus.RUNNING.value,
        started_at=utc_now() - timedelta(minutes=5),
    )
    session.add(run)
    session.flush()
    return run


class TestExportRecovery:
    def test_left_running_or_queued_without_a_lease_is_queued_again(
        self, db_session: Session
    ) -> None:
        org = make_org(db_session)
        killed = _export(db_session, org, ExportStatus.RUNNING, idle=timedelta(minutes=5))
        lost_job = _export(db_session, org, ExportStatus.QUEUED, idle=timedelta(minutes=5))
        just_queued = _export(db_session, org, ExportStatus.QUEUED, idle=timedelta(seconds=1))
        done = _export(db_session, org, ExportStatus.COMPLETED, idle=timedelta(minutes=5))
        failed = _export(db_session, org, ExportStatus.INTERRUPTED, idle=timedelta(minutes=5))

        recovered = export_service.recover_stale(db_session, idle_for=LEASE)

        assert set(recovered) == {killed.id, lost_job.id}
        assert killed.status == ExportStatus.QUEUED
        assert killed.state == {"runs": 1, "requeued": 1}
        assert killed.error is not None
        assert "stopped" in killed.error
        assert just_queued.status == ExportStatus.QUEUED
        assert "requeued" not in just_queued.state
        assert done.status == ExportStatus.COMPLETED
        # An export that stopped on an error says so and waits for the person to resume it.
        assert failed.status == ExportStatus.INTERRUPTED

    def test_an_export_whose_lease_is_held_is_left_alone(self, db_session: Session) -> None:
        """A slow batch (a long throttling wait) leaves the row untouched, but the worker's
        heartbeat keeps its lease: that export is not queued a second time."""
        org = make_org(db_session)
        slow = _export(db_session, org, ExportStatus.RUNNING, idle=timedelta(minutes=5))
        lease = JobLease(
            name=export_service.run_lease(slow.id),
            holder="live-worker",
            acquired_at=utc_now() - timedelta(minutes=5),
            expires_at=utc_now() + timedelta(seconds=20),
        )
        db_session.add(lease)
        db_session.flush()
        assert export_service.recover_stale(db_session, idle_for=LEASE) == []
        assert slow.status == ExportStatus.RUNNING
        lease.expires_at = utc_now() - timedelta(seconds=1)  # the worker died
        db_session.flush()
        assert export_service.recover_stale(db_session, idle_for=LEASE) == [slow.id]

    def test_an_export_that_keeps_killing_its_workers_stops_being_requeued(
        self, db_session: Session
    ) -> None:
        org = make_org(db_session)
        poison = _export(db_session, org, ExportStatus.RUNNING, idle=timedelta(minutes=5))
        poison.state = {"runs": 26, "requeued": export_service.MAX_REQUEUES}
        poison.modified_at = utc_now() - timedelta(minutes=5)  # as the last recovery left it
        db_session.flush()
        assert export_service.recover_stale(db_session, idle_for=LEASE) == []
        assert poison.status == ExportStatus.INTERRUPTED
        assert poison.error is not None
        assert "run it again" in poison.error

    def test_a_job_that_fails_before_its_first_batch_leaves_the_error(
        self, db_session: Session
    ) -> None:
        org = make_org(db_session)
        export = _export(db_session, org, ExportStatus.RUNNING, idle=timedelta(minutes=5))
        closed = _export(db_session, org, ExportStatus.INTERRUPTED, idle=timedelta(minutes=5))
        closed.error = "HTTP 503 after 8 attempts"
        error = RuntimeError("The Dynamics connection needs reconnecting.")
        export_service.record_failure(db_session, org.id, export.id, error)
        export_service.record_failure(db_session, org.id, closed.id, error)
        assert export.status == ExportStatus.INTERRUPTED
        assert export.error == "The Dynamics connection needs reconnecting."
        assert closed.error == "HTTP 503 after 8 attempts"
        assert export_service.recover_stale(db_session, idle_for=LEASE) == []


class TestImportRecovery:
    def test_a_run_whose_lease_lapsed_is_closed_with_the_reason(self, db_session: Session) -> None:
        org = make_org(db_session)
        cut_off = _run(db_session, org, "account", locked_until=-timedelta(seconds=1))
        alive = _run(db_session, org, "contact", locked_until=timedelta(minutes=1))

        again = import_service.recover_orphaned_runs(db_session)

        assert again == [(org.id, "account")]
        assert cut_off.status == RunStatus.FAILED.value
        assert cut_off.errors == import_service.INTERRUPTED_MESSAGE
        assert cut_off.finished_at is not None
        assert alive.status == RunStatus.RUNNING.value
        assert import_service.recover_orphaned_runs(db_session) == []
