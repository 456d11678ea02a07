"""Metadata, service document, $metadata and the SDK's exact metadata URLs (spec §7, §1.1)."""

from __future__ import annotations

from pathlib import Path

from gtmsync.dataverse_local.store import Store
from tests.fixtures.dataverse_store import BASE, DataverseTestClient


class TestEntityDefinitions:
    def test_sdk_entity_lookup_url(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.get(
            "EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute&$filter=LogicalName eq 'account'"  # noqa: E501 - Microsoft's exact URL
        )
        assert response.status_code == 200
        (row,) = response.json()["value"]
        assert (row["LogicalName"], row["EntitySetName"], row["PrimaryIdAttribute"]) == (
            "account",
            "accounts",
            "accountid",
        )
        assert "MetadataId" in row

    def test_single_by_logical_name_and_by_id(self, dv_client: DataverseTestClient) -> None:
        body = dv_client.get(
            "EntityDefinitions(LogicalName='account')?$select=DisplayName,IsKnowledgeManagementEnabled,EntitySetName"
        ).json()
        assert body["@odata.context"] == f"{BASE}/$metadata#EntityDefinitions/$entity"
        assert body["EntitySetName"] == "accounts"
        assert body["DisplayName"]["LocalizedLabels"][0] | {"MetadataId": None} == {
            "Label": "Account",
            "LanguageCode": 1033,
            "IsManaged": True,
            "MetadataId": None,
            "HasChanged": None,
        }
        again = dv_client.get(f"EntityDefinitions({body['MetadataId']})?$select=LogicalName").json()
        assert again["LogicalName"] == "account"

    def test_change_tracking_filter(self, dv_client: DataverseTestClient) -> None:
        names = {
            r["SchemaName"]
            for r in dv_client.get(
                "EntityDefinitions?$select=SchemaName&$filter=ChangeTrackingEnabled eq true"
            ).json()["value"]
        }
        assert {"Account", "Contact", "Lead"} <= names
        assert "Activityparty" not in names

    def test_attributes_filtered_by_type_and_required_level(
        self, dv_client: DataverseTestClient
    ) -> None:
        picklists = dv_client.get(
            "EntityDefinitions(LogicalName='account')/Attributes?$select=LogicalName&$filter=AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'"  # noqa: E501 - Microsoft's exact URL
        ).json()["value"]
        assert {"industrycode", "customertypecode"} <= {a["LogicalName"] for a in picklists}
        required = dv_client.get(
            "EntityDefinitions(LogicalName='account')/Attributes?$select=SchemaName&$filter=RequiredLevel/Value eq Microsoft.Dynamics.CRM.AttributeRequiredLevel'ApplicationRequired'"  # noqa: E501 - Microsoft's exact URL
        ).json()["value"]
        assert [a["SchemaName"] for a in required] == ["Name"]

    def test_sdk_picklist_cast_url(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.get(
            "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)"
        )
        assert response.status_code == 200
        by_name = {a["LogicalName"]: a for a in response.json()["value"]}
        options = by_name["customertypecode"]["OptionSet"]["Options"]
        assert options[0]["Value"] == 1
        assert options[0]["Label"]["LocalizedLabels"][0]["Label"] == "Competitor"
        assert "statecode" not in by_name  # State is its own metadata type

    def test_one_attribute_and_string_facts(self, dv_client: DataverseTestClient) -> None:
        body = dv_client.get(
            "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')"
        ).json()
        assert body["@odata.type"] == "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
        assert body["MaxLength"] == 160
        assert body["RequiredLevel"]["Value"] == "ApplicationRequired"
        assert body["IsPrimaryName"] is True

    def test_one_picklist_by_name_and_id_with_cast(self, dv_client: DataverseTestClient) -> None:
        base = "EntityDefinitions(LogicalName='account')/Attributes"
        cast = "Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        by_name = dv_client.get(
            f"{base}(LogicalName='industrycode')/{cast}?$select=LogicalName&$expand=OptionSet"
        ).json()
        assert by_name["LogicalName"] == "industrycode"
        assert by_name["OptionSet"]["Name"] == "account_industrycode"
        assert by_name["OptionSet"]["OptionSetType"] == "Picklist"
        assert by_name["OptionSet"]["Options"][0]["Label"]["UserLocalizedLabel"]["Label"] == (
            "Accounting"
        )
        by_id = dv_client.get(f"{base}({by_name['MetadataId']})/{cast}?$select=LogicalName").json()
        assert by_id["LogicalName"] == "industrycode"
        options = dv_client.get(
            f"{base}(LogicalName='industrycode')/{cast}/OptionSet?$select=Options"
        ).json()
        assert len(options["Options"]) == 33
        assert set(options) == {"MetadataId", "Options"}
        not_a_picklist = dv_client.get(f"{base}(LogicalName='name')/{cast}")
        assert not_a_picklist.status_code == 404

    def test_unknown_table_is_404(self, dv_client: DataverseTestClient) -> None:
        assert dv_client.get("EntityDefinitions(LogicalName='nosuch')").status_code == 404


class TestCustomisation:
    def test_custom_attribute_is_usable_and_survives_restart(
        self, dv_client: DataverseTestClient, dv_store: Store
    ) -> None:
        created = dv_client.post(
            "EntityDefinitions(LogicalName='account')/Attributes",
            json={
                "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
                "SchemaName": "new_Tier",
                "RequiredLevel": {"Value": "None"},
                "DisplayName": {"LocalizedLabels": [{"Label": "Tier", "LanguageCode": 1033}]},
                "OptionSet": {
                    "Options": [
                        {
                            "Value": 100000000,
                            "Label": {"LocalizedLabels": [{"Label": "Gold", "LanguageCode": 1033}]},
                        },
                        {
                            "Value": 100000001,
                            "Label": {
                                "LocalizedLabels": [{"Label": "Silver", "LanguageCode": 1033}]
                            },
                        },
                    ]
                },
            },
        )
        assert created.status_code == 204, created.text
        assert created.headers["OData-EntityId"].startswith(f"{BASE}/EntityDefinitions(")
        text = dv_client.post(
            "EntityDefinitions(LogicalName='account')/Attributes",
            json={
                "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                "SchemaName": "new_Code",
                "MaxLength": 5,
            },
        )
        assert text.status_code == 204
        assert (
            dv_client.post(
                "accounts", json={"name": "A", "new_tier": 100000000, "new_code": "ABCDE"}
            ).status_code
            == 204
        )
        too_long = dv_client.post("accounts", json={"name": "A", "new_code": "ABCDEF"})
        assert too_long.json()["error"]["code"] == "0x80044331"
        rows = dv_client.get(
            "accounts?$select=new_tier&$filter=new_tier eq 100000000",
            headers={"Prefer": 'odata.include-annotations="*"'},
        ).json()["value"]
        assert rows[0]["new_tier@OData.Community.Display.V1.FormattedValue"] == "Gold"
        url = str(dv_store.engine.url)
        dv_store.engine.dispose()
        reopened = Store.open(url)
        assert reopened.catalogue.tables["account"].attributes["new_code"].max_length == 5
        assert reopened.count("account") == 1
        reopened.engine.dispose()

    def test_multi_select_choices(self, dv_client: DataverseTestClient) -> None:
        options = [
            {"Value": v, "Label": {"LocalizedLabels": [{"Label": label, "LanguageCode": 1033}]}}
            for v, label in [
                (1, "Swimming"),
                (2, "Hiking"),
                (3, "Mountain Climbing"),
                (9, "Camping"),
            ]
        ]
        created = dv_client.post(
            "EntityDefinitions(LogicalName='contact')/Attributes",
            json={
                "@odata.type": "Microsoft.Dynamics.CRM.MultiSelectPicklistAttributeMetadata",
                "SchemaName": "sample_OutdoorActivities",
                "OptionSet": {"Options": options},
            },
        )
        assert created.status_code == 204
        assert (
            dv_client.post(
                "contacts", json={"lastname": "A", "sample_outdooractivities": "2, 3, 9"}
            ).status_code
            == 204
        )
        assert (
            dv_client.post(
                "contacts", json={"lastname": "B", "sample_outdooractivities": "1"}
            ).status_code
            == 204
        )
        bad = dv_client.post("contacts", json={"lastname": "C", "sample_outdooractivities": "4"})
        assert bad.json()["error"]["code"] == "0x80044331"
        rows = dv_client.get(
            "contacts?$select=fullname,sample_outdooractivities&$filter=Microsoft.Dynamics.CRM.ContainValues(PropertyName='sample_outdooractivities',PropertyValues=%5B'2'%5D)",
            headers={
                "Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
            },
        ).json()["value"]
        assert [r["sample_outdooractivities"] for r in rows] == ["2,3,9"]
        assert rows[0]["sample_outdooractivities@OData.Community.Display.V1.FormattedValue"] == (
            "Hiking; Mountain Climbing; Camping"
        )

    def test_custom_attribute_needs_prefix(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.post(
            "EntityDefinitions(LogicalName='account')/Attributes",
            json={
                "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                "SchemaName": "Code",
            },
        )
        assert response.status_code == 400
        assert "customization prefix" in response.json()["error"]["message"]

    def test_custom_table(self, dv_client: DataverseTestClient, tmp_path: Path) -> None:
        response = dv_client.post(
            "EntityDefinitions",
            json={
                "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
                "SchemaName": "new_BankAccount",
                "DisplayName": {
                    "LocalizedLabels": [{"Label": "Bank Account", "LanguageCode": 1033}]
                },
                "OwnershipType": "UserOwned",
                "ChangeTrackingEnabled": True,
                "Attributes": [
                    {
                        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                        "AttributeType": "String",
                        "SchemaName": "new_Name",
                        "IsPrimaryName": True,
                        "MaxLength": 100,
                    }
                ],
            },
        )
        assert response.status_code == 204, response.text
        definition = dv_client.get(
            "EntityDefinitions(LogicalName='new_bankaccount')?$select=EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute"
        ).json()
        assert (
            definition["EntitySetName"],
            definition["PrimaryIdAttribute"],
            definition["PrimaryNameAttribute"],
        ) == ("new_bankaccounts", "new_bankaccountid", "new_name")
        assert dv_client.post("new_bankaccounts", json={"new_name": "Checking"}).status_code == 204
        assert (
            dv_client.get("new_bankaccounts?$select=new_name").json()["value"][0]["new_name"]
            == "Checking"
        )

    def test_keys_listed(self, dv_client: DataverseTestClient) -> None:
        assert dv_client.get("EntityDefinitions(LogicalName='account')/Keys").json()["value"] == []
        dv_client.post(
            "EntityDefinitions(LogicalName='account')/Keys",
            json={"SchemaName": "new_acctnum", "KeyAttributes": ["accountnumber"]},
        )
        (key,) = dv_client.get("EntityDefinitions(LogicalName='account')/Keys").json()["value"]
        assert key["KeyAttributes"] == ["accountnumber"]
        assert key["EntityKeyIndexStatus"] == "Active"


class TestServiceDocuments:
    def test_service_document(self, dv_client: DataverseTestClient) -> None:
        body = dv_client.get(f"{BASE}/").json()
        assert body["@odata.context"] == f"{BASE}/$metadata"
        assert {"name": "accounts", "kind": "EntitySet", "url": "accounts"} in body["value"]

    def test_csdl_with_change_tracking_annotation(self, dv_client: DataverseTestClient) -> None:
        plain = dv_client.get("$metadata")
        assert plain.headers["Content-Type"].startswith("application/xml")
        assert 'Namespace="Microsoft.Dynamics.CRM" Alias="mscrm"' in plain.text
        assert "Org.OData.Capabilities.V1.ChangeTracking" not in plain.text
        annotated = dv_client.get("$metadata?annotations=true").text
        assert (
            '<EntitySet Name="accounts" EntityType="mscrm.account"><Annotation '
            'Term="Org.OData.Capabilities.V1.ChangeTracking">' in annotated
        )


class TestFunctions:
    def test_who_am_i_both_forms(self, dv_client: DataverseTestClient) -> None:
        for path in ("WhoAmI()", "WhoAmI"):
            body = dv_client.get(path).json()
            assert (
                body["@odata.context"] == f"{BASE}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
            )
            assert body["UserId"] == str(dv_client.principal.user_id)
            assert set(body) == {"@odata.context", "BusinessUnitId", "UserId", "OrganizationId"}

    def test_retrieve_total_record_count_both_forms(self, dv_client: DataverseTestClient) -> None:
        dv_client.post("accounts", json={"name": "A"})
        body = dv_client.get("RetrieveTotalRecordCount(EntityNames=['account'])").json()
        assert body["EntityRecordCountCollection"]["Keys"] == ["account"]
        assert body["EntityRecordCountCollection"]["Values"] == [1]
        alias = dv_client.get(
            'RetrieveTotalRecordCount(EntityNames=@p1)?@p1=["account","contact"]'
        ).json()
        assert alias["EntityRecordCountCollection"]["Values"] == [1, 0]


class TestSdkTableLifecycle:
    def test_columns_added_and_dropped_after_use_are_written_and_read(
        self, dv_client: DataverseTestClient
    ) -> None:
        """A column added or dropped after the table was used is written, read and forgotten.

        The compiled-statement bug this guards against (`Store._record` clears SQLAlchemy's
        cache) is reproduced by `tests/export/test_runner.py::TestIntent`, which fails without
        that fix; single-row requests like these compile fresh statements either way.
        """
        assert dv_client.post("contacts", json={"lastname": "Before"}).status_code == 204
        assert dv_client.get("contacts?$select=lastname").status_code == 200
        created = dv_client.post(
            "EntityDefinitions(LogicalName='contact')/Attributes",
            json={
                "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                "SchemaName": "new_Anchor",
                "MaxLength": 50,
            },
        )
        assert created.status_code == 204, created.text
        assert (
            dv_client.post("contacts", json={"lastname": "After", "new_anchor": "P1"}).status_code
            == 204
        )
        rows = dv_client.get(
            "contacts?$select=lastname,new_anchor&$filter=new_anchor eq 'P1'"
        ).json()
        assert [r["lastname"] for r in rows["value"]] == ["After"]
        attr = dv_client.get(
            "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='new_anchor')"
        ).json()
        deleted = dv_client.delete(
            f"EntityDefinitions(LogicalName='contact')/Attributes({attr['MetadataId']})"
        )
        assert deleted.status_code == 204
        listed = dv_client.get("contacts?$select=lastname")
        assert listed.status_code == 200, listed.text
        assert {r["lastname"] for r in listed.json()["value"]} >= {"Before", "After"}
        assert dv_client.post("contacts", json={"lastname": "Later"}).status_code == 204

    def test_create_entities_then_delete_column_key_and_table(
        self, dv_client: DataverseTestClient, dv_store: Store
    ) -> None:
        label = {"LocalizedLabels": [{"Label": "Product", "LanguageCode": 1033}]}
        payload = {
            "Entities": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.ComplexEntityMetadata",
                    "SchemaName": "new_Product",
                    "DisplayName": label,
                    "DisplayCollectionName": label,
                    "OwnershipType": "UserOwned",
                    "HasActivities": False,
                    "IsActivity": False,
                    "Attributes": [
                        {
                            "@odata.type": "Microsoft.Dynamics.CRM.ComplexStringAttributeMetadata",
                            "SchemaName": "new_Name",
                            "MaxLength": 100,
                            "IsPrimaryName": True,
                            "RequiredLevel": {"Value": "None"},
                        },
                        {
                            "@odata.type": "Microsoft.Dynamics.CRM.ComplexIntegerAttributeMetadata",
                            "SchemaName": "new_Stock",
                            "IsPrimaryName": False,
                        },
                    ],
                }
            ]
        }
        assert dv_client.post("CreateEntities", json=payload).status_code == 204
        definition = dv_client.get(
            "EntityDefinitions?$select=MetadataId,LogicalName,SchemaName,EntitySetName,"
            "PrimaryNameAttribute,PrimaryIdAttribute&$filter=LogicalName eq 'new_product'"
        ).json()["value"][0]
        assert definition["EntitySetName"] == "new_products"
        metadata_id = definition["MetadataId"]
        assert (
            dv_client.post("new_products", json={"new_name": "P", "new_stock": 3}).status_code
            == 204
        )
        key = dv_client.post(
            "EntityDefinitions(LogicalName='new_product')/Keys",
            json={"SchemaName": "new_name_key", "KeyAttributes": ["new_name"]},
        )
        key_id = key.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        assert (
            dv_client.delete(
                f"EntityDefinitions(LogicalName='new_product')/Keys({key_id})"
            ).status_code
            == 204
        )
        assert dv_client.post("new_products", json={"new_name": "P"}).status_code == 204
        attr = dv_client.get(
            f"EntityDefinitions({metadata_id})/Attributes(LogicalName='new_stock')"
        ).json()
        deleted = dv_client.delete(
            f"EntityDefinitions({metadata_id})/Attributes({attr['MetadataId']})"
        )
        assert deleted.status_code == 204
        gone = dv_client.post("new_products", json={"new_name": "Q", "new_stock": 1})
        assert gone.status_code == 400
        system = dv_client.delete("EntityDefinitions(LogicalName='account')")
        assert system.status_code == 403
        assert dv_client.delete(f"EntityDefinitions({metadata_id})").status_code == 204
        assert dv_client.get("new_products").status_code == 404
        url = str(dv_store.engine.url)
        dv_store.engine.dispose()
        reopened = Store.open(url)
        assert reopened.catalogue.get("new_product") is None
        reopened.engine.dispose()
