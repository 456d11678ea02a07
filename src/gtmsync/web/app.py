"""The hub's web application: portal pages, the REST API and health checks.

`create_app(settings)` builds everything from the settings it is given (its own engine and
session factory on `app.state`), so tests and `gtmsync serve` run the same code on different
databases. `gtmsync serve` calls it as a uvicorn factory with the process settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from gtmsync import __version__
from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.settings import Settings, get_settings
from gtmsync.web import errors
from gtmsync.web.api import API_PREFIX, build_api_router
from gtmsync.web.middleware import RequestContextMiddleware, SecurityHeadersMiddleware
from gtmsync.web.portal import build_portal_router
from gtmsync.web.portal.rendering import STATIC_DIR, build_templates
from gtmsync.web.security import CookieSigner

OPENAPI_URL = f"{API_PREFIX}/openapi.json"
DOCS_URL = f"{API_PREFIX}/docs"


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

    errors.install(app)
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
        """The database answers: a readiness probe for load balancers."""
        try:
            with request.app.state.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse(
                {"status": "unavailable", "error": type(exc).__name__}, status_code=503
            )
        return JSONResponse({"status": "ok"})

    return app
