"""Migrations go from empty to head on each backend, and the models have no unmigrated drift."""

from __future__ import annotations

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
