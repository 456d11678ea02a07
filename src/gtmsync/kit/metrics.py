"""Prometheus metrics of the hub: one module-level registry of every counter and histogram.

prometheus-client's default registry is per process, which is what we want: each web process
serves its own `/metrics`, each worker process its own port (`GTMSYNC_WORKER_METRICS_PORT`),
and Prometheus adds them up. No multiprocess mode: every process is scraped on its own.

Labels stay low-cardinality on purpose: task names, hub org ids (one per customer), HTTP route
templates (never raw paths), status codes and fixed outcome words. Never a record id, an
email, a URL or a Dynamics host: those would make one time series per value.
"""

from __future__ import annotations

import hmac

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DATAVERSE_REQUESTS",
    "DATAVERSE_REQUEST_SECONDS",
    "DATAVERSE_RETRIES",
    "DATAVERSE_THROTTLED",
    "EXPORT_RECORDS",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_SECONDS",
    "IMPORT_RECORDS",
    "JOBS_FINISHED",
    "JOBS_STARTED",
    "JOB_SECONDS",
    "REGISTRY",
    "bearer_matches",
    "exposition",
    "serve",
]

# Jobs run from a second (writeback) to hours (a large backfill).
_JOB_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

JOBS_STARTED = Counter(
    "gtmsync_jobs_started", "Queue jobs a worker started, by task name.", ["task"]
)
JOBS_FINISHED = Counter(
    "gtmsync_jobs_finished",
    "Queue jobs that ended, by task and outcome (succeeded, failed, locked, canceled, "
    "retrying, interrupted).",
    ["task", "outcome"],
)
JOB_SECONDS = Histogram(
    "gtmsync_job_duration_seconds", "Wall time of queue jobs, by task.", ["task"],
    buckets=_JOB_BUCKETS,
)  # fmt: skip

DATAVERSE_REQUESTS = Counter(
    "gtmsync_dataverse_requests",
    "Dataverse Web API attempts (retries included), by hub org id and HTTP status "
    "('error' when no response arrived).",
    ["org", "status"],
)
DATAVERSE_THROTTLED = Counter(
    "gtmsync_dataverse_throttled",
    "Dataverse service-protection responses (429), by hub org id.",
    ["org"],
)
DATAVERSE_RETRIES = Counter(
    "gtmsync_dataverse_retries", "Dataverse requests sent again after a failure, by org.", ["org"]
)
DATAVERSE_REQUEST_SECONDS = Histogram(
    "gtmsync_dataverse_request_duration_seconds",
    "Time of one Dataverse attempt until its response (or error), by org.",
    ["org"],
    buckets=_HTTP_BUCKETS,
)

EXPORT_RECORDS = Counter(
    "gtmsync_export_records",
    "Export records written to Dynamics, by outcome (created, updated, skipped, failed).",
    ["outcome"],
)
IMPORT_RECORDS = Counter(
    "gtmsync_import_records",
    "Dynamics import records, by kind (read, stored, deleted, excluded).",
    ["kind"],
)

HTTP_REQUESTS = Counter(
    "gtmsync_http_requests",
    "Requests to the hub web app, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "gtmsync_http_request_duration_seconds",
    "Time to answer a hub web request, by method and route template.",
    ["method", "route"],
    buckets=_HTTP_BUCKETS,
)


def exposition(*extra: CollectorRegistry) -> bytes:
    """The text format of the process registry, followed by `extra` registries (per-app
    gauges such as the queue depth, which must not live in the global registry)."""
    return b"".join([generate_latest(REGISTRY), *(generate_latest(r) for r in extra)])


def bearer_matches(authorization: str | None, token: str) -> bool:
    """True when `Authorization: Bearer <token>` carries exactly `token` (constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def serve(port: int, host: str) -> None:
    """Serve the process registry on `http://host:port/metrics` from a daemon thread."""
    start_http_server(port, addr=host)
