"""Loading companies, contacts and intent signals from files into the platform tables.

Files are CSV with a header row or JSON Lines (`.csv`, `.jsonl`, `.ndjson`, each optionally
`.gz`). Header names are matched case-insensitively, spaces and hyphens read as underscores.

- companies, upserted by `platform_id`; required: platform_id, name; optional: website,
  domain, phone, industry, employee_count, revenue, street, city, state, postal_code, country,
  description.
- contacts, upserted by `platform_id`; required: platform_id, first_name, last_name; optional:
  company_platform_id, email, direct_phone, mobile_phone, job_title, department,
  management_level.
- intent, upserted by `signal_id`; required: signal_id, company_platform_id, topic,
  signal_score, issue_date; optional: audience_strength, signal_location.

`company_platform_id` is the company's `platform_id` (not a database ID); a reference to a
company that is neither in the database nor loaded earlier is a reject, so load companies
first. `domain` is derived from `website` when absent. Numbers accept `1200`, `1,200` and
`1200.0`; `signal_score` is 0-100; `issue_date` is `YYYY-MM-DD`; `audience_strength` is a
grade A-E. Columns not in the table are ignored and reported.

How a load behaves:
- The header (or first JSON object) is checked before anything is written: a missing required
  column refuses the whole file, naming every missing column.
- Rows stream in batches; each batch is validated, its company references resolved with one
  query, and upserted by its key. A commit follows every batch (every 100,000 rows on
  SQLite, where commits are costly). A crash keeps whole committed batches, and loading the
  same file again updates rather than duplicates (rows whose values did not change are left
  alone, so `modified_at` only moves when something did).
- Into an empty SQLite table, its non-unique indexes are dropped and rebuilt once at the end
  (in a `finally`), which measured faster than maintaining them row by row; a process killed
  mid-load leaves them to `restore_deferred_indexes`, which every load and service start-up
  runs first.
- A bad row is skipped and written to `<input>.rejects.csv` beside the input with the columns
  `row, column, value, reason`, one line per problem; `row` is the 1-based data row (the CSV
  header is not counted; in JSON Lines it is the line number). Good rows still load.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Table
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.kit.errors import UserError
from gtmsync.platform import normalise
from gtmsync.platform.bulk_upsert import (
    COMPANY_REF,
    Batch,
    BatchWriter,
    CallerSession,
    OwnConnection,
    Reject,
    Target,
    engine_of,
    length_limits,
    restore_deferred_indexes,
)
from gtmsync.platform.formats import (
    FileRefusedError,
    FileSource,
    RecordSource,
    RowProblem,
    Values,
    require_file,
)
from gtmsync.platform.models import Company, Contact, IntentSignal

__all__ = ["restore_deferred_indexes"]  # re-exported: service start-up calls it from here

DEFAULT_BATCH_SIZE = 10_000
# SQLite pays per commit for every page touched (see bulk_upsert.OwnConnection).
SQLITE_COMMIT_ROWS = 100_000
REJECT_COLUMNS = ("row", "column", "value", "reason")

Parser = Callable[[str], Any]
ProgressCallback = Callable[[int], None]


class Kind(StrEnum):
    COMPANIES = "companies"
    CONTACTS = "contacts"
    INTENT = "intent"


LOAD_ORDER = (Kind.COMPANIES, Kind.CONTACTS, Kind.INTENT)


@dataclass(frozen=True)
class Column:
    """One input column: where it goes, whether it must have a value, how to parse it."""

    name: str
    required: bool = False
    parse: Parser | None = None  # None: text, trimmed


@dataclass(frozen=True)
class Spec:
    kind: Kind
    table: Table
    key: str
    columns: tuple[Column, ...]
    company_ref_required: bool | None  # None: the kind has no company reference

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


SPECS: dict[Kind, Spec] = {
    Kind.COMPANIES: Spec(
        Kind.COMPANIES,
        Company.__table__,  # type: ignore[arg-type]
        "platform_id",
        (
            Column("platform_id", required=True),
            Column("name", required=True),
            Column("website"),
            Column("domain", parse=normalise.registrable_domain),
            Column("phone", parse=normalise.clean_phone),
            Column("industry"),
            Column("employee_count", parse=normalise.parse_whole_number),
            Column("revenue", parse=normalise.parse_whole_number),
            Column("street"),
            Column("city"),
            Column("state"),
            Column("postal_code"),
            Column("country"),
            Column("description"),
        ),
        None,
    ),
    Kind.CONTACTS: Spec(
        Kind.CONTACTS,
        Contact.__table__,  # type: ignore[arg-type]
        "platform_id",
        (
            Column("platform_id", required=True),
            Column("first_name", required=True),
            Column("last_name", required=True),
            Column(COMPANY_REF),
            Column("email", parse=normalise.normalise_email),
            Column("direct_phone", parse=normalise.clean_phone),
            Column("mobile_phone", parse=normalise.clean_phone),
            Column("job_title"),
            Column("department"),
            Column("management_level"),
        ),
        False,
    ),
    Kind.INTENT: Spec(
        Kind.INTENT,
        IntentSignal.__table__,  # type: ignore[arg-type]
        "signal_id",
        (
            Column("signal_id", required=True),
            Column(COMPANY_REF, required=True),
            Column("topic", required=True),
            Column("signal_score", required=True, parse=normalise.parse_score),
            Column("audience_strength", parse=normalise.parse_audience_strength),
            Column("signal_location"),
            Column("issue_date", required=True, parse=normalise.parse_iso_date),
        ),
        True,
    ),
}


class LoadAbortedError(UserError):
    """The file broke part-way (bad encoding, broken quoting): earlier batches are kept."""


class MissingColumnsError(FileRefusedError):
    """The header lacks required columns; the file was refused before any write."""

    def __init__(self, source_name: str, kind: Kind, missing: Sequence[str]) -> None:
        super().__init__(
            f"{source_name} is missing required {kind} column(s): {', '.join(missing)}.",
            field=", ".join(missing),
            fix=f"Add the column(s) to the header; {kind} files need "
            f"{', '.join(SPECS[kind].required)}.",
        )
        self.missing = list(missing)


@dataclass(frozen=True)
class LoadResult:
    """What one file did to the database.

    `loaded` counts rows accepted (inserted + updated); `updated` includes rows whose values
    were already current and rows repeated within the file.
    """

    kind: Kind
    source: str
    read: int
    loaded: int
    inserted: int
    rejected: int
    reject_file: Path | None
    ignored_columns: tuple[str, ...]
    empty: bool = False

    @property
    def updated(self) -> int:
        return self.loaded - self.inserted


@dataclass
class LoadSummary:
    results: list[LoadResult] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(r.rejected for r in self.results)

    def for_kind(self, kind: Kind) -> list[LoadResult]:
        return [r for r in self.results if r.kind == kind]


def reject_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


class RejectSink:
    """Reject lines, written to a CSV file opened on the first reject (no file when clean)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lines: list[tuple[int, str, str, str]] = []  # kept only without a path
        self._file: TextIO | None = None
        self._writer: Any = None

    def add(self, row: int, column: str, value: str | None, reason: str) -> None:
        line = (row, column, "" if value is None else value, reason)
        if self.path is None:
            self.lines.append(line)
            return
        if self._writer is None:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(REJECT_COLUMNS)
        self._writer.writerow(line)

    @property
    def written(self) -> bool:
        return self._file is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


