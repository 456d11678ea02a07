"""An importer over the local Dataverse server (real HTTPS, real MSAL sign-in, real DB)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import GtmObject, ImportCursor, ImportRun, ImportSettings
from gtmsync.crm_import.repository import CursorRepository
from gtmsync.dataverse import DataverseClient
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.settings import Settings
from tests.fixtures.connection import ConnectedOrg


@dataclass
class Importer:
    session: Session
    connected: ConnectedOrg
    server: ServerHandle

    @property
    def org_id(self) -> uuid.UUID:
        return self.connected.org.id

    @property
    def cfg(self) -> Settings:
        """Hub settings that trust the local server."""
        return self.connected.settings

    def settings(self, **values: Any) -> ImportSettings:
        row = import_service.settings_row(self.session, self.org_id)
        for key, value in values.items():
            setattr(row, key, value)
        self.session.flush()
        return row

    def run(self, **kwargs: Any) -> list[ImportRun]:
        return import_service.run_import(
            self.session,
            self.org_id,
            checkpoint=self.session.commit,
            settings=self.connected.settings,
            **kwargs,
        )

    def one(self, table: str, **kwargs: Any) -> ImportRun:
        (run,) = self.run(table=table, **kwargs)
        return run

    def cursor(self, key: str) -> ImportCursor:
        cursor = CursorRepository.from_session(self.session).for_source(self.org_id, key)
        assert cursor is not None
        self.session.refresh(cursor)
        return cursor

    def client(self) -> DataverseClient:
        return self.connected.client(self.session)

    def stored_ids(self, obj: GtmObject, source_table: str | None = None) -> list[uuid.UUID]:
        rows = import_service.records(self.session, self.org_id, obj, source_table)
        return [r.dynamics_id for r in rows]

    def store_ids(
        self, table: str, where: Callable[[sa.Table], Any] | None = None
    ) -> set[uuid.UUID]:
        store = self.server.store
        sql = store.tables[table]
        pk = store.table(table).primary_id
        stmt = sa.select(sql.c[pk])
        if where is not None:
            stmt = stmt.where(where(sql))
        with store.read() as conn:
            return {uuid.UUID(str(v)) for v in conn.execute(stmt).scalars()}


@pytest.fixture
def importer(db_session: Session, connected_org: ConnectedOrg, dataverse: ServerHandle) -> Importer:
    imp = Importer(db_session, connected_org, dataverse)
    imp.settings(page_size=50)
    return imp
