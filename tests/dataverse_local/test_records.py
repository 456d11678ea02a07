"""Create, retrieve, update, upsert, delete and references, request by request (spec §3)."""

from __future__ import annotations

import uuid

import pytest

from gtmsync.dataverse_local.store import Store
from tests.fixtures.dataverse_store import BASE, DataverseTestClient


def create(
    client: DataverseTestClient, entity_set: str, body: dict[str, object], **headers: str
) -> str:
    response = client.post(entity_set, json=body, headers=headers)
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


class TestCreate:
    def test_microsoft_example_returns_204_with_entity_id(
        self, dv_client: DataverseTestClient
    ) -> None:
        body = {
            "name": "Sample Account",
            "creditonhold": False,
            "address1_latitude": 47.639583,
            "description": "This is the description of the sample account",
            "revenue": 5000000,
            "accountcategorycode": 1,
        }
        response = dv_client.post("accounts", json=body)
        assert response.status_code == 204
        assert response.content == b""
        assert response.headers["OData-Version"] == "4.0"
        entity_id = response.headers["OData-EntityId"]
        assert entity_id.startswith(f"{BASE}/accounts(")
        uuid.UUID(entity_id[len(BASE) + len("/accounts(") : -1])

    def test_return_representation_gives_201_body_without_entity_id(
        self, dv_client: DataverseTestClient
    ) -> None:
        response = dv_client.post(
            "accounts?$select=name,revenue",
            json={"name": "Sample Account", "revenue": 5000000},
            headers={"Prefer": "return=representation"},
        )
        assert response.status_code == 201
        assert "OData-EntityId" not in response.headers
        assert response.headers["Preference-Applied"] == "return=representation"
        body = response.json()
        assert body["@odata.context"] == f"{BASE}/$metadata#accounts(name,revenue)/$entity"
        assert body["@odata.etag"].startswith('W/"')
        assert response.headers["ETag"] == body["@odata.etag"]
        assert body["name"] == "Sample Account"
        assert body["revenue"] == 5000000.0
        assert "_transactioncurrencyid_value" in body  # money drags its currency along
        assert set(body) == {
            "@odata.context",
            "@odata.etag",
            "accountid",
            "name",
            "revenue",
            "_transactioncurrencyid_value",
        }

    def test_representation_honours_expand_on_post_only(
        self, dv_client: DataverseTestClient
    ) -> None:
        contact = dv_client.post("contacts", json={"firstname": "J", "lastname": "S"})
        bind = {"primarycontactid@odata.bind": contact.headers["OData-EntityId"]}
        created = dv_client.post(
            "accounts?$select=name&$expand=primarycontactid($select=fullname)",
            json={"name": "A", **bind},
            headers={"Prefer": "return=representation"},
        )
        assert created.json()["primarycontactid"]["fullname"] == "J S"
        updated = dv_client.patch(
            f"accounts({created.json()['accountid']})?$select=name&$expand=primarycontactid",
            json={"name": "B"},
            headers={"Prefer": "return=representation"},
        )
        assert updated.status_code == 200
        assert "primarycontactid" not in updated.json()

    def test_system_columns_and_owner_are_set(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "A"})
        body = dv_client.get(f"accounts({account_id})").json()
        admin = str(dv_client.principal.user_id)
        assert body["_createdby_value"] == admin
        assert body["_modifiedby_value"] == admin
        assert body["_ownerid_value"] == admin
        assert body["_createdonbehalfby_value"] is None
        assert body["createdon"].endswith("Z")
        assert len(body["createdon"]) == 20
        assert body["statecode"] == 0
        assert body["statuscode"] == 1

    def test_unknown_property_is_0x80048d19(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.post("contacts", json={"lastname": "X", "nosuchcolumn": 1})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "0x80048d19"
        assert (
            "Invalid property 'nosuchcolumn' was found in entity 'Microsoft.Dynamics.CRM.contact'."
            in error["message"]
        )
        assert response.headers["Content-Type"] == "application/json; odata.metadata=minimal"

    def test_max_length_is_a_validation_error(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.post("tasks", json={"subject": "x" * 201})
        assert response.status_code == 400
        assert response.json()["error"] == {
            "code": "0x80044331",
            "message": "A validation error occurred.  The length of the 'subject' attribute of the "
            "'task' entity exceeded the maximum allowed length of '200'.",
        }

    def test_invalid_option_value_is_rejected(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.post("accounts", json={"name": "A", "industrycode": 999})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "0x80044331"

    def test_bind_lookup_in_all_three_url_forms(self, dv_client: DataverseTestClient) -> None:
        contact_id = create(dv_client, "contacts", {"firstname": "John", "lastname": "Smith"})
        for ref in (
            f"/contacts({contact_id})",
            f"contacts({contact_id})",
            f"{BASE}/contacts({contact_id})",
        ):
            account_id = create(
                dv_client, "accounts", {"name": "A", "primarycontactid@odata.bind": ref}
            )
            body = dv_client.get(f"accounts({account_id})?$select=_primarycontactid_value").json()
            assert body["_primarycontactid_value"] == contact_id

    def test_polymorphic_bind_sets_lookup_type(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "Parent"})
        contact_id = create(
            dv_client,
            "contacts",
            {"lastname": "Kid", "parentcustomerid_account@odata.bind": f"/accounts({account_id})"},
        )
        response = dv_client.get(
            f"contacts({contact_id})?$select=_parentcustomerid_value",
            headers={"Prefer": 'odata.include-annotations="*"'},
        )
        body = response.json()
        assert body["_parentcustomerid_value"] == account_id
        assert body["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
        assert (
            body["_parentcustomerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"]
            == "parentcustomerid_account"
        )
        assert body["_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"] == "Parent"

    def test_owner_can_be_a_team(self, dv_client: DataverseTestClient, dv_store: Store) -> None:
        team = dv_store.insert(
            "team", {"name": "Sales", "businessunitid": uuid.uuid4()}, as_user=uuid.uuid4()
        )
        account_id = create(
            dv_client, "accounts", {"name": "A", "ownerid@odata.bind": f"/teams({team})"}
        )
        body = dv_client.get(
            f"accounts({account_id})?$select=_ownerid_value,_owningteam_value,_owninguser_value",
            headers={
                "Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'
            },
        ).json()
        assert body["_ownerid_value"] == str(team)
        assert body["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "team"
        assert body["_owningteam_value"] == str(team)
        assert body["_owninguser_value"] is None

    def test_navigation_names_are_case_sensitive(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "Parent"})
        response = dv_client.post(
            "contacts",
            json={
                "lastname": "K",
                "ParentCustomerId_Account@odata.bind": f"/accounts({account_id})",
            },
        )
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith(
            "An undeclared property 'ParentCustomerId_Account' which only has property "
            "annotations in the payload"
        )

    def test_bind_to_missing_record_is_not_found(self, dv_client: DataverseTestClient) -> None:
        missing = uuid.uuid4()
        response = dv_client.post(
            "accounts", json={"name": "A", "primarycontactid@odata.bind": f"/contacts({missing})"}
        )
        assert response.status_code == 404
        assert response.json()["error"]["message"] == f"contact With Id = {missing} Does Not Exist"

    def test_regarding_binds_an_activity(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "A"})
        task_id = create(
            dv_client,
            "tasks",
            {
                "subject": "Task 1 in batch",
                "regardingobjectid_account_task@odata.bind": f"accounts({account_id})",
            },
        )
        body = dv_client.get(f"tasks({task_id})?$select=_regardingobjectid_value").json()
        assert body["_regardingobjectid_value"] == account_id
        tasks = dv_client.get(f"accounts({account_id})/Account_Tasks?$select=subject").json()[
            "value"
        ]
        assert [t["subject"] for t in tasks] == ["Task 1 in batch"]


class TestRetrieve:
    def test_not_found_text(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.get("accounts(00000000-0000-0000-0000-000000000001)")
        assert response.status_code == 404
        assert response.json() == {
            "error": {
                "code": "0x80040217",
                "message": "account With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist",
            }
        }

    def test_select_and_single_property(self, dv_client: DataverseTestClient) -> None:
        account_id = create(
            dv_client, "accounts", {"name": "Adventure Works (sample)", "revenue": 20000}
        )
        body = dv_client.get(f"accounts({account_id})?$select=name,revenue").json()
        assert body["@odata.context"] == f"{BASE}/$metadata#accounts(name,revenue)/$entity"
        prop = dv_client.get(f"accounts({account_id})/name").json()
        assert prop == {
            "@odata.context": f"{BASE}/$metadata#accounts({account_id})/name",
            "value": "Adventure Works (sample)",
        }

    def test_conditional_get_304(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "A"})
        etag = dv_client.get(f"accounts({account_id})").headers["ETag"]
        assert (
            dv_client.get(f"accounts({account_id})", headers={"If-None-Match": etag}).status_code
            == 304
        )
        assert (
            dv_client.get(f"accounts({account_id})", headers={"If-None-Match": "null"}).status_code
            == 200
        )
        dv_client.patch(f"accounts({account_id})", json={"name": "B"}, headers={"If-Match": "*"})
        assert (
            dv_client.get(f"accounts({account_id})", headers={"If-None-Match": etag}).status_code
            == 200
        )

    def test_unknown_select_property_is_0x0(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.get("accounts?$select=name,nosuch")
        assert response.status_code == 400
        assert response.json()["error"] == {
            "code": "0x0",
            "message": (
                "Could not find a property named 'nosuch' on type 'Microsoft.Dynamics.CRM.account'."
            ),
        }

    def test_single_valued_navigation(self, dv_client: DataverseTestClient) -> None:
        contact_id = create(
            dv_client, "contacts", {"firstname": "Yvonne", "lastname": "McKay (sample)"}
        )
        account_id = create(
            dv_client,
            "accounts",
            {"name": "A", "primarycontactid@odata.bind": f"/contacts({contact_id})"},
        )
        body = dv_client.get(f"accounts({account_id})/primarycontactid?$select=fullname").json()
        assert body["fullname"] == "Yvonne McKay (sample)"
        assert body["@odata.context"] == f"{BASE}/$metadata#contacts(fullname)/$entity"

    @pytest.mark.parametrize("version", ["v9.0", "v9.1", "v9.2"])
    def test_all_versions_served(self, dv_client: DataverseTestClient, version: str) -> None:
        response = dv_client.get(f"http://testserver/api/data/{version}/accounts")
        assert response.status_code == 200
        assert response.json()["@odata.context"].startswith(
            f"http://testserver/api/data/{version}/$metadata#accounts"
        )


class TestUpdate:
    def test_patch_with_if_match_star_updates(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "Sample"})
        before = dv_client.get(f"accounts({account_id})").json()["versionnumber"]
        response = dv_client.patch(
            f"accounts({account_id})",
            json={
                "name": "Updated Sample Account ",
                "creditonhold": True,
                "revenue": 6000000,
                "accountcategorycode": 2,
            },
            headers={"If-Match": "*"},
        )
        assert response.status_code == 204
        body = dv_client.get(f"accounts({account_id})").json()
        assert body["name"] == "Updated Sample Account "
        assert body["versionnumber"] > before

    def test_if_match_star_on_missing_row_is_404(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.patch(
            "accounts(00000000-0000-0000-0000-000000000001)",
            json={"name": "x"},
            headers={"If-Match": "*"},
        )
        assert response.status_code == 404
        assert (
            response.json()["error"]["message"]
            == "account With Id = 00000000-0000-0000-0000-000000000001 Does Not Exist"
        )

    def test_stale_etag_is_412(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "A"})
        etag = dv_client.get(f"accounts({account_id})").headers["ETag"]
        assert (
            dv_client.patch(
                f"accounts({account_id})", json={"name": "B"}, headers={"If-Match": etag}
            ).status_code
            == 204
        )
        response = dv_client.patch(
            f"accounts({account_id})", json={"name": "C"}, headers={"If-Match": etag}
        )
        assert response.status_code == 412
        assert response.json()["error"] == {
            "code": "0x80060882",
            "message": (
                "The version of the existing record doesn't match the RowVersion property provided."
            ),
        }
        assert (
            dv_client.delete(f"accounts({account_id})", headers={"If-Match": etag}).status_code
            == 412
        )

    def test_return_representation_on_update_is_200(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "A"})
        response = dv_client.patch(
            f"accounts({account_id})?$select=name",
            json={"name": "B"},
            headers={"If-Match": "*", "Prefer": "return=representation"},
        )
        assert response.status_code == 200
        assert response.json()["name"] == "B"

    def test_clear_lookup_two_ways(self, dv_client: DataverseTestClient) -> None:
        parent = create(dv_client, "accounts", {"name": "P"})
        child = create(
            dv_client,
            "accounts",
            {"name": "C", "parentaccountid@odata.bind": f"/accounts({parent})"},
        )
        dv_client.patch(
            f"accounts({child})",
            json={"parentaccountid@odata.bind": None},
            headers={"If-Match": "*"},
        )
        assert dv_client.get(f"accounts({child})/_parentaccountid_value").json()["value"] is None
        dv_client.patch(
            f"accounts({child})", json={"parentaccountid@odata.bind": f"/accounts({parent})"}
        )
        assert (
            dv_client.patch(f"accounts({child})", json={"parentaccountid": None}).status_code == 204
        )
        assert dv_client.get(f"accounts({child})/_parentaccountid_value").json()["value"] is None

    def test_single_property_put_and_delete(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "A", "description": "d"})
        assert (
            dv_client.put(f"accounts({account_id})/name", json={"value": "Renamed"}).status_code
            == 204
        )
        assert dv_client.delete(f"accounts({account_id})/description").status_code == 204
        body = dv_client.get(f"accounts({account_id})?$select=name,description").json()
        assert (body["name"], body["description"]) == ("Renamed", None)


