"""Migrations go from empty to head on each backend, and the models have no unmigrated drift."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import inspect

from gtmsync.db import migrate
from gtmsync.db.engine import create_engine
from gtmsync.db.registry import metadata


class TestMigrations:
    def test_head_creates_every_table_and_has_no_drift(self, database_url: str) -> None:
        # database_url is already at head (copied from the migrated template); check drift.
        migrate.check(database_url)
        engine = create_engine(database_url)
        tables = set(inspect(engine).get_table_names())
        engine.dispose()
        assert set(metadata.tables) <= tables

    def test_downgrade_to_base_and_back(self, database_url: str) -> None:
        migrate.downgrade(database_url, "base")
        engine = create_engine(database_url)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        engine.dispose()
        migrate.upgrade(database_url)
        migrate.check(database_url)


def test_processes_starting_together_upgrade_once(postgres_url: str) -> None:
    """Web and worker processes all upgrade at start; on PostgreSQL an advisory lock
    serialises them (SQLite deployments are one process tree per file: `gtmsync demo`).
    Real processes: Alembic's `context` is process-global, so threads would not be honest."""
    migrate.downgrade(postgres_url, "base")
    code = "import sys; from gtmsync.db import migrate; migrate.upgrade(sys.argv[1])"
    starts = [
        subprocess.Popen([sys.executable, "-c", code, postgres_url], stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for process in starts:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()[-2000:]
    migrate.check(postgres_url)
