"""Retry-After parsing, backoff caps and which requests may be resent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from gtmsync.dataverse.retry import RetryPolicy, parse_retry_after


class TestParseRetryAfter:
    def test_seconds(self) -> None:
        assert parse_retry_after("12") == 12.0

    def test_http_date(self) -> None:
        now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
        header = format_datetime(now + timedelta(seconds=30), usegmt=True)
        assert parse_retry_after(header, now=now) == 30.0

    def test_date_in_the_past_means_no_wait(self) -> None:
        now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
        header = format_datetime(now - timedelta(seconds=30), usegmt=True)
        assert parse_retry_after(header, now=now) == 0.0

    @pytest.mark.parametrize("value", [None, "", "soon", "-"])
    def test_absent_or_garbage(self, value: str | None) -> None:
        assert parse_retry_after(value) is None

    def test_negative_seconds_clamp_to_zero(self) -> None:
        assert parse_retry_after("-5") == 0.0


class TestBackoff:
    def test_exponential_then_capped(self) -> None:
        policy = RetryPolicy(backoff_base=1, backoff_max=8, jitter=0, rand=lambda: 0.5)
        assert [policy.backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]

    def test_jitter_stays_within_the_band(self) -> None:
        low = RetryPolicy(backoff_base=4, jitter=0.5, rand=lambda: 0.999999)
        high = RetryPolicy(backoff_base=4, jitter=0.5, rand=lambda: 0.0)
        assert 2.0 <= low.backoff(1) <= 4.0
        assert high.backoff(1) == 4.0

    def test_retry_after_wins_and_is_clamped(self) -> None:
        policy = RetryPolicy(retry_after_max=60)
        assert policy.wait_for_response(httpx.Response(429, headers={"Retry-After": "3"}), 1) == 3
        assert (
            policy.wait_for_response(httpx.Response(429, headers={"Retry-After": "999"}), 1) == 60
        )

    def test_no_hint_falls_back_to_backoff(self) -> None:
        policy = RetryPolicy(backoff_base=2, jitter=0)
        assert policy.wait_for_response(httpx.Response(503), 2) == 4

    def test_rejects_nonsense(self) -> None:
        with pytest.raises(ValueError, match="max_attempts"):
            RetryPolicy(max_attempts=0)


class TestWhatIsRetried:
    policy = RetryPolicy(max_attempts=3)

    @pytest.mark.parametrize("idempotent", [True, False])
    def test_429_is_always_retried_because_it_was_never_run(self, idempotent: bool) -> None:
        assert self.policy.should_retry_response(httpx.Response(429), 1, idempotent=idempotent)

    @pytest.mark.parametrize("status", [502, 503, 504])
    def test_5xx_only_when_idempotent(self, status: int) -> None:
        assert self.policy.should_retry_response(httpx.Response(status), 1, idempotent=True)
        assert not self.policy.should_retry_response(httpx.Response(status), 1, idempotent=False)

    @pytest.mark.parametrize("status", [400, 401, 404, 412, 500])
    def test_terminal_statuses_are_not_retried(self, status: int) -> None:
        assert not self.policy.should_retry_response(httpx.Response(status), 1, idempotent=True)

    def test_stops_at_max_attempts(self) -> None:
        assert not self.policy.should_retry_response(httpx.Response(429), 3, idempotent=True)

    def test_connect_errors_are_safe_for_any_request(self) -> None:
        assert self.policy.should_retry_error(httpx.ConnectError("x"), 1, idempotent=False)

    def test_dropped_response_only_when_idempotent(self) -> None:
        dropped = httpx.RemoteProtocolError("peer closed connection")
        assert self.policy.should_retry_error(dropped, 1, idempotent=True)
        assert not self.policy.should_retry_error(dropped, 1, idempotent=False)
