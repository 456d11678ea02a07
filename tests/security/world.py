"""Two orgs on one hub: org A owns one of everything, org B attacks it.

Org A is connected to the local Dataverse server (service account, users mapped by email) and
owns real objects, made through the API the way its own people make them: an export plan (with
items), an activity, a saved search, API tokens, writeback and import settings, an import run,
a CRM snapshot matched to a platform company. Every name org A types carries `canary`, so one
grep catches a response that shows org A's data to org B; `forbidden` adds the IDs of
everything org A owns (and its emails), which no response to org B may contain either.

Org B is a plain org (an admin and a member) signed in through the portal, with API tokens.

`org_state()` is every row org A owns (and every shared row), so a test can prove that an
attack changed nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import ImportedAccount, ImportedUser
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform import service as platform_service
from gtmsync.search import snapshot
from gtmsync.settings import Settings
from tests.fixtures.connection import ConnectedOrg, connect_org, connection_settings
from tests.fixtures.factories import make_company, make_contact
from tests.fixtures.web import Login, WebOrg, create_web_org, sign_in

PASSWORD = "correct-horse-battery"  # tests.fixtures.factories.DEFAULT_PASSWORD

# Rows that change on every request whoever sends it (sliding session expiry, job leases).
_VOLATILE_TABLES = frozenset({"login_sessions", "job_leases", "schedule_claims"})


@dataclass
class OrgA:
    connected: ConnectedOrg
    slug: str
    admin: Login
    seller: Login
    admin_token: str
    seller_token: str
    ids: dict[str, str]  # kind -> id of one object of that kind (user, export, activity...)


@dataclass
class World:
    app: FastAPI
    settings: Settings
    server: ServerHandle
    canary: str
    a: OrgA
    b: WebOrg
    b_admin: TestClient  # signed in through the portal
    b_member: TestClient
    b_admin_token: str
    b_member_token: str
    forbidden: set[str] = field(default_factory=set)
    _metadata: sa.MetaData | None = None

    @property
    def factory(self) -> sessionmaker[Session]:
        factory: sessionmaker[Session] = self.app.state.session_factory
        return factory

    def leaks(self, text: str) -> list[str]:
        """Which of org A's names, IDs and emails `text` shows (case-insensitive)."""
        lowered = text.lower()
        return sorted(s for s in self.forbidden if s.lower() in lowered)

    def org_state(
        self, *, everyone: bool = False, ignore: frozenset[str] = frozenset()
    ) -> list[str]:
        """Every row org A owns and every shared row, as sorted text (volatile tables aside).

        `everyone=True`: every row of every org; `ignore`: more tables to leave out.
        """
        engine: sa.Engine = self.app.state.engine
        if self._metadata is None:
            self._metadata = sa.MetaData()
            self._metadata.reflect(engine)
        metadata = self._metadata
        org_id = self.a.connected.org.id
        rows: list[str] = []
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                if table.name in _VOLATILE_TABLES | ignore or table.name == "alembic_version":
                    continue
                query = sa.select(table)
                if everyone:
                    pass
                elif "org_id" in table.c:
                    query = query.where(table.c.org_id == org_id)
                elif table.name == "orgs":
                    query = query.where(table.c.id == org_id)
                else:  # a child row (API token, export item...) belongs to its parent's org
                    for fk in table.foreign_keys:
                        parent = fk.column.table
                        if "org_id" in parent.c:
                            owned = sa.select(fk.column).where(parent.c.org_id == org_id)
                            query = query.where(fk.parent.in_(owned))
                rows.extend(f"{table.name}: {tuple(row)!r}" for row in conn.execute(query))
        return sorted(rows)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ok(response: object, status: int = 200) -> dict[str, object]:
    code = getattr(response, "status_code", None)
    assert code == status, (code, getattr(response, "text", "")[:1000])
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    return body


