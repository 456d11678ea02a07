"""`gtmsync serve` (hub web process) and `gtmsync worker` (job consumer + scheduler)."""

from __future__ import annotations

import typer

from gtmsync.cli.context import prepare_database
from gtmsync.kit.logging import configure_logging
from gtmsync.settings import get_settings


def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default: GTMSYNC_HOST)."),
    port: int | None = typer.Option(None, help="Port (default: GTMSYNC_PORT)."),
    migrate_first: bool = typer.Option(
        True, "--migrate/--no-migrate", help="Run migrations first."
    ),
) -> None:
    """Run the hub web process: portal, REST API and OAuth callback."""
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_level)
    if migrate_first:
        prepare_database(settings.db_url)
    uvicorn.run(
        "gtmsync.web.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        # The app writes its own JSON access line (`gtmsync.web.access`) with the request ID
        # and no query string; uvicorn's would repeat it without either.
        access_log=False,
        proxy_headers=True,
    )


def worker(
    threads: int = typer.Option(4, help="Worker threads in this process."),
    scheduler: bool = typer.Option(
        True,
        "--scheduler/--no-scheduler",
        help="Run periodic jobs and the recovery of jobs left by killed workers (each runs "
        "once per period however many workers have it on).",
    ),
) -> None:
    """Run queued jobs (exports, imports, snapshots, writeback) and the schedule.

    Run as many as needed, on one machine or many: periodic jobs run once per period whatever
    the number of workers, one export or org+table import never runs twice at once, and jobs
    a killed worker left are queued again (every `GTMSYNC_RECOVERY_INTERVAL_SECONDS`).
    """
    from huey.consumer import Consumer

    from gtmsync import tasks

    settings = get_settings()
    configure_logging(settings.log_level)
    prepare_database(settings.db_url)
    consumer = Consumer(tasks.huey, workers=threads, worker_type="thread", periodic=scheduler)
    recovery = tasks.RecoveryTimer(settings.recovery_interval_seconds) if scheduler else None
    if recovery is not None:
        recovery.start()
    try:
        consumer.run()
    finally:
        if recovery is not None:
            recovery.stop()
