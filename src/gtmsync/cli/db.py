"""`gtmsync db …`: schema migrations."""

from __future__ import annotations

import typer

from gtmsync.db import migrate
from gtmsync.settings import get_settings

app = typer.Typer(help="Hub database migrations (Alembic).", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    migrate.upgrade(get_settings().db_url, revision)
    typer.echo("Database is up to date.")


@app.command()
def downgrade(
    revision: str = typer.Argument(..., help="Target revision, e.g. -1 or base."),
) -> None:
    """Revert migrations down to REVISION."""
    migrate.downgrade(get_settings().db_url, revision)


@app.command()
def current() -> None:
    """Show the revision the database is at."""
    migrate.current(get_settings().db_url)


@app.command()
def check() -> None:
    """Fail when the models have changes no migration covers."""
    migrate.check(get_settings().db_url)
    typer.echo("No schema drift.")
