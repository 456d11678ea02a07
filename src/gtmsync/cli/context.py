"""Shared plumbing for CLI commands: settings, logging, a unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.db.unit_of_work import session_scope
from gtmsync.settings import get_settings


@lru_cache(maxsize=1)
def session_factory() -> sessionmaker[Session]:
    return create_session_factory(create_engine(get_settings().db_url))


@contextmanager
def unit_of_work() -> Iterator[Session]:
    with session_scope(session_factory()) as session:
        yield session


def prepare_database(url: str) -> None:
    """Migrate, then restore any index a killed bulk load had deferred (see platform.loaders)."""
    from gtmsync.db import migrate
    from gtmsync.db.engine import create_engine
    from gtmsync.platform.loaders import restore_deferred_indexes

    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        restore_deferred_indexes(engine)
    finally:
        engine.dispose()
