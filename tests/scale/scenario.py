"""A hub with orgs connected to a local Dataverse server of its own, for scale and kill tests.

The scale test (`tests/scale/test_scale.py`) and the SIGKILL suite
(`tests/reliability/test_kills.py`) both build this: a dedicated local Dataverse server
(its store holds only what the test made, so "imported rows = server rows" is exact), orgs
connected to it with a real sign-in, platform contacts to export, and checks that read the
outcome in the server's store and in the hub's tables.

    with dedicated_server(tmp, accounts=500) as server:
        scene = Scene(server, settings)
        org = scene.add_org(contacts=1000)
        ...
        scene.export_counts(org, export_id)   # rows in Dynamics per platform ID
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.crm_import.models import GTM_MODELS, GtmObject, ImportCursor, ImportRun
from gtmsync.dataverse_local.app import ServerConfig
from gtmsync.dataverse_local.seed import seed
from gtmsync.dataverse_local.server import ServerHandle, serve_in_thread
from gtmsync.dataverse_local.store import Store
from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import settings as export_settings
from gtmsync.export.models import Export, ExportItem
from gtmsync.export.schemas import MAX_RECORDS_LIMIT, ExportObject
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import Contact
from gtmsync.settings import Settings
from tests.fixtures.connection import connect_org
from tests.fixtures.dataverse import trusting

# The tables the default import mapping reads, and the GTM object each lands in.
CHECKED_TABLES = {"account": GtmObject.ACCOUNT, "contact": GtmObject.CONTACT}


@contextmanager
def dedicated_server(data_dir: Path, *, accounts: int) -> Iterator[ServerHandle]:
    """A local Dataverse server with the demo tenant's users and `accounts` accounts only."""
    store = Store.open(f"sqlite:///{data_dir / 'dataverse.db'}")
    try:
        with (
            serve_in_thread(store, data_dir, config=ServerConfig(data_dir=data_dir)) as server,
            trusting(server.ca_bundle),
        ):
            seed(
                store,
                server.directory,
                server.security,
                accounts=accounts,
                contacts=0,
                leads=0,
                opportunities=0,
                products=0,
            )
            yield server
    finally:
        store.engine.dispose()


@dataclass
class OrgSetup:
    org_id: uuid.UUID
    slug: str
    admin_id: uuid.UUID
    seller_id: uuid.UUID
    admin_token: str
    seller_token: str
    number: int
    pids: list[str]
    export_id: uuid.UUID | None = None


@dataclass
class Scene:
    server: ServerHandle
    settings: Settings
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    orgs: list[OrgSetup] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = create_engine(self.settings.db_url)
        self.factory: sessionmaker[Session] = create_session_factory(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def add_org(self, *, contacts: int) -> OrgSetup:
        """Connect an org (real sign-in), allow exports as large as the hub allows, make
        `contacts` platform contacts (no company: one Dynamics row each) and API tokens."""
        n = len(self.orgs) + 1
        with session_scope(self.factory) as session:
            connected = connect_org(session, self.server, self.settings)
            document = export_settings.get_document(session, connected.org.id)
            document.preferences.objects[ExportObject.CONTACT].max_records = MAX_RECORDS_LIMIT
            with connected.client(session) as client:
                export_settings.save_document(
                    session, connected.org.id, connected.admin, document, client
                )
            pids = self._contacts(session, n, "a", contacts)
            admin_token = platform_service.create_api_token(
                session, connected.admin, name="scale admin"
            ).token
            seller_token = platform_service.create_api_token(
                session, connected.seller, name="scale seller"
            ).token
            org = OrgSetup(
                org_id=connected.org.id,
                slug=connected.org.slug,
                admin_id=connected.admin.id,
                seller_id=connected.seller.id,
                admin_token=admin_token,
                seller_token=seller_token,
                number=n,
                pids=pids,
            )
        self.orgs.append(org)
        return org

    def add_contacts(self, org: OrgSetup, count: int, batch: str) -> list[str]:
        """`count` more platform contacts for `org` to export (platform IDs unique per run)."""
        with session_scope(self.factory) as session:
            return self._contacts(session, org.number, batch, count)

    def _contacts(self, session: Session, n: int, batch: str, count: int) -> list[str]:
        pids = [f"SC-{self.tag}-{n}{batch}-{i:05d}" for i in range(count)]
        session.add_all(
            Contact(
                platform_id=pid,
                first_name=f"Scale{n}",
                last_name=f"Person {self.tag} {batch} {i}",
                email=f"scale-{self.tag}-{n}{batch}-{i}@example.com",
                job_title="Engineer",
            )
            for i, pid in enumerate(pids)
        )
        session.flush()
        return pids

    # -- the hub's side -----------------------------------------------------------------

    def export(self, org: OrgSetup) -> Export:
        assert org.export_id is not None
        with self.factory() as session:
            export = session.get(Export, org.export_id)
            assert export is not None
            return export

    def export_items(self, org: OrgSetup) -> list[ExportItem]:
        with self.factory() as session:
            return list(
                session.scalars(sa.select(ExportItem).where(ExportItem.export_id == org.export_id))
            )

    def runs(self, org: OrgSetup) -> list[ImportRun]:
        with self.factory() as session:
            return list(
                session.scalars(
                    sa.select(ImportRun)
                    .where(ImportRun.org_id == org.org_id)
                    .order_by(ImportRun.started_at)
                )
            )

    def cursors(self, org: OrgSetup) -> list[ImportCursor]:
        with self.factory() as session:
            return list(
                session.scalars(sa.select(ImportCursor).where(ImportCursor.org_id == org.org_id))
            )

    def imported_ids(self, org: OrgSetup, table: str) -> list[uuid.UUID]:
        """Dynamics ids of the org's imported rows of `table` (duplicates would repeat)."""
        model: Any = GTM_MODELS[CHECKED_TABLES[table]]
        with self.factory() as session:
            return list(
                session.scalars(
                    sa.select(model.dynamics_id).where(
                        model.org_id == org.org_id, model.source_table == table
                    )
                )
            )

    # -- the server's side ----------------------------------------------------------------

    def server_ids(self, table: str) -> list[uuid.UUID]:
        store = self.server.store
        sql = store.tables[table]
        primary = store.table(table).primary_id
        with store.read() as conn:
            return [uuid.UUID(str(v)) for v in conn.execute(sa.select(sql.c[primary])).scalars()]

    def rows_per_platform_id(self, anchor: str, pids: list[str]) -> Counter[str]:
        """How many Dynamics contacts carry each of `pids` in `anchor` (exactly once = 1)."""
        store = self.server.store
        sql = store.tables["contact"]
        wanted = set(pids)
        counts: Counter[str] = Counter(dict.fromkeys(pids, 0))
        with store.read() as conn:
            for value in conn.execute(sa.select(sql.c[anchor])).scalars():
                if value in wanted:
                    counts[str(value)] += 1
        return counts
