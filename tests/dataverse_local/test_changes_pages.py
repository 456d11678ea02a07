"""Change-tracking pages read only the selected columns, straight from the driver's cursor
(`changes._dict_rows`, `Serializer.sql_columns`): they must say exactly what a plain
collection read says about the same rows, annotations and companion columns included."""

from __future__ import annotations

from typing import Any

from tests.fixtures.dataverse_store import DataverseTestClient

SELECT = "name,revenue,customertypecode,creditonhold,modifiedon,_ownerid_value,websiteurl"
ANNOTATED = {
    "Prefer": 'odata.include-annotations="*"',
}


def _rows(client: DataverseTestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    response = client.get(f"accounts?$select={SELECT}", headers=headers)
    assert response.status_code == 200, response.text
    tracking = "odata.track-changes" in headers["Prefer"]
    assert ("odata.track-changes" in response.headers.get("Preference-Applied", "")) == tracking
    return {row["accountid"]: row for row in response.json()["value"]}


def test_tracked_page_matches_a_plain_read(dv_client: DataverseTestClient) -> None:
    for i, (revenue, kind, hold) in enumerate(
        [(1234.5, 1, True), (0.125, 2, False), (2.675, 3, None), (None, None, True)]
    ):
        body: dict[str, Any] = {"name": f"Columns {i}", "websiteurl": f"https://c{i}.example"}
        if revenue is not None:
            body["revenue"] = revenue
        if kind is not None:
            body["customertypecode"] = kind
        if hold is not None:
            body["creditonhold"] = hold
        assert dv_client.post("accounts", json=body).status_code == 204

    plain = _rows(dv_client, ANNOTATED)
    tracked = _rows(dv_client, {"Prefer": f"odata.track-changes,{ANNOTATED['Prefer']}"})
    assert len(plain) == 4
    assert tracked == plain
    some = next(r for r in tracked.values() if r["name"] == "Columns 0")
    # the companions a Money column brings, and the labels, are there
    assert "_transactioncurrencyid_value" in some
    assert some["revenue"] == 1234.5
    assert some["revenue@OData.Community.Display.V1.FormattedValue"] == "$1,234.50"
    assert some["creditonhold"] is True
    assert "customertypecode@OData.Community.Display.V1.FormattedValue" in some
    assert some["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "systemuser"
