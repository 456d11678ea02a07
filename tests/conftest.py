"""Test-wide setup: an isolated data dir and secret per run; fixtures from tests/fixtures."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

_RUN_DIR = tempfile.mkdtemp(prefix="gtmsync-tests-")
os.environ["GTMSYNC_DATA_DIR"] = _RUN_DIR
os.environ["GTMSYNC_SECRET_KEY"] = "test-secret-key-not-for-production-0123456789"
os.environ.pop("GTMSYNC_DATABASE_URL", None)
os.environ.pop("GTMSYNC_QUEUE_URL", None)

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.factories",
    "tests.fixtures.web",
    "tests.fixtures.browser",
    "tests.fixtures.dataverse_store",
    "tests.fixtures.dataverse",
    "tests.fixtures.connection",
    "tests.fixtures.processes",
]


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    from gtmsync.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