class TestUpsert:
    def test_upsert_by_id_creates_then_updates(self, dv_client: DataverseTestClient) -> None:
        record_id = uuid.uuid4()
        created = dv_client.patch(
            f"accounts({record_id})",
            json={"name": "New"},
            headers={"Prefer": "return=representation"},
        )
        assert created.status_code == 201
        assert created.json()["accountid"] == str(record_id)
        updated = dv_client.patch(
            f"accounts({record_id})",
            json={"name": "Again"},
            headers={"Prefer": "return=representation"},
        )
        assert updated.status_code == 200
        assert updated.headers["ETag"] == updated.json()["@odata.etag"]

    def test_if_none_match_star_blocks_update(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "A"})
        response = dv_client.patch(
            f"accounts({account_id})", json={"name": "B"}, headers={"If-None-Match": "*"}
        )
        assert response.status_code == 412
        assert (
            response.json()["error"]["message"]
            == "A record with matching key values already exists."
        )

    def test_alternate_key_requires_a_key_definition(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.get("accounts(accountnumber='X')")
        assert response.status_code == 400
        assert response.json()["error"]["message"] == (
            "The key in the request URI is not valid for resource "
            "'Microsoft.Dynamics.CRM.account'. "
            "Ensure that the names and number of key properties match the declared or "
            "alternate key "
            "properties for the resource 'Microsoft.Dynamics.CRM.account'."
        )

    def test_upsert_by_alternate_key(self, dv_client: DataverseTestClient) -> None:
        key = dv_client.post(
            "EntityDefinitions(LogicalName='account')/Keys",
            json={"SchemaName": "new_accountnumber_key", "KeyAttributes": ["accountnumber"]},
        )
        assert key.status_code == 204
        first = dv_client.patch("accounts(accountnumber='O''B')", json={"name": "OB"})
        assert first.status_code == 204
        assert first.headers["OData-EntityId"] == f"{BASE}/accounts(accountnumber='O''B')"
        second = dv_client.patch(
            "accounts(accountnumber='O''B')",
            json={"name": "OB 2"},
            headers={"Prefer": "return=representation"},
        )
        assert second.status_code == 200
        rows = dv_client.get("accounts?$select=name,accountnumber").json()["value"]
        assert [(r["name"], r["accountnumber"]) for r in rows] == [("OB 2", "O'B")]
        assert dv_client.get("accounts(accountnumber='O''B')?$select=name").json()["name"] == "OB 2"
        assert dv_client.get("accounts(accountnumber='o''b')?$select=name").json()["name"] == "OB 2"
        duplicate = dv_client.post("accounts", json={"name": "Dup", "accountnumber": "o'b"})
        assert duplicate.status_code == 412
        assert duplicate.json()["error"]["code"] == "0x80060892"

    def test_multi_part_key(self, dv_client: DataverseTestClient) -> None:
        dv_client.post(
            "EntityDefinitions(LogicalName='contact')/Keys",
            json={"SchemaName": "new_name_email", "KeyAttributes": ["firstname", "emailaddress1"]},
        )
        response = dv_client.patch(
            "contacts(firstname='Joe',emailaddress1='abc@example.com')", json={"lastname": "Smith"}
        )
        assert response.status_code == 204
        body = dv_client.get(
            "contacts(firstname='Joe',emailaddress1='abc@example.com')?$select=fullname"
        ).json()
        assert body["fullname"] == "Joe Smith"


class TestDelete:
    def test_delete_then_404(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "A"})
        assert dv_client.delete(f"accounts({account_id})").status_code == 204
        assert dv_client.delete(f"accounts({account_id})").status_code == 404
        assert dv_client.get(f"accounts({account_id})").status_code == 404


