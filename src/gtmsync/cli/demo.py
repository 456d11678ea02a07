"""`gtmsync demo`: the whole system on one machine with embedded defaults and sample data.

Starts the local Dataverse server (seeded), the hub web process and a worker as child
processes of this one, so Ctrl-C stops everything, and prints where to go and how to sign in.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from gtmsync.cli.context import prepare_database, unit_of_work
from gtmsync.settings import Mode, get_settings

DEMO_PASSWORD = "demo-password-1"  # noqa: S105 - printed on screen for the demo sign-ins


@dataclass(frozen=True)
class DemoLogin:
    org: str
    name: str
    email: str
    role: str


DEMO_ORGS: dict[str, list[tuple[str, str, str]]] = {
    # org name -> (name, email, role). Contoso's emails match systemusers of the local Dataverse
    # seed, so mapping by email finds them; Uma is deliberately absent from Dynamics.
    "Contoso": [
        ("Avery Admin", "avery.admin@contoso.local", "admin"),
        ("Dana Dynamics", "dana.dynamics@contoso.local", "admin"),
        ("Sam Seller", "sam.seller@contoso.local", "user"),
        ("Alex Chen", "Alex.Chen@contoso.local", "user"),
        ("Uma Unmapped", "uma.unmapped@contoso.example", "user"),
    ],
    "Globex": [("Gil Globex", "gil.globex@globex.example", "admin")],
}


def seed_hub(companies: int) -> list[DemoLogin]:
    """Create the demo orgs, users and platform data once; later runs reuse them."""
    from gtmsync.platform import service as platform_service
    from gtmsync.platform.models import Role
    from gtmsync.platform.repository import CompanyRepository

    logins: list[DemoLogin] = []
    with unit_of_work() as session:
        for org_name, people in DEMO_ORGS.items():
            org = platform_service.get_org_by_slug(session, org_name.lower())
            if org is None:
                org = platform_service.create_org(session, name=org_name, slug=org_name.lower())
                for name, email, role in people:
                    platform_service.create_user(
                        session,
                        org=org,
                        email=email,
                        name=name,
                        password=DEMO_PASSWORD,
                        role=Role(role),
                    )
            logins += [DemoLogin(org_name, n, e.lower(), r) for n, e, r in people]
        if companies and CompanyRepository.from_session(session).count() == 0:
            from gtmsync.platform import sample

            sample.generate_sample(session, companies=companies)
    return logins


def _wait_http(url: str, *, timeout: float, verify: Any = True) -> bool:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    context = None
    if verify is not True:
        import ssl

        context = ssl.create_default_context(cafile=str(verify))
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
                if response.status < 500:
                    return True
        except urllib.error.HTTPError as exc:
            # Any HTTP answer below 500 means the server is up (Dataverse answers 401 unsigned).
            if exc.code < 500:
                return True
            time.sleep(0.3)
        except OSError:
            time.sleep(0.3)
    return False


def demo(
    port: int = typer.Option(8000, help="Port of the hub portal."),
    dataverse_port: int = typer.Option(8443, help="Port of the local Dataverse server (HTTPS)."),
    companies: int = typer.Option(300, help="Sample companies to generate on first run."),
    dataverse: bool = typer.Option(
        True, "--dataverse/--no-dataverse", help="Start the local Dataverse server."
    ),
    exit_after_start: bool = typer.Option(
        False, "--exit-after-start", hidden=True, help="Stop once everything answers (tests)."
    ),
) -> None:
    """Run the hub portal, a worker and the local Dataverse server, seeded with demo data."""
    os.environ.setdefault("GTMSYNC_MODE", Mode.DEMO.value)
    get_settings.cache_clear()
    settings = get_settings()
    console = Console()
    prepare_database(settings.db_url)
    logins = seed_hub(companies)

    env = dict(os.environ)
    env["GTMSYNC_MODE"] = settings.mode.value
    env["GTMSYNC_DATA_DIR"] = str(settings.data_dir.resolve())
    env["GTMSYNC_BASE_URL"] = f"http://127.0.0.1:{port}"
    env.setdefault("GTMSYNC_SECRET_KEY", settings.resolved_secret_key())
    children: list[subprocess.Popen[bytes]] = []
    python = [sys.executable, "-m", "gtmsync"]
    dataverse_url: str | None = None
    ca_bundle: Path | None = None
    try:
        if dataverse and _has_local_dataverse():
            dv_dir = settings.data_dir.resolve() / "dataverse"
            children.append(
                subprocess.Popen(
                    [
                        *python,
                        "dataverse",
                        "serve",
                        "--port",
                        str(dataverse_port),
                        "--data",
                        str(dv_dir),
                        "--seed",
                    ],
                    env=env,
                )
            )
            dataverse_url = f"https://127.0.0.1:{dataverse_port}"
            ca_bundle = dv_dir / "ca.pem"
            # The hub and the worker reach the local server's identity and Web API endpoints
            # over HTTPS exactly as they would Microsoft's; they trust it through its CA (read
            # per connection, so it may appear after they start). The server registers
            # $GTMSYNC_BASE_URL/connection/callback as a redirect URI of the seeded app.
            env["GTMSYNC_CA_BUNDLE"] = str(ca_bundle)
        children.append(
            subprocess.Popen([*python, "serve", "--no-migrate", "--port", str(port)], env=env)
        )
        children.append(subprocess.Popen([*python, "worker"], env=env))

        hub_url = f"http://127.0.0.1:{port}"
        if not _wait_http(f"{hub_url}/healthz", timeout=60):
            raise typer.Exit(_fail(console, "the hub did not start"))
        if dataverse_url is not None:
            deadline = time.monotonic() + 90
            while not (ca_bundle and ca_bundle.exists()) and time.monotonic() < deadline:
                time.sleep(0.3)
            if not (
                ca_bundle
                and _wait_http(f"{dataverse_url}/api/data/v9.2/", timeout=90, verify=ca_bundle)
            ):
                raise typer.Exit(_fail(console, "the local Dataverse server did not start"))
        _print_banner(console, hub_url, dataverse_url, ca_bundle, logins)
        if exit_after_start:
            return
        _wait_for_children(children)
    finally:
        _stop(children)


def _has_local_dataverse() -> bool:
    try:
        from gtmsync.dataverse_local import server  # noqa: F401
    except ImportError:
        return False
    return True


def _fail(console: Console, what: str) -> int:
    console.print(f"[red]Demo failed: {what}. See the log lines above.[/red]")
    return 1


def _print_banner(
    console: Console,
    hub_url: str,
    dataverse_url: str | None,
    ca_bundle: Path | None,
    logins: list[DemoLogin],
) -> None:
    console.print(f"\n[bold green]gtmsync demo is running[/bold green]: open {hub_url}\n")
    table = Table(title=f"Demo sign-ins (password for all: {DEMO_PASSWORD})")
    for column in ("Org", "Name", "Email", "Role"):
        table.add_column(column)
    for login in logins:
        table.add_row(login.org, login.name, login.email, login.role)
    console.print(table)
    if dataverse_url:
        console.print(
            f"\nLocal Dataverse server (Organization URL to connect): [bold]{dataverse_url}[/bold]"
            f"\nIts CA certificate: {ca_bundle}"
        )
    console.print("\nPress Ctrl-C to stop.")


def _wait_for_children(children: list[subprocess.Popen[bytes]]) -> None:
    stop = False

    def _handler(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _handler)
    try:
        while not stop:
            if any(child.poll() is not None for child in children):
                typer.echo("A demo process exited; stopping the others.", err=True)
                return
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
