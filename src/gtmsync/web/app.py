"""The hub's web application: portal pages, the REST API and health checks.

`create_app(settings)` builds everything from the settings it is given (its own engine and
session factory on `app.state`), so tests and `gtmsync serve` run the same code on different
databases. `gtmsync serve` calls it as a uvicorn factory with the process settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from huey import Huey
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from gtmsync import __version__
from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.jobs.queue import build_huey
from gtmsync.kit import metrics
from gtmsync.settings import Mode, Settings, get_settings
from gtmsync.web import errors
from gtmsync.web.api import API_PREFIX, build_api_router
from gtmsync.web.middleware import (
    MetricsMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from gtmsync.web.portal import build_portal_router
from gtmsync.web.portal.rendering import STATIC_DIR, build_templates
from gtmsync.web.security import CookieSigner

OPENAPI_URL = f"{API_PREFIX}/openapi.json"
DOCS_URL = f"{API_PREFIX}/docs"


class _QueueDepth(Collector):
    """Jobs waiting in the queue, read at scrape time: the signal for adding workers."""

    def __init__(self, queue: Callable[[], Huey]) -> None:
        self._queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            queue = self._queue()
            pending, scheduled = queue.pending_count(), queue.scheduled_count()
        except Exception:  # an unreachable queue shows in /readyz, not here
            return
        yield GaugeMetricFamily(
            "gtmsync_queue_pending_jobs", "Jobs waiting for a worker.", value=pending
        )
        yield GaugeMetricFamily(
            "gtmsync_queue_scheduled_jobs", "Jobs waiting for their time (retries).",
            value=scheduled,
        )  # fmt: skip


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_engine(settings.db_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="gtmsync",
        version=__version__,
        description="REST API of the gtmsync hub. Authenticate with `Authorization: Bearer gtm_…` "
        "(create a token in the portal under Settings > API tokens).",
        openapi_url=OPENAPI_URL,
        docs_url=DOCS_URL,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.signer = CookieSigner(settings.resolved_secret_key())
    app.state.templates = build_templates()
    queues: list[Huey] = []

    def queue() -> Huey:
        """The job queue this app enqueues to, built on first use (readiness, metrics)."""
        if not queues:
            queues.append(build_huey(settings))
        return queues[0]

    app_metrics = CollectorRegistry(auto_describe=False)
    app_metrics.register(_QueueDepth(queue))

    errors.install(app)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=frozenset({DOCS_URL}))
    app.add_middleware(RequestContextMiddleware)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(build_api_router())
    app.include_router(build_portal_router())

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """The process is up (no dependencies checked: a liveness probe)."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> JSONResponse:
        """The database and the job queue answer: a readiness probe for load balancers.

        Each check reports `ok` or the exception's class name (never its message, which can
        hold a connection URL with a password); any failure makes the answer 503.
        """
        checks: dict[str, str] = {}
        try:
            with request.app.state.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any failure means "not ready"
            checks["database"] = type(exc).__name__
        try:
            queue().pending_count()  # Redis: a round trip; embedded: a read of queue.db
            checks["queue"] = "ok"
        except Exception as exc:  # any failure means "not ready"
            checks["queue"] = type(exc).__name__
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        """Prometheus metrics of this web process (and the queue depth).

        Guarded by `GTMSYNC_METRICS_TOKEN` when set, and refused in production mode without
        it. Workers serve their own metrics on `GTMSYNC_WORKER_METRICS_PORT`.
        """
        token = settings.metrics_token
        if token is None and settings.mode == Mode.PRODUCTION:
            # Per-org call and failure counts are not for whoever can reach the portal.
            return Response(
                "metrics are off in production until GTMSYNC_METRICS_TOKEN is set; then scrape "
                "with Authorization: Bearer <that token>\n",
                status_code=403,
                media_type="text/plain",
            )
        if token is not None and not metrics.bearer_matches(
            request.headers.get("authorization"), token.get_secret_value()
        ):
            return Response(
                "metrics need Authorization: Bearer <GTMSYNC_METRICS_TOKEN>\n",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
                media_type="text/plain",
            )
        return Response(metrics.exposition(app_metrics), media_type=metrics.CONTENT_TYPE_LATEST)

    return app
