"""Helpers for the operations tests: JSON log capture and metric readings."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gtmsync.kit.logging import JsonFormatter, RedactingFilter


@dataclass
class JsonLog:
    """Everything logged while the fixture is active, formatted as the processes format it."""

    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    """The production handler (redacting filter + JSON formatter) on the root logger at DEBUG,
    formatting at emit time, so the context variables of the emitting thread are the ones
    written (as in `configure_logging`)."""
    log = JsonLog()
    handler = logging.StreamHandler(log.stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield log
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def sample(name: str, **labels: str) -> float:
    """The current value of one series in this process's registry (0 when absent)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
