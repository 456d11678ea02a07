"""Fault injection: the failures a client of Dataverse must survive, on demand.

A `FaultPlan` is a list of `FaultRule`s, given at start-up (CLI `--faults FILE`, the
`GTMSYNC_DATAVERSE_FAULTS` env var holding JSON, or `ServerConfig.faults`) and changed at
run time through `POST/GET/DELETE /_admin/faults` (guarded by the harness token, never by
a normal bearer token). Kinds:

- `throttle`: 429 with `Retry-After` and the service-protection error body (a "429 storm");
- `error`: a 500/502/503/504 with a Dataverse error body;
- `latency`: wait `latency_ms` (or a random value in `[latency_ms, latency_max_ms]`) first;
- `drop`: send the status line, headers and part of the body, then close the socket;
- `drop_batch`: run only the first `after_operations` top-level parts of a `$batch` (their
  writes commit), then drop the connection mid-response, so the client cannot tell what
  happened: exactly the hard case an idempotent client must survive;
- `token_expiry`: an immediate action, every token issued before now is refused as expired.

A rule fires on requests matching its `method` and `path` regexes, with probability `rate`
and at most `count` times (None: no limit). Draws come from one `random.Random(seed)`, so a
run with the same seed and request order injects the same faults. Counters of injected
faults per kind are readable via `GET /_admin/faults`.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

FaultKind = Literal["throttle", "error", "latency", "drop", "drop_batch", "token_expiry"]
KINDS: tuple[str, ...] = ("throttle", "error", "latency", "drop", "drop_batch", "token_expiry")
ERROR_STATUSES = (500, 502, 503, 504)


class FaultConfigError(ValueError):
    """A fault rule that cannot work; the message names the field and the fix."""


@dataclass
class FaultRule:
    kind: str
    rate: float = 1.0
    count: int | None = None
    method: str | None = None
    path: str | None = None
    status: int = 503
    retry_after: int = 5
    latency_ms: int = 0
    latency_max_ms: int | None = None
    after_operations: int = 1
    partial_bytes: int = 16
    id: str = ""
    injected: int = 0

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise FaultConfigError(f"kind: {self.kind!r} is not one of {', '.join(KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise FaultConfigError(f"rate: {self.rate} must be between 0 and 1")
        if self.count is not None and self.count < 0:
            raise FaultConfigError(f"count: {self.count} must be >= 0 or null (no limit)")
        if self.kind == "error" and self.status not in ERROR_STATUSES:
            raise FaultConfigError(f"status: {self.status} must be one of {ERROR_STATUSES}")
        if self.retry_after < 0:
            raise FaultConfigError(f"retry_after: {self.retry_after} must be >= 0 seconds")
        if self.latency_ms < 0 or (
            self.latency_max_ms is not None and self.latency_max_ms < self.latency_ms
        ):
            raise FaultConfigError("latency_ms/latency_max_ms: need 0 <= latency_ms <= max")
        if self.after_operations < 0:
            raise FaultConfigError("after_operations: must be >= 0")
        for name in ("method", "path"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise FaultConfigError(f"{name}: {pattern!r} is not a regex ({exc})") from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise FaultConfigError(
                f"unknown fault field(s) {sorted(unknown)}; expected some of {sorted(known)}"
            )
        rule = cls(**data)
        rule.validate()
        return rule

    def matches(self, method: str, path: str) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.method and not re.fullmatch(self.method, method, re.IGNORECASE):
            return False
        return not (self.path and not re.search(self.path, path))


@dataclass(frozen=True)
class Decision:
    """What to do to one request: at most one short-circuit or drop, plus latency."""

    latency_seconds: float = 0.0
    respond: FaultRule | None = None  # throttle or error
    drop: FaultRule | None = None  # drop or drop_batch
    fired: tuple[str, ...] = field(default_factory=tuple)


def load_plan(source: str | Path | None) -> list[FaultRule]:
    """Rules from a JSON file path or JSON text: a list of rules or `{"rules": [...]}`."""
    if source is None:
        return []
    text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
    if isinstance(source, str) and not source.lstrip().startswith(("[", "{")):
        text = Path(source).read_text(encoding="utf-8")
    data = json.loads(text)
    items = data.get("rules", []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise FaultConfigError('faults: expected a JSON list of rules or {"rules": [...]}')
    return [FaultRule.from_dict(dict(item)) for item in items]


class FaultInjector:
    """The live fault plan of one server; thread-safe, deterministic for a given seed."""

    def __init__(self, rules: list[FaultRule] | None = None, *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.seed = seed
        self._random = random.Random(seed)  # noqa: S311 - reproducible, not secret
        self.rules: list[FaultRule] = []
        self.injected: Counter[str] = Counter()
        self.token_expiry_hook: Any = None  # set by the app: callable() -> None
        for rule in rules or []:
            self.add(rule)

    def add(self, rule: FaultRule) -> FaultRule:
        rule.validate()
        with self._lock:
            rule.id = rule.id or f"f{next(self._ids)}"
            if rule.kind == "token_expiry":
                self.injected["token_expiry"] += 1
                rule.injected += 1
                if self.token_expiry_hook is not None:
                    self.token_expiry_hook()
                return rule
            self.rules.append(rule)
        return rule

    def clear(self, *, seed: int | None = None) -> None:
        with self._lock:
            self.rules.clear()
            self.injected.clear()
            if seed is not None:
                self.seed = seed
            self._random = random.Random(self.seed)  # noqa: S311

    def decide(self, method: str, path: str) -> Decision:
        with self._lock:
            if not self.rules:
                return Decision()
            latency = 0.0
            respond: FaultRule | None = None
            drop: FaultRule | None = None
            fired: list[str] = []
            for rule in self.rules:
                if not rule.matches(method, path):
                    continue
                if rule.kind == "drop_batch" and not path.rstrip("/").endswith("$batch"):
                    continue
                if rule.kind in {"throttle", "error"} and respond is not None:
                    continue
                if rule.kind in {"drop", "drop_batch"} and (drop is not None or respond):
                    continue
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                rule.injected += 1
                self.injected[rule.kind] += 1
                fired.append(rule.id)
                if rule.kind == "latency":
                    high = (
                        rule.latency_max_ms if rule.latency_max_ms is not None else rule.latency_ms
                    )
                    latency += self._random.uniform(rule.latency_ms, high) / 1000
                elif rule.kind in {"throttle", "error"}:
                    respond = rule
                else:
                    drop = rule
            return Decision(latency, respond, drop, tuple(fired))

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "seed": self.seed,
                "rules": [asdict(r) for r in self.rules],
                "injected": dict(self.injected),
            }


def truncate_batch(body: bytes, content_type: str, keep: int) -> bytes:
    """The `$batch` body with only its first `keep` top-level parts (a change set is one part)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        return body
    delimiter = b"--" + match.group(1).encode()
    pieces = body.split(delimiter)
    preamble, parts = pieces[0], pieces[1:]
    real_parts = [p for p in parts if not p.startswith(b"--")]
    kept = real_parts[:keep]
    return preamble + b"".join(delimiter + p for p in kept) + delimiter + b"--\r\n"
