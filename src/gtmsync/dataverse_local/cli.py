"""`gtmsync dataverse serve|seed`: run and seed the local Dataverse server.

The data directory (default `<GTMSYNC_DATA_DIR or ./gtmsync-data>/dataverse`) holds the
server's own SQLite database, its CA and server certificate, its token-signing key and the
harness (admin) token. The env var is read here directly: `dataverse_local` keeps to itself
and does not import the hub's settings.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from gtmsync.dataverse_local.directory import Directory
    from gtmsync.dataverse_local.security import SecurityModel
    from gtmsync.dataverse_local.seed import SeedResult
    from gtmsync.dataverse_local.store import Store

app = typer.Typer(help="The local Dataverse-compatible server (HTTPS).", no_args_is_help=True)

ADMIN_TOKEN_ENV = "GTMSYNC_DATAVERSE_ADMIN_TOKEN"  # noqa: S105 - a variable name
FAULTS_ENV = "GTMSYNC_DATAVERSE_FAULTS"
REDIRECT_URIS_ENV = "GTMSYNC_DATAVERSE_REDIRECT_URIS"


def default_data_dir() -> Path:
    return Path(os.environ.get("GTMSYNC_DATA_DIR") or "./gtmsync-data") / "dataverse"


def database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'dataverse.db').resolve()}"


def redirect_uris(extra: list[str] | None) -> tuple[str, ...]:
    """Redirect URIs of the seeded gtmsync app: defaults, the hub's, env and options.

    Entra ID matches redirect URIs exactly, so the hub's callback must be registered:
    `$GTMSYNC_BASE_URL/connection/callback` is added when the hub's base URL is known.
    """
    from gtmsync.dataverse_local.seed import GTMSYNC_REDIRECT_URIS

    uris = list(GTMSYNC_REDIRECT_URIS)
    base = os.environ.get("GTMSYNC_BASE_URL")
    if base:
        uris.append(base.rstrip("/") + "/connection/callback")
    uris += [u.strip() for u in os.environ.get(REDIRECT_URIS_ENV, "").split(",") if u.strip()]
    uris += extra or []
    return tuple(dict.fromkeys(uris))


def _admin_token(data_dir: Path) -> str:
    """The harness token: from the env, else persisted in the data dir (0600) on first run."""
    from_env = os.environ.get(ADMIN_TOKEN_ENV)
    if from_env:
        return from_env
    path = data_dir / "admin-token"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token)
    return token


def _open(data_dir: Path) -> tuple[Store, Directory, SecurityModel]:
    from gtmsync.dataverse_local.directory import Directory
    from gtmsync.dataverse_local.security import SecurityModel
    from gtmsync.dataverse_local.store import Store

    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.open(database_url(data_dir))
    return store, Directory(store.engine), SecurityModel(store.engine)


def _print_seed(result: SeedResult) -> None:
    state = "seeded" if result.created else "already seeded (unchanged)"
    typer.echo(f"Tenant {state}: {len(result.users)} users")
    typer.echo(f"  gtmsync app client id:     {result.client_id}")
    typer.echo(f"  gtmsync app client secret: {result.client_secret}")
    typer.echo(f"  gtmsync app redirect URIs: {', '.join(result.redirect_uris)}")
    typer.echo("  sign-in users (no password, pick one on the sign-in page):")
    for upn in sorted(result.users):
        typer.echo(f"    {upn}")


RedirectOption = Annotated[
    list[str] | None,
    typer.Option(
        "--redirect-uri",
        help=f"Extra redirect URI of the seeded gtmsync app (repeatable; or ${REDIRECT_URIS_ENV}).",
    ),
]
DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Data directory (default: $GTMSYNC_DATA_DIR/dataverse)."),
]


@app.command()
def serve(
    *,
    port: Annotated[int, typer.Option(help="HTTPS port to listen on.")] = 8443,
    host: Annotated[
        str, typer.Option(help="Interface to bind (loopback by default).")
    ] = "127.0.0.1",
    data: DataOption = None,
    seed_tenant: Annotated[
        bool, typer.Option("--seed/--no-seed", help="Load the demo tenant first (idempotent).")
    ] = False,
    faults: Annotated[
        Path | None,
        typer.Option(
            "--faults",
            help=f"JSON file with fault rules to start with (or set ${FAULTS_ENV} to JSON).",
        ),
    ] = None,
    fault_seed: Annotated[int, typer.Option(help="Seed of the fault injector's draws.")] = 0,
    token_lifetime: Annotated[
        int, typer.Option(help="Access token lifetime in seconds (Entra ID: about an hour).")
    ] = 3599,
    redirect_uri: RedirectOption = None,
) -> None:
    """Run the local Dataverse server over HTTPS and print how to connect to it."""
    from gtmsync.dataverse_local.app import ServerConfig, create_app
    from gtmsync.dataverse_local.faults import FaultConfigError, load_plan
    from gtmsync.dataverse_local.seed import seed
    from gtmsync.dataverse_local.server import run
    from gtmsync.dataverse_local.tls import ensure_tls

    data_dir = (data or default_data_dir()).resolve()
    try:
        rules = load_plan(faults) if faults else load_plan(os.environ.get(FAULTS_ENV))
    except (FaultConfigError, ValueError, OSError) as exc:
        typer.echo(
            f"--faults: cannot use the fault plan ({exc}); fix the JSON and retry.", err=True
        )
        raise typer.Exit(2) from exc
    store, _, _ = _open(data_dir)
    tls = ensure_tls(data_dir)
    if token_lifetime < 1:
        typer.echo("--token-lifetime: must be at least 1 second.", err=True)
        raise typer.Exit(2)
    config = ServerConfig(
        data_dir=data_dir,
        admin_token=_admin_token(data_dir),
        faults=rules,
        fault_seed=fault_seed,
        access_token_seconds=token_lifetime,
    )
    server_app = create_app(store, config=config)
    if seed_tenant:
        _print_seed(
            seed(
                store,
                server_app.directory,
                server_app.security,
                redirect_uris=redirect_uris(redirect_uri),
            )
        )
    shown_host = f"[{host}]" if ":" in host else host
    org_url = f"https://{shown_host}:{port}"
    tenant_id = server_app.tenant.tenant_id
    typer.echo(f"Organization URL: {org_url}")
    typer.echo(f"Web API:          {org_url}/api/data/v9.2/")
    typer.echo(f"Authority (MSAL): {org_url}/{tenant_id}   (instance_discovery=False)")
    typer.echo(f"Tenant id:        {tenant_id}")
    typer.echo(f"CA certificate:   {tls.ca_cert}")
    typer.echo(f"CA bundle:        {tls.ca_bundle}")
    typer.echo(f"Admin token file: {data_dir / 'admin-token'}")
    typer.echo("Trust it from Python clients (requests, MSAL, Microsoft's SDK):")
    typer.echo(f"  export REQUESTS_CA_BUNDLE={tls.ca_bundle}")
    typer.echo(f"  export SSL_CERT_FILE={tls.ca_bundle}")
    run(server_app, tls, host=host, port=port)


@app.command("seed")
def seed_command(
    *,
    data: DataOption = None,
    seed_value: Annotated[
        int, typer.Option("--seed", help="Random seed: same seed, same tenant.")
    ] = 7,
    redirect_uri: RedirectOption = None,
) -> None:
    """Load the realistic demo tenant (users, roles, accounts, contacts, ...); idempotent."""
    from gtmsync.dataverse_local.seed import seed

    data_dir = (data or default_data_dir()).resolve()
    store, directory, security = _open(data_dir)
    _print_seed(
        seed(
            store,
            directory,
            security,
            seed_value=seed_value,
            redirect_uris=redirect_uris(redirect_uri),
        )
    )
