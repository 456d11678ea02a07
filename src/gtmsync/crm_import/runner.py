"""One import run of one source (Dynamics table → GTM object), page by page, resumable.

A run reads pages of 5,000 (or the org's smaller page size) and, per page: evaluates the
import rules, builds GTM rows from the mapping, enforces the per-object limit, matches to
platform records, upserts and deletes, adds the page's API calls to the usage table,
advances the cursor, and calls `checkpoint()` (the edge's commit). So a run killed anywhere
resumes from its last committed page: a backfill keeps the `@odata.nextLink` it has not
read yet, an incremental run the delta link or watermark of its last committed page.

Kinds:
- *backfill*: every row. With change tracking it is the initial tracked read (its last page
  carries the delta link for later increments); without, a `modifiedon le <signpost>` read.
  Rows the backfill did not see are swept at the end (deleted in Dynamics, or now excluded).
- *incremental*: the delta link (creates, updates, `$deletedEntity` removals), or the
  `modifiedon` window (creates and updates; removals are caught by the next backfill).

A lease on the cursor row keeps one run per org+source at a time (see `ImportCursor`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gtmsync.crm_import import cursor as cursorlib
from gtmsync.crm_import import matcher, rules
from gtmsync.crm_import.budget import UsageMeter
from gtmsync.crm_import.mapping import RowBuilder, TableSchema, raw_value, select_for
from gtmsync.crm_import.models import (
    CursorMode,
    GtmObject,
    ImportCursor,
    ImportRun,
    RunKind,
    RunStatus,
)
from gtmsync.crm_import.prefetch import WriteBehind, prefetched
from gtmsync.crm_import.repository import (
    CursorRepository,
    RecordRepository,
    RunRepository,
    UsageRepository,
)
from gtmsync.crm_import.schemas import ObjectRules, Source
from gtmsync.dataverse import (
    BudgetExceededError,
    ChangeTokenExpiredError,
    DataverseClient,
    NotFoundError,
    PrivilegeError,
    Record,
    ValidationError,
    odata,
)
from gtmsync.dataverse.changes import parse_page
from gtmsync.kit.clock import ensure_utc, utc_now

log = logging.getLogger(__name__)

DEFAULT_LIMITS: dict[str, int] = {
    "account": 20_000_000,
    "contact": 20_000_000,
    "lead": 20_000_000,
    "opportunity": 5_000_000,
}
FALLBACK_LIMIT = 20_000_000
LEASE = timedelta(minutes=10)  # renewed at every page; a dead run's lease lapses soon
FORMATTED_ANNOTATION = 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'


@dataclass
class PageData:
    upserts: list[Record]
    deleted: list[uuid.UUID]
    next_link: str | None
    delta_link: str | None


@dataclass
class Prepared:
    """One page turned into GTM rows and removals (`SourceRunner._prepare`)."""

    rows: list[dict[str, Any]]
    drop: list[uuid.UUID]
    seen: list[tuple[str, datetime | None]]
    read: int
    excluded: int


@dataclass
class RunContext:
    """What a run needs besides the cursor: everything loaded once by the service."""

    session: Session
    org_id: uuid.UUID
    client: DataverseClient
    meter: UsageMeter
    checkpoint: Callable[[], None]
    page_size: int
    lag: timedelta
    limits: dict[str, int]
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The worker passes its job lease's holder and length (a heartbeat renews both leases);
    # the CLI keeps LEASE, renewed at every page.
    lease: timedelta = LEASE


class LimitReached(Exception):  # noqa: N818 - control flow inside the runner, never escapes
    pass


def limit_for(source: Source, limits: dict[str, int]) -> int:
    return limits.get(source.table, limits.get(source.object.value, FALLBACK_LIMIT))


def source_table_key(source: Source) -> str:
    """`source_table` stored on rows: the table, or `table.field` for a role source."""
    if source.object == GtmObject.ROLE:
        return f"{source.table}.{source.related_id_attribute}"[:64]
    return source.table


class SourceRunner:
    def __init__(
        self,
        ctx: RunContext,
        source: Source,
        schema: TableSchema,
        object_rules: ObjectRules | None,
        *,
        calls_before: int | None = None,
    ) -> None:
        """`calls_before`: the meter's count before work done for this run (metadata)."""
        self.ctx = ctx
        self.source = source
        self.schema = schema
        self.rules = object_rules
        self.cursors = CursorRepository.from_session(ctx.session)
        self.records = RecordRepository.from_session(ctx.session)
        self.usage = UsageRepository.from_session(ctx.session)
        self.runs = RunRepository.from_session(ctx.session)
        self.table_key = source_table_key(source)
        self.select = select_for(source, schema, rules.rule_attributes(object_rules))
        self.builder = RowBuilder(source, schema)
        self._calls_before = ctx.meter.calls if calls_before is None else calls_before
        self._cursor_id = uuid.UUID(int=0)  # set when the run loads its cursor

    # -- lifecycle ------------------------------------------------------------------------

    def cursor(self) -> ImportCursor:
        cursor = self.cursors.for_source(self.ctx.org_id, self.source.key)
        if cursor is None:
            cursor = self.cursors.get_or_create(
                self.ctx.org_id, self.source.key, reason="initial connection"
            )
        return cursor

    def run(self, *, backfill: bool = False, reason: str | None = None) -> ImportRun:
        session = self.ctx.session
        cursor = self.cursor()
        cursor_id = self._cursor_id = cursor.id
        if backfill and not cursor.backfill_pending:
            cursor.backfill_pending, cursor.backfill_reason = True, reason or "sync now"
            cursor.backfill_started, cursor.backfill_next_link = False, None
        mode = CursorMode.DELTA if self.schema.change_tracking else CursorMode.WATERMARK
        if cursor.mode is not None and cursor.mode != mode and not cursor.backfill_pending:
            cursor.backfill_pending, cursor.backfill_reason = True, "change tracking switched"
            cursor.backfill_started, cursor.backfill_next_link = False, None
        kind = (
            RunKind.BACKFILL
            if cursor.backfill_pending or cursor.mode is None
            else RunKind.INCREMENTAL
        )
        run = ImportRun(
            org_id=self.ctx.org_id,
            source_key=self.source.key,
            source_table=self.source.table,
            kind=kind.value,
            reason=cursor.backfill_reason if kind == RunKind.BACKFILL else "scheduled",
            status=RunStatus.RUNNING.value,
            started_at=utc_now(),
        )
        self.runs.create(run, flush=True)
        if not self.cursors.take_lease(cursor_id, self.ctx.owner, utc_now() + self.ctx.lease):
            run.status = RunStatus.SKIPPED.value
            run.message = "Another run of this source is in progress; this one was skipped."
            self._finish(run)
            self.ctx.checkpoint()
            return run
        session.refresh(cursor)
        self.ctx.checkpoint()
        started = time.monotonic()
        try:
            if self.ctx.meter.remaining() <= 0:
                raise BudgetExceededError("budget used up before the run started")
            if kind == RunKind.BACKFILL:
                self._backfill(cursor, run, mode)
            else:
                self._incremental(cursor, run, mode)
            if run.status == RunStatus.RUNNING.value:
                run.status = RunStatus.SUCCEEDED.value
                cursor.message = None
        except LimitReached:
            limit = limit_for(self.source, self.ctx.limits)
            run.status = RunStatus.STOPPED.value
            run.message = cursor.message = (
                f"The {self.source.table} import stopped at the per-object limit of {limit:,} "
                f"records; the records stored so far are kept. Exclude records with import "
                "rules, or contact support to raise the limit."
            )
        except BudgetExceededError:
            session.rollback()
            run, cursor = self._reload(run.id, cursor_id)
            run.status = RunStatus.PAUSED.value
            run.message = cursor.message = (
                f"Paused: the daily Dataverse API budget of {self.ctx.meter.budget:,} requests "
                "for the import is used up. The run resumes from where it stopped after the "
                "budget resets at 00:00 UTC (or raise the budget in Import settings)."
            )
        except PrivilegeError as exc:
            session.rollback()
            run, cursor = self._reload(run.id, cursor_id)
            run.status = RunStatus.FAILED.value
            run.errors = str(exc)[:4000]
            run.message = cursor.message = (
                f"The connected Dynamics user may not read {self.source.table}: grant it read "
                "access in Dynamics (security roles), then run Sync Now."
            )
        except Exception as exc:  # recorded on the run; the next run resumes from the checkpoint
            session.rollback()
            run, cursor = self._reload(run.id, cursor_id)
            log.exception("import run failed", extra={"extra_fields": {"source": self.source.key}})
            run.status = RunStatus.FAILED.value
            run.errors = f"{type(exc).__name__}: {exc}"[:4000]
        run.api_calls = self.ctx.meter.calls - self._calls_before
        run.duration_ms = int((time.monotonic() - started) * 1000)
        self._save_usage()
        self.cursors.release_lease(cursor_id, self.ctx.owner)
        self._finish(run)
        self.ctx.checkpoint()
        return run

    def _reload(self, run_id: uuid.UUID, cursor_id: uuid.UUID) -> tuple[ImportRun, ImportCursor]:
        session = self.ctx.session
        run = session.get(ImportRun, run_id)
        cursor = session.get(ImportCursor, cursor_id)
        assert run is not None  # committed before any page
        assert cursor is not None
        return run, cursor

    def _finish(self, run: ImportRun) -> None:
        run.finished_at = utc_now()
        if run.duration_ms is None:
            run.duration_ms = int(
                (run.finished_at - ensure_utc(run.started_at)).total_seconds() * 1000
            )
        self.ctx.session.flush()

    def _save_usage(self) -> None:
        day, count = self.ctx.meter.take_unsaved()
        self.usage.add(self.ctx.org_id, day, count)

    # -- reading --------------------------------------------------------------------------

    def _headers(self, *, tracking: bool) -> dict[str, str]:
        prefer = [f"odata.maxpagesize={self.ctx.page_size}", FORMATTED_ANNOTATION]
        if tracking:
            prefer.insert(0, "odata.track-changes")
        return {"Prefer": ",".join(prefer)}

    def _pages(
        self,
        first: str | None,
        params: dict[str, str] | None,
        *,
        tracking: bool,
        delta_follow: bool = False,
    ) -> AbstractContextManager[Iterator[PageData]]:
        """Pages from `first` (a link) or from the entity set with `params`, in order.

        Each page is read one page ahead in a background thread (`prefetch.prefetched`),
        so Dataverse serves page N+1 while page N is stored; the cursor still advances
        only after a page is committed.
        """
        client = self.ctx.client
        headers = self._headers(tracking=tracking)
        entity_set = self.schema.entity_set

        def fetch(link: str | None) -> PageData:
            try:
                if link is None:
                    response = client.request(
                        "GET", entity_set, params=params, headers=headers, idempotent=True
                    )
                else:
                    response = client.request("GET", link, headers=headers, idempotent=True)
            except (ValidationError, NotFoundError) as exc:
                if delta_follow:
                    raise ChangeTokenExpiredError(
                        f"the delta link for {entity_set} can no longer be followed",
                        status=exc.status,
                        code=exc.code,
                    ) from exc
                raise
            page = parse_page(response)
            return PageData(
                upserts=page.upserts,
                deleted=[d.id for d in page.deletions],
                next_link=page.next_link,
                delta_link=page.delta_link,
            )

        return prefetched(fetch, first)

    # -- the two kinds ---------------------------------------------------------------------

    def _start_backfill(self, cursor: ImportCursor, mode: CursorMode) -> None:
        if cursor.backfill_started:
            return
        cursor.seq += 1
        cursor.backfill_started = True
        cursor.backfill_next_link = None
        cursor.backfill_signpost = utc_now()
        cursor.stored_count = self.records.count(
            self.source.object, self.ctx.org_id, self.table_key
        )
        cursor.mode = mode.value
        self.ctx.session.flush()
        self.ctx.checkpoint()

    def _backfill(self, cursor: ImportCursor, run: ImportRun, mode: CursorMode) -> None:
        self._start_backfill(cursor, mode)
        tracking = mode == CursorMode.DELTA
        params = {"$select": ",".join(self.select)}
        if not tracking:
            signpost = ensure_utc(cursor.backfill_signpost or utc_now())
            params["$filter"] = f"modifiedon le {odata.datetime_literal(signpost)}"
            params["$orderby"] = f"modifiedon asc,{self.schema.primary_id} asc"
        # A three-stage pipeline: page N+2 is read (prefetch thread) and page N+1 prepared
        # (this thread) while page N's upsert runs (writer thread; SQLite and psycopg let
        # other threads run during the statement). Page N is committed only after its
        # upsert finished, so a run killed anywhere still resumes from its last commit.
        with (
            self._pages(cursor.backfill_next_link, params, tracking=tracking) as pages,
            WriteBehind() as writer,
        ):
            stored: PageData | None = None  # upserted (maybe still running), not committed
            try:
                for page in pages:
                    prepared = self._prepare(page, cursor, watermark_window=None)
                    if stored is not None:
                        done, stored = stored, None
                        writer.wait()
                        self._backfill_page_done(done, cursor, run, tracking=tracking)
                    self._store(prepared, cursor, run, watermark_window=None, writer=writer)
                    stored = page
            except BaseException:
                if stored is not None:  # a read or a prepare failed: keep the page before it
                    writer.wait()
                    self._backfill_page_done(stored, cursor, run, tracking=tracking)
                raise
            if stored is not None:
                writer.wait()
                self._backfill_page_done(stored, cursor, run, tracking=tracking)

    def _backfill_page_done(
        self, page: PageData, cursor: ImportCursor, run: ImportRun, *, tracking: bool
    ) -> None:
        """Advance the backfill past a stored page (and finish it after the last) and commit."""
        cursor.backfill_next_link = page.next_link
        if page.next_link is None:
            run.records_deleted += self.records.sweep(
                self.source.object, self.ctx.org_id, self.table_key, cursor.seq
            )
            cursor.backfill_pending = False
            cursor.backfill_started = False
            cursor.backfill_reason = None
            if tracking:
                cursor.delta_link = page.delta_link
            else:
                cursor.watermark = cursor.backfill_signpost
                cursor.boundary_ids = []
            cursor.stored_count = self.records.count(
                self.source.object, self.ctx.org_id, self.table_key
            )
        self._checkpoint(run)

    def _incremental(self, cursor: ImportCursor, run: ImportRun, mode: CursorMode) -> None:
        if mode == CursorMode.DELTA:
            if not cursor.delta_link:
                cursor.backfill_pending, cursor.backfill_reason = True, "no delta link"
                self._backfill(cursor, run, mode)
                return
            try:
                with self._pages(
                    cursor.delta_link, None, tracking=True, delta_follow=True
                ) as pages:
                    for page in pages:
                        self._apply(page, cursor, run, watermark_window=None)
                        cursor.delta_link = page.next_link or page.delta_link
                        self._checkpoint(run)
            except ChangeTokenExpiredError:
                self.ctx.session.rollback()
                run, cursor = self._reload(run.id, cursor.id)
                cursor.backfill_pending, cursor.backfill_reason = True, "delta link expired"
                run.kind, run.reason = RunKind.BACKFILL.value, "delta link expired"
                self._backfill(cursor, run, mode)
            return
        window = cursorlib.window(
            cursor.watermark, cursor.boundary_ids, now=utc_now(), lag=self.ctx.lag
        )
        params = {
            "$select": ",".join(self.select),
            "$filter": window.filter(),
            "$orderby": f"modifiedon asc,{self.schema.primary_id} asc",
        }
        with self._pages(None, params, tracking=False) as pages:
            for page in pages:
                self._apply(page, cursor, run, watermark_window=window)
                self._checkpoint(run)

    def _checkpoint(self, run: ImportRun) -> None:
        self._save_usage()
        self.cursors.renew_lease(self._cursor_id, self.ctx.owner, utc_now() + self.ctx.lease)
        run.api_calls = self.ctx.meter.calls - self._calls_before
        self.ctx.session.flush()
        self.ctx.checkpoint()

    # -- one page -------------------------------------------------------------------------

    def _apply(
        self,
        page: PageData,
        cursor: ImportCursor,
        run: ImportRun,
        *,
        watermark_window: cursorlib.WatermarkWindow | None,
    ) -> None:
        prepared = self._prepare(page, cursor, watermark_window=watermark_window)
        self._store(prepared, cursor, run, watermark_window=watermark_window)

    def _prepare(
        self,
        page: PageData,
        cursor: ImportCursor,
        *,
        watermark_window: cursorlib.WatermarkWindow | None,
    ) -> Prepared:
        """The page's GTM rows and removals: Python only, no database work."""
        pk = self.schema.primary_id
        rows: list[dict[str, Any]] = []
        drop: list[uuid.UUID] = list(page.deleted)
        seen: list[tuple[str, datetime | None]] = []
        # Per-record work is the backfill's cost (millions of records): ORM attributes are
        # read once and the run's counters added once per page, not per record.
        watermark = cursor.watermark
        seq = cursor.seq
        tracking_seen = watermark_window is not None
        read = excluded = 0
        stamps: dict[str, datetime | None] = {}  # `modifiedon` repeats across a page
        object_rules = self.rules
        check_rules = object_rules is not None and any(g.conditions for g in object_rules.groups)
        for record in page.upserts:
            record_id = uuid.UUID(str(record[pk]))
            raw_modified = record.get("modifiedon")
            if not isinstance(raw_modified, str):
                modified = _parse_dt(raw_modified)
            elif raw_modified in stamps:
                modified = stamps[raw_modified]
            else:
                modified = stamps[raw_modified] = _parse_dt(raw_modified)
            if tracking_seen:
                assert watermark_window is not None
                if cursorlib.is_duplicate(watermark_window, watermark, str(record_id), modified):
                    continue
                seen.append((str(record_id), modified))
            read += 1
            if check_rules and rules.excluded(object_rules, record, self.schema):
                excluded += 1
                drop.append(record_id)
                continue
            row = self._row(record, record_id, modified, seq)
            if row is None:
                drop.append(record_id)
                continue
            rows.append(row)
        return Prepared(
            rows=rows, drop=drop, seen=seen, read=read + len(page.deleted), excluded=excluded
        )

    def _store(
        self,
        prepared: Prepared,
        cursor: ImportCursor,
        run: ImportRun,
        *,
        watermark_window: cursorlib.WatermarkWindow | None,
        writer: WriteBehind | None = None,
    ) -> None:
        """Removals, the limit, matching and the upsert of one prepared page.

        With a `writer`, the upsert (the page's last database statement) runs in the
        writer's thread while the caller prepares the next page; the caller waits for it
        before its next database work and before committing the page.
        """
        org_id = self.ctx.org_id
        obj = self.source.object
        rows, drop, seen = prepared.rows, prepared.drop, prepared.seen
        run.records_read += prepared.read
        run.records_excluded += prepared.excluded
        if drop:  # first: the upsert below may still be running when this returns
            removed = self.records.delete_ids(obj, org_id, self.table_key, drop)
            run.records_deleted += removed
            cursor.stored_count = max(0, (cursor.stored_count or 0) - removed)
        stop = False
        if rows:
            limit = limit_for(self.source, self.ctx.limits)
            stored = cursor.stored_count or 0
            new = rows  # an upper bound; looked at closely only near the limit
            if stored + len(rows) > limit:
                stored = self.records.count(obj, org_id, self.table_key)
                existing = self.records.existing_ids(
                    obj, org_id, self.table_key, [r["dynamics_id"] for r in rows]
                )
                new = [r for r in rows if r["dynamics_id"] not in existing]
                if stored + len(new) > limit:
                    allowed = {id(r) for r in new[: max(0, limit - stored)]}
                    rows = [r for r in rows if r["dynamics_id"] in existing or id(r) in allowed]
                    new = [r for r in new if id(r) in allowed]
                    stop = True
            cursor.stored_count = stored + len(new)
            matcher.match_rows(self.ctx.session, obj, rows)
            self.records.upsert(
                obj, rows, execute=None if stop or writer is None else writer.submit
            )
            run.records_stored += len(rows)
        if watermark_window is not None:
            watermark, boundary = cursorlib.advance(
                ensure_utc(cursor.watermark) if cursor.watermark else None,
                set(cursor.boundary_ids or []),
                seen,
            )
            cursor.watermark, cursor.boundary_ids = watermark, sorted(boundary)
        if stop:
            self._checkpoint(run)
            raise LimitReached

    def _row(
        self, record: Record, record_id: uuid.UUID, modified: datetime | None, seq: int
    ) -> dict[str, Any] | None:
        base = {
            "org_id": self.ctx.org_id,
            "source_table": self.table_key,
            "dynamics_id": record_id,
            "modified_on": modified,
            "seen_seq": seq,
        }
        if self.source.object == GtmObject.ROLE:
            related = raw_value(record, self.source.related_id_attribute or "", self.schema)
            if related is None:
                return None
            owner_record = raw_value(record, self.source.record_id_attribute or "", self.schema)
            return {
                **base,
                "role": (self.source.role_name or self.source.related_id_attribute or "")[:120],
                "record_table": self.source.table,
                "record_id": uuid.UUID(str(owner_record)) if owner_record else record_id,
                "related_id": uuid.UUID(str(related)),
                "owner_id": None,
                "custom": None,
            }
        row = self.builder.build(record)
        if row.get("owner_id") is None:
            owner_raw = record.get("_ownerid_value")
            row["owner_id"] = uuid.UUID(str(owner_raw)) if owner_raw else None
        row.update(base)
        return row


def _parse_dt(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return ensure_utc(parsed) if parsed.tzinfo else None