class TestReferences:
    def test_set_and_clear_single_valued_ref(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "A"})
        opportunity_id = create(dv_client, "opportunities", {"name": "O"})
        put = dv_client.put(
            f"opportunities({opportunity_id})/customerid_account/$ref",
            json={"@odata.id": f"accounts({account_id})"},
        )
        assert put.status_code == 204
        assert (
            dv_client.get(f"opportunities({opportunity_id})/_customerid_value").json()["value"]
            == account_id
        )
        assert (
            dv_client.delete(f"opportunities({opportunity_id})/customerid_account/$ref").status_code
            == 204
        )
        assert (
            dv_client.get(f"opportunities({opportunity_id})/_customerid_value").json()["value"]
            is None
        )

    def test_add_and_remove_collection_ref(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "A"})
        opportunity_id = create(dv_client, "opportunities", {"name": "O"})
        added = dv_client.post(
            f"accounts({account_id})/opportunity_customer_accounts/$ref",
            json={"@odata.id": f"{BASE}/opportunities({opportunity_id})"},
        )
        assert added.status_code == 204
        listed = dv_client.get(
            f"accounts({account_id})/opportunity_customer_accounts?$select=name"
        ).json()["value"]
        assert [o["name"] for o in listed] == ["O"]
        refs = dv_client.get(f"accounts({account_id})/opportunity_customer_accounts/$ref").json()
        assert refs == {
            "@odata.context": f"{BASE}/$metadata#Collection($ref)",
            "value": [{"@odata.id": f"{BASE}/opportunities({opportunity_id})"}],
        }
        removed = dv_client.delete(
            f"accounts({account_id})/opportunity_customer_accounts({opportunity_id})/$ref"
        )
        assert removed.status_code == 204
        assert (
            dv_client.get(f"accounts({account_id})/opportunity_customer_accounts").json()["value"]
            == []
        )