def _build_org_a(app: FastAPI, settings: Settings, server: ServerHandle, canary: str) -> OrgA:
    factory: sessionmaker[Session] = app.state.session_factory
    with session_scope(factory) as session:
        connected = connect_org(session, server, settings)
        connected.org.name = f"{canary} Org A"
        connected.org.slug = f"{canary}-org-a"
        admin_token = platform_service.create_api_token(session, connected.admin, name=canary)
        seller_token = platform_service.create_api_token(session, connected.seller, name=canary)
        # Platform companies and contacts are shared by every org: no canary in them.
        shared = uuid.uuid4().hex[:10]
        company = make_company(session, name=f"Shared Co {shared}", platform_id=f"C-{shared}")
        contact = make_contact(session, platform_id=f"P-{shared}", company_id=company.id)
        ids = {
            "org": str(connected.org.id),
            "admin": str(connected.admin.id),
            "user": str(connected.seller.id),
            "unmapped": str(connected.unmapped.id),
            "integration": str(connected.integration.id),
            "token": str(admin_token.record.id),
            "seller_token": str(seller_token.record.id),
        }
        org = OrgA(
            connected=connected,
            slug=connected.org.slug,
            admin=Login(connected.admin.id, connected.admin.email, PASSWORD, connected.admin.name),
            seller=Login(
                connected.seller.id, connected.seller.email, PASSWORD, connected.seller.name
            ),
            admin_token=admin_token.token,
            seller_token=seller_token.token,
            ids=ids,
        )
        company_platform_id, contact_platform_id = company.platform_id, contact.platform_id
        with connected.client(session) as client:  # a duplicate, so the export needs review
            client.create("accounts", {"name": company.name})
        import_service.settings_row(session, connected.org.id).enabled = True

    with TestClient(app) as http:
        seller, admin = bearer(org.seller_token), bearer(org.admin_token)
        export = _ok(
            http.post(
                "/api/v1/exports",
                json={"object": "account", "platform_ids": [company_platform_id]},
                headers=seller,
            ),
            201,
        )
        ids["export"] = str(export["id"])
        items = export["items"]
        assert isinstance(items, list), export
        assert items, export
        ids["export_item"] = str(items[0]["id"])
        activity = _ok(
            http.post(
                "/api/v1/activities",
                json={
                    "kind": "call",
                    "subject": f"{canary} call",
                    "body": f"{canary} notes",
                    "target_type": "contact",
                    "target_platform_id": contact_platform_id,
                    "occurred_at": "2026-11-20T15:30:00Z",
                    "duration_minutes": 5,
                },
                headers=seller,
            ),
            201,
        )
        ids["activity"] = str(activity["id"])
        saved = _ok(
            http.post(
                "/api/v1/search/saved",
                json={
                    "name": f"{canary} saved",
                    "object": "companies",
                    "params": [["name__contains", canary]],
                },
                headers=seller,
            ),
            201,
        )
        ids["saved"] = str(saved["id"])
        _ok(
            http.put(
                "/api/v1/writeback-settings",
                json={"enabled": True, "mode": "tasks", "calls_as_phonecalls": False},
                headers=admin,
            )
        )

    with session_scope(factory) as session:
        # A real import run (users: the smallest table the tenant has).
        runs = import_service.run_import(
            session,
            connected.org.id,
            checkpoint=session.commit,
            table="systemuser",
            settings=settings,
        )
        assert runs, "the import ran nothing"
        ids["import_run"] = str(runs[0].id)
        # A CRM snapshot: one account org A holds in Dynamics, matched to the platform company.
        owner = uuid.uuid4()
        session.add(
            ImportedUser(
                org_id=connected.org.id,
                source_table="systemuser",
                dynamics_id=owner,
                full_name=f"{canary} Owner",
            )
        )
        account_id = uuid.uuid4()
        session.add(
            ImportedAccount(
                org_id=connected.org.id,
                source_table="account",
                dynamics_id=account_id,
                owner_id=owner,
                name=f"{canary} account",
                matched_company_id=company.id,
            )
        )
        session.flush()
        snapshot.take(session, connected.org.id)
        ids["dynamics_account"] = str(account_id)
        ids["dynamics_owner"] = str(owner)
        ids["company"] = str(company.id)
        ids["company_platform"] = company.platform_id
        ids["contact"] = str(contact.id)
        ids["contact_platform"] = contact.platform_id
    return org


def _signed_in(app: FastAPI, login: Login) -> TestClient:
    client = TestClient(app)
    client.__enter__()
    assert sign_in(client, login).status_code == 303
    return client


@contextmanager
def build_world(database_url: str, data_dir: Path, server: ServerHandle) -> Iterator[World]:
    """The hub on `database_url` with orgs A and B (see the module docstring)."""
    from gtmsync.web.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        # Real argon2id at its lowest cost (see tests.fixtures.web.fast_password_hashing).
        patch.setattr(
            platform_service,
            "_hasher",
            PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        )
        settings = connection_settings(server, data_dir, database_url=database_url)
        app = create_app(settings)
        canary = f"zqxcanary{uuid.uuid4().hex[:10]}"
        clients: list[TestClient] = []
        try:
            org_a = _build_org_a(app, settings, server, canary)
            org_b = create_web_org(app.state.session_factory, name="Org B")
            with session_scope(app.state.session_factory) as session:
                b_admin = platform_service.get_user(session, org_b.org_id, org_b.admin.user_id)
                b_member = platform_service.get_user(session, org_b.org_id, org_b.member.user_id)
                b_admin_token = platform_service.create_api_token(session, b_admin, name="b").token
                b_member_token = platform_service.create_api_token(
                    session, b_member, name="b"
                ).token
            clients = [_signed_in(app, org_b.admin), _signed_in(app, org_b.member)]
            world = World(
                app=app,
                settings=settings,
                server=server,
                canary=canary,
                a=org_a,
                b=org_b,
                b_admin=clients[0],
                b_member=clients[1],
                b_admin_token=b_admin_token,
                b_member_token=b_member_token,
            )
            world.forbidden = {
                canary,
                org_a.slug,
                org_a.admin.email,
                org_a.seller.email,
                org_a.admin_token,
                org_a.seller_token,
                *(
                    value
                    for kind, value in org_a.ids.items()
                    # platform data: shared by every org
                    if kind not in {"company", "contact", "company_platform", "contact_platform"}
                ),
            }
            yield world
        finally:
            for client in clients:
                client.__exit__(None, None, None)
            app.state.engine.dispose()
