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