_NAME_PREFIXES = (
    (Kind.COMPANIES, ("companies", "company", "accounts")),
    (Kind.CONTACTS, ("contacts", "contact", "people", "persons")),
    (Kind.INTENT, ("intent",)),
)


def kind_from_name(path: Path) -> Kind:
    """`companies*.csv` holds companies, `contacts*` contacts, `intent*` intent signals."""
    require_file(path)
    name = path.name.lower()
    for kind, prefixes in _NAME_PREFIXES:
        if name.startswith(prefixes):
            return kind
    raise FileRefusedError(
        f"{path}: cannot tell whether it holds companies, contacts or intent signals.",
        field="file",
        fix="Start its name with companies, contacts or intent, or pass it with "
        "--companies, --contacts or --intent.",
    )


def check_columns(kind: Kind, source: RecordSource) -> tuple[str, ...]:
    """Refuse a source lacking required columns; return the columns that will be ignored."""
    spec = SPECS[kind]
    if source.columns is None:
        return ()
    present = set(source.columns)
    missing = [name for name in spec.required if name not in present]
    if missing:
        raise MissingColumnsError(source.name, kind, missing)
    known = set(spec.names)
    return tuple(c for c in source.columns if c not in known)


def preflight(kind: Kind, path: Path) -> tuple[str, ...]:
    """Open the file and check its header without writing: the CLI checks every file first."""
    with FileSource(path) as opened:
        return check_columns(kind, opened.source)


