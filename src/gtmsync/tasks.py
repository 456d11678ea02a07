"""Queue tasks: each is one line into a feature service.

Tasks take IDs, reload state and are enqueued after commit (see `db.unit_of_work.after_commit`).
"""

from __future__ import annotations

import logging

from gtmsync.jobs.queue import get_huey

log = logging.getLogger(__name__)
huey = get_huey()


@huey.task(name="system.ping")  # type: ignore[untyped-decorator]
def ping(message: str = "pong") -> str:
    """A no-op used by `gtmsync worker --check` and the tests to prove the worker consumes jobs."""
    log.info("ping task ran", extra={"extra_fields": {"message": message}})
    return message