class TestDuplicateDetection:
    def test_off_by_default_on_when_header_false(self, dv_client: DataverseTestClient) -> None:
        create(dv_client, "leads", {"subject": "L", "emailaddress1": "someone@example.com"})
        create(dv_client, "leads", {"subject": "L2", "emailaddress1": "someone@example.com"})
        response = dv_client.post(
            "leads",
            json={"subject": "L3", "emailaddress1": "SOMEONE@example.com"},
            headers={"MSCRM.SuppressDuplicateDetection": "false"},
        )
        assert response.status_code == 500
        assert response.json()["error"] == {
            "code": "0x80040333",
            "message": (
                "A record was not created or updated because a duplicate of the current "
                "record already exists."
            ),
        }

    def test_update_checks_other_rows_only(self, dv_client: DataverseTestClient) -> None:
        account_id = create(dv_client, "accounts", {"name": "Contoso"})
        same = dv_client.patch(
            f"accounts({account_id})",
            json={"name": "Contoso"},
            headers={"MSCRM.SuppressDuplicateDetection": "false", "If-Match": "*"},
        )
        assert same.status_code == 204
        other = create(dv_client, "accounts", {"name": "Fabrikam"})
        clash = dv_client.patch(
            f"accounts({other})",
            json={"name": "contoso"},
            headers={"MSCRM.SuppressDuplicateDetection": "false", "If-Match": "*"},
        )
        assert clash.status_code == 500


