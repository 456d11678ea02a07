"""One retry policy for every Dataverse request, modelled on dlt's `requests/retry.py`.

What is retried, and why it cannot duplicate or lose data:

- **429** (service protection) for every request: Dataverse rejects a throttled request
  before running it, so resending is always safe. The wait is the server's `Retry-After`
  (seconds or an HTTP date), clamped to `retry_after_max`; Microsoft's guidance is to wait
  exactly that long. When the attempts run out the `ThrottledError` is raised, never
  swallowed, so throttling can delay work but never drop it.
- **502/503/504 and dropped connections** only for requests the caller marked idempotent
  (GET, DELETE, PATCH addressed by id or alternate key, bulk upserts and `$batch` whose
  writes carry idempotency anchors). A POST create that may have reached the server is not
  resent: doing so could create the row twice.
- **Connect failures** (nothing was sent) for every request.

Waits are capped exponential backoff with full jitter in `[base*2^n*(1-jitter), base*2^n]`.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

logger = logging.getLogger("gtmsync.dataverse.retry")

DEFAULT_RETRY_STATUSES = frozenset({429, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to wait; `sleep`/`rand` are injectable for tests."""

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    jitter: float = 0.5
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    rand: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1 (1 = never retry)")
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy.jitter must be between 0 and 1")

    @classmethod
    def never(cls) -> RetryPolicy:
        return cls(max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """Wait before retry number `attempt` (1-based) when the server gave no hint."""
        ceiling = min(self.backoff_max, self.backoff_base * (2.0 ** (attempt - 1)))
        return float(ceiling * (1 - self.jitter * self.rand()))

    def wait_for_response(self, response: httpx.Response, attempt: int) -> float:
        hinted = parse_retry_after(response.headers.get("Retry-After"))
        if hinted is not None:
            return min(hinted, self.retry_after_max)
        return self.backoff(attempt)

    def should_retry_response(
        self, response: httpx.Response, attempt: int, *, idempotent: bool
    ) -> bool:
        if attempt >= self.max_attempts or response.status_code not in self.retry_statuses:
            return False
        return response.status_code == 429 or idempotent

    def should_retry_error(
        self, error: httpx.TransportError, attempt: int, *, idempotent: bool
    ) -> bool:
        if attempt >= self.max_attempts:
            return False
        nothing_sent = isinstance(
            error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
        )
        return nothing_sent or idempotent

    def pause(self, seconds: float, *, reason: str, attempt: int, url: str) -> None:
        logger.info(
            "dataverse retry",
            extra={"reason": reason, "attempt": attempt, "wait_s": round(seconds, 3), "url": url},
        )
        if seconds > 0:
            self.sleep(seconds)
