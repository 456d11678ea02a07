"""CreateMultiple / UpdateMultiple / UpsertMultiple (spec §5)."""

from __future__ import annotations

from tests.fixtures.dataverse_store import BASE, DataverseTestClient

ACTION = "accounts/Microsoft.Dynamics.CRM."


def target(**values: object) -> dict[str, object]:
    return {"@odata.type": "Microsoft.Dynamics.CRM.account", **values}


class TestBulk:
    def test_create_multiple_returns_ids(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.post(
            ACTION + "CreateMultiple", json={"Targets": [target(name=f"A{i}") for i in range(3)]}
        )
        assert response.status_code == 200
        body = response.json()
        assert (
            body["@odata.context"]
            == f"{BASE}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
        )
        assert len(body["Ids"]) == 3
        names = {dv_client.get(f"accounts({i})/name").json()["value"] for i in body["Ids"]}
        assert names == {"A0", "A1", "A2"}

    def test_any_error_rolls_back_everything(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.post(
            ACTION + "CreateMultiple", json={"Targets": [target(name="ok"), target(name="x" * 161)]}
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "0x80044331"
        assert dv_client.get("accounts/$count").text == "0"

    def test_every_target_needs_odata_type(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.post(ACTION + "CreateMultiple", json={"Targets": [{"name": "A"}]})
        assert response.status_code == 400
        assert (
            '"@odata.type": "Microsoft.Dynamics.CRM.account"' in response.json()["error"]["message"]
        )

    def test_update_multiple(self, dv_client: DataverseTestClient) -> None:
        ids = dv_client.post(
            ACTION + "CreateMultiple", json={"Targets": [target(name="A"), target(name="B")]}
        ).json()["Ids"]
        response = dv_client.post(
            ACTION + "UpdateMultiple",
            json={
                "Targets": [
                    target(accountid=ids[0], name="A2"),
                    target(accountid=ids[1], name="B2"),
                ]
            },
        )
        assert response.status_code == 204
        assert dv_client.get(f"accounts({ids[1]})/name").json()["value"] == "B2"

    def test_upsert_multiple_by_alternate_key(self, dv_client: DataverseTestClient) -> None:
        dv_client.post(
            "EntityDefinitions(LogicalName='account')/Keys",
            json={"SchemaName": "new_num", "KeyAttributes": ["accountnumber"]},
        )
        dv_client.post("accounts", json={"name": "Existing", "accountnumber": "0000001"})
        response = dv_client.post(
            ACTION + "UpsertMultiple",
            json={
                "Targets": [
                    target(**{"@odata.id": "accounts(accountnumber='0000001')"}, name="Updated"),
                    target(**{"@odata.id": "accounts(accountnumber='O''B')"}, name="Created"),
                ]
            },
        )
        assert response.status_code == 204
        assert response.content == b""
        rows = dv_client.get("accounts?$select=name,accountnumber&$orderby=accountnumber").json()[
            "value"
        ]
        assert [(r["accountnumber"], r["name"]) for r in rows] == [
            ("0000001", "Updated"),
            ("O'B", "Created"),
        ]

    def test_unknown_action_is_501(self, dv_client: DataverseTestClient) -> None:
        assert dv_client.post(ACTION + "DeleteMultiple", json={"Targets": []}).status_code == 501


class TestBulkDelete:
    def test_sdk_payload_deletes_at_once_and_leaves_tombstones(
        self, dv_client: DataverseTestClient
    ) -> None:
        ids = dv_client.post(
            ACTION + "CreateMultiple", json={"Targets": [target(name=f"A{i}") for i in range(3)]}
        ).json()["Ids"]
        tracked = dv_client.get("accounts?$select=name", headers={"Prefer": "odata.track-changes"})
        delta_link = tracked.json()["@odata.deltaLink"]
        payload = {
            "JobName": "Bulk delete account records",
            "SendEmailNotification": False,
            "ToRecipients": [],
            "CCRecipients": [],
            "RecurrencePattern": "",
            "StartDateTime": "2026-11-23T10:00:00Z",
            "QuerySet": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.QueryExpression",
                    "EntityName": "account",
                    "ColumnSet": {
                        "@odata.type": "Microsoft.Dynamics.CRM.ColumnSet",
                        "AllColumns": False,
                        "Columns": [],
                    },
                    "Criteria": {
                        "@odata.type": "Microsoft.Dynamics.CRM.FilterExpression",
                        "FilterOperator": "And",
                        "Conditions": [
                            {
                                "@odata.type": "Microsoft.Dynamics.CRM.ConditionExpression",
                                "AttributeName": "accountid",
                                "Operator": "In",
                                "Values": [{"Value": i, "Type": "System.Guid"} for i in ids[:2]],
                            }
                        ],
                    },
                }
            ],
        }
        response = dv_client.post("BulkDelete", json=payload)
        assert response.status_code == 200
        assert response.json()["JobId"]
        assert [r["name"] for r in dv_client.get("accounts?$select=name").json()["value"]] == ["A2"]
        delta = dv_client.get(delta_link).json()["value"]
        assert sorted(r["id"] for r in delta) == sorted(ids[:2])