def load_file(
    factory: sessionmaker[Session],
    kind: Kind,
    path: Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: ProgressCallback | None = None,
    pipelined: bool = False,
    commit_rows: int | None = None,
    defer_indexes: bool = True,
) -> LoadResult:
    """Load one file in batches; rejects go to `<path>.rejects.csv`.

    Batches of `batch_size` rows are validated and written together; a commit follows every
    `commit_rows` rows (default: each batch, or every 100,000 rows on SQLite), so a crash
    keeps every committed row and a re-run picks up the rest.

    With `pipelined`, batches are written on a helper thread while the next one is read. It
    measured no gain in benchmarks/load_data.py (41,200 against 40,300 contacts/s on a quiet
    machine, 34,700 against 40,700 on a busy one): sqlite3 re-takes the GIL after every row it
    steps, so the threads mostly take turns. It stays an option for databases that spend
    longer per round trip.

    `defer_indexes=False` keeps an empty table's indexes during the load (for comparison).
    """
    with FileSource(path) as opened:
        reject_path = reject_path_for(path)
        reject_path.unlink(missing_ok=True)  # a stale file from an earlier run would mislead
        sink = RejectSink(reject_path)
        progress = None
        if on_progress is not None:
            report = on_progress

            def progress() -> None:
                report(opened.bytes_read())

        try:
            return _run(
                SPECS[kind],
                source=opened.source,
                sink=sink,
                batch_size=batch_size,
                target=_own_connection(factory, kind, batch_size, commit_rows, defer_indexes),
                progress=progress,
                pipelined=pipelined,
            )
        finally:
            sink.close()


def load_source(
    factory: sessionmaker[Session],
    kind: Kind,
    source: RecordSource,
    *,
    reject_path: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pipelined: bool = False,
    commit_rows: int | None = None,
    defer_indexes: bool = True,
) -> tuple[LoadResult, RejectSink]:
    """Load from any record source (a stream, an upload); rejects kept in memory without a path."""
    sink = RejectSink(reject_path)
    try:
        result = _run(
            SPECS[kind],
            source=source,
            sink=sink,
            batch_size=batch_size,
            target=_own_connection(factory, kind, batch_size, commit_rows, defer_indexes),
            progress=None,
            pipelined=pipelined,
        )
        return result, sink
    finally:
        sink.close()


def load_files(
    factory: sessionmaker[Session],
    files: Iterable[tuple[Kind, Path]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[Path, int], None] | None = None,
) -> LoadSummary:
    """Check every header first, then load companies before contacts before intent."""
    ordered = sorted(files, key=lambda item: LOAD_ORDER.index(item[0]))
    for kind, path in ordered:
        preflight(kind, path)
    summary = LoadSummary()
    for kind, path in ordered:
        callback = None
        if on_progress is not None:
            callback = partial(on_progress, path)
        summary.results.append(
            load_file(factory, kind, path, batch_size=batch_size, on_progress=callback)
        )
    return summary


