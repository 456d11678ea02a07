"""Alembic environment: target metadata from `gtmsync.db.registry`, batch mode on SQLite."""

from __future__ import annotations

from typing import Any

from alembic import context

from gtmsync.db.base import created_on
from gtmsync.db.engine import create_engine
from gtmsync.db.registry import metadata

config = context.config
url: str | None = config.attributes.get("gtmsync_url") or config.get_main_option("sqlalchemy.url")
assert url, "no database URL given to Alembic"
URL: str = url
MIGRATION_LOCK_KEY = 0x67746D73796E63  # "gtmsync": the PostgreSQL advisory lock of upgrades


def run_migrations_offline() -> None:
    context.configure(url=URL, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(URL)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _for_dialect(dialect: str) -> Any:
    """Leave out of the comparison what the models create on other databases only."""

    def include(
        obj: object, _name: str | None, type_: str, _reflected: bool, _other: object
    ) -> bool:
        return type_ != "index" or created_on(obj, dialect)

    return include


def _run(connection: object) -> None:
    dialect: str = connection.dialect.name  # type: ignore[attr-defined]
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=dialect == "sqlite",
        compare_type=True,
        include_object=_for_dialect(dialect),
    )
    with context.begin_transaction():
        if dialect == "postgresql":
            # Web and worker processes all upgrade at start; on a fresh database several
            # would race to create the same tables. One waits for the other's transaction,
            # then finds the version table at head and does nothing.
            connection.exec_driver_sql(  # type: ignore[attr-defined]
                f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            )
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
