"""Privileges, column security and impersonation as the data plane enforces them (spec §3.8)."""

from __future__ import annotations

import re
import uuid

from gtmsync.dataverse_local.principal import Access, Principal
from gtmsync.dataverse_local.schema import Attribute
from gtmsync.dataverse_local.store import Store
from tests.fixtures.dataverse_store import DataverseTestClient


def principal(
    user_id: uuid.UUID,
    *grants: tuple[str, Access],
    caller: uuid.UUID | None = None,
    hidden: frozenset[tuple[str, str]] = frozenset(),
) -> Principal:
    return Principal(
        user_id=user_id,
        caller_id=caller or user_id,
        tenant_id="local",
        privileges=frozenset(grants),
        unreadable_attributes=hidden,
    )


class TestPrivileges:
    def test_missing_read_privilege_is_403_with_dataverse_wording(
        self, dv_client: DataverseTestClient
    ) -> None:
        user = uuid.uuid4()
        dv_client.run_as(principal(user, ("contact", Access.READ)))
        response = dv_client.get("accounts")
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "0x80040220"
        assert re.match(
            rf"Principal user \(Id={user}, type=8, roleCount=1, privilegeCount=\d+, "
            r"accessMode=0\), is missing "
            r"prvReadAccount privilege \(Id=[0-9a-f-]{36}\) on OTC=1 for entity 'account'\.",
            error["message"],
        )
        assert dv_client.get("contacts").status_code == 200

    def test_create_needs_create_and_bind_needs_append(
        self, dv_client: DataverseTestClient
    ) -> None:
        contact = dv_client.post("contacts", json={"lastname": "C"}).headers["OData-EntityId"]
        user = uuid.uuid4()
        dv_client.run_as(principal(user, ("account", Access.READ)))
        denied = dv_client.post("accounts", json={"name": "A"})
        assert denied.status_code == 403
        assert "prvCreateAccount" in denied.json()["error"]["message"]
        dv_client.run_as(principal(user, ("account", Access.CREATE), ("account", Access.READ)))
        no_append = dv_client.post(
            "accounts", json={"name": "A", "primarycontactid@odata.bind": contact}
        )
        assert no_append.status_code == 403
        assert "prvAppendAccount" in no_append.json()["error"]["message"]
        dv_client.run_as(
            principal(
                user,
                ("account", Access.CREATE),
                ("account", Access.APPEND),
                ("contact", Access.APPEND_TO),
            )
        )
        assert (
            dv_client.post(
                "accounts", json={"name": "A", "primarycontactid@odata.bind": contact}
            ).status_code
            == 204
        )

    def test_write_and_delete_privileges(self, dv_client: DataverseTestClient) -> None:
        account = dv_client.post("accounts", json={"name": "A"}).headers["OData-EntityId"]
        dv_client.run_as(principal(uuid.uuid4(), ("account", Access.READ)))
        assert (
            dv_client.patch(account, json={"name": "B"}, headers={"If-Match": "*"}).status_code
            == 403
        )
        assert dv_client.delete(account).status_code == 403

    def test_unreadable_column_reads_null_and_cannot_be_written(
        self, dv_client: DataverseTestClient, dv_store: Store
    ) -> None:
        with dv_store.write() as conn:
            dv_store.add_attribute(
                conn,
                "account",
                Attribute(
                    name="new_secret", type="String", max_length=50, custom=True, secured=True
                ),
            )
        account = dv_client.post("accounts", json={"name": "A", "new_secret": "s3cret"}).headers[
            "OData-EntityId"
        ]
        hidden = frozenset({("account", "new_secret")})
        everything = [("*", a) for a in Access]
        dv_client.run_as(principal(uuid.uuid4(), *everything, hidden=hidden))
        assert dv_client.get(f"{account}?$select=name,new_secret").json()["new_secret"] is None
        response = dv_client.patch(account, json={"new_secret": "x"}, headers={"If-Match": "*"})
        assert response.status_code == 403


class TestImpersonation:
    def test_created_by_impersonated_user_on_behalf_of_caller(
        self, dv_client: DataverseTestClient
    ) -> None:
        caller = dv_client.principal.user_id
        impersonated = uuid.uuid4()
        everything = [("*", a) for a in Access]
        dv_client.run_as(principal(impersonated, *everything, caller=caller))
        account = dv_client.post("accounts", json={"name": "On behalf"}).headers["OData-EntityId"]
        body = dv_client.get(account).json()
        assert body["_createdby_value"] == str(impersonated)
        assert body["_ownerid_value"] == str(impersonated)
        assert body["_createdonbehalfby_value"] == str(caller)
        assert body["_modifiedonbehalfby_value"] == str(caller)
        assert dv_client.get("WhoAmI").json()["UserId"] == str(impersonated)
