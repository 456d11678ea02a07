"""The client against the local Dataverse server over HTTPS: every feature, real parts.

Fault tests inject the server's own faults (429 storms, 5xx, dropped connections mid-response
and mid-`$batch`, token expiry) and then count rows in the server's store, which is how
"retried writes never duplicate" is shown rather than assumed.
"""

from __future__ import annotations

import re
import threading
import uuid
from urllib.parse import quote

import httpx
import pytest

from gtmsync.dataverse import (
    BatchOperation,
    BudgetExceededError,
    ChangeSet,
    ChangeTokenExpiredError,
    ConcurrencyError,
    DataverseClient,
    Deletion,
    DuplicateRecordError,
    NotFoundError,
    RequestInfo,
    RetryPolicy,
    ThrottledError,
    TransportError,
    ValidationError,
    odata,
)
from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.dataverse_local.limits import LimitConfig
from tests.dataverse.conftest import LocalOrg


def account_key(dv: DataverseClient) -> None:
    dv.metadata.create_alternate_key(
        "account", schema_name="gtm_accountnumber", attributes=["accountnumber"]
    )


class TestConnect:
    def test_who_am_i_is_the_application_user(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        assert dv.who_am_i().user_id == local_org.app.systemuserid

    def test_every_request_reaches_the_hook(self, local_org: LocalOrg, dv: DataverseClient) -> None:
        dv.who_am_i()
        assert [(c.method, c.resource, c.attempt) for c in local_org.calls] == [
            ("GET", "WhoAmI", 1)
        ]

    def test_parallelism_hint_is_exposed(self, local_org: LocalOrg, dv: DataverseClient) -> None:
        local_org.server.limits.config = LimitConfig(dop_hint=6)
        dv.who_am_i()
        assert dv.dop_hint == 6

    def test_budget_veto_stops_writes_at_the_limit(self, local_org: LocalOrg) -> None:
        def budget(info: RequestInfo) -> None:
            if info.method != "GET" and sum(1 for c in seen if c.method != "GET") >= 3:
                raise BudgetExceededError("API budget for today is spent")
            seen.append(info)

        seen: list[RequestInfo] = []
        written = 0
        with local_org.client(on_request=budget) as client:
            for i in range(5):
                try:
                    client.create("accounts", {"name": f"budget {i}"})
                except BudgetExceededError:
                    break
                written += 1
        assert written == 3
        assert local_org.count("account") == 3


class TestCrud:
    def test_create_retrieve_update_delete(self, dv: DataverseClient) -> None:
        account_id = dv.create("accounts", {"name": "O'Brien & Sons", "industrycode": 7})
        record = dv.retrieve("accounts", account_id, select=["name", "industrycode", "ownerid"])
        assert record["name"] == "O'Brien & Sons"
        assert record.formatted("industrycode") == "Consulting"
        owner = record.lookup("ownerid")
        assert owner is not None
        assert owner.logical_name == "systemuser"
        dv.update("accounts", account_id, {"name": "Renamed"})
        assert dv.retrieve("accounts", account_id, select=["name"])["name"] == "Renamed"
        assert dv.delete("accounts", account_id)
        assert not dv.delete("accounts", account_id, missing_ok=True)
        with pytest.raises(NotFoundError) as caught:
            dv.retrieve("accounts", account_id)
        assert caught.value.request_id

    def test_filter_with_quotes_finds_exactly_the_row(self, dv: DataverseClient) -> None:
        dv.create("accounts", {"name": "O'Brien"})
        dv.create("accounts", {"name": "OBrien"})
        rows = list(dv.query("accounts", select=["name"], filter=odata.eq("name", "O'Brien")))
        assert [r["name"] for r in rows] == ["O'Brien"]

    def test_upsert_by_alternate_key_creates_then_updates(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        account_key(dv)
        first = dv.upsert("accounts", {"accountnumber": "AC-'1"}, {"name": "First"})
        second = dv.upsert("accounts", {"accountnumber": "AC-'1"}, {"name": "Second"})
        assert (first.created, second.created) == (True, False)
        assert local_org.count("account") == 1
        record = dv.retrieve_by_key("accounts", {"accountnumber": "AC-'1"}, select=["name"])
        assert record["name"] == "Second"

    def test_upsert_modes(self, dv: DataverseClient) -> None:
        row_id = uuid.uuid4()
        dv.upsert("accounts", row_id, {"name": "new"}, mode="create_only")
        with pytest.raises(DuplicateRecordError):
            dv.upsert("accounts", row_id, {"name": "again"}, mode="create_only")
        with pytest.raises(NotFoundError):
            dv.upsert("accounts", uuid.uuid4(), {"name": "ghost"}, mode="update_only")

    def test_duplicate_detection_on_request(self, local_org: LocalOrg, dv: DataverseClient) -> None:
        dv.create("accounts", {"name": "Contoso"})
        dv.create("accounts", {"name": "Contoso"})  # detection is off unless asked for
        with pytest.raises(DuplicateRecordError) as caught:
            dv.create("accounts", {"name": "contoso"}, detect_duplicates=True)
        assert (caught.value.status, caught.value.code) == (500, "0x80040333")
        assert not caught.value.transient
        assert local_org.count("account") == 2

    def test_stale_etag_is_a_concurrency_error(self, dv: DataverseClient) -> None:
        row_id = dv.create("accounts", {"name": "v1"})
        etag = dv.retrieve("accounts", row_id, select=["name"]).etag
        assert etag is not None
        dv.update("accounts", row_id, {"name": "v2"}, etag=etag)
        with pytest.raises(ConcurrencyError):
            dv.update("accounts", row_id, {"name": "v3"}, etag=etag)

    def test_bind_sets_a_lookup(self, dv: DataverseClient) -> None:
        account_id = dv.create("accounts", {"name": "Parent"})
        contact_id = dv.create(
            "contacts",
            {
                "lastname": "Child",
                "parentcustomerid_account@odata.bind": dv.bind("accounts", account_id),
            },
        )
        parent = dv.retrieve("contacts", contact_id, select=["_parentcustomerid_value"]).lookup(
            "parentcustomerid"
        )
        assert parent is not None
        assert (parent.id, parent.logical_name) == (account_id, "account")


class TestQueries:
    def test_pages_follow_next_links(self, dv: DataverseClient) -> None:
        dv.create_multiple("accounts", "account", [{"name": f"p{i:02d}"} for i in range(25)])
        pages = list(dv.pages("accounts", select=["name"], page_size=10))
        assert [len(p) for p in pages] == [10, 10, 5]
        assert pages[0].next_link is not None
        names = [r["name"] for p in pages for r in p]
        assert sorted(names) == [f"p{i:02d}" for i in range(25)]

    def test_orderby_top_and_count(self, dv: DataverseClient) -> None:
        dv.create_multiple("accounts", "account", [{"name": n} for n in ["b", "c", "a"]])
        rows = list(
            dv.query("accounts", select=["name"], orderby=odata.orderby(("name", True)), top=2)
        )
        assert [r["name"] for r in rows] == ["c", "b"]
        assert dv.count("accounts") == 3
        assert dv.count("accounts", filter=odata.ne("name", "a")) == 2
        assert dv.total_record_count(["account"]) == {"account": 3}

    def test_bulk_lookup_is_chunked_under_the_url_limit(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        names = [f"Company {i} O'Hara & Co" for i in range(60)]
        dv.create_multiple("accounts", "account", [{"name": n} for n in names])
        local_org.calls.clear()
        found = list(dv.query_in("accounts", "name", names, select=["name"], max_url_length=900))
        assert sorted(r["name"] for r in found) == sorted(names)
        assert len(local_org.calls) > 1


class TestBatch:
    def test_change_set_with_reference_and_mapped_results(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        results = dv.batch(
            [
                ChangeSet(
                    [
                        BatchOperation("POST", "accounts", {"name": "Batch A"}, ref="a"),
                        BatchOperation(
                            "PATCH", "$1", {"telephone1": "555"}, {"If-Match": "*"}, ref="a2"
                        ),
                    ]
                ),
                BatchOperation("GET", "accounts?$select=name,telephone1", ref="read"),
            ]
        )
        assert [r.ref for r in results] == ["a", "a2", "read"]
        assert all(r.ok for r in results)
        assert results[0].entity_id is not None
        assert results[2].json()["value"][0]["telephone1"] == "555"
        assert local_org.count("account") == 1

    def test_continue_on_error_reports_each_failure_against_its_item(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        ops = [
            BatchOperation("POST", "accounts", {"name": name}, ref=i)
            for i, name in enumerate(["ok 1", "x" * 200, "ok 2"])
        ]
        results = dv.batch(ops, continue_on_error=True)
        assert [r.ok for r in results] == [True, False, True]
        assert isinstance(results[1].error, ValidationError)
        assert results[1].ref == 1
        assert local_org.count("account") == 2

    def test_without_continue_on_error_the_batch_stops(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        ops = [
            BatchOperation("POST", "accounts", {"name": name}, ref=i)
            for i, name in enumerate(["ok", "x" * 200, "never"])
        ]
        results = dv.batch(ops)
        assert [r.attempted for r in results] == [True, True, False]
        assert local_org.count("account") == 1

    def test_failed_change_set_rolls_back(self, local_org: LocalOrg, dv: DataverseClient) -> None:
        change_set = ChangeSet(
            [
                BatchOperation("POST", "accounts", {"name": "kept?"}, ref="good"),
                BatchOperation("POST", "accounts", {"name": "x" * 200}, ref="bad"),
            ]
        )
        results = dv.batch([change_set], continue_on_error=True)
        assert all(r.rolled_back for r in results)
        assert local_org.count("account") == 0


class TestBulk:
    def test_create_multiple_is_chunked(self, local_org: LocalOrg) -> None:
        with local_org.client(bulk_chunk_size=10) as client:
            ids = client.create_multiple(
                "accounts", "account", [{"name": f"n{i}"} for i in range(25)]
            )
        assert len(set(ids)) == 25
        bulk_calls = [c for c in local_org.calls if c.method == "POST"]
        assert [c.operations for c in bulk_calls] == [10, 10, 5]
        assert local_org.count("account") == 25

    def test_upsert_multiple_twice_never_duplicates(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        account_key(dv)
        items = [({"accountnumber": f"K{i}"}, {"name": f"v1 {i}"}) for i in range(30)]
        dv.upsert_multiple("accounts", "account", items)
        dv.upsert_multiple(
            "accounts", "account", [(key, {"name": f"v2 {i}"}) for i, (key, _) in enumerate(items)]
        )
        assert local_org.count("account") == 30
        names = {r["name"] for r in dv.query("accounts", select=["name"])}
        assert names == {f"v2 {i}" for i in range(30)}

    def test_update_multiple(self, dv: DataverseClient) -> None:
        ids = dv.create_multiple("accounts", "account", [{"name": "old"} for _ in range(5)])
        dv.update_multiple(
            "accounts",
            "account",
            [{"accountid": str(i), "name": "new"} for i in ids],
            primary_key="accountid",
        )
        assert {r["name"] for r in dv.query("accounts", select=["name"])} == {"new"}


class TestChangeTracking:
    def test_initial_then_delta_with_upserts_and_deletions(self, dv: DataverseClient) -> None:
        ids = dv.create_multiple("accounts", "account", [{"name": f"c{i}"} for i in range(5)])
        feed = dv.changes("accounts", select=["name"], page_size=2)
        pages = list(feed.pages())
        assert len(pages) == 3
        assert sum(len(p.upserts) for p in pages) == 5
        assert all(p.delta_link is None for p in pages[:-1])
        assert feed.delta_link is not None

        dv.update("accounts", ids[0], {"name": "changed"})
        dv.delete("accounts", ids[1])
        new = dv.create("accounts", {"name": "new"})
        delta = dv.changes("accounts", delta_link=feed.delta_link)
        items = list(delta)
        upserted = {r.id("accountid"): r["name"] for r in items if not isinstance(r, Deletion)}
        deleted = [d.id for d in items if isinstance(d, Deletion)]
        assert upserted == {ids[0]: "changed", new: "new"}
        assert deleted == [ids[1]]
        assert delta.delta_link is not None
        assert list(dv.changes("accounts", delta_link=delta.delta_link)) == []

    def test_expired_token_asks_for_a_backfill(self, dv: DataverseClient) -> None:
        feed = dv.changes("accounts", select=["name"])
        list(feed)
        assert feed.delta_link is not None
        stale = re.sub(
            r"\$deltatoken=[^&]+",
            "$deltatoken=" + quote("1!01/01/2020 00:00:00", safe=""),
            feed.delta_link,
        )
        with pytest.raises(ChangeTokenExpiredError, match="backfill"):
            list(dv.changes("accounts", delta_link=stale))

    def test_garbage_token_asks_for_a_backfill(self, dv: DataverseClient) -> None:
        with pytest.raises(ChangeTokenExpiredError):
            list(dv.changes("accounts", delta_link=f"{dv.api_root}/accounts?$deltatoken=junk"))


class TestMetadata:
    def test_tables_attributes_options(self, dv: DataverseClient) -> None:
        account = dv.metadata.table("account")
        assert (account.entity_set_name, account.primary_id_attribute) == ("accounts", "accountid")
        name = dv.metadata.attribute("account", "name")
        assert (name.type, name.max_length, name.required_level) == (
            "String",
            160,
            "ApplicationRequired",
        )
        assert name.readable
        assert name.creatable
        assert name.updatable
        assert not dv.metadata.attribute("account", "createdon").creatable
        options = {o.value: o.label for o in dv.metadata.options("account", "industrycode")}
        assert options[7] == "Consulting"

    def test_cached_until_refresh(self, local_org: LocalOrg, dv: DataverseClient) -> None:
        dv.metadata.attributes("account")
        before = len(local_org.calls)
        dv.metadata.attributes("account")
        assert len(local_org.calls) == before
        dv.metadata.refresh()
        dv.metadata.attributes("account")
        assert len(local_org.calls) > before

    def test_custom_attribute_and_alternate_key(self, dv: DataverseClient) -> None:
        dv.metadata.attributes("account")
        dv.metadata.create_string_attribute(
            "account", schema_name="new_PlatformId", label="Platform id", max_length=64
        )
        created = dv.metadata.attribute("account", "new_platformid")
        assert (created.type, created.max_length, created.is_custom) == ("String", 64, True)
        dv.metadata.create_alternate_key(
            "account", schema_name="new_platformid_key", attributes=["new_platformid"]
        )
        keys = dv.metadata.alternate_keys("account")
        assert [k.attributes for k in keys] == [("new_platformid",)]
        result = dv.upsert("accounts", {"new_platformid": "P-1"}, {"name": "By platform id"})
        assert result.created


class TestFaults:
    def test_429_storm_is_waited_out_and_written_once(self, local_org: LocalOrg) -> None:
        local_org.server.faults.add(
            FaultRule(kind="throttle", count=3, retry_after=0, path="accounts")
        )
        with local_org.client() as client:
            client.create("accounts", {"name": "after the storm"})
        assert [c.attempt for c in local_org.calls] == [1, 2, 3, 4]
        assert local_org.count("account") == 1

    def test_endless_storm_raises_throttled_and_writes_nothing(self, local_org: LocalOrg) -> None:
        local_org.server.faults.add(FaultRule(kind="throttle", retry_after=0, path="accounts"))
        client = local_org.client(retry=RetryPolicy(max_attempts=3, backoff_base=0))
        with client, pytest.raises(ThrottledError) as caught:
            client.create("accounts", {"name": "never"})
        assert caught.value.retry_after == 0
        assert local_org.count("account") == 0

    def test_5xx_on_reads_is_retried(self, local_org: LocalOrg, dv: DataverseClient) -> None:
        dv.create("accounts", {"name": "x"})
        local_org.server.faults.add(FaultRule(kind="error", status=503, count=2, method="GET"))
        assert [r["name"] for r in dv.query("accounts", select=["name"])] == ["x"]

    def test_dropped_upsert_is_resent_and_not_duplicated(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        account_key(dv)
        local_org.server.faults.add(FaultRule(kind="drop", count=2, method="PATCH"))
        result = dv.upsert("accounts", {"accountnumber": "D-1"}, {"name": "dropped twice"})
        assert not result.created  # the first, dropped, attempt created it
        assert local_org.count("account") == 1

    def test_dropped_create_is_not_resent(self, local_org: LocalOrg, dv: DataverseClient) -> None:
        local_org.server.faults.add(
            FaultRule(kind="drop", count=1, method="POST", path="accounts$")
        )
        with pytest.raises(TransportError):
            dv.create("accounts", {"name": "maybe"})
        assert local_org.count("account") == 1  # resending would have made two

    def test_batch_dropped_mid_response_is_resent_without_duplicates(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        account_key(dv)
        ops = [
            BatchOperation("PATCH", f"accounts(accountnumber='B{i}')", {"name": f"b{i}"}, ref=i)
            for i in range(10)
        ]
        local_org.server.faults.add(FaultRule(kind="drop_batch", count=1, after_operations=4))
        results = dv.batch(ops, continue_on_error=True, idempotent=True)
        assert all(r.ok for r in results)
        assert [c.attempt for c in local_org.calls if c.resource == "$batch"] == [1, 2]
        assert local_org.count("account") == 10

    def test_bulk_upserts_survive_drops_and_storms(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        account_key(dv)
        local_org.server.faults.add(FaultRule(kind="drop", count=2, path="UpsertMultiple"))
        local_org.server.faults.add(
            FaultRule(kind="throttle", count=2, retry_after=0, path="UpsertMultiple")
        )
        items = [({"accountnumber": f"U{i}"}, {"name": f"u{i}"}) for i in range(50)]
        dv.upsert_multiple("accounts", "account", items)
        assert local_org.count("account") == 50

    def test_token_expiry_refreshes_once_and_continues(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        dv.who_am_i()
        local_org.server.app.expire_tokens()
        assert dv.who_am_i().user_id == local_org.app.systemuserid
        dv.create("accounts", {"name": "after expiry"})
        assert local_org.count("account") == 1

    def test_random_storm_of_throttles_errors_and_drops_never_duplicates(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        account_key(dv)
        faults = local_org.server.faults
        faults.clear(seed=1234)
        faults.add(FaultRule(kind="throttle", rate=0.3, retry_after=0, method="PATCH"))
        faults.add(FaultRule(kind="error", status=503, rate=0.1, method="PATCH"))
        faults.add(FaultRule(kind="drop", rate=0.15, method="PATCH"))
        patient = RetryPolicy(max_attempts=12, backoff_base=0.01, backoff_max=0.05)
        with local_org.client(retry=patient) as client:
            for i in range(60):
                client.upsert("accounts", {"accountnumber": f"S{i}"}, {"name": f"storm {i}"})
        injected = faults.describe()
        assert local_org.count("account") == 60
        assert sum(c.attempt > 1 for c in local_org.calls) > 0, injected

    def test_token_expiry_fault_rule(self, local_org: LocalOrg, dv: DataverseClient) -> None:
        dv.who_am_i()
        local_org.server.faults.add(FaultRule(kind="token_expiry", count=1))
        dv.create("accounts", {"name": "after the fault"})
        assert local_org.count("account") == 1

    def test_slow_read_times_out_and_is_retried(self, local_org: LocalOrg) -> None:
        local_org.server.faults.add(
            FaultRule(kind="latency", latency_ms=3000, count=1, method="GET", path="accounts")
        )
        with local_org.client(timeout=httpx.Timeout(1.0)) as client:
            client.who_am_i()
            assert list(client.query("accounts", select=["name"])) == []
        assert [c.attempt for c in local_org.calls if c.resource == "accounts"] == [1, 2]

    def test_concurrency_is_bounded_per_org(self, local_org: LocalOrg) -> None:
        local_org.server.limits.config = LimitConfig(max_concurrent=2)
        local_org.server.faults.add(FaultRule(kind="latency", latency_ms=50, method="GET"))
        errors: list[Exception] = []
        with local_org.client(max_concurrency=2, retry=RetryPolicy.never()) as client:
            client.who_am_i()

            def work() -> None:
                try:
                    for _ in range(3):
                        client.who_am_i()
                except Exception as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=work) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert errors == []
        assert len(local_org.calls) == 19

    def test_clients_of_one_org_share_the_limit(self, local_org: LocalOrg) -> None:
        local_org.server.limits.config = LimitConfig(max_concurrent=2)
        local_org.server.faults.add(FaultRule(kind="latency", latency_ms=40, method="GET"))
        errors: list[Exception] = []
        clients = [local_org.client(max_concurrency=2, retry=RetryPolicy.never()) for _ in range(3)]
        for client in clients:
            client.who_am_i()

        def work(client: DataverseClient) -> None:
            try:
                for _ in range(4):
                    client.who_am_i()
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c,)) for c in clients for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for client in clients:
            client.close()
        assert errors == []


@pytest.mark.slow
class TestLongFaultRun:
    def test_bulk_upserts_of_5000_through_a_seeded_storm(
        self, local_org: LocalOrg, dv: DataverseClient
    ) -> None:
        account_key(dv)
        faults = local_org.server.faults
        faults.clear(seed=99)
        faults.add(FaultRule(kind="throttle", rate=0.3, retry_after=0, path="UpsertMultiple"))
        faults.add(FaultRule(kind="drop", rate=0.2, path="UpsertMultiple"))
        faults.add(FaultRule(kind="error", status=502, rate=0.1, path="UpsertMultiple"))
        items = [({"accountnumber": f"L{i:05d}"}, {"name": f"long {i}"}) for i in range(5000)]
        with local_org.client(
            bulk_chunk_size=250, retry=RetryPolicy(max_attempts=15, backoff_base=0.01)
        ) as client:
            client.upsert_multiple("accounts", "account", items)
            client.upsert_multiple("accounts", "account", items)
        assert local_org.count("account") == 5000
