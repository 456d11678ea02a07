"""Queries: $select, $filter, $orderby, $top, $count, $expand, paging and annotations (spec §2)."""

from __future__ import annotations

import urllib.parse
import uuid

import pytest

from gtmsync.dataverse_local.store import Store
from tests.fixtures.dataverse_store import BASE, DataverseTestClient


@pytest.fixture
def contacts(dv_store: Store, dv_client: DataverseTestClient) -> list[uuid.UUID]:
    names = ["OBrian", "OBryan", "O'Brian", "O'Bryan", "Smith", "smith", "Jones"]
    return dv_store.bulk_insert(
        "contact",
        [{"firstname": f"F{i}", "lastname": n} for i, n in enumerate(names)],
        as_user=dv_client.principal.user_id,
    )


def values(client: DataverseTestClient, url: str, **headers: str) -> list[dict[str, object]]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


class TestFilter:
    def test_doubled_quote(self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]) -> None:
        rows = values(dv_client, "contacts?$select=lastname&$filter=lastname eq 'O''Bryan'")
        assert [r["lastname"] for r in rows] == ["O'Bryan"]

    def test_unterminated_literal_message(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        response = dv_client.get("contacts?$select=lastname&$filter=lastname eq 'O'Bryan'")
        assert response.status_code == 400
        assert (
            response.json()["error"]["message"]
            == "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."
        )

    def test_strings_compare_case_insensitively(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        rows = values(dv_client, "contacts?$select=lastname&$filter=lastname eq 'SMITH'")
        assert sorted(r["lastname"] for r in rows) == ["Smith", "smith"]

    def test_in_with_json_array_alias(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        url = (
            "contacts?$select=fullname&$filter=Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)&@p1='lastname'&@p2="
            + urllib.parse.quote('["OBrian","OBryan","O\'Brian","O\'Bryan"]')
        )
        rows = values(dv_client, url)
        assert sorted(r["fullname"] for r in rows) == [
            "F0 OBrian",
            "F1 OBryan",
            "F2 O'Brian",
            "F3 O'Bryan",
        ]

    def test_single_quoted_array_with_quote_is_invalid_json(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        response = dv_client.get(
            "contacts?$filter=Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['O'Brian'])"
        )
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith(
            "Invalid JSON. A comma character ',' was expected in scope 'Array'"
        )

    def test_between_microsoft_example(
        self, dv_store: Store, dv_client: DataverseTestClient
    ) -> None:
        for n in (4, 5, 100, 2000, 2001):
            dv_store.insert(
                "account",
                {"name": f"A{n}", "numberofemployees": n},
                as_user=dv_client.principal.user_id,
            )
        rows = values(
            dv_client,
            'accounts?$select=name,numberofemployees&$filter=Microsoft.Dynamics.CRM.Between(PropertyName=\'numberofemployees\',PropertyValues=["5","2000"])',
        )
        assert sorted(r["numberofemployees"] for r in rows) == [5, 100, 2000]

    def test_last_x_hours(self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]) -> None:
        rows = values(
            dv_client,
            "contacts?$select=lastname&$filter=Microsoft.Dynamics.CRM.LastXHours(PropertyName=@p1,PropertyValue=@p2)&@p1='modifiedon'&@p2=12",
        )
        assert len(rows) == 7

    def test_hierarchy_functions(self, dv_client: DataverseTestClient, dv_store: Store) -> None:
        user = dv_client.principal.user_id
        root = dv_store.insert("account", {"name": "root"}, as_user=user)
        child = dv_store.insert("account", {"name": "child", "parentaccountid": root}, as_user=user)
        leaf = dv_store.insert(
            "account", {"name": "grandchild", "parentaccountid": child}, as_user=user
        )
        dv_store.insert("account", {"name": "stranger"}, as_user=user)

        def names(function: str, record: uuid.UUID) -> list[str]:
            args = f"PropertyName='accountid',PropertyValue='{record}'"
            expr = f"Microsoft.Dynamics.CRM.{function}({args})"
            return sorted(
                str(r["name"]) for r in values(dv_client, f"accounts?$select=name&$filter={expr}")
            )

        assert names("Under", root) == ["child", "grandchild"]
        assert names("UnderOrEqual", child) == ["child", "grandchild"]
        assert names("NotUnder", root) == ["root", "stranger"]
        assert names("Above", leaf) == ["child", "root"]
        assert names("AboveOrEqual", child) == ["child", "root"]

    def test_query_functions_cannot_be_negated(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.get(
            "accounts?$filter=not Microsoft.Dynamics.CRM.Last7Days(PropertyName='modifiedon')"
        )
        assert response.status_code == 400
        assert (
            response.json()["error"]["message"]
            == "Not operator along with the Custom Named Condition operators is not allowed"
        )

    def test_contains_startswith_endswith_and_wildcards(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        assert len(values(dv_client, "contacts?$filter=contains(lastname,'bry')")) == 2
        assert len(values(dv_client, "contacts?$filter=startswith(lastname,'o''')")) == 2
        assert len(values(dv_client, "contacts?$filter=endswith(lastname,'ITH')")) == 2
        assert (
            len(values(dv_client, "contacts?$filter=contains(lastname,'o_br')")) == 2
        )  # `_` is a wildcard

    def test_null_checks_and_logic(self, dv_client: DataverseTestClient, dv_store: Store) -> None:
        user = dv_client.principal.user_id
        dv_store.insert("account", {"name": "Rich", "revenue": 10}, as_user=user)
        dv_store.insert("account", {"name": "Unknown"}, as_user=user)
        assert [r["name"] for r in values(dv_client, "accounts?$filter=revenue ne null")] == [
            "Rich"
        ]
        assert [
            r["name"]
            for r in values(
                dv_client, "accounts?$filter=revenue eq null and (statecode eq 0 or statecode eq 1)"
            )
        ] == ["Unknown"]

    def test_lookup_value_filter_with_bare_and_quoted_guid(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        user = dv_client.principal.user_id
        assert len(values(dv_client, f"contacts?$filter=_ownerid_value eq {user}")) == 7
        assert len(values(dv_client, f"contacts?$filter=_ownerid_value eq '{user}'")) == 7
        assert values(dv_client, f"contacts?$filter=_ownerid_value eq {uuid.uuid4()}") == []

    def test_navigation_path_filter(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        dv_client.post(
            "accounts",
            json={"name": "A", "primarycontactid@odata.bind": f"/contacts({contacts[4]})"},
        )
        rows = values(
            dv_client, "accounts?$select=name&$filter=primarycontactid/fullname eq 'f4 smith'"
        )
        assert [r["name"] for r in rows] == ["A"]

    def test_lambda_any_and_all(self, dv_client: DataverseTestClient) -> None:
        def account_with_tasks(name: str, states: list[int]) -> None:
            url = dv_client.post("accounts", json={"name": name}).headers["OData-EntityId"]
            account_id = url.rsplit("(", 1)[1].rstrip(")")
            for i, state in enumerate(states):
                bind = f"/accounts({account_id})"
                task = dv_client.post(
                    "tasks",
                    json={
                        "subject": f"{name}-{i}",
                        "regardingobjectid_account_task@odata.bind": bind,
                    },
                ).headers["OData-EntityId"]
                if state:
                    dv_client.patch(task, json={"statecode": state, "statuscode": 5})

        account_with_tasks("none", [])
        account_with_tasks("open", [0, 0])
        account_with_tasks("mixed", [0, 1])
        account_with_tasks("done", [1, 1])

        def names(expr: str) -> list[str]:
            rows = values(dv_client, f"accounts?$select=name&$filter={expr}&$orderby=name")
            return [str(r["name"]) for r in rows]

        assert names("Account_Tasks/any(t:t/statecode eq 1)") == ["done", "mixed"]
        assert names("Account_Tasks/all(t:t/statecode eq 1)") == ["done", "none"]
        assert names("Account_Tasks/any()") == ["done", "mixed", "open"]
        assert names("Account_Tasks/any(t:contains(t/subject,'OPEN'))") == ["open"]

    def test_unknown_column_in_filter(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.get("accounts?$filter=nosuch eq 1")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "0x0"

    @pytest.mark.parametrize(
        "option", ["fetchXml=%3Cfetch%2F%3E", "sql=SELECT%20name%20FROM%20account"]
    )
    def test_fetchxml_and_sql_are_refused_not_ignored(
        self, dv_client: DataverseTestClient, option: str
    ) -> None:
        response = dv_client.get(f"accounts?{option}")
        assert response.status_code == 501
        assert "not supported by the local server" in response.json()["error"]["message"]

    @pytest.mark.parametrize("option", ["$skip=1", "$search=x", "$format=json"])
    def test_unsupported_options(self, dv_client: DataverseTestClient, option: str) -> None:
        assert dv_client.get(f"accounts?{option}").status_code == 400


class TestOrderTopCount:
    def test_orderby_and_top(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        rows = values(
            dv_client, "contacts?$select=lastname&$orderby=lastname desc,firstname asc&$top=3"
        )
        # Case-insensitive sort: the two Smiths tie and fall back to firstname (F4 before F5).
        assert [r["lastname"] for r in rows] == ["Smith", "smith", "OBryan"]

    def test_count_true_and_count_segment(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        body = dv_client.get("contacts?$select=lastname&$count=true&$top=2").json()
        assert body["@odata.count"] == 7
        response = dv_client.get("contacts/$count")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.text == "7"

    def test_total_record_count_annotations(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        prefer = 'odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"'  # noqa: E501 - Microsoft's exact URL
        body = dv_client.get("contacts?$count=true", headers={"Prefer": prefer}).json()
        assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == 7
        assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is False
        without = dv_client.get("contacts", headers={"Prefer": prefer}).json()
        assert without["@Microsoft.Dynamics.CRM.totalrecordcount"] == -1


class TestApply:
    def test_aggregate_and_groupby(self, dv_store: Store, dv_client: DataverseTestClient) -> None:
        user = dv_client.principal.user_id
        rows = [
            {"name": "a", "revenue": 100, "industrycode": 1},
            {"name": "b", "revenue": 300, "industrycode": 1},
            {"name": "c", "revenue": 50, "industrycode": 2},
            {"name": "d", "industrycode": 2},
        ]
        dv_store.bulk_insert("account", rows, as_user=user)
        total = values(
            dv_client,
            "accounts?$apply=aggregate(revenue with sum as total,revenue with average as mean,"
            "$count as n,industrycode with countdistinct as kinds)",
        )
        assert total == [{"total": 450.0, "mean": 150.0, "n": 4, "kinds": 2}]
        grouped = values(
            dv_client,
            "accounts?$apply=groupby((industrycode),"
            "aggregate(revenue with max as top,$count as n))",
        )
        assert grouped == [
            {"industrycode": 1, "top": 300.0, "n": 2},
            {"industrycode": 2, "top": 50.0, "n": 2},
        ]
        filtered = values(
            dv_client,
            "accounts?$apply=filter(revenue gt 60)/"
            "groupby((_ownerid_value),aggregate($count as n))",
        )
        assert filtered == [{"_ownerid_value": str(user), "n": 2}]

    def test_unknown_aggregate_function(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.get("accounts?$apply=aggregate(revenue with median as m)")
        assert response.status_code == 400
        assert "median" in response.json()["error"]["message"]


class TestPaging:
    def test_maxpagesize_pages_with_opaque_skiptoken(
        self, dv_store: Store, dv_client: DataverseTestClient
    ) -> None:
        ids = dv_store.bulk_insert(
            "account",
            [{"name": f"A{i:03d}"} for i in range(25)],
            as_user=dv_client.principal.user_id,
        )
        seen: list[str] = []
        url: str | None = "accounts?$select=name&$orderby=name desc"
        pages = 0
        while url:
            response = dv_client.get(url, headers={"Prefer": "odata.maxpagesize=10"})
            assert response.headers["Preference-Applied"] == "odata.maxpagesize=10"
            body = response.json()
            seen.extend(r["name"] for r in body["value"])
            url = body.get("@odata.nextLink")
            if url:
                assert url.startswith(f"{BASE}/accounts?")
                assert "$skiptoken=" in url
            pages += 1
        assert pages == 3
        assert seen == [f"A{i:03d}" for i in reversed(range(25))]
        assert len(ids) == 25

    def test_top_ignored_with_maxpagesize(
        self, dv_store: Store, dv_client: DataverseTestClient
    ) -> None:
        dv_store.bulk_insert(
            "account", [{"name": f"A{i}"} for i in range(6)], as_user=dv_client.principal.user_id
        )
        body = dv_client.get("accounts?$top=2", headers={"Prefer": "odata.maxpagesize=5"}).json()
        assert len(body["value"]) == 5
        assert "@odata.nextLink" in body
        top = dv_client.get("accounts?$top=2").json()
        assert len(top["value"]) == 2
        assert "@odata.nextLink" not in top

    def test_paging_by_nullable_column(
        self, dv_store: Store, dv_client: DataverseTestClient
    ) -> None:
        rows = [{"name": f"A{i}", "revenue": (i if i % 3 else None)} for i in range(12)]
        dv_store.bulk_insert("account", rows, as_user=dv_client.principal.user_id)
        for direction in ("asc", "desc"):
            seen: list[str] = []
            url: str | None = f"accounts?$select=name,revenue&$orderby=revenue {direction}"
            while url:
                body = dv_client.get(url, headers={"Prefer": "odata.maxpagesize=4"}).json()
                seen.extend(r["name"] for r in body["value"])
                url = body.get("@odata.nextLink")
            assert sorted(seen) == sorted(r["name"] for r in rows)
            assert len(seen) == 12

    def test_maxpagesize_above_5000_is_capped(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.get("accounts", headers={"Prefer": "odata.maxpagesize=9000"})
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=5000"

    def test_multiple_prefer_headers_are_all_applied(
        self, dv_client: DataverseTestClient, contacts: list[uuid.UUID]
    ) -> None:
        response = dv_client.get(
            "contacts?$select=lastname",
            headers=[
                ("Prefer", "odata.maxpagesize=3"),
                ("Prefer", 'odata.include-annotations="*"'),
            ],
        )
        applied = response.headers["Preference-Applied"]
        assert "odata.maxpagesize=3" in applied
        assert 'odata.include-annotations="*"' in applied


class TestExpandAndAnnotations:
    def test_expand_single_and_collection(self, dv_client: DataverseTestClient) -> None:
        contact = dv_client.post(
            "contacts", json={"firstname": "Yvonne", "lastname": "McKay"}
        ).headers["OData-EntityId"]
        account = dv_client.post(
            "accounts", json={"name": "A", "primarycontactid@odata.bind": contact}
        ).headers["OData-EntityId"]
        account_id = account.rsplit("(", 1)[1].rstrip(")")
        dv_client.post(
            "tasks",
            json={
                "subject": "T1",
                "regardingobjectid_account_task@odata.bind": f"/accounts({account_id})",
            },
        )
        body = dv_client.get(
            f"accounts({account_id})?$select=name&$expand=primarycontactid($select=fullname),Account_Tasks($select=subject)"
        ).json()
        assert body["primarycontactid"]["fullname"] == "Yvonne McKay"
        assert [t["subject"] for t in body["Account_Tasks"]] == ["T1"]
        ref = dv_client.get("accounts?$expand=primarycontactid/$ref").json()["value"][0]
        assert ref["primarycontactid"] == {"@odata.id": contact}

    def test_expand_ref_on_collection_is_rejected(self, dv_client: DataverseTestClient) -> None:
        dv_client.post("accounts", json={"name": "A"})
        response = dv_client.get("accounts?$expand=Account_Tasks/$ref")
        assert response.status_code == 400
        assert response.json()["error"] == {
            "code": "0x80060888",
            "message": "Expand with $ref is only supported on lookup type navigation property.",
        }

    def test_formatted_values_microsoft_examples(self, dv_client: DataverseTestClient) -> None:
        dv_client.post("accounts", json={"name": "A", "revenue": 20000, "customertypecode": 1})
        response = dv_client.get(
            "accounts?$select=name,revenue,customertypecode,statecode",
            headers={
                "Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
            },
        )
        assert (
            response.headers["Preference-Applied"]
            == 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
        )
        row = response.json()["value"][0]
        assert row["revenue@OData.Community.Display.V1.FormattedValue"] == "$20,000.00"
        assert row["customertypecode@OData.Community.Display.V1.FormattedValue"] == "Competitor"
        assert row["statecode@OData.Community.Display.V1.FormattedValue"] == "Active"
        keys = list(row)
        assert (
            keys.index("revenue@OData.Community.Display.V1.FormattedValue")
            == keys.index("revenue") - 1
        )
