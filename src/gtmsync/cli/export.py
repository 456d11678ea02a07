"""`gtmsync export`: plan an export of platform records to Dynamics, review it, run it.

The plan is committed before anything is written, and the run commits after every batch,
so an interrupted command is finished with `gtmsync export --resume EXPORT_ID`.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import Engine

from gtmsync.cli.context import unit_of_work
from gtmsync.dataverse import DataverseError
from gtmsync.export import service as export_service
from gtmsync.export.schemas import ExportObject
from gtmsync.jobs import leases
from gtmsync.kit.errors import GtmsyncError
from gtmsync.settings import get_settings

EXPORT_HELP = """Export companies (as accounts) or contacts (as contacts or leads) to Dynamics 365.

The IDs file holds platform IDs, one per line (blank lines and lines starting with # are ignored). The export is planned first: duplicate checks and account association, nothing written. Records that need a decision are listed with the admin's default pre-selected; --yes accepts the defaults without asking. The run writes in batches and commits each, so an interrupted export is finished with --resume EXPORT_ID.

Exit codes: 0 every record exported or skipped as decided, 1 some records failed (see --csv), 2 the export was refused or interrupted.
"""  # noqa: E501 - paragraphs are reflowed by the help renderer


def _ids(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s for line in lines if (s := line.strip()) and not s.startswith("#")]


def _review_table(view: export_service.ExportView) -> Table:
    table = Table(title=f"Needs a decision ({view.needs_review})")
    for column in ("Record", "Found in Dynamics", "Choice", "Account"):
        table.add_column(column)
    for item in view.items[:50]:
        duplicate = item.duplicate or {}
        found = f"{duplicate.get('name')} ({duplicate.get('matched_by')})" if duplicate else ""
        association = item.association or {}
        table.add_row(
            item.label,
            found,
            item.duplicate_choice or "",
            str(association.get("choice") or "(pick one)") if association else "",
        )
    return table


def export(
    *,
    org: str | None = typer.Option(None, "--org", help="The org's slug."),
    user: str | None = typer.Option(
        None, "--user", help="Email of the exporting user (record owner)."
    ),
    obj: ExportObject = typer.Option(ExportObject.CONTACT, "--object", help="What to export."),
    ids_file: Path | None = typer.Option(
        None, "--ids-file", exists=True, dir_okay=False, help="Platform IDs, one per line."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Accept the pre-selected decisions."),
    resume: str | None = typer.Option(None, "--resume", help="Finish an interrupted export."),
    csv_path: Path | None = typer.Option(None, "--csv", help="Write per-record results here."),
) -> None:
    console = Console()
    settings = get_settings()
    try:
        with unit_of_work() as session:
            if resume:
                org_id = export_service.org_of(session, resume, org)
                export_id = uuid.UUID(resume)
            else:
                if not (org and user and ids_file):
                    raise typer.BadParameter("--org, --user and --ids-file are needed to plan")
                org_id, user_id = export_service.resolve_actor(session, org, user)
                planned = export_service.plan(
                    session,
                    org_id=org_id,
                    user_id=user_id,
                    obj=obj,
                    platform_ids=_ids(ids_file),
                    settings=settings,
                )
                export_id = planned.id
                session.commit()
                view = export_service.view(session, planned, review_only=True)
                planned_counts = ", ".join(f"{n} {a}" for a, n in sorted(view.planned.items()))
                console.print(
                    f"Planned export {export_id}: {view.total} records ({planned_counts})."
                )
                if view.needs_review:
                    console.print(_review_table(view))
                    if not yes and not typer.confirm("Run with these decisions?", default=False):
                        console.print(
                            "Not run. Change decisions in the portal or the API, then run "
                            f"`gtmsync export --resume {export_id}`."
                        )
                        raise typer.Exit(0)
            with Progress(
                TextColumn("Exporting"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            ) as progress:
                task = progress.add_task("export", total=None)

                def advance(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                # The same lease a worker's run holds: the CLI never runs an export that a
                # worker is running now (two runs would race on the same batches).
                engine = session.get_bind()
                assert isinstance(engine, Engine)
                name = export_service.run_lease(export_id)
                with leases.hold(engine, name, seconds=settings.job_lease_seconds) as lease:
                    if lease is None:
                        progress.stop()
                        console.print(
                            f"Export {export_id} is running in a worker right now; follow it "
                            "in the portal (Exports) or try again when it stops."
                        )
                        raise typer.Exit(1)

                    def checkpoint(held: leases.Lease = lease) -> None:
                        session.commit()
                        held.ensure_held()

                    finished = export_service.run(
                        session,
                        org_id,
                        export_id,
                        checkpoint=checkpoint,
                        progress=advance,
                        settings=settings,
                    )
            result = export_service.view(session, finished, with_items=False)
            if csv_path is not None:
                csv_path.write_text(
                    export_service.csv_for(session, org_id, export_id), encoding="utf-8"
                )
    except GtmsyncError as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except DataverseError as exc:
        console.print(f"[red]Interrupted:[/red] {exc}")
        console.print("Finish it with `gtmsync export --resume <export id>` (printed above).")
        raise typer.Exit(2) from exc
    summary = ", ".join(f"{n} {s}" for s, n in sorted(result.results.items()))
    console.print(f"Export {export_id} {result.status}: {summary}.")
    if result.results.get("failed"):
        raise typer.Exit(1)
