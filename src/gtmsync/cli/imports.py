"""`gtmsync import …`: run an org's Dynamics import now, or show where it stands."""

from __future__ import annotations

import typer

from gtmsync.cli.context import unit_of_work
from gtmsync.crm_import import service as import_service
from gtmsync.kit.errors import GtmsyncError
from gtmsync.platform import service as platform_service

app = typer.Typer(help="Dynamics import: run it now, or show its status.", no_args_is_help=True)


def _org_id(session: object, slug: str) -> object:
    org = platform_service.get_org_by_slug(session, slug)  # type: ignore[arg-type]
    if org is None:
        raise GtmsyncError(f"No org with slug '{slug}'.", field="org", fix="See `gtmsync org`.")
    return org.id


@app.command("run")
def run(
    org: str = typer.Option(..., "--org", help="Org slug."),
    table: str | None = typer.Option(None, "--table", help="Only this Dynamics table."),
    backfill: bool = typer.Option(False, "--backfill", help="Re-read every record."),
) -> None:
    """Run the import (incremental, or a backfill where one is due or asked for)."""
    try:
        with unit_of_work() as session:
            runs = import_service.run_import(
                session,
                _org_id(session, org),  # type: ignore[arg-type]
                table=table,
                backfill=backfill,
                reason="cli" if backfill else None,
                checkpoint=session.commit,
            )
            lines = [
                f"{r.source_key:<32} {r.kind:<11} {r.status:<9} read={r.records_read} "
                f"stored={r.records_stored} deleted={r.records_deleted} "
                f"excluded={r.records_excluded} api_calls={r.api_calls}"
                + (f"  {r.message}" if r.message else "")
                + (f"  error: {r.errors}" if r.errors else "")
                for r in runs
            ]
    except GtmsyncError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo("\n".join(lines) or "Nothing to run.")


@app.command("status")
def status(org: str = typer.Option(..., "--org", help="Org slug.")) -> None:
    """Show the import toggle, today's API usage against the budget, and each source."""
    try:
        with unit_of_work() as session:
            state = import_service.status(session, _org_id(session, org))  # type: ignore[arg-type]
    except GtmsyncError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"Import: {'on' if state.enabled else 'off'}; API calls today: "
        f"{state.used_today} of {state.budget}"
    )
    for s in state.sources:
        pending = f"backfill pending ({s.backfill_reason})" if s.backfill_pending else "up to date"
        stored = s.stored if s.stored is not None else "-"
        typer.echo(
            f"{s.source_key:<32} mode={s.mode or '-':<9} stored={stored} "
            f"{pending}{' resumable' if s.resumable else ''}"
            + (f"  {s.message}" if s.message else "")
        )
