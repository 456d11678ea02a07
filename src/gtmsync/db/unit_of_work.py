"""The one place that commits: web requests, CLI commands and jobs each wrap their work here.

Services and repositories may `flush()` but never `commit()`, so a request either lands whole
or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

AfterCommit = Callable[[], None]


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit on success, roll back on error; run `after_commit` callbacks only once committed.

    Jobs enqueued during a transaction are registered as after-commit callbacks in
    `session.info["after_commit"]`, so a rolled-back request never starts a job.
    """
    session = factory()
    session.info["after_commit"] = []
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        session.info["after_commit"] = []
        raise
    finally:
        callbacks: list[AfterCommit] = session.info.pop("after_commit", [])
        session.close()
    for callback in callbacks:
        callback()


def after_commit(session: Session, callback: AfterCommit) -> None:
    """Run `callback` when the surrounding unit of work commits (immediately if none tracks it)."""
    pending: list[AfterCommit] | None = session.info.get("after_commit")
    if pending is None:
        callback()
    else:
        pending.append(callback)
