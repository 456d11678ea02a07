"""Security roles per table, column security and impersonated writes (spec §3.8, §8.2)."""

from __future__ import annotations

import uuid

import pytest

from gtmsync.dataverse_local.principal import Access
from gtmsync.dataverse_local.security import (
    DELEGATE,
    READ_ONLY,
    SALESPERSON,
    SYSTEM_ADMINISTRATOR,
    Role,
)
from gtmsync.dataverse_local.server import ServerHandle
from tests.dataverse_local.test_auth import integration_token, user_token

JSON = {"Accept": "application/json", "Content-Type": "application/json", "OData-Version": "4.0"}


def call(server: ServerHandle, token: str, method: str, path: str, **kwargs):
    headers = {**JSON, "Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    with server.client() as client:
        return client.request(method, f"/api/data/v9.2/{path}", headers=headers, **kwargs)


class TestTablePrivileges:
    def test_salesperson_reads_and_writes_accounts_but_only_reads_opportunities(
        self, dataverse: ServerHandle
    ):
        seller = dataverse.add_user("Sal", "Esperson", roles=(SALESPERSON,))
        token = user_token(dataverse, seller)
        created = call(dataverse, token, "POST", "accounts", json={"name": "Seller's account"})
        assert created.status_code == 204, created.text
        assert call(dataverse, token, "GET", "opportunities?$top=1").status_code == 200
        refused = call(dataverse, token, "POST", "opportunities", json={"name": "Nope"})
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "0x80040220"
        assert "prvCreateOpportunity" in error["message"]
        assert str(seller.systemuserid) in error["message"]

    def test_read_only_user_cannot_create(self, dataverse: ServerHandle):
        reader = dataverse.add_user("Rod", "Readonly", roles=(READ_ONLY,))
        token = user_token(dataverse, reader)
        assert call(dataverse, token, "GET", "accounts?$top=1").status_code == 200
        refused = call(dataverse, token, "POST", "accounts", json={"name": "x"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "0x80040220"

    def test_custom_role_defined_per_test(self, dataverse: ServerHandle):
        role = dataverse.define_role(
            Role(f"Contacts only {uuid.uuid4().hex[:6]}", frozenset({("contact", Access.READ)}))
        )
        user = dataverse.add_user("Con", "Tactsonly", roles=(role.name,))
        token = user_token(dataverse, user)
        assert call(dataverse, token, "GET", "contacts?$top=1").status_code == 200
        refused = call(dataverse, token, "GET", "accounts?$top=1")
        assert refused.status_code == 403
        assert "prvReadAccount" in refused.json()["error"]["message"]

    def test_built_in_roles_cannot_be_redefined(self, dataverse: ServerHandle):
        with pytest.raises(ValueError, match="built in"):
            dataverse.define_role(Role(SYSTEM_ADMINISTRATOR))

    def test_unknown_role_names_the_fix(self, dataverse: ServerHandle):
        with pytest.raises(KeyError, match="define_role"):
            dataverse.security.assign_role(uuid.uuid4(), "No such role")


class TestColumnSecurity:
    @pytest.fixture
    def secured(self, dataverse: ServerHandle):
        column = ("account", "tickersymbol")
        dataverse.security.secure_column(*column)
        yield column
        dataverse.security.unsecure_column(*column)

    def test_secured_column_reads_as_null_unless_profile_or_admin(
        self, dataverse: ServerHandle, secured: tuple[str, str]
    ):
        column = secured
        admin = dataverse.add_user("Ada", "Sees", roles=(SYSTEM_ADMINISTRATOR,))
        seller = dataverse.add_user("Sid", "Blind", roles=(SALESPERSON,))
        cleared = dataverse.add_user("Cy", "Cleared", roles=(SALESPERSON,))
        dataverse.security.define_field_profile("Ticker readers", [column])
        dataverse.security.assign_field_profile(cleared.systemuserid, "Ticker readers")

        created = call(
            dataverse,
            user_token(dataverse, admin),
            "POST",
            "accounts",
            json={"name": "Secured Co", "tickersymbol": "SECR"},
            headers={"Prefer": "return=representation"},
        )
        assert created.status_code == 201, created.text
        account_id = created.json()["accountid"]
        path = f"accounts({account_id})?$select=name,tickersymbol"
        assert (
            call(dataverse, user_token(dataverse, admin), "GET", path).json()["tickersymbol"]
            == "SECR"
        )
        assert (
            call(dataverse, user_token(dataverse, seller), "GET", path).json()["tickersymbol"]
            is None
        )
        assert (
            call(dataverse, user_token(dataverse, cleared), "GET", path).json()["tickersymbol"]
            == "SECR"
        )
        assert dataverse.store.catalogue.get("account").attributes["tickersymbol"].secured


class TestImpersonatedWrites:
    def test_created_by_target_on_behalf_of_caller(self, dataverse: ServerHandle):
        app = dataverse.register_app("Writer", application_user_roles=(SYSTEM_ADMINISTRATOR,))
        target = dataverse.add_user("Tom", "Target", roles=(SALESPERSON,))
        reply = call(
            dataverse,
            integration_token(dataverse, app),
            "POST",
            "accounts",
            json={"name": "On behalf"},
            headers={"CallerObjectId": target.object_id, "Prefer": "return=representation"},
        )
        assert reply.status_code == 201, reply.text
        row = dataverse.store.get("account", uuid.UUID(reply.json()["accountid"]))
        assert row["createdby"] == target.systemuserid
        assert row["ownerid"] == target.systemuserid
        assert row["createdonbehalfby"] == app.systemuserid

    def test_effective_privileges_are_the_intersection(self, dataverse: ServerHandle):
        caller = dataverse.add_user("Dex", "Delegate", roles=(SYSTEM_ADMINISTRATOR, DELEGATE))
        reader = dataverse.add_user("Ria", "Readsonly", roles=(READ_ONLY,))
        reply = call(
            dataverse,
            user_token(dataverse, caller),
            "POST",
            "accounts",
            json={"name": "Should fail"},
            headers={"MSCRMCallerID": str(reader.systemuserid)},
        )
        assert reply.status_code == 403
        assert "prvCreateAccount" in reply.json()["error"]["message"]
