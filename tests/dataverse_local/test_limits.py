"""Service protection limits (429 + Retry-After) and the API-call counter (spec §9.1, §9.2)."""

from __future__ import annotations

import threading
import time

import pytest

from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.dataverse_local.limits import LimitConfig, ServiceProtection, ThrottledError
from gtmsync.dataverse_local.server import ServerHandle
from tests.dataverse_local.test_auth import user_token, whoami


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestSlidingWindow:
    def test_request_limit_and_retry_after(self):
        clock = FakeClock()
        limits = ServiceProtection(LimitConfig(max_requests=2, window_seconds=300), clock=clock)
        for _ in range(2):
            limits.release(limits.acquire("u"))
            clock.now += 10
        with pytest.raises(ThrottledError) as caught:
            limits.acquire("u")
        assert caught.value.code == "0x80072322"
        assert caught.value.retry_after == 280  # the first request leaves the window at +300
        assert caught.value.message == (
            "Number of requests exceeded the limit of 2 over time window of 300 seconds."
        )
        clock.now += 281
        limits.release(limits.acquire("u"))

    def test_limits_are_per_user(self):
        limits = ServiceProtection(LimitConfig(max_requests=1), clock=FakeClock())
        limits.release(limits.acquire("a"))
        limits.release(limits.acquire("b"))
        with pytest.raises(ThrottledError):
            limits.acquire("a")

    def test_execution_time_limit(self):
        clock = FakeClock()
        limits = ServiceProtection(
            LimitConfig(max_execution_seconds=5, window_seconds=60), clock=clock
        )
        ticket = limits.acquire("u")
        clock.now += 6
        limits.release(ticket)
        with pytest.raises(ThrottledError) as caught:
            limits.acquire("u")
        assert caught.value.code == "0x80072321"
        assert "5,000 milliseconds over time window of 60 seconds" in caught.value.message
        assert caught.value.retry_after == 60

    def test_concurrency_limit(self):
        limits = ServiceProtection(LimitConfig(max_concurrent=2), clock=FakeClock())
        first, _second = limits.acquire("u"), limits.acquire("u")
        with pytest.raises(ThrottledError) as caught:
            limits.acquire("u")
        assert caught.value.code == "0x80072326"
        assert caught.value.message == "Number of concurrent requests exceeded the limit of 2."
        limits.release(first)
        limits.acquire("u")

    def test_unknown_setting_names_the_choices(self):
        with pytest.raises(ValueError, match="max_requests"):
            LimitConfig().updated({"max_request": 1})


class TestOverHttps:
    def test_requests_limit_returns_429_with_retry_after(self, dataverse: ServerHandle):
        dataverse.limits.config = LimitConfig(max_requests=3, window_seconds=300)
        user = dataverse.add_user("Tim", "Throttled")
        token = user_token(dataverse, user)
        statuses = [whoami(dataverse, token).status_code for _ in range(3)]
        throttled = whoami(dataverse, token)
        other = whoami(dataverse, user_token(dataverse, dataverse.add_user("Ott", "Other")))
        assert statuses == [200, 200, 200]
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) >= 1
        assert throttled.json()["error"]["code"] == "0x80072322"
        assert other.status_code == 200

    def test_execution_time_limit(self, dataverse: ServerHandle):
        dataverse.limits.config = LimitConfig(max_execution_seconds=0.05)
        dataverse.faults.add(FaultRule(kind="latency", latency_ms=120, count=1))
        token = user_token(dataverse, dataverse.add_user("Sly", "Slow"))
        assert whoami(dataverse, token).status_code == 200
        throttled = whoami(dataverse, token)
        assert throttled.status_code == 429
        assert throttled.json()["error"]["code"] == "0x80072321"
        assert "Retry-After" in throttled.headers

    def test_concurrency_limit(self, dataverse: ServerHandle):
        dataverse.limits.config = LimitConfig(max_concurrent=1)
        dataverse.faults.add(FaultRule(kind="latency", latency_ms=3000, count=1))
        user = dataverse.add_user("Con", "Current")
        token = user_token(dataverse, user)
        slow: list[int] = []
        worker = threading.Thread(target=lambda: slow.append(whoami(dataverse, token).status_code))
        worker.start()
        deadline = time.monotonic() + 10
        while dataverse.limits._windows[str(user.systemuserid)].concurrent < 1:
            assert time.monotonic() < deadline, "the slow request never started"
            time.sleep(0.01)
        refused = whoami(dataverse, token)
        worker.join()
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "0x80072326"
        assert slow == [200]

    def test_limits_changed_through_admin_endpoint(self, dataverse: ServerHandle):
        reply = dataverse.admin("PUT", "/_admin/limits", json={"max_requests": 1})
        assert reply.json()["max_requests"] == 1
        token = user_token(dataverse, dataverse.add_user("Adm", "Limited"))
        assert whoami(dataverse, token).status_code == 200
        assert whoami(dataverse, token).status_code == 429
        dataverse.admin("DELETE", "/_admin/limits")
        dataverse.admin("PUT", "/_admin/limits", json={"max_requests": 6000})
        assert whoami(dataverse, token).status_code == 200
        bad = dataverse.admin("PUT", "/_admin/limits", json={"max_reqs": 1})
        assert bad.status_code == 400
        assert "max_requests" in bad.json()["error"]


class TestUsageCounter:
    def test_counts_per_user_and_day(self, dataverse: ServerHandle):
        user = dataverse.add_user("Cou", "Nted")
        token = user_token(dataverse, user)
        for _ in range(4):
            whoami(dataverse, token)
        usage = dataverse.usage.get(str(user.systemuserid))
        assert usage.requests == 4
        assert usage.operations == 4
        rows = dataverse.admin("GET", "/_admin/usage").json()["usage"]
        mine = [r for r in rows if r["user"] == str(user.systemuserid)]
        assert mine == [
            {"user": str(user.systemuserid), "day": mine[0]["day"], "requests": 4, "operations": 4}
        ]

    def test_batch_parts_and_multiple_targets_count_as_operations(self, dataverse: ServerHandle):
        user = dataverse.add_user("Bat", "Ched", roles=("System Administrator",))
        token = user_token(dataverse, user)
        boundary = "batch_count"
        part = (
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary"
            "\r\n\r\nGET accounts?$top=1 HTTP/1.1\r\nAccept: application/json\r\n\r\n"
        )
        body = part * 3 + f"--{boundary}--\r\n"
        with dataverse.client() as client:
            client.post(
                "/api/data/v9.2/$batch",
                content=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/mixed; boundary={boundary}",
                },
            )
            client.post(
                "/api/data/v9.2/accounts/Microsoft.Dynamics.CRM.CreateMultiple",
                json={
                    "Targets": [
                        {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": f"M{i}"}
                        for i in range(5)
                    ]
                },
                headers={"Authorization": f"Bearer {token}"},
            )
        usage = dataverse.usage.get(str(user.systemuserid))
        assert usage.requests == 2
        assert usage.operations == 3 + 5


class TestAdminEndpointGuard:
    def test_bearer_tokens_of_users_cannot_reach_admin(self, dataverse: ServerHandle):
        token = user_token(dataverse, dataverse.add_user("Eve", "Intruder"))
        with dataverse.client() as client:
            refused = client.get("/_admin/faults", headers={"Authorization": f"Bearer {token}"})
            anonymous = client.get("/_admin/usage")
        assert refused.status_code == 401
        assert anonymous.status_code == 401
