"""The store's in-process API (used by seeding, sign-in and benchmarks) and its persistence."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from pathlib import Path

import pytest

from gtmsync.dataverse_local.schema import AlternateKey, standard_tables
from gtmsync.dataverse_local.store import Store


class TestStore:
    def test_insert_get_count(self, dv_store: Store) -> None:
        user = uuid.uuid4()
        account = dv_store.insert("account", {"name": "Contoso", "revenue": 12.5}, as_user=user)
        contact = dv_store.insert(
            "contact",
            {"firstname": "Ada", "lastname": "L", "parentcustomerid": ("account", account)},
            as_user=user,
        )
        row = dv_store.get("contact", contact)
        assert row is not None
        assert row["fullname"] == "Ada L"
        assert row["parentcustomerid"] == account
        assert row["parentcustomerid@type"] == "account"
        assert row["ownerid"] == user
        assert row["createdby"] == user
        assert dv_store.count("contact") == 1
        assert dv_store.get("contact", uuid.uuid4()) is None

    def test_versions_increase_store_wide(self, dv_store: Store) -> None:
        user = uuid.uuid4()
        a = dv_store.get("account", dv_store.insert("account", {"name": "a"}, as_user=user))
        c = dv_store.get("contact", dv_store.insert("contact", {"lastname": "c"}, as_user=user))
        assert a is not None
        assert c is not None
        assert c["versionnumber"] > a["versionnumber"]

    def test_find_systemuser(self, dv_store: Store) -> None:
        oid, app = uuid.uuid4(), uuid.uuid4()
        user_id = dv_store.insert(
            "systemuser",
            {
                "firstname": "App",
                "lastname": "User",
                "internalemailaddress": "a@x",
                "domainname": "a@x",
                "azureactivedirectoryobjectid": oid,
                "applicationid": app,
            },
            as_user=uuid.uuid4(),
        )
        by_oid = dv_store.find_systemuser(aad_object_id=str(oid).upper())
        assert by_oid is not None
        assert by_oid["systemuserid"] == user_id
        by_app = dv_store.find_systemuser(application_id=str(app))
        assert by_app is not None
        assert by_app["fullname"] == "App User"
        assert dv_store.find_systemuser(systemuserid=uuid.uuid4()) is None
        with pytest.raises(ValueError, match="needs aad_object_id"):
            dv_store.find_systemuser()

    def test_unknown_column_names_the_fix(self, dv_store: Store) -> None:
        with pytest.raises(ValueError, match="account has no column 'nosuch'"):
            dv_store.insert("account", {"nosuch": 1}, as_user=uuid.uuid4())

    def test_keys_and_tracking_survive_restart(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'dv.db'}"
        store = Store.open(url)
        with store.write() as conn:
            store.add_key(conn, "account", AlternateKey("new_num", ("accountnumber",)))
            store.set_change_tracking(conn, "activityparty", True)
        store.engine.dispose()
        again = Store.open(url)
        assert again.catalogue.tables["account"].keys == [
            AlternateKey("new_num", ("accountnumber",))
        ]
        assert again.catalogue.tables["activityparty"].change_tracking is True
        again.engine.dispose()

    def test_reload_keeps_column_security(self, dv_store: Store) -> None:
        revenue = dv_store.catalogue.tables["account"].attributes["revenue"]
        dv_store.catalogue.add_attribute("account", dataclasses.replace(revenue, secured=True))
        dv_store.reload_schema()
        assert dv_store.catalogue.tables["account"].attributes["revenue"].secured is True
        assert dv_store.catalogue.tables["account"].attributes["name"].secured is False

    def test_in_memory_store_is_shared_across_threads(self) -> None:
        store = Store.open("sqlite://")
        record = store.insert("account", {"name": "memory"}, as_user=uuid.uuid4())
        found: list[dict[str, object] | None] = []
        worker = threading.Thread(target=lambda: found.append(store.get("account", record)))
        worker.start()
        worker.join()
        assert found[0] is not None
        assert found[0]["name"] == "memory"
        store.engine.dispose()

    def test_filtered_lookups_use_indexes(self, dv_store: Store) -> None:
        sql = dv_store.tables["account"]
        with dv_store.read() as conn:
            plan = conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN SELECT * FROM {sql.name} WHERE lower(name) = 'x'"
            ).all()
            owner_plan = conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN SELECT * FROM {sql.name} WHERE ownerid = 'x' ORDER BY "
                "accountid LIMIT 10"
            ).all()
        assert "ix_account_name_lower" in str(plan)
        assert "ix_account_ownerid" in str(owner_plan)

    def test_catalogue_has_the_spec_tables(self) -> None:
        tables = standard_tables()
        assert {
            "account",
            "contact",
            "lead",
            "opportunity",
            "systemuser",
            "businessunit",
            "team",
            "transactioncurrency",
            "product",
            "task",
            "appointment",
            "phonecall",
            "email",
            "activityparty",
            "organization",
        } <= set(tables)
        assert tables["account"].attributes["name"].max_length == 160
        assert (
            tables["contact"].navigation_properties()["parentcustomerid_contact"].target
            == "contact"
        )
        assert "regardingobjectid_account_task" in tables["task"].navigation_properties()
        assert tables["opportunity"].attributes["estimatedclosedate"].date_only
