"""The scheduler's choice of orgs, the job lease per org+table, and `gtmsync import`."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gtmsync.cli import app
from gtmsync.cli import context as cli_context
from gtmsync.connection.models import ConnectionStatus
from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.repository import CursorRepository
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.db.unit_of_work import session_scope
from gtmsync.jobs import leases
from gtmsync.kit.clock import utc_now
from gtmsync.settings import get_settings
from tests.crm_import.conftest import Importer
from tests.fixtures.connection import connect_org, connection_settings


class TestSchedule:
    def test_orgs_due(self, importer: Importer) -> None:
        org_id = importer.org_id
        assert org_id in import_service.orgs_due(importer.session, 60)  # never ran
        importer.one("account")
        importer.run()  # every source once
        assert org_id not in import_service.orgs_due(importer.session, 60)
        assert org_id in import_service.orgs_due(importer.session, 0)  # interval passed

        import_service.sync_now(importer.session, org_id, actor=None, settings=importer.cfg)
        assert org_id in import_service.orgs_due(importer.session, 60)

        cursor = CursorRepository.from_session(importer.session).for_source(
            org_id, "account:account"
        )
        assert cursor is not None
        cursor.locked_until = utc_now() + timedelta(minutes=5)  # a run is in progress
        importer.session.flush()
        assert org_id not in import_service.orgs_due(importer.session, 60)
        cursor.locked_until = None

        integration = importer.connected.integration
        integration.status = ConnectionStatus.RECONNECT_NEEDED  # a person must reconnect first
        importer.session.flush()
        assert org_id not in import_service.orgs_due(importer.session, 60)
        integration.status = ConnectionStatus.CONNECTED
        importer.session.flush()
        assert org_id in import_service.orgs_due(importer.session, 60)

        used = import_service.usage(importer.session, org_id).today
        importer.settings(daily_budget=used)  # budget spent: nothing to do until tomorrow
        assert org_id not in import_service.orgs_due(importer.session, 60)

    def test_one_import_task_per_org_and_table(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A job finding the org+table lease held (another worker runs it) returns quietly:
        no run, no error (the lease itself is tested in tests/jobs/test_leases.py)."""
        from gtmsync import tasks

        monkeypatch.setenv("GTMSYNC_DATABASE_URL", database_url)
        get_settings.cache_clear()
        tasks._engine.cache_clear()
        tasks._sessions.cache_clear()
        org_id = str(uuid.uuid4())  # never read: the job stops at the lease
        try:
            assert leases.acquire(
                tasks._engine(), f"import.run:{org_id}:account", holder="other", seconds=60
            )
            with caplog.at_level(logging.INFO, logger="gtmsync.tasks"):
                assert tasks.import_run.call_local(org_id, "account") is None
        finally:
            tasks._engine().dispose()
            tasks._engine.cache_clear()
            tasks._sessions.cache_clear()
        assert "job skipped: another worker holds its lease" in caplog.messages


@pytest.fixture
def cli_env(
    database_url: str, dataverse: ServerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A connected org in a database of its own, and the CLI's settings pointing at it."""
    monkeypatch.setenv("GTMSYNC_DATABASE_URL", database_url)
    monkeypatch.setenv("GTMSYNC_MODE", "development")
    monkeypatch.setenv("GTMSYNC_CA_BUNDLE", str(dataverse.ca_bundle))
    cli_context.session_factory.cache_clear()
    settings = connection_settings(dataverse, tmp_path, secret_key=os.environ["GTMSYNC_SECRET_KEY"])
    engine = create_engine(database_url)
    with session_scope(create_session_factory(engine)) as session:
        slug = connect_org(session, dataverse, settings).org.slug
    engine.dispose()
    yield slug
    cli_context.session_factory.cache_clear()


class TestCli:
    def test_import_run_and_status(self, cli_env: str) -> None:
        runner = CliRunner()
        result = runner.invoke(app, ["import", "run", "--org", cli_env, "--table", "account"])
        assert result.exit_code == 0, result.output
        assert "account:account" in result.output
        assert "backfill" in result.output
        assert "succeeded" in result.output

        again = runner.invoke(
            app, ["import", "run", "--org", cli_env, "--table", "account", "--backfill"]
        )
        assert again.exit_code == 0, again.output
        assert "backfill" in again.output

        status = runner.invoke(app, ["import", "status", "--org", cli_env])
        assert status.exit_code == 0, status.output
        assert "Import: on" in status.output
        assert "account:account" in status.output
        assert "mode=delta" in status.output

    def test_unknown_org_and_table_name_the_fix(self, cli_env: str) -> None:
        runner = CliRunner()
        result = runner.invoke(app, ["import", "run", "--org", "nope"])
        assert result.exit_code == 2
        assert "No org with slug 'nope'" in result.output
        result = runner.invoke(app, ["import", "run", "--org", cli_env, "--table", "nosuch"])
        assert result.exit_code == 2
        assert "Use one of" in result.output
