"""Single-fault cases of the request path over `httpx.MockTransport` (CONVENTIONS §19).

Everything that needs a real server (auth endpoints, paging cookies, batch execution,
fault storms) is in `test_client_local.py` against the local Dataverse server over HTTPS.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import httpx
import pytest

from gtmsync.dataverse import (
    AuthenticationError,
    BudgetExceededError,
    ChangeTokenExpiredError,
    DataverseClient,
    Deletion,
    MsalAuth,
    NotFoundError,
    ReconnectRequiredError,
    RequestInfo,
    RetryPolicy,
    ServerError,
    StaticToken,
    ThrottledError,
    TransportError,
)

ORG = "https://org.crm.dynamics.com"
API = f"{ORG}/api/data/v9.2"
Handler = Callable[[httpx.Request], httpx.Response]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(
    handler: Handler,
    *,
    auth: httpx.Auth | None = None,
    sleeps: Sleeps | None = None,
    on_request: Callable[[RequestInfo], None] | None = None,
    max_attempts: int = 4,
) -> DataverseClient:
    policy = RetryPolicy(
        max_attempts=max_attempts, sleep=sleeps if sleeps is not None else Sleeps(), jitter=0
    )
    return DataverseClient(
        ORG,
        auth=auth,
        retry=policy,
        transport=httpx.MockTransport(handler),
        on_request=on_request,
    )


def json_response(status: int, body: object, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def sequence(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


class CountingTokens:
    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls: list[bool] = []

    def token(self, *, force_refresh: bool) -> str:
        self.calls.append(force_refresh)
        if force_refresh:
            self.tokens.pop(0)
        return self.tokens[0]


class TestConstruction:
    def test_plain_http_is_refused_with_the_fix(self) -> None:
        with pytest.raises(ValueError, match="must be an https URL"):
            DataverseClient("http://org.crm.dynamics.com", auth=None)

    def test_concurrency_limit_stays_under_dataverse_protection(self) -> None:
        with pytest.raises(ValueError, match="between 1 and 52"):
            DataverseClient(ORG, auth=None, max_concurrency=60)

    def test_default_headers(self) -> None:
        handler, seen = sequence(json_response(200, {"value": []}))
        with make_client(handler) as client:
            list(client.query("accounts", select=["name"], page_size=10))
        sent = seen[0].headers
        assert sent["OData-MaxVersion"] == "4.0"
        assert sent["OData-Version"] == "4.0"
        assert sent["Accept"] == "application/json"
        assert sent["If-None-Match"] == "null"
        assert sent["Prefer"] == 'odata.maxpagesize=10,odata.include-annotations="*"'
        assert str(seen[0].url) == f"{API}/accounts?$select=name"


class TestBudgetHook:
    def test_every_attempt_is_counted_including_retries(self) -> None:
        handler, _ = sequence(
            json_response(429, {"error": {}}, **{"Retry-After": "2"}),
            json_response(200, {"value": []}),
        )
        seen: list[RequestInfo] = []
        with make_client(handler, on_request=seen.append) as client:
            list(client.query("accounts"))
        assert [(i.org, i.method, i.resource, i.attempt) for i in seen] == [
            ("org.crm.dynamics.com", "GET", "accounts", 1),
            ("org.crm.dynamics.com", "GET", "accounts", 2),
        ]

    def test_veto_stops_the_request_before_it_is_sent(self) -> None:
        handler, sent = sequence()

        def veto(info: RequestInfo) -> None:
            raise BudgetExceededError(f"daily budget for {info.org} is spent")

        with make_client(handler, on_request=veto) as client, pytest.raises(BudgetExceededError):
            client.create("accounts", {"name": "x"})
        assert sent == []

    def test_bulk_requests_report_their_operation_count(self) -> None:
        handler, _ = sequence(json_response(200, {"Ids": [str(uuid.uuid4()) for _ in range(3)]}))
        seen: list[RequestInfo] = []
        with make_client(handler, on_request=seen.append) as client:
            client.create_multiple("accounts", "account", [{"name": str(i)} for i in range(3)])
        assert seen[0].operations == 3
        assert seen[0].resource == "accounts"


class TestRetries:
    def test_429_waits_retry_after_then_succeeds(self) -> None:
        handler, seen = sequence(
            json_response(429, {"error": {"code": "0x80072322"}}, **{"Retry-After": "7"}),
            httpx.Response(204, headers={"OData-EntityId": f"{API}/accounts({uuid.UUID(int=5)})"}),
        )
        sleeps = Sleeps()
        with make_client(handler, sleeps=sleeps) as client:
            assert client.create("accounts", {"name": "x"}) == uuid.UUID(int=5)
        assert sleeps == [7.0]
        assert len(seen) == 2

    def test_each_retry_is_a_structured_log_event(self, caplog: pytest.LogCaptureFixture) -> None:
        handler, _ = sequence(
            json_response(429, {"error": {}}, **{"Retry-After": "3"}),
            json_response(200, {"value": []}),
        )
        with caplog.at_level("INFO", logger="gtmsync.dataverse.retry"), make_client(handler) as c:
            list(c.query("accounts"))
        [record] = caplog.records
        assert (record.reason, record.attempt, record.wait_s) == ("HTTP 429", 1, 3.0)  # type: ignore[attr-defined]
        assert "Bearer" not in record.getMessage()

    def test_429_storm_raises_throttled_never_drops(self) -> None:
        storm = [json_response(429, {"error": {}}, **{"Retry-After": "1"}) for _ in range(4)]
        handler, _ = sequence(*storm)
        with make_client(handler) as client, pytest.raises(ThrottledError) as caught:
            client.update("accounts", uuid.UUID(int=1), {"name": "x"})
        assert caught.value.retry_after == 1.0
        assert caught.value.attempts == 4

    def test_503_on_a_create_is_not_resent(self) -> None:
        handler, seen = sequence(json_response(503, {"error": {"message": "busy"}}))
        with make_client(handler) as client, pytest.raises(ServerError):
            client.create("accounts", {"name": "x"})
        assert len(seen) == 1

    def test_503_on_an_upsert_is_resent(self) -> None:
        handler, seen = sequence(
            json_response(503, {"error": {}}),
            json_response(201, {"accountid": str(uuid.UUID(int=9))}),
        )
        with make_client(handler) as client:
            result = client.upsert("accounts", {"accountnumber": "A-1"}, {"name": "x"})
        assert result.created
        assert len(seen) == 2
        assert seen[1].url.path.endswith("/accounts(accountnumber='A-1')")

    def test_dropped_connection_on_a_patch_is_resent(self) -> None:
        handler, seen = sequence(
            httpx.RemoteProtocolError("peer closed connection without sending complete message"),
            httpx.Response(204),
        )
        with make_client(handler) as client:
            client.update("accounts", uuid.UUID(int=1), {"name": "x"})
        assert len(seen) == 2

    def test_dropped_connection_on_a_create_is_a_transport_error(self) -> None:
        handler, seen = sequence(httpx.ReadError("connection reset"))
        with make_client(handler) as client, pytest.raises(TransportError) as caught:
            client.create("accounts", {"name": "x"})
        assert caught.value.transient
        assert len(seen) == 1

    def test_refused_connection_is_resent_even_for_a_create(self) -> None:
        handler, seen = sequence(
            httpx.ConnectError("refused"),
            httpx.Response(204, headers={"OData-EntityId": f"{API}/accounts({uuid.UUID(int=2)})"}),
        )
        with make_client(handler) as client:
            assert client.create("accounts", {"name": "x"}) == uuid.UUID(int=2)
        assert len(seen) == 2

    def test_terminal_error_carries_request_id(self) -> None:
        handler, _ = sequence(
            json_response(
                404,
                {"error": {"code": "0x80040217", "message": "account With Id = 1 Does Not Exist"}},
                **{"x-ms-service-request-id": "rid-1"},
            )
        )
        with make_client(handler) as client, pytest.raises(NotFoundError) as caught:
            client.retrieve("accounts", uuid.UUID(int=1))
        assert caught.value.request_id == "rid-1"

    def test_delete_missing_ok(self) -> None:
        handler, _ = sequence(json_response(404, {"error": {"code": "0x80040217"}}))
        with make_client(handler) as client:
            assert client.delete("accounts", uuid.UUID(int=1), missing_ok=True) is False


class TestAuthFlow:
    def test_401_refreshes_once_and_resends(self) -> None:
        tokens = CountingTokens("old", "new")

        def handler(request: httpx.Request) -> httpx.Response:
            if request.headers["Authorization"] == "Bearer old":
                return json_response(401, {"error": {"code": "", "message": "expired"}})
            return json_response(
                200,
                {
                    "UserId": str(uuid.UUID(int=1)),
                    "BusinessUnitId": str(uuid.UUID(int=2)),
                    "OrganizationId": str(uuid.UUID(int=3)),
                },
            )

        with make_client(handler, auth=MsalAuth(tokens)) as client:
            assert client.who_am_i().user_id == uuid.UUID(int=1)
        assert tokens.calls == [False, True]

    def test_second_401_is_an_authentication_error(self) -> None:
        tokens = CountingTokens("old", "new")
        handler, seen = sequence(
            json_response(401, {"error": {}}), json_response(401, {"error": {}})
        )
        client = make_client(handler, auth=MsalAuth(tokens))
        with client, pytest.raises(AuthenticationError):
            client.who_am_i()
        assert len(seen) == 2

    def test_unrefreshable_token_asks_for_reconnect(self) -> None:
        handler, _ = sequence(json_response(401, {"error": {}}))
        client = make_client(handler, auth=MsalAuth(StaticToken("t")))
        with client, pytest.raises(ReconnectRequiredError, match="cannot be refreshed"):
            client.who_am_i()

    def test_impersonation_header_per_view(self) -> None:
        handler, seen = sequence(httpx.Response(204), httpx.Response(204))
        caller = uuid.UUID(int=77)
        with make_client(handler, auth=MsalAuth(StaticToken("t"))) as client:
            client.with_caller(caller).update("accounts", uuid.UUID(int=1), {"name": "x"})
            client.update("accounts", uuid.UUID(int=1), {"name": "y"})
        assert seen[0].headers["CallerObjectId"] == str(caller)
        assert "CallerObjectId" not in seen[1].headers


class TestPagingAndRecords:
    def test_follows_next_link_with_the_same_prefer(self) -> None:
        link = f"{API}/accounts?$select=name&$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E"
        handler, seen = sequence(
            json_response(200, {"value": [{"name": "a"}], "@odata.nextLink": link}),
            json_response(200, {"value": [{"name": "b"}]}),
        )
        with make_client(handler) as client:
            names = [r["name"] for r in client.query("accounts", select=["name"], page_size=1)]
        assert names == ["a", "b"]
        assert str(seen[1].url) == link
        assert seen[1].headers["Prefer"] == seen[0].headers["Prefer"]

    def test_a_next_link_to_another_host_is_not_followed(self) -> None:
        handler, seen = sequence(
            json_response(
                200, {"value": [], "@odata.nextLink": "https://evil.example/api/data/v9.2/x"}
            )
        )
        with make_client(handler) as client, pytest.raises(ValueError, match="refusing"):
            list(client.query("accounts"))
        assert len(seen) == 1

    def test_formatted_values_and_lookups(self) -> None:
        owner = uuid.UUID(int=8)
        row = {
            "@odata.etag": 'W/"12"',
            "industrycode@OData.Community.Display.V1.FormattedValue": "Consulting",
            "industrycode": 7,
            "_ownerid_value@OData.Community.Display.V1.FormattedValue": "Ann Admin",
            "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "systemuser",
            "_ownerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty": "ownerid",
            "_ownerid_value": str(owner),
        }
        handler, _ = sequence(json_response(200, row))
        with make_client(handler) as client:
            record = client.retrieve("accounts", uuid.UUID(int=1))
        assert record.etag == 'W/"12"'
        assert record["industrycode"] == 7
        assert record.formatted("industrycode") == "Consulting"
        lookup = record.lookup("ownerid")
        assert lookup is not None
        assert (lookup.id, lookup.logical_name, lookup.name) == (owner, "systemuser", "Ann Admin")
        assert set(record) == {"industrycode", "_ownerid_value"}

    def test_query_in_splits_long_lists(self) -> None:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return json_response(200, {"value": []})

        values = [f"person{i}@example.com" for i in range(600)]
        with make_client(handler) as client:
            list(client.query_in("contacts", "emailaddress1", values, max_url_length=2000))
        assert len(seen) > 1
        assert all(len(str(r.url)) <= 2000 for r in seen)


class TestChangeFeed:
    def test_initial_pages_then_delta_link(self) -> None:
        delta = f"{API}/accounts?$select=name&$deltatoken=919042%2108%2f22%2f2017"
        handler, seen = sequence(
            json_response(
                200,
                {
                    "value": [{"accountid": str(uuid.UUID(int=1)), "name": "a"}],
                    "@odata.nextLink": f"{API}/accounts?$skiptoken=x",
                },
            ),
            json_response(
                200,
                {
                    "value": [{"accountid": str(uuid.UUID(int=2)), "name": "b"}],
                    "@odata.deltaLink": delta,
                },
            ),
        )
        with make_client(handler) as client:
            feed = client.changes("accounts", select=["name"], page_size=1)
            items = list(feed)
        assert [i["name"] for i in items if not isinstance(i, Deletion)] == ["a", "b"]
        assert feed.delta_link == delta
        assert "odata.track-changes" in seen[0].headers["Prefer"]

    def test_delta_yields_deletions(self) -> None:
        gone = "2e451703-c686-e711-80d7-00155d2a68d1"
        body = {
            "value": [
                {"@odata.etag": 'W/"5"', "accountid": str(uuid.UUID(int=3)), "name": "c"},
                {
                    "@odata.context": f"{API}/$metadata#accounts/$deletedEntity",
                    "id": gone,
                    "reason": "deleted",
                },
            ],
            "@odata.deltaLink": f"{API}/accounts?$deltatoken=2",
        }
        handler, _ = sequence(json_response(200, body))
        with make_client(handler) as client:
            feed = client.changes("accounts", delta_link=f"{API}/accounts?$deltatoken=1")
            pages = list(feed.pages())
        assert [d.id for d in pages[0].deletions] == [uuid.UUID(gone)]
        assert [r["name"] for r in pages[0].upserts] == ["c"]

    def test_rejected_delta_token_asks_for_backfill(self) -> None:
        handler, _ = sequence(
            json_response(400, {"error": {"code": "0x80060888", "message": "invalid token"}})
        )
        with (
            make_client(handler) as client,
            pytest.raises(ChangeTokenExpiredError, match="backfill"),
        ):
            list(client.changes("accounts", delta_link=f"{API}/accounts?$deltatoken=bad"))


class TestBatchOverTheClient:
    def test_batch_posts_multipart_and_maps_results(self) -> None:
        from gtmsync.dataverse import BatchOperation, ChangeSet

        def handler(request: httpx.Request) -> httpx.Response:
            assert request.url.path.endswith("/$batch")
            assert request.headers["Prefer"] == "odata.continue-on-error"
            body = (
                "--r\r\nContent-Type: application/http\r\n\r\n"
                "HTTP/1.1 204 No Content\r\n"
                f"OData-EntityId: {API}/accounts({uuid.UUID(int=4)})\r\n\r\n"
                "\r\n--r\r\nContent-Type: application/http\r\n\r\n"
                "HTTP/1.1 400 Bad Request\r\n\r\n"
                '{"error":{"code":"0x80044331","message":"bad"}}\r\n'
                "--r--\r\n"
            )
            return httpx.Response(
                200, content=body.encode(), headers={"Content-Type": "multipart/mixed; boundary=r"}
            )

        with make_client(handler) as client:
            results = client.batch(
                [
                    ChangeSet([BatchOperation("POST", "accounts", {"name": "ok"}, ref="a")]),
                    BatchOperation("POST", "accounts", {"name": "x" * 999}, ref="b"),
                ],
                continue_on_error=True,
            )
        assert [(r.ref, r.ok) for r in results] == [("a", True), ("b", False)]
        assert results[0].entity_id == uuid.UUID(int=4)
        assert json.loads(results[1].body)["error"]["message"] == "bad"


class TestBulkFallback:
    def test_unsupported_upsert_multiple_falls_back_to_batch(self) -> None:
        seen: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request.url.path.rsplit("/", 1)[-1])
            if request.url.path.endswith("UpsertMultiple"):
                return json_response(
                    501, {"error": {"code": "0x80060888", "message": "not supported"}}
                )
            body = request.content.decode()
            assert body.count("PATCH ") == 2
            assert "accounts(accountnumber='A''1')" in body
            part = (
                "--r\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n"
            )
            return httpx.Response(
                200,
                content=(part * 2 + "--r--\r\n").encode(),
                headers={"Content-Type": "multipart/mixed; boundary=r"},
            )

        with make_client(handler) as client:
            client.upsert_multiple(
                "accounts",
                "account",
                [
                    ({"accountnumber": "A'1"}, {"name": "a"}),
                    ({"accountnumber": "B"}, {"name": "b"}),
                ],
            )
        assert seen == ["Microsoft.Dynamics.CRM.UpsertMultiple", "$batch"]

    def test_request_info_names_the_table(self) -> None:
        handler, _ = sequence(httpx.Response(204))
        seen: list[RequestInfo] = []
        with make_client(handler, on_request=seen.append) as client:
            client.update("contacts", uuid.UUID(int=1), {"lastname": "x"})
        assert seen[0].table == "contacts"


class TestNextLinkPager:
    def test_follows_links_until_the_last_page(self) -> None:
        from gtmsync.dataverse import NextLinkPager

        pager = NextLinkPager()
        first = pager.init_request(httpx.Request("GET", f"{API}/accounts", headers={"Prefer": "p"}))
        pager.update_state({"value": [], "@odata.nextLink": f"{API}/accounts?$skiptoken=2"})
        assert pager.has_next_page
        second = pager.update_request(first)
        assert str(second.url) == f"{API}/accounts?$skiptoken=2"
        assert second.headers["Prefer"] == "p"
        pager.update_state({"value": [], "@odata.deltaLink": f"{API}/accounts?$deltatoken=9"})
        assert not pager.has_next_page
        assert pager.delta_link == f"{API}/accounts?$deltatoken=9"
        assert pager.pages == 2
        with pytest.raises(RuntimeError, match="no next page"):
            pager.update_request(second)

    def test_bad_page_arguments_fail_before_any_request(self) -> None:
        handler, seen = sequence()
        with make_client(handler) as client:
            with pytest.raises(ValueError, match="between 1 and 5000"):
                client.pages("accounts", page_size=10_000)
            with pytest.raises(ValueError, match="either top or page_size"):
                client.query("accounts", top=5, page_size=10)
        assert seen == []
