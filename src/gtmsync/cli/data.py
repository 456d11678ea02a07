"""`gtmsync data …`: load platform data from files, or generate sample data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from gtmsync.cli.context import session_factory, unit_of_work
from gtmsync.db import migrate
from gtmsync.kit.errors import GtmsyncError
from gtmsync.platform import loaders, sample
from gtmsync.settings import get_settings

app = typer.Typer(help="Platform data: companies, contacts, intent signals.", no_args_is_help=True)

LOAD_HELP = """Load companies, contacts and intent signals from CSV or JSON Lines files.

Each file's kind comes from its option (--companies, --contacts, --intent) or from its name (companies*, contacts*, intent*). Companies always load first, so contacts and signals can reference them by company_platform_id, the company's platform ID.

Columns, * required (header names are case-insensitive; other columns are ignored):

companies: platform_id*, name*, website, domain, phone, industry, employee_count, revenue, street, city, state, postal_code, country, description

contacts: platform_id*, first_name*, last_name*, company_platform_id, email, direct_phone, mobile_phone, job_title, department, management_level

intent: signal_id*, company_platform_id*, topic*, signal_score* (0-100), issue_date* (YYYY-MM-DD), audience_strength (A-E), signal_location

Rows are upserted by platform ID (signal_id for intent), so loading a file again updates rather than duplicates. Bad rows are skipped and listed in FILE.rejects.csv beside the file (row = data row number, header not counted).

Exit codes: 0 all rows loaded, 1 some rows rejected, 2 a file was refused and nothing was loaded.
"""  # noqa: E501 - paragraphs are reflowed by the help renderer


@app.command("load", help=LOAD_HELP)
def load(
    files: list[Path] | None = typer.Argument(
        None, help="Files whose names say their kind: companies*, contacts*, intent*."
    ),
    *,
    companies: list[Path] | None = typer.Option(None, "--companies", help="A companies file."),
    contacts: list[Path] | None = typer.Option(None, "--contacts", help="A contacts file."),
    intent: list[Path] | None = typer.Option(None, "--intent", help="An intent signals file."),
    batch_size: int = typer.Option(loaders.DEFAULT_BATCH_SIZE, min=1, help="Rows per transaction."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    console = Console()
    err = Console(stderr=True)
    try:
        jobs = [(loaders.kind_from_name(path), path) for path in files or []]
        jobs += [(loaders.Kind.COMPANIES, path) for path in companies or []]
        jobs += [(loaders.Kind.CONTACTS, path) for path in contacts or []]
        jobs += [(loaders.Kind.INTENT, path) for path in intent or []]
        if not jobs:
            raise GtmsyncError(
                "No files given.", field="files", fix="Pass at least one file; see --help."
            )
        for kind, path in jobs:
            loaders.preflight(kind, path)
        migrate.upgrade(get_settings().db_url)
        with _progress(console, [path for _, path in jobs], enabled=progress) as report:
            summary = loaders.load_files(
                session_factory(), jobs, batch_size=batch_size, on_progress=report
            )
    except GtmsyncError as exc:
        err.print(f"[red]Error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    console.print(_summary_table(summary))
    if summary.rejected:
        for result in summary.results:
            if result.reject_file is not None:
                typer.echo(
                    f"{result.kind}: {result.rejected:,} rows rejected, see {result.reject_file}"
                )
        raise typer.Exit(1)


@contextmanager
def _progress(
    console: Console, paths: list[Path], *, enabled: bool
) -> Iterator[Callable[[Path, int], None] | None]:
    """A bar per file driven by bytes read, shown only on a terminal."""
    if not enabled or not console.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[Path, TaskID] = {
        path: bar.add_task(path.name, total=path.stat().st_size) for path in paths
    }

    def report(path: Path, done: int) -> None:
        bar.update(tasks[path], completed=done)

    with bar:
        yield report


def _summary_table(summary: loaders.LoadSummary) -> Table:
    table = Table(title="Loaded")
    table.add_column("Kind")
    table.add_column("File", overflow="fold")
    for column in ("Read", "Inserted", "Updated", "Rejected"):
        table.add_column(column, justify="right")
    table.add_column("Ignored", overflow="fold")
    for r in summary.results:
        table.add_row(
            str(r.kind),
            Path(r.source).name,
            f"{r.read:,}",
            f"{r.inserted:,}",
            f"{r.updated:,}",
            f"[red]{r.rejected:,}[/red]" if r.rejected else "0",
            ", ".join(r.ignored_columns) or ("(empty file)" if r.empty else ""),
        )
    return table


@app.command("sample")
def sample_data(
    companies: int = typer.Option(..., min=0, help="Companies to generate."),
    contacts_per_company: int = typer.Option(5, min=0, help="Contacts for each company."),
    seed: int = typer.Option(42, help="Same seed, same data (byte-identical files)."),
    out: Path | None = typer.Option(
        None,
        file_okay=False,
        help="Write companies.csv, contacts.csv and intent.csv here instead of the database.",
    ),
) -> None:
    """Generate realistic, deterministic sample companies, contacts and intent signals."""
    if out is not None:
        files = sample.write_sample_files(
            out, companies=companies, contacts_per_company=contacts_per_company, seed=seed
        )
        s = files.summary
        typer.echo(
            f"Wrote {s.companies:,} companies, {s.contacts:,} contacts and "
            f"{s.intent_signals:,} intent signals to {out}."
        )
        typer.echo(
            f"Load them with: gtmsync data load {files.companies} {files.contacts} {files.intent}"
        )
        return
    migrate.upgrade(get_settings().db_url)
    with unit_of_work() as session:
        s = sample.generate_sample(
            session, companies=companies, contacts_per_company=contacts_per_company, seed=seed
        )
    typer.echo(
        f"Generated {s.companies:,} companies, {s.contacts:,} contacts and "
        f"{s.intent_signals:,} intent signals in the database."
    )
