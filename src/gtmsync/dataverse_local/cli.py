"""`gtmsync dataverse …`: run and seed the local Dataverse server."""

from __future__ import annotations

import typer

app = typer.Typer(help="The local Dataverse-compatible server (HTTPS).", no_args_is_help=True)
