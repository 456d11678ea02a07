"""Change tracking: track-changes, delta links, tombstones, expiry and misuse errors (spec §6)."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest

from gtmsync.dataverse_local.changes import make_token
from gtmsync.dataverse_local.context import WebApiSettings
from gtmsync.dataverse_local.principal import Principal
from gtmsync.dataverse_local.store import Store
from gtmsync.dataverse_local.webapi import create_webapi_app
from tests.fixtures.dataverse_store import BASE, DataverseTestClient

TRACK = {"Prefer": "odata.track-changes"}


def initial(
    client: DataverseTestClient, url: str = "accounts?$select=name,accountnumber,telephone1,fax"
) -> dict[str, object]:
    response = client.get(url, headers=TRACK)
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "odata.track-changes"
    return dict(response.json())


class TestChangeTracking:
    def test_initial_sync_then_delta_with_updates_and_deletes(
        self, dv_client: DataverseTestClient
    ) -> None:
        kept = dv_client.post("accounts", json={"name": "Kept"}).headers["OData-EntityId"]
        gone = dv_client.post("accounts", json={"name": "Gone"}).headers["OData-EntityId"]
        first = initial(dv_client)
        assert sorted(r["name"] for r in first["value"]) == ["Gone", "Kept"]
        delta_link = str(first["@odata.deltaLink"])
        assert delta_link.startswith(
            f"{BASE}/accounts?$select=name,accountnumber,telephone1,fax&$deltatoken="
        )
        token = urllib.parse.unquote(delta_link.split("$deltatoken=")[1])
        version, _, stamp = token.partition("!")
        assert version.isdigit()
        assert dt.datetime.strptime(stamp + "+0000", "%m/%d/%Y %H:%M:%S%z") <= dt.datetime.now(
            dt.UTC
        )

        assert dv_client.get(delta_link).json()["value"] == []
        dv_client.patch(kept, json={"telephone1": "555"}, headers={"If-Match": "*"})
        dv_client.delete(gone)
        dv_client.post("accounts", json={"name": "New"})
        delta = dv_client.get(delta_link).json()
        assert (
            delta["@odata.context"]
            == f"{BASE}/$metadata#accounts(name,accountnumber,telephone1,fax)/$delta"
        )
        changed = [r for r in delta["value"] if "name" in r]
        removed = [r for r in delta["value"] if r.get("reason") == "deleted"]
        assert sorted(r["name"] for r in changed) == ["Kept", "New"]
        assert all("@odata.etag" in r for r in changed)
        assert removed == [
            {
                "@odata.context": f"{BASE}/$metadata#accounts/$deletedEntity",
                "id": gone.rsplit("(", 1)[1].rstrip(")"),
                "reason": "deleted",
            }
        ]
        assert (
            delta["value"].index(removed[0]) == len(delta["value"]) - 1
        )  # deletes come after upserts
        assert dv_client.get(str(delta["@odata.deltaLink"])).json()["value"] == []
        count = dv_client.get(delta_link.replace("accounts?", "accounts/$count?"))
        assert count.text == "3"

    def test_paged_initial_sync_gives_delta_link_on_last_page(
        self, dv_store: Store, dv_client: DataverseTestClient
    ) -> None:
        dv_store.bulk_insert(
            "account", [{"name": f"A{i}"} for i in range(7)], as_user=dv_client.principal.user_id
        )
        url: str | None = "accounts?$select=name"
        pages: list[dict[str, object]] = []
        while url:
            # Only the first request asks for tracking; the nextLinks alone keep the sync going.
            prefer = "odata.maxpagesize=3" if pages else "odata.track-changes,odata.maxpagesize=3"
            body = dv_client.get(url, headers={"Prefer": prefer}).json()
            pages.append(body)
            url = body.get("@odata.nextLink")  # type: ignore[assignment]
            if url and len(pages) == 1:
                dv_client.post("accounts", json={"name": "written during sync"})
        assert [("@odata.deltaLink" in p) for p in pages] == [False, False, True]
        delta = dv_client.get(str(pages[-1]["@odata.deltaLink"])).json()
        assert [r["name"] for r in delta["value"]] == ["written during sync"]

    @pytest.mark.parametrize(
        "option", ["$filter=name eq 'x'", "$orderby=name", "$expand=primarycontactid", "$top=1"]
    )
    def test_unsupported_options(self, dv_client: DataverseTestClient, option: str) -> None:
        response = dv_client.get(f"accounts?$select=name&{option}", headers=TRACK)
        assert response.status_code == 400
        name = option.split("=", maxsplit=1)[0].lstrip("$")
        assert (
            response.json()["error"]["message"]
            == f'The "${name}" query parameter isn\'t supported when Change Tracking is enabled.'
        )

    def test_table_without_change_tracking(self, dv_client: DataverseTestClient) -> None:
        response = dv_client.get("activityparties", headers=TRACK)
        assert response.status_code == 400
        assert (
            "Change tracking is not enabled for the entity 'activityparty'"
            in response.json()["error"]["message"]
        )

    def test_expired_token(self, dv_store: Store, dv_admin: Principal) -> None:
        app = create_webapi_app(
            dv_store,
            principal_resolver=lambda _r: dv_admin,
            settings=WebApiSettings(change_tracking_expiry_days=2),
        )
        with DataverseTestClient(app, base_url=BASE + "/") as client:
            old = make_token(1000, dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
            response = client.get(f"accounts?$select=name&$deltatoken={urllib.parse.quote(old)}")
            assert response.status_code == 400
            assert "expired" in response.json()["error"]["message"]
            fresh = make_token(1000, dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
            assert (
                client.get(
                    f"accounts?$select=name&$deltatoken={urllib.parse.quote(fresh)}"
                ).status_code
                == 200
            )