def upsert_records(
    session: Session,
    kind: Kind,
    records: Iterable[Mapping[str, str | None]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[LoadResult, RejectSink]:
    """Validate and upsert records inside the caller's transaction (sample data, tests).

    The caller's unit of work commits; rejects are returned in memory.
    """
    spec = SPECS[kind]
    sink = RejectSink(None)
    result = _run(
        spec,
        source=_MappingSource(f"{kind} records", spec.names, records),
        sink=sink,
        batch_size=batch_size,
        target=CallerSession(session, _writer(spec)),
        progress=None,
        pipelined=False,
    )
    return result, sink


class _MappingSource:
    """Records already in memory or generated on the fly, as dicts keyed by column name."""

    def __init__(
        self, name: str, columns: list[str], records: Iterable[Mapping[str, str | None]]
    ) -> None:
        self.name = name
        self.columns = columns
        self._records = records

    def rows(self, wanted: Sequence[str]) -> Iterator[tuple[int, Values | RowProblem]]:
        for n, record in enumerate(self._records, start=1):
            yield n, [record.get(col) for col in wanted]

    def bytes_read(self) -> int:
        return 0


def _writer(spec: Spec) -> BatchWriter:
    return BatchWriter(
        spec.table, key=spec.key, has_company_ref=spec.company_ref_required is not None
    )


def _own_connection(
    factory: sessionmaker[Session],
    kind: Kind,
    batch_size: int,
    commit_rows: int | None,
    defer_indexes: bool,
) -> OwnConnection:
    engine = engine_of(factory)
    if commit_rows is None:
        commit_rows = SQLITE_COMMIT_ROWS if engine.dialect.name == "sqlite" else batch_size
    return OwnConnection(
        engine,
        _writer(SPECS[kind]),
        commit_rows=max(commit_rows, 1),
        defer_indexes=defer_indexes,
    )


class _Inline:
    """The executor interface, running each call at once on the calling thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True) -> None:  # noqa: ARG002 - interface parity
        return None


def _run(
    spec: Spec,
    *,
    source: RecordSource,
    sink: RejectSink,
    batch_size: int,
    target: Target,
    progress: Callable[[], None] | None,
    pipelined: bool,
) -> LoadResult:
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    ignored = check_columns(spec.kind, source)
    if source.columns is None:
        return LoadResult(spec.kind, source.name, 0, 0, 0, 0, None, (), empty=True)
    # Every database call runs on the executor's single thread: a connection stays on one.
    pool: ThreadPoolExecutor | _Inline = (
        ThreadPoolExecutor(1, thread_name_prefix="gtmsync-load") if pipelined else _Inline()
    )
    read = loaded = rejected = 0
    pending: Future[tuple[int, list[Reject]]] | None = None
    sizes: list[int] = []

    def settle() -> None:
        nonlocal pending, loaded, rejected
        if pending is None:
            return
        done, refused = pending.result()
        pending = None
        size = sizes.pop(0)
        loaded += done
        rejected += size - done
        for line in refused:
            sink.add(*line)

    try:
        before: int = pool.submit(target.count).result()
        if before == 0:
            pool.submit(target.defer_indexes).result()
        batch: Batch = []
        rows = _validated(spec, source, sink)
        while True:
            try:
                row_no, row = next(rows)
            except StopIteration:
                break
            except FileRefusedError as exc:
                settle()
                pool.submit(target.finish).result()
                raise LoadAbortedError(
                    f"{exc.message} The {loaded} rows before it were loaded.",
                    field="file",
                    fix=f"{exc.fix or 'Fix the file.'} Then load it again: rows already loaded "
                    "are updated, not duplicated.",
                ) from exc
            read += 1
            if row is None:
                rejected += 1
                continue
            batch.append((row_no, row))
            if len(batch) >= batch_size:
                settle()
                sizes.append(len(batch))
                pending = pool.submit(target.write, batch)
                batch = []
                if progress is not None:
                    progress()
        settle()
        if batch:
            sizes.append(len(batch))
            pending = pool.submit(target.write, batch)
            settle()
        pool.submit(target.finish).result()
        if progress is not None:
            progress()
        inserted = pool.submit(target.count).result() - before
    finally:
        if pending is not None:
            pending.exception()  # wait; the error that got us here is the one to report
        pool.submit(target.close).result()
        pool.shutdown(wait=True)
    return LoadResult(
        kind=spec.kind,
        source=source.name,
        read=read,
        loaded=loaded,
        inserted=inserted,
        rejected=rejected,
        reject_file=sink.path if sink.written else None,
        ignored_columns=ignored,
    )


def _validated(
    spec: Spec, source: RecordSource, sink: RejectSink
) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Parse each row's values; a row with any problem is reported and yielded as None."""
    limits = length_limits(spec.table, spec.names)
    plan = [(c.name, c.required, c.parse, limits.get(c.name)) for c in spec.columns]
    for row_no, values in source.rows(spec.names):
        if isinstance(values, RowProblem):
            sink.add(row_no, "", None, values.reason)
            yield row_no, None
            continue
        out: dict[str, Any] = {}
        bad = False
        # The common case (a value that needs no parsing) takes the fewest steps: this loop
        # runs ten times per row, millions of times per load.
        for (name, required, parse, limit), raw in zip(plan, values, strict=True):
            if raw:
                value = raw.strip()
                if value:
                    if limit is not None and len(value) > limit:
                        sink.add(row_no, name, raw, f"longer than {limit} characters")
                        bad = True
                    elif parse is None:
                        out[name] = value
                    else:
                        try:
                            out[name] = parse(value)
                        except ValueError as exc:
                            sink.add(row_no, name, raw, str(exc))
                            bad = True
                    continue
            if required:
                sink.add(row_no, name, raw, "missing required value")
                bad = True
            out[name] = None
        if not bad and spec.kind is Kind.COMPANIES and not _derive_company(row_no, out, sink):
            bad = True
        yield row_no, (None if bad else out)


def _derive_company(row_no: int, row: dict[str, Any], sink: RejectSink) -> bool:
    row["name_lower"] = row["name"].lower()
    if row["domain"] is None and row["website"] is not None:
        try:
            row["domain"] = normalise.registrable_domain(row["website"])
        except ValueError as exc:
            sink.add(row_no, "website", row["website"], str(exc))
            return False
    return True
