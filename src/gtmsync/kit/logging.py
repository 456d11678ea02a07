"""Structured logging with a redaction filter, so no token or secret ever reaches a log line."""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)
# Set with job_id_var while a queue job runs (gtmsync.jobs.observability).
task_var: ContextVar[str | None] = ContextVar("task", default=None)
org_id_var: ContextVar[str | None] = ContextVar("org_id", default=None)

_PATTERNS = [
    # Authorization headers, bearer tokens and JWTs wherever they appear.
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1[REDACTED]"),
    (re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "[REDACTED-JWT]"),
    # key=value / "key": "value" pairs whose key names a secret. A bare `code` key is the
    # OAuth authorization code (the callback's query string in access logs, MSAL's debug
    # events); `status_code=`, `postcode=` and the like are left alone.
    (
        re.compile(
            r"(?i)((?:access_token|refresh_token|id_token|client_secret|password|secret|code_verifier"
            r"|api_token|token|(?<![A-Za-z0-9_])code)[\"']?\s*[:=]\s*[\"']?)([^\"'&\s,}]+)"
        ),
        r"\1[REDACTED]",
    ),
    # gtmsync API tokens wherever they appear (a script may put one in a URL or a message).
    (re.compile(r"gtm_[A-Za-z0-9_\-]{20,}"), "gtm_[REDACTED]"),
]


def redact(text: str) -> str:
    """Mask anything that looks like a credential."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Applied to every handler: formats the message once, then masks it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, carrying request and job IDs (and the job's task and org)
    when set. Structured `extra_fields` strings are redacted too: the filter only sees the
    message, and a field is as likely as a message to carry a token by mistake."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (rid := request_id_var.get()) is not None:
            payload["request_id"] = rid
        if (jid := job_id_var.get()) is not None:
            payload["job_id"] = jid
        if (task := task_var.get()) is not None:
            payload["task"] = task
        if (org_id := org_id_var.get()) is not None:
            payload["org_id"] = org_id
        for key, value in getattr(record, "extra_fields", {}).items():
            payload[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Install one redacting handler on the root logger (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_gtmsync", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._gtmsync = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    root.addHandler(handler)
