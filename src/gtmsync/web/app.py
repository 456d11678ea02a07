"""Application factory (placeholder until the portal lands)."""

from __future__ import annotations

from fastapi import FastAPI

from gtmsync.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="gtmsync")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
