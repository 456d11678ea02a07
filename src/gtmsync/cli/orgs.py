"""`gtmsync org …`: create orgs and users from the shell (first admin of a new install)."""

from __future__ import annotations

import typer

from gtmsync.cli.context import unit_of_work
from gtmsync.kit.errors import GtmsyncError
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import Role

app = typer.Typer(help="Orgs and their users.", no_args_is_help=True)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Org display name."),
    admin_email: str = typer.Option(..., help="Email of the org's first admin."),
    admin_name: str = typer.Option("Admin", help="Name of the org's first admin."),
    admin_password: str = typer.Option(..., prompt=True, hide_input=True, help="Password."),
) -> None:
    """Create an org with its first admin."""
    try:
        with unit_of_work() as session:
            org = platform_service.create_org(session, name=name)
            platform_service.create_user(
                session,
                org=org,
                email=admin_email,
                name=admin_name,
                password=admin_password,
                role=Role.ADMIN,
            )
            slug = org.slug
    except GtmsyncError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"Created org '{name}' ({slug}) with admin {admin_email}.")


@app.command("add-user")
def add_user(
    org_slug: str = typer.Argument(..., help="Org slug."),
    email: str = typer.Option(..., help="Email (unique in the org)."),
    name: str = typer.Option(..., help="Full name."),
    password: str = typer.Option(..., prompt=True, hide_input=True, help="Password."),
    admin: bool = typer.Option(False, "--admin", help="Make the user an admin."),
) -> None:
    """Add a user to an org."""
    try:
        with unit_of_work() as session:
            org = platform_service.get_org_by_slug(session, org_slug)
            if org is None:
                raise GtmsyncError(f"No org with slug '{org_slug}'.", field="org_slug")
            platform_service.create_user(
                session,
                org=org,
                email=email,
                name=name,
                password=password,
                role=Role.ADMIN if admin else Role.USER,
            )
    except GtmsyncError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"Added {email} to {org_slug}.")
