"""`gtmsync data …`: load platform data from files, or generate sample data."""

from __future__ import annotations

import typer

app = typer.Typer(help="Platform data: companies, contacts, intent signals.", no_args_is_help=True)
