"""Service protection limits and the API-call counter (spec §9.1, §9.2).

Dataverse throttles each user independently over a 300-second sliding window: number of
requests (6,000), combined execution time (1,200 s) and concurrent requests (52). Breaking
one answers 429 with `Retry-After` (seconds) and the error codes of spec §8.2. Every limit is
configurable so tests can reach it with a handful of requests; the clock is injectable so
tests need not sleep.

The usage counter counts, per user and UTC day, both HTTP requests and the operations the
entitlement rules count (each `$batch` part and each item of a `…Multiple` action).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from gtmsync.dataverse_local.errors import DataverseLocalError


@dataclass(frozen=True)
class LimitConfig:
    """Per-user service protection thresholds; Dataverse's defaults."""

    max_requests: int = 6000
    max_execution_seconds: float = 1200.0
    window_seconds: float = 300.0
    max_concurrent: int = 52
    dop_hint: int = 4
    enabled: bool = True

    def updated(self, values: dict[str, Any]) -> LimitConfig:
        known = set(asdict(self))
        unknown = set(values) - known
        if unknown:
            raise ValueError(
                f"unknown limit setting(s) {sorted(unknown)}; expected some of {sorted(known)}"
            )
        return replace(self, **values)


@dataclass
class _UserWindow:
    requests: deque[float] = field(default_factory=deque)
    executions: deque[tuple[float, float]] = field(default_factory=deque)  # (finished, seconds)
    concurrent: int = 0


@dataclass(frozen=True)
class Ticket:
    """Proof that a request was admitted; hand it back to `release`."""

    user: str
    started: float
    burst_remaining: int
    time_remaining: float


class ThrottledError(DataverseLocalError):
    """A 429 with the number of seconds the client should wait."""

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        super().__init__(429, code, message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {**super().headers(), "Retry-After": str(self.retry_after)}


class ServiceProtection:
    """Sliding-window request, execution-time and concurrency limits per user."""

    def __init__(
        self, config: LimitConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config or LimitConfig()
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _UserWindow] = defaultdict(_UserWindow)

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def _trim(self, window: _UserWindow, now: float) -> None:
        horizon = now - self.config.window_seconds
        while window.requests and window.requests[0] <= horizon:
            window.requests.popleft()
        while window.executions and window.executions[0][0] <= horizon:
            window.executions.popleft()

    def acquire(self, user: str) -> Ticket:
        """Admit a request for `user` or raise `ThrottledError` naming the limit it broke."""
        config = self.config
        with self._lock:
            now = self.clock()
            window = self._windows[user]
            self._trim(window, now)
            used_time = sum(seconds for _, seconds in window.executions)
            if config.enabled:
                if window.concurrent >= config.max_concurrent:
                    raise ThrottledError(
                        "0x80072326",
                        f"Number of concurrent requests exceeded the limit of "
                        f"{config.max_concurrent}.",
                        1,
                    )
                if len(window.requests) >= config.max_requests:
                    wait = window.requests[0] + config.window_seconds - now
                    raise ThrottledError(
                        "0x80072322",
                        f"Number of requests exceeded the limit of {config.max_requests} over "
                        f"time window of {_seconds(config.window_seconds)} seconds.",
                        max(1, math.ceil(wait)),
                    )
                if used_time >= config.max_execution_seconds:
                    wait = self._time_wait(window, used_time, now)
                    raise ThrottledError(
                        "0x80072321",
                        f"Combined execution time of incoming requests exceeded limit of "
                        f"{round(config.max_execution_seconds * 1000):,} milliseconds over time "
                        f"window of {_seconds(config.window_seconds)} seconds. Decrease number "
                        "of concurrent requests or reduce the duration of requests and try "
                        "again later.",
                        max(1, math.ceil(wait)),
                    )
            window.requests.append(now)
            window.concurrent += 1
            return Ticket(
                user=user,
                started=now,
                burst_remaining=max(0, config.max_requests - len(window.requests)),
                time_remaining=max(0.0, config.max_execution_seconds - used_time),
            )

    def _time_wait(self, window: _UserWindow, used: float, now: float) -> float:
        """Seconds until enough execution time leaves the window to go under the limit."""
        excess = used - self.config.max_execution_seconds
        for finished, seconds in window.executions:
            excess -= seconds
            if excess < 0:
                return finished + self.config.window_seconds - now
        return self.config.window_seconds

    def release(self, ticket: Ticket) -> None:
        with self._lock:
            now = self.clock()
            window = self._windows[ticket.user]
            window.concurrent = max(0, window.concurrent - 1)
            window.executions.append((now, max(0.0, now - ticket.started)))

    def headers(self, ticket: Ticket) -> dict[str, str]:
        """Dataverse's debug-only headers (clients should not depend on them)."""
        return {
            "x-ms-ratelimit-burst-remaining-xrm-requests": str(ticket.burst_remaining),
            "x-ms-ratelimit-time-remaining-xrm-requests": f"{ticket.time_remaining:,.2f}",
            "x-ms-dop-hint": str(self.config.dop_hint),
        }


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class Usage:
    requests: int
    operations: int


class UsageCounter:
    """API calls per user and UTC day, readable in-process and through `/_admin/usage`."""

    def __init__(self, *, today: Callable[[], dt.date] | None = None) -> None:
        self._today = today or (lambda: dt.datetime.now(dt.UTC).date())
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, dt.date], int] = defaultdict(int)
        self._operations: dict[tuple[str, dt.date], int] = defaultdict(int)

    def record(self, user: str, operations: int = 1) -> None:
        key = (user, self._today())
        with self._lock:
            self._requests[key] += 1
            self._operations[key] += operations

    def get(self, user: str, day: dt.date | None = None) -> Usage:
        key = (user, day or self._today())
        with self._lock:
            return Usage(self._requests.get(key, 0), self._operations.get(key, 0))

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "user": user,
                    "day": day.isoformat(),
                    "requests": count,
                    "operations": self._operations[(user, day)],
                }
                for (user, day), count in sorted(self._requests.items())
            ]

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._operations.clear()