class TestDeepInsert:
    def test_microsoft_deep_insert_example(self, dv_client: DataverseTestClient) -> None:
        body = {
            "name": "Sample Account",
            "primarycontactid": {"firstname": "John", "lastname": "Smith"},
            "opportunity_customer_accounts": [
                {
                    "name": "Opportunity associated to Sample Account",
                    "Opportunity_Tasks": [{"subject": "Task associated to opportunity"}],
                }
            ],
        }
        response = dv_client.post("accounts", json=body)
        assert response.status_code == 204
        account_url = response.headers["OData-EntityId"]
        expanded = dv_client.get(
            f"{account_url}?$select=name&$expand=primarycontactid($select=fullname),"
            "opportunity_customer_accounts($select=name)"
        ).json()
        assert expanded["primarycontactid"]["fullname"] == "John Smith"
        (opportunity,) = expanded["opportunity_customer_accounts"]
        tasks = dv_client.get(
            f"opportunities({opportunity['opportunityid']})/Opportunity_Tasks?$select=subject"
        ).json()["value"]
        assert [t["subject"] for t in tasks] == ["Task associated to opportunity"]

    def test_failing_nested_row_rolls_back_the_parent(self, dv_client: DataverseTestClient) -> None:
        body = {"name": "Parent", "primarycontactid": {"lastname": "x" * 51}}
        response = dv_client.post("accounts", json=body)
        assert response.status_code == 400
        assert dv_client.get("accounts/$count").text == "0"
        assert dv_client.get("contacts/$count").text == "0"


