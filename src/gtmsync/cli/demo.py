"""`gtmsync demo`: everything on one machine with embedded defaults and sample data."""

from __future__ import annotations

import typer


def demo() -> None:
    """Run the hub portal, a worker and the local Dataverse server, seeded with demo data."""
    typer.echo("demo: not yet wired")
