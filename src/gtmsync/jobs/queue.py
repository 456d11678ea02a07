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
