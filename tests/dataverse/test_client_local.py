"""The client against the local Dataverse server over HTTPS: every feature, real parts."""

from __future__ import annotations

import uuid

import pytest

from gtmsync.dataverse import DataverseClient, odata
from tests.dataverse.conftest import LocalOrg


class TestConnect:
    def test_who_am_i_is_the_application_user(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        assert dv.who_am_i().user_id == local_org.app.systemuserid

    def test_every_request_reaches_the_hook(self, local_org: LocalOrg, dv: DataverseClient) -> None:
        dv.who_am_i()
        assert [(c.method, c.resource) for c in local_org.calls] == [("GET", "WhoAmI")]


class TestCrud:
    def test_create_retrieve_update_delete(self, dv: DataverseClient) -> None:
        account_id = dv.create("accounts", {"name": "O'Brien & Sons", "industrycode": 7})
        record = dv.retrieve("accounts", account_id, select=["name", "industrycode", "ownerid"])
        assert record["name"] == "O'Brien & Sons"
        assert record.formatted("industrycode") == "Consulting"
        owner = record.lookup("ownerid")
        assert owner is not None and owner.logical_name == "systemuser"
        dv.update("accounts", account_id, {"name": "Renamed"})
        assert dv.retrieve("accounts", account_id, select=["name"])["name"] == "Renamed"
        assert dv.delete("accounts", account_id)
        assert not dv.delete("accounts", account_id, missing_ok=True)

    def test_filter_with_quotes_finds_the_row(self, dv: DataverseClient) -> None:
        dv.create("accounts", {"name": "O'Brien"})
        dv.create("accounts", {"name": "OBrien"})
        rows = list(dv.query("accounts", select=["name"], filter=odata.eq("name", "O'Brien")))
        assert [r["name"] for r in rows] == ["O'Brien"]