class TestErrorDetails:
    def test_annotations_only_when_asked(self, dv_client: DataverseTestClient) -> None:
        plain = dv_client.post("tasks", json={"subject": "x" * 201}).json()["error"]
        assert set(plain) == {"code", "message"}
        detailed = dv_client.post(
            "tasks",
            json={"subject": "x" * 201},
            headers={"Prefer": 'odata.include-annotations="*"'},
        ).json()["error"]
        assert detailed["code"] == "0x80044331"
        assert detailed["@Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode"] == str(
            0x80044331 - (1 << 32)
        )
        assert detailed["@Microsoft.PowerApps.CDS.InnerError.Message"] == detailed["message"]
        assert "80044331" in detailed["@Microsoft.PowerApps.CDS.HelpLink"]


class TestActivityParties:
    def test_deep_insert_and_replace_parties(self, dv_client: DataverseTestClient) -> None:
        contact = create(dv_client, "contacts", {"lastname": "Attendee"})
        other = create(dv_client, "contacts", {"lastname": "Other"})
        admin = dv_client.principal.user_id
        appointment = create(
            dv_client,
            "appointments",
            {
                "subject": "Meeting",
                "appointment_activity_parties": [
                    {
                        "partyid_contact@odata.bind": f"/contacts({contact})",
                        "participationtypemask": 5,
                    },
                    {
                        "partyid_systemuser@odata.bind": f"/systemusers({admin})",
                        "participationtypemask": 7,
                    },
                ],
            },
        )
        url = f"appointments({appointment})/appointment_activity_parties"
        parties = dv_client.get(f"{url}?$select=_partyid_value,participationtypemask").json()[
            "value"
        ]
        assert sorted((p["_partyid_value"], p["participationtypemask"]) for p in parties) == sorted(
            [(contact, 5), (str(dv_client.principal.user_id), 7)]
        )
        replaced = dv_client.put(
            url,
            json={
                "value": [
                    {"partyid_contact@odata.bind": f"contacts({other})", "participationtypemask": 3}
                ]
            },
        )
        assert replaced.status_code == 204
        parties = dv_client.get(f"{url}?$select=_partyid_value,participationtypemask").json()[
            "value"
        ]
        assert [(p["_partyid_value"], p["participationtypemask"]) for p in parties] == [(other, 3)]
