"""Security suite fixtures: one two-org world per test module and database backend.

Building the world (connect org A over real MSAL, plan an export, run an import...) costs a
few seconds, so it is module-scoped: the attacks of a module run against one world, and each
test proves that the attack it made left org A unchanged.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from gtmsync.dataverse_local.server import ServerHandle
from tests.fixtures.database import PG_ENV, _pg_exec, _pg_url_for
from tests.security.world import World, build_world


@pytest.fixture(scope="module")
def module_database_url(
    db_backend: str, db_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh migrated database for this module (copied from the session's template)."""
    if db_backend == "sqlite":
        path = tmp_path_factory.mktemp("security-db") / "hub.db"
        shutil.copyfile(db_template, path)
        yield f"sqlite:///{path}"
        return
    import os

    name = f"{make_url(os.environ[PG_ENV]).database}_sec_{uuid.uuid4().hex[:10]}"
    _pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{db_template}"')
    yield _pg_url_for(name)
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def world(
    module_database_url: str,
    dataverse_server: ServerHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    with build_world(
        module_database_url, tmp_path_factory.mktemp("security-data"), dataverse_server
    ) as built:
        yield built
