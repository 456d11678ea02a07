"""The seeded tenant: realistic, consistent, deterministic and idempotent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gtmsync.dataverse_local.directory import Directory
from gtmsync.dataverse_local.security import (
    ACT_ON_BEHALF,
    SALESPERSON,
    SYSTEM_ADMINISTRATOR,
    SecurityModel,
)
from gtmsync.dataverse_local.seed import GTMSYNC_CLIENT_ID, SeedResult, seed
from gtmsync.dataverse_local.store import Store

SIZES = {"accounts": 40, "contacts": 80, "leads": 20, "opportunities": 15, "products": 5}


class Tenant:
    def __init__(self, path: Path, seed_value: int = 7) -> None:
        self.store = Store.open(f"sqlite:///{path / 'dataverse.db'}")
        self.directory = Directory(self.store.engine)
        self.security = SecurityModel(self.store.engine)
        self.result: SeedResult = seed(
            self.store, self.directory, self.security, seed_value=seed_value, **SIZES
        )

    def rows(self, table: str) -> list[dict[str, Any]]:
        sql = self.store.tables[table]
        with self.store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(sql)).mappings()]


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    seeded = Tenant(tmp_path_factory.mktemp("seed"))
    yield seeded
    seeded.store.engine.dispose()


class TestSeededTenant:
    def test_sizes(self, tenant: Tenant):
        assert tenant.store.count("account") == 40
        assert tenant.store.count("contact") == 80
        assert tenant.store.count("lead") == 20
        assert tenant.store.count("opportunity") == 15
        assert tenant.store.count("product") == 5
        assert tenant.store.count("transactioncurrency") == 1
        for activity in ("task", "appointment", "phonecall"):
            assert tenant.store.count(activity) > 0

    def test_identities(self, tenant: Tenant):
        domain = tenant.directory.tenant().domain
        avery = tenant.directory.user_by_upn(f"avery.admin@{domain}")
        dana = tenant.directory.user_by_upn(f"dana.dynamics@{domain}")
        assert avery is not None
        assert avery.is_global_admin
        assert dana is not None
        assert not dana.is_global_admin
        dana_user = tenant.store.find_systemuser(aad_object_id=dana.object_id)
        roles = [r.name for r in tenant.security.roles_of(dana_user["systemuserid"])]
        assert roles == [SYSTEM_ADMINISTRATOR]
        disabled = [u for u in tenant.directory.users() if not u.enabled]
        assert len(disabled) == 2
        for user in disabled:
            assert tenant.store.find_systemuser(aad_object_id=user.object_id)["isdisabled"]
        app_user = tenant.store.find_systemuser(application_id=GTMSYNC_CLIENT_ID)
        assert app_user is not None
        assert tenant.directory.has_tenant_consent(GTMSYNC_CLIENT_ID)
        proxies = [
            upn for upn, uid in tenant.result.users.items()
            if tenant.security.has_special(uid, ACT_ON_BEHALF)
            and SALESPERSON in [r.name for r in tenant.security.roles_of(uid)]
        ]  # fmt: skip
        assert proxies == [f"pat.proxy@{domain}"]

    def test_business_unit_tree(self, tenant: Tenant):
        units = {r["name"]: r for r in tenant.rows("businessunit")}
        assert units["Contoso"]["parentbusinessunitid"] is None
        assert (
            units["Contoso Sales West"]["parentbusinessunitid"]
            == units["Contoso Sales"]["businessunitid"]
        )
        in_sales = {r["businessunitid"] for r in tenant.rows("systemuser") if r["businessunitid"]}
        assert units["Contoso Sales"]["businessunitid"] in in_sales
        assert units["Contoso Sales West"]["businessunitid"] in in_sales

    def test_option_values_and_state_pairs_are_real(self, tenant: Tenant):
        catalogue = tenant.store.catalogue
        industries = {
            o.value for o in catalogue.tables["account"].attributes["industrycode"].options
        }
        for row in tenant.rows("account"):
            assert row["industrycode"] in industries
        for table in ("account", "lead", "opportunity", "task", "appointment", "phonecall"):
            statuses = catalogue.tables[table].attributes["statuscode"].options
            pairs = {(o.state, o.value) for o in statuses}
            for row in tenant.rows(table):
                assert (row["statecode"], row["statuscode"]) in pairs, (table, row)

    def test_contacts_belong_to_accounts_and_have_owners(self, tenant: Tenant):
        accounts = {r["accountid"] for r in tenant.rows("account")}
        owners = set(tenant.result.users.values())
        for row in tenant.rows("contact"):
            assert row["parentcustomerid"] in accounts
            assert uuid.UUID(row["ownerid"]) in owners

    def test_reseeding_changes_nothing(self, tenant: Tenant):
        before = {t: tenant.store.count(t) for t in ("account", "contact", "systemuser", "task")}
        entra_users = len(tenant.directory.users())
        again = seed(tenant.store, tenant.directory, tenant.security, **SIZES)
        assert not again.created
        assert again.users == tenant.result.users
        assert {t: tenant.store.count(t) for t in before} == before
        assert len(tenant.directory.users()) == entra_users

    def test_same_seed_same_tenant(self, tenant: Tenant, tmp_path: Path):
        other = Tenant(tmp_path)
        try:
            assert sorted(r["name"] for r in other.rows("account")) == sorted(
                r["name"] for r in tenant.rows("account")
            )
            assert other.result.users == tenant.result.users
        finally:
            other.store.engine.dispose()
