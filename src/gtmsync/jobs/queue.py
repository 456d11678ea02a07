"""The job queue: huey, with SQLite storage by default and Redis when `GTMSYNC_QUEUE_URL` says so.

huey is used rather than a home-made queue: it has both storages, a consumer with worker
threads, periodic tasks and locks, which is everything the worker needs.
"""

from __future__ import annotations

from functools import lru_cache

from huey import Huey, RedisHuey, SqliteHuey

from gtmsync.settings import Settings, get_settings


def build_huey(settings: Settings) -> Huey:
    url = settings.queue_url
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("gtmsync", url=url, utc=True)
    if url and url.startswith("sqlite:///"):
        filename = url.removeprefix("sqlite:///")
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        filename = str(settings.data_dir / "queue.db")
    return SqliteHuey("gtmsync", filename=filename, utc=True)


@lru_cache(maxsize=1)
def get_huey() -> Huey:
    return build_huey(get_settings())


def enqueue(name: str, *args: object, huey: Huey | None = None) -> str:
    """Queue the task registered as `name` in `gtmsync.tasks` without importing it.

    Features sit below `tasks` in the layers, so they cannot call the task function; the
    worker, which imports `gtmsync.tasks`, resolves the name. Returns the job id.
    """
    import uuid as _uuid

    from huey.registry import Message

    queue = huey or get_huey()
    message = Message(
        str(_uuid.uuid4()), f"gtmsync.tasks.{name}", None, 0, 0, None, args, {},
        None, None, None, None, None, None, None,
    )  # fmt: skip
    queue.storage.enqueue(queue.serializer.serialize(message), None)
    return str(message.id)
