"""Shared by the export settings web tests: the app trusts the local Dataverse server, and its
database holds an org connected to it through the real sign-in (`connect_org`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gtmsync.connection import gateway
from gtmsync.dataverse import DataverseClient
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.settings import Mode, Settings
from tests.fixtures.connection import connect_org, connection_settings
from tests.fixtures.factories import DEFAULT_PASSWORD
from tests.fixtures.web import TEST_SECRET_KEY, Login


def trusting_settings(database_url: str, tmp_path: Path, dataverse: ServerHandle) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        mode=Mode.DEVELOPMENT,
        ca_bundle=dataverse.ca_bundle,
        _env_file=None,
    )


@dataclass(frozen=True)
class ConnectedWeb:
    org_id: uuid.UUID
    admin: Login
    seller: Login


def connect_web_org(app: FastAPI, dataverse: ServerHandle, tmp_path: Path) -> ConnectedWeb:
    return connect_on(app.state.engine, dataverse, tmp_path)


def connect_on(engine: Engine, dataverse: ServerHandle, tmp_path: Path) -> ConnectedWeb:
    """Connect a new org on `engine`'s database (committed), the way the Connect flow does."""
    settings = connection_settings(dataverse, tmp_path, secret_key=TEST_SECRET_KEY)
    # One connection for the whole setup: the token store opens its own sessions on the
    # caller's bind, and they must see the integration row before it is committed.
    with engine.connect() as conn:
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        connected = connect_org(session, dataverse, settings)
        session.commit()
        conn.commit()
        return ConnectedWeb(
            org_id=connected.org.id,
            admin=Login(
                connected.admin.id, connected.admin.email, DEFAULT_PASSWORD, connected.admin.name
            ),
            seller=Login(
                connected.seller.id,
                connected.seller.email,
                DEFAULT_PASSWORD,
                connected.seller.name,
            ),
        )


@contextmanager
def tenant_client(app: FastAPI, org_id: uuid.UUID) -> Iterator[DataverseClient]:
    """The org's own service client, as the app builds it (for arranging the tenant)."""
    with (
        session_scope(app.state.session_factory) as session,
        gateway.client_for(
            session, org_id, settings=app.state.settings, require_enabled=False
        ) as client,
    ):
        yield client
