"""Configuration read once at the edges (CLI, web app, worker) from `GTMSYNC_*` env vars and `.env`.

Libraries such as `gtmsync.dataverse` never read settings; they take constructor arguments,
so they stay usable and testable outside the hub.
"""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name


class Mode(StrEnum):
    """How the hub runs; development and demo trust the local Dataverse server's loopback URL."""

    PRODUCTION = "production"
    DEVELOPMENT = "development"
    DEMO = "demo"


class Settings(BaseSettings):
    """Every field is documented here and in the README's configuration table (tested)."""

    model_config = SettingsConfigDict(
        env_prefix="GTMSYNC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        default=Path("gtmsync-data"),
        description="Folder for the default SQLite database, the queue, the generated secret key "
        "and the local Dataverse server's files.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the hub database. Default: SQLite file "
        "`<data_dir>/gtmsync.db`. PostgreSQL: `postgresql+psycopg://user@host/db`.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that signs sessions and encrypts secrets at rest. When unset, one is "
        "generated on first run and kept in `<data_dir>/secret_key` (mode 0600).",
    )
    queue_url: str | None = Field(
        default=None,
        description="Job queue. Unset: embedded queue in `<data_dir>/queue.db`. "
        "`redis://host:6379/0` for workers on several machines.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public URL of the hub portal; OAuth redirect URIs are built from it.",
    )
    mode: Mode = Field(
        default=Mode.PRODUCTION,
        description="`production`, `development` or `demo`. Only development and demo accept "
        "the local Dataverse server's `https://127.0.0.1:PORT` organization URL.",
    )
    host: str = Field(default="127.0.0.1", description="Interface the web process binds to.")
    port: int = Field(default=8000, description="Port the web process listens on.")
    log_level: str = Field(default="INFO", description="Python logging level name.")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, the web process's `/metrics` answers only requests with "
        "`Authorization: Bearer <this token>` (Prometheus `authorization.credentials`). In "
        "production mode `/metrics` is refused until it is set (per-org counts are not public).",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port on which each worker process serves Prometheus `/metrics`. Unset: "
        "off. One port per worker process on the same machine.",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface the worker metrics port binds to (`0.0.0.0` to scrape it from "
        "another machine; keep it on a private network).",
    )
    session_max_age_seconds: int = Field(
        default=8 * 3600, description="How long a portal sign-in lasts without activity."
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark session cookies `Secure`; turn on whenever the hub is served over HTTPS.",
    )

    entra_client_id: str | None = Field(
        default=None,
        description="Application (client) ID of gtmsync's Entra ID app registration. Unset in "
        "demo and development: the local Dataverse server's seeded app is used.",
    )
    entra_client_secret: SecretStr | None = Field(
        default=None,
        description="Client secret of that app registration (a confidential client). Unset in "
        "demo and development: the local server's seeded secret is used.",
    )
    entra_authority: str = Field(
        default="https://login.microsoftonline.com/organizations",
        description="Identity provider authority for sign-in. After connecting, the tenant's own "
        "authority is kept with the integration. Demo: the local Dataverse server's.",
    )
    ca_bundle: Path | None = Field(
        default=None,
        description="Extra CA bundle (PEM) trusted for the Dataverse org and the identity "
        "provider; demo sets it to the local Dataverse server's `ca.pem`.",
    )
    import_interval_minutes: int = Field(
        default=60,
        description="How often the scheduler runs the incremental Dynamics import for every "
        "connected org.",
    )

    job_lease_seconds: int = Field(
        default=120,
        ge=2,
        description="How long a job's lease (one export, one org's import of a table) lasts "
        "without a heartbeat; the worker renews it every third of that while the job runs, so "
        "a killed worker's job is taken over by another worker after at most this long.",
    )
    recovery_interval_seconds: int = Field(
        default=60,
        ge=1,
        description="How often a worker looks for jobs a killed worker left behind (exports "
        "left running, import runs whose lease lapsed) and queues them again.",
    )

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite:///{(self.data_dir / 'gtmsync.db').as_posix()}"
        return self

    @property
    def db_url(self) -> str:
        """The resolved database URL (never None after validation)."""
        assert self.database_url is not None
        return self.database_url

    def resolved_secret_key(self) -> str:
        """The configured key, or one generated once and persisted with 0600 permissions.

        Persisting matters: a key that changed on every start would log everyone out and make
        the encrypted tokens in the database unreadable.
        """
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / SECRET_KEY_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        os.chmod(path, 0o600)
        return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests call `get_settings.cache_clear()` after changing env vars."""
    return Settings()
