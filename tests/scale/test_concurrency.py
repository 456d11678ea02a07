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

from gtmsync.dataverse_local.server import serve_in_thread
from gtmsync.dataverse_local.store import Store
from gtmsync.export.anchor import DEFAULT_ATTRIBUTE, DEFAULT_SCHEMA_NAME, ensure_anchor
from gtmsync.export.schemas import ExportObject
from tests.dataverse.conftest import LocalOrg


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
