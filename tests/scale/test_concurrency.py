"""Races the scale test found between workers running different orgs' jobs on one tenant.

Two orgs connected to the same Dynamics tenant export at the same moment on two workers: each
run makes sure the platform ID column and its key exist, and both may find them missing. The
second creation is refused ("already exists"); the run must carry on with the column and key
the other made, not fail (the export was left interrupted) or fall back to keyless writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import ImportCursor, ImportSettings
from gtmsync.crm_import.repository import CursorRepository
from gtmsync.dataverse_local.server import serve_in_thread
from gtmsync.dataverse_local.store import Store
from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export.anchor import DEFAULT_ATTRIBUTE, DEFAULT_SCHEMA_NAME, ensure_anchor
from gtmsync.export.schemas import ExportObject
from tests.dataverse.conftest import LocalOrg
from tests.fixtures.factories import make_org
from tests.fixtures.processes import race


@pytest.fixture
def fresh_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalOrg]:
    """A local server with an empty store (no anchor column yet) and an app to sign in as."""
    store = Store.open(f"sqlite:///{tmp_path / 'dataverse.db'}")
    try:
        with serve_in_thread(store, tmp_path / "dv") as server:
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_bundle))
            yield LocalOrg(server, server.register_app("gtmsync race tests"), [])
    finally:
        store.engine.dispose()


class TestAnchorRace:
    def test_the_column_and_key_made_by_another_worker_meanwhile_are_used(
        self, fresh_org: LocalOrg
    ) -> None:
        obj = ExportObject.LEAD
        with fresh_org.client() as first, fresh_org.client() as second:
            # Both workers read the table's columns before either creates the anchor.
            assert DEFAULT_ATTRIBUTE not in first.metadata.attributes(obj.logical_name)
            assert DEFAULT_ATTRIBUTE not in second.metadata.attributes(obj.logical_name)
            made = ensure_anchor(first, obj)
            assert made.has_key
            # The second worker's view is stale: its create is refused, then it re-reads.
            assert DEFAULT_ATTRIBUTE not in second.metadata.attributes(obj.logical_name)
            found = ensure_anchor(second, obj)
        assert found == made
        assert found.attribute == DEFAULT_SCHEMA_NAME.lower()
        assert found.has_key  # not the keyless fallback


class TestGetOrCreateRaces:
    """Rows a feature creates on first use, met by several processes at the same moment
    (Sync Now in the web process while the first scheduled run starts in a worker; the
    schedule and the recovery sweep on two workers): every caller gets the one row."""

    def test_an_import_cursor_and_settings_made_by_many_at_once(self, database_url: str) -> None:
        engine = create_engine(database_url)
        factory = create_session_factory(engine)
        with session_scope(factory) as session:
            org_id = make_org(session).id

        def cursor(_i: int) -> bool:
            with session_scope(factory) as session:
                repo = CursorRepository.from_session(session)
                return repo.get_or_create(org_id, "account", reason="sync now").org_id == org_id

        def settings(_i: int) -> bool:
            with session_scope(factory) as session:
                return import_service.settings_row(session, org_id).enabled

        assert race(6, cursor) == [True] * 6
        assert race(6, settings) == [True] * 6
        with factory() as session:
            cursors = session.scalars(
                sa.select(ImportCursor).where(ImportCursor.org_id == org_id)
            ).all()
            assert len(cursors) == 1
            assert cursors[0].backfill_pending
            assert session.get(ImportSettings, org_id) is not None
        engine.dispose()
