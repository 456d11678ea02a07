"""The `gtmsync` command: one Typer sub-app per command group."""

from __future__ import annotations

import typer

from gtmsync.cli import data, db, demo, imports, orgs, serve
from gtmsync.cli import export as export_cli

app = typer.Typer(
    name="gtmsync",
    help="Sync a B2B company/contact data platform with Microsoft Dynamics 365 (Dataverse).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(data.app, name="data")
app.add_typer(orgs.app, name="org")
app.add_typer(imports.app, name="import")
app.command("serve")(serve.serve)
app.command("worker")(serve.worker)
app.command("demo")(demo.demo)
app.command("export", help=export_cli.EXPORT_HELP)(export_cli.export)


def _mount_optional() -> None:
    """Sub-apps of features that register themselves (the local Dataverse server)."""
    try:
        from gtmsync.dataverse_local.cli import app as dataverse_app
    except ImportError:  # pragma: no cover - only while the feature is being built
        return
    app.add_typer(dataverse_app, name="dataverse")


_mount_optional()


def main() -> None:
    app()
