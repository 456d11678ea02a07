"""The client's `on_response` hook sees every attempt: a dropped connection, a 429 and the
200 that a retry finally got (single-fault sequence over `httpx.MockTransport`, CONVENTIONS
§19; the same counting against the real local server is in test_metrics.py)."""

from __future__ import annotations

import httpx

from gtmsync.dataverse import DataverseClient, ResponseInfo, RetryPolicy

ORG = "https://org.crm.dynamics.com"


class TestOnResponse:
    def test_every_attempt_reports_its_status_or_error(self) -> None:
        answers: list[httpx.Response | Exception] = [
            httpx.ReadError("connection dropped mid-response"),
            httpx.Response(429, json={"error": {}}, headers={"Retry-After": "0"}),
            httpx.Response(200, json={"value": []}),
        ]

        def handler(_request: httpx.Request) -> httpx.Response:
            item = answers.pop(0)
            if isinstance(item, Exception):
                raise item
            return item

        seen: list[ResponseInfo] = []
        client = DataverseClient(
            ORG,
            auth=None,
            retry=RetryPolicy(max_attempts=4, sleep=lambda _s: None, jitter=0),
            transport=httpx.MockTransport(handler),
            on_response=seen.append,
        )
        with client:
            client.request("GET", "accounts", idempotent=True)
        assert [(r.status, r.error, r.request.attempt) for r in seen] == [
            (None, "ReadError", 1),
            (429, None, 2),
            (200, None, 3),
        ]
        assert {r.request.resource for r in seen} == {"accounts"}
        assert all(r.elapsed >= 0 for r in seen)
