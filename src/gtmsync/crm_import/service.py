"""The import's facade: settings, mapping, rules, runs, usage, status, My Target Accounts.

Edges (web, CLI, tasks) call these functions; they flush, never commit. The one exception is
`run_import`, a long run that checkpoints per page through the `checkpoint` callable its
edge passes in (the job's or command's commit): "kill anywhere, resume from the last page"
needs a commit per page, and the edge still decides what a commit is.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.orm import Session

from gtmsync.connection import gateway
from gtmsync.crm_import import rules as ruleslib
from gtmsync.crm_import.budget import DEFAULT_DAILY_BUDGET, UsageMeter
from gtmsync.crm_import.mapping import (
    CUSTOM_PREFIX,
    DEFAULT_SOURCES,
    GTM_FIELDS,
    TableSchema,
    default_mapping,
    discover_table,
    gtm_field_names,
)
from gtmsync.crm_import.models import (
    GtmObject,
    ImportRun,
    ImportSettings,
    RunKind,
    RunStatus,
)
from gtmsync.crm_import.repository import (
    CursorRepository,
    RecordRepository,
    RunRepository,
    SettingsRepository,
    UsageRepository,
)
from gtmsync.crm_import.runner import DEFAULT_LIMITS, RunContext, SourceRunner
from gtmsync.crm_import.schemas import (
    ImportSettingsUpdate,
    ImportSettingsView,
    ImportStatus,
    MappingDocument,
    RuleSet,
    RunView,
    Source,
    SourceStatus,
    TargetAccount,
    UsageDay,
    UsageView,
)
from gtmsync.dataverse import BudgetExceededError, DataverseClient, DataverseError, RequestInfo
from gtmsync.kit.clock import ensure_utc, utc_now
from gtmsync.kit.errors import UserError
from gtmsync.platform import audit
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import User
from gtmsync.settings import Settings, get_settings

MAPPING_PAGE = "Admin Portal › Integrations › Dynamics › Import Mapping"

# -- settings ------------------------------------------------------------------------------


def settings_row(session: Session, org_id: uuid.UUID) -> ImportSettings:
    """The org's import settings, created with the defaults (import on) on first use."""
    repo = SettingsRepository.from_session(session)
    row = repo.for_org(org_id)
    if row is None:
        defaults = {
            "enabled": True,
            "daily_budget": DEFAULT_DAILY_BUDGET,
            "page_size": 5000,
            "lag_seconds": 300,
        }
        row = repo.get_or_create(org_id, defaults)
    return row


def gtm_field_options(obj: GtmObject, custom: Sequence[str] = ()) -> list[str]:
    """GTM fields a Dynamics column may feed: the standard ones, then `custom.<name>`."""
    return gtm_field_names(obj, custom)


def limits_of(row: ImportSettings) -> dict[str, int]:
    return {**DEFAULT_LIMITS, **(row.object_limits or {})}


SCHEMA_MAX_AGE = timedelta(hours=1)


def _schema_recent(row: ImportSettings, table: str) -> bool:
    """Metadata read within the hour is reused by a backfill (it costs requests)."""
    read_at = (row.schema_cache or {}).get(table, {}).get("read_at")
    return bool(read_at) and utc_now() - datetime.fromisoformat(read_at) < SCHEMA_MAX_AGE


def get_settings_view(session: Session, org_id: uuid.UUID) -> ImportSettingsView:
    row = settings_row(session, org_id)
    return ImportSettingsView(
        enabled=row.enabled,
        daily_budget=row.daily_budget,
        page_size=row.page_size,
        lag_seconds=row.lag_seconds,
        object_limits=limits_of(row),
    )


def update_settings(
    session: Session, org_id: uuid.UUID, update: ImportSettingsUpdate, *, actor: User | None
) -> ImportSettingsView:
    row = settings_row(session, org_id)
    changes = update.model_dump(exclude_none=True)
    for key, value in changes.items():
        setattr(row, key, value)
    session.flush()
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        action="import.settings",
        summary="Changed the Dynamics import settings",
        detail=changes,
    )
    return get_settings_view(session, org_id)


# -- schema, mapping, rules ------------------------------------------------------------------


@contextmanager
def _client(
    session: Session,
    org_id: uuid.UUID,
    settings: Settings | None,
    client: DataverseClient | None = None,
) -> Iterator[DataverseClient]:
    """The given client, or a new one whose requests are counted in the usage table (page
    views read metadata too: every request the import feature makes is counted)."""
    if client is not None:
        yield client
        return
    meter = UsageMeter(budget=sys.maxsize, used_today=0)
    with gateway.client_for(
        session, org_id, settings=settings or get_settings(), on_request=meter.on_request
    ) as own:
        try:
            yield own
        finally:
            day, count = meter.take_unsaved()
            UsageRepository.from_session(session).add(org_id, day, count)


def table_schemas(row: ImportSettings) -> dict[str, TableSchema]:
    return {k: TableSchema.from_json(v) for k, v in (row.schema_cache or {}).items()}


def refresh_schemas(
    session: Session,
    org_id: uuid.UUID,
    client: DataverseClient,
    tables: Sequence[str] | None = None,
) -> dict[str, TableSchema]:
    """Read the tables' metadata (entity set, change tracking, readable columns) and cache it."""
    row = settings_row(session, org_id)
    cache = dict(row.schema_cache or {})
    present = client.metadata.tables()
    wanted = list(tables) if tables is not None else [t for t, _, _ in DEFAULT_SOURCES]
    for table in wanted:
        if table not in present:
            continue
        cache[table] = {**discover_table(client, table).to_json(), "read_at": utc_now().isoformat()}
    row.schema_cache = cache
    session.flush()
    return table_schemas(row)


def custom_tables(
    session: Session, org_id: uuid.UUID, *, settings: Settings | None = None
) -> list[str]:
    """Custom Dynamics tables (offered by Add source › Create records from object)."""
    with _client(session, org_id, settings) as client:
        return sorted(t.logical_name for t in client.metadata.tables().values() if t.is_custom)


def get_mapping(
    session: Session,
    org_id: uuid.UUID,
    *,
    settings: Settings | None = None,
    client: DataverseClient | None = None,
) -> MappingDocument:
    """The saved mapping, or the default one for the org's tables (reads metadata once)."""
    row = settings_row(session, org_id)
    if row.mapping is not None:
        return MappingDocument.model_validate(row.mapping)
    schemas = table_schemas(row)
    if not schemas:
        with _client(session, org_id, settings, client) as active:
            schemas = refresh_schemas(session, org_id, active)
    return default_mapping(schemas)


def schema_for(
    session: Session, org_id: uuid.UUID, table: str, *, settings: Settings | None = None
) -> TableSchema:
    row = settings_row(session, org_id)
    schemas = table_schemas(row)
    if table not in schemas:
        with _client(session, org_id, settings) as client:
            if table not in client.metadata.tables():
                raise UserError(
                    f"Dynamics has no table named {table!r}.",
                    field="table",
                    fix="Pick a table from the dropdown.",
                )
            schemas = refresh_schemas(session, org_id, client, [table])
    return schemas[table]


def _validate_mapping(
    session: Session, org_id: uuid.UUID, doc: MappingDocument, settings: Settings | None
) -> None:
    keys: set[str] = set()
    for source in doc.sources:
        if source.key in keys:
            raise UserError(
                f"The source {source.key} is listed twice.",
                field="sources",
                fix="Keep one entry per Dynamics table and GTM object.",
            )
        keys.add(source.key)
        schema = schema_for(session, org_id, source.table, settings=settings)
        if source.object == GtmObject.ROLE:
            for name in (source.record_id_attribute, source.related_id_attribute):
                if not name or not schema.readable(name):
                    raise UserError(
                        f"Role source on {source.table} needs two readable ID fields "
                        f"({name!r} is not one).",
                        field="related_id_attribute",
                        fix="Pick the record's ID field and the lookup holding the person.",
                    )
            continue
        allowed = {f.name for f in GTM_FIELDS[source.object]}
        custom = set(doc.custom_fields.get(source.object.value, []))
        for fm in source.fields:
            if not schema.readable(fm.attribute):
                why = (schema.attributes.get(fm.attribute) or {}).get("reason") or "no such column"
                raise UserError(
                    f"{source.table}.{fm.attribute} cannot be imported: {why}.",
                    field=fm.attribute,
                    fix="Pick a readable column (the dropdown lists them), or grant the "
                    "connected user read access to it in Dynamics.",
                )
            if fm.field.startswith(CUSTOM_PREFIX):
                if fm.field.removeprefix(CUSTOM_PREFIX) not in custom:
                    raise UserError(
                        f"Custom field {fm.field} does not exist on {source.object.value}.",
                        field=fm.field,
                        fix="Create it with Create Custom Field first.",
                    )
            elif fm.field not in allowed:
                raise UserError(
                    f"{fm.field!r} is not a field of the GTM {source.object.value}.",
                    field=fm.field,
                    fix=f"Choose one of: {', '.join(sorted(allowed))}.",
                )


def _mark_backfill(session: Session, org_id: uuid.UUID, keys: Sequence[str], reason: str) -> None:
    repo = CursorRepository.from_session(session)
    for key in keys:
        cursor = repo.for_source(org_id, key) or repo.get_or_create(org_id, key, reason=reason)
        cursor.backfill_pending, cursor.backfill_reason = True, reason
        cursor.backfill_started, cursor.backfill_next_link = False, None
    session.flush()


def save_mapping(
    session: Session,
    org_id: uuid.UUID,
    doc: MappingDocument,
    *,
    actor: User | None,
    settings: Settings | None = None,
) -> MappingDocument:
    """Save the whole mapping; sources whose mapping changed get a backfill."""
    _validate_mapping(session, org_id, doc, settings)
    old = get_mapping(session, org_id, settings=settings)
    row = settings_row(session, org_id)
    row.mapping = doc.model_dump(mode="json")
    changed = [
        s.key
        for s in doc.sources
        if (before := old.source(s.key)) is None or before.model_dump() != s.model_dump()
    ]
    _mark_backfill(session, org_id, changed, "mapping change")
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        action="import.mapping",
        summary="Changed the Dynamics import mapping",
        detail={"changed_sources": changed},
    )
    return doc


def parse_mapping(data: object) -> MappingDocument:
    try:
        return MappingDocument.model_validate(data)
    except PydanticValidationError as exc:
        raise UserError(
            f"The import mapping is not valid: {exc.errors()[0]['msg']}.",
            field="mapping",
            fix="Send {sources: [{table, object, fields: [{attribute, field}]}]}.",
        ) from exc


def create_custom_field(
    session: Session,
    org_id: uuid.UUID,
    obj: GtmObject,
    name: str,
    *,
    actor: User | None,
    settings: Settings | None = None,
) -> MappingDocument:
    clean = "".join(
        ch for ch in name.strip().lower().replace(" ", "_") if ch.isalnum() or ch == "_"
    )
    if not clean:
        raise UserError(
            "A custom field needs a name.",
            field="name",
            fix="Type a name such as 'tier' (letters, digits and underscores).",
        )
    doc = get_mapping(session, org_id, settings=settings)
    existing = doc.custom_fields.setdefault(obj.value, [])
    if clean not in existing:
        existing.append(clean)
    row = settings_row(session, org_id)
    row.mapping = doc.model_dump(mode="json")
    session.flush()
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        action="import.custom_field",
        summary=f"Created the custom GTM field {obj.value}.{clean}",
    )
    return doc


def get_rules(session: Session, org_id: uuid.UUID) -> RuleSet:
    row = settings_row(session, org_id)
    return RuleSet.model_validate(row.rules or {})


def _rules_changed(old: RuleSet, new: RuleSet, key: str) -> bool:
    before, after = old.for_source(key), new.for_source(key)
    a = before.model_dump() if before is not None and before.groups else None
    b = after.model_dump() if after is not None and after.groups else None
    return a != b


def save_rules(
    session: Session,
    org_id: uuid.UUID,
    ruleset: RuleSet,
    *,
    actor: User | None,
    settings: Settings | None = None,
) -> RuleSet:
    """Save all import rules; sources whose rules changed get a backfill (which removes
    stored records the new rules exclude and brings back ones they no longer exclude)."""
    doc = get_mapping(session, org_id, settings=settings)
    tables = {s.key: s.table for s in doc.sources}
    schemas = {t: schema_for(session, org_id, t, settings=settings) for t in set(tables.values())}
    ruleslib.validate(ruleset.rules, schemas, tables)
    old = get_rules(session, org_id)
    keys = {r.source_key for r in ruleset.rules} | {r.source_key for r in old.rules}
    changed = [k for k in sorted(keys) if _rules_changed(old, ruleset, k)]
    row = settings_row(session, org_id)
    row.rules = ruleset.model_dump(mode="json")
    _mark_backfill(session, org_id, changed, "import rule change")
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        action="import.rules",
        summary="Changed the Dynamics import rules",
        detail={"changed_sources": changed},
    )
    return ruleset


# -- runs ------------------------------------------------------------------------------------


def run_import(
    session: Session,
    org_id: uuid.UUID,
    *,
    checkpoint: Callable[[], None],
    table: str | None = None,
    backfill: bool = False,
    reason: str | None = None,
    settings: Settings | None = None,
    on_request: Callable[[RequestInfo], None] | None = None,
    lease_owner: str | None = None,
    lease_seconds: float | None = None,
) -> list[ImportRun]:
    """Run every enabled source of the org (or those reading `table`), one after another.

    The worker passes `lease_owner`/`lease_seconds` (its job lease's holder and length, its
    heartbeat renewing the cursor leases through `renew_leases`), so a killed worker's
    sources are free again as soon as its job lease lapses.
    """
    settings = settings or get_settings()
    row = settings_row(session, org_id)
    if not row.enabled:
        raise UserError(
            "The Dynamics import is turned off for this organization.",
            field="enabled",
            fix=f"Turn Import on under {MAPPING_PAGE}.",
        )
    ruleset = get_rules(session, org_id)
    usage = UsageRepository.from_session(session)
    meter = UsageMeter(budget=row.daily_budget, used_today=usage.on_day(org_id, utc_now().date()))
    extra = on_request

    def hook(info: RequestInfo) -> None:
        if extra is not None:
            extra(info)
        meter.on_request(info)

    checkpoint()
    runs: list[ImportRun] = []
    with gateway.client_for(session, org_id, settings=settings, on_request=hook) as client:
        cached = set(table_schemas(row))
        try:
            doc = get_mapping(session, org_id, settings=settings, client=client)
        except BudgetExceededError as exc:
            raise UserError(
                f"The import's daily Dataverse API budget of {row.daily_budget:,} requests is "
                "used up, so the tables' metadata cannot be read.",
                field="daily_budget",
                fix="Wait for the budget to reset at 00:00 UTC or raise it in Import settings.",
            ) from exc
        finally:
            day, count = meter.take_unsaved()
            usage.add(org_id, day, count)
        sources = [s for s in doc.sources if s.enabled and (table is None or s.table == table)]
        if table is not None and not sources:
            raise UserError(
                f"No enabled import source reads the Dynamics table {table!r}.",
                field="table",
                fix=f"Use one of: {', '.join(sorted({s.table for s in doc.sources})) or 'none'}.",
            )
        ctx = RunContext(
            session=session,
            org_id=org_id,
            client=client,
            meter=meter,
            checkpoint=checkpoint,
            page_size=row.page_size,
            lag=timedelta(seconds=row.lag_seconds),
            limits=limits_of(row),
        )
        if lease_owner is not None:
            ctx.owner = lease_owner
        if lease_seconds is not None:
            ctx.lease = timedelta(seconds=lease_seconds)
        schemas = table_schemas(row)
        fresh = set(schemas) - cached  # read just now for the default mapping
        counted = 0  # requests before the first source (metadata) count towards its run
        for source in sources:
            before = counted
            cursor = CursorRepository.from_session(session).for_source(org_id, source.key)
            needs_backfill = backfill or cursor is None or cursor.backfill_pending
            if source.table not in schemas or (
                needs_backfill
                and not (cursor and cursor.backfill_started)
                and source.table not in fresh
                and not _schema_recent(row, source.table)
            ):
                try:
                    schemas = refresh_schemas(session, org_id, client, [source.table])
                except BudgetExceededError:
                    if source.table not in schemas:
                        runs.append(_paused_before_start(session, org_id, source, row.daily_budget))
                        checkpoint()
                        counted = meter.calls
                        continue
                except DataverseError:
                    if source.table not in schemas:
                        raise
            runner = SourceRunner(
                ctx,
                source,
                schemas[source.table],
                ruleset.for_source(source.key),
                calls_before=before,
            )
            runs.append(runner.run(backfill=backfill, reason=reason))
            counted = meter.calls
    return runs


def renew_leases(session: Session, owner: str, seconds: float) -> int:
    """Push out the cursor leases `owner` holds (the worker's lease heartbeat calls this)."""
    until = utc_now() + timedelta(seconds=seconds)
    return CursorRepository.from_session(session).renew_leases_of(owner, until)


INTERRUPTED_MESSAGE = (
    "The worker running this import stopped (killed or crashed) before it finished. What it "
    "stored up to its last page is kept; the next run resumes from there."
)


def recover_orphaned_runs(session: Session) -> list[tuple[uuid.UUID, str]]:
    """Close the runs a dead process left `running` (failed, with the reason) and return the
    (org, table) pairs to run again now: a backfill would wait for the scheduler's next
    minute and an incremental run for the next interval otherwise."""
    now = utc_now()
    again: list[tuple[uuid.UUID, str]] = []
    for run in RunRepository.from_session(session).orphaned(now):
        run.status = RunStatus.FAILED.value
        run.errors = INTERRUPTED_MESSAGE
        run.finished_at = now
        run.duration_ms = int((now - ensure_utc(run.started_at)).total_seconds() * 1000)
        if (run.org_id, run.source_table) not in again:
            again.append((run.org_id, run.source_table))
    session.flush()
    return again


def _paused_before_start(
    session: Session, org_id: uuid.UUID, source: Source, budget: int
) -> ImportRun:
    now = utc_now()
    run = ImportRun(
        org_id=org_id,
        source_key=source.key,
        source_table=source.table,
        kind=RunKind.BACKFILL.value,
        reason="initial connection",
        status=RunStatus.PAUSED.value,
        started_at=now,
        finished_at=now,
        duration_ms=0,
        message=f"Paused: the daily Dataverse API budget of {budget:,} requests for the import "
        "is used up; the run starts after the budget resets at 00:00 UTC.",
    )
    RunRepository.from_session(session).create(run, flush=True)
    return run


def sync_now(
    session: Session,
    org_id: uuid.UUID,
    *,
    actor: User | None,
    settings: Settings | None = None,
) -> list[str]:
    """Mark every source for a prioritized full backfill; returns the source keys."""
    doc = get_mapping(session, org_id, settings=settings)
    keys = [s.key for s in doc.sources if s.enabled]
    _mark_backfill(session, org_id, keys, "sync now")
    audit.record(
        session,
        org_id=org_id,
        actor=actor,
        action="import.sync_now",
        summary="Requested a full Dynamics import (Sync Now)",
    )
    return keys


def has_pending_backfill(session: Session, org_id: uuid.UUID) -> bool:
    return any(c.backfill_pending for c in CursorRepository.from_session(session).for_org(org_id))


def orgs_to_import(session: Session) -> list[uuid.UUID]:
    """Orgs with a usable Dynamics integration and the import on (the scheduler's list)."""
    found: list[uuid.UUID] = []
    for org in platform_service.list_orgs(session):
        integration = gateway.get_integration(session, org.id)
        if integration is None:
            continue
        try:
            gateway.ensure_usable(integration)  # off, or waiting for a reconnect: skip quietly
        except gateway.IntegrationUnavailableError:
            continue
        if settings_row(session, org.id).enabled:
            found.append(org.id)
    return found


def orgs_due(session: Session, interval_minutes: int) -> list[uuid.UUID]:
    """Connected orgs whose incremental run is due, or with a backfill waiting (Sync Now,
    mapping or rule change), that have budget left and no run holding a lease right now."""
    now = utc_now()
    due: list[uuid.UUID] = []
    for org_id in orgs_to_import(session):
        budget = settings_row(session, org_id).daily_budget
        if UsageRepository.from_session(session).on_day(org_id, now.date()) >= budget:
            continue  # paused until the budget resets; no run would do anything
        cursors = CursorRepository.from_session(session).for_org(org_id)
        if any(c.locked_until is not None and ensure_utc(c.locked_until) > now for c in cursors):
            continue
        if not cursors or any(c.backfill_pending for c in cursors):
            due.append(org_id)
            continue
        last = RunRepository.from_session(session).recent(org_id, limit=1)
        if not last or ensure_utc(last[0].started_at) <= now - timedelta(minutes=interval_minutes):
            due.append(org_id)
    return due


def stalled_backfills(session: Session, idle_for: timedelta) -> list[uuid.UUID]:
    """Orgs with a backfill waiting that nothing has touched for `idle_for` and no run holds:
    its job most likely died with a killed worker before it started (a running backfill
    touches its cursor at every page). The recovery sweep queues these again sooner than the
    schedule would; orgs out of budget are left to wait for the reset."""
    now = utc_now()
    stalled: list[uuid.UUID] = []
    for org_id in orgs_to_import(session):
        cursors = CursorRepository.from_session(session).for_org(org_id)
        if any(c.locked_until is not None and ensure_utc(c.locked_until) > now for c in cursors):
            continue
        if not any(
            c.backfill_pending and ensure_utc(c.modified_at) < now - idle_for for c in cursors
        ):
            continue
        budget = settings_row(session, org_id).daily_budget
        if UsageRepository.from_session(session).on_day(org_id, now.date()) < budget:
            stalled.append(org_id)
    return stalled


def list_runs(session: Session, org_id: uuid.UUID, *, limit: int = 100) -> list[RunView]:
    return [
        RunView.model_validate(r)
        for r in RunRepository.from_session(session).recent(org_id, limit=limit)
    ]


def usage(session: Session, org_id: uuid.UUID, *, days: int = 14) -> UsageView:
    row = settings_row(session, org_id)
    today = utc_now().date()
    first = today - timedelta(days=days - 1)
    counts = {u.day: u.requests for u in UsageRepository.from_session(session).since(org_id, first)}
    series = [
        UsageDay(day=first + timedelta(days=i), requests=counts.get(first + timedelta(days=i), 0))
        for i in range(days)
    ]
    return UsageView(budget=row.daily_budget, today=counts.get(today, 0), days=series)


def status(session: Session, org_id: uuid.UUID) -> ImportStatus:
    row = settings_row(session, org_id)
    cursors = CursorRepository.from_session(session).for_org(org_id)
    return ImportStatus(
        enabled=row.enabled,
        budget=row.daily_budget,
        used_today=UsageRepository.from_session(session).on_day(org_id, utc_now().date()),
        sources=[
            SourceStatus(
                source_key=c.source_key,
                mode=c.mode,
                backfill_pending=c.backfill_pending,
                backfill_reason=c.backfill_reason,
                resumable=bool(c.backfill_started and c.backfill_next_link),
                stored=c.stored_count,
                message=c.message,
            )
            for c in cursors
        ],
    )


def my_target_accounts(
    session: Session, org_id: uuid.UUID, user_id: uuid.UUID
) -> list[TargetAccount]:
    """Platform companies matched to Dynamics accounts owned by the user's Dynamics user."""
    owner = gateway.mapped_systemuser(session, org_id, user_id)
    if owner is None:
        return []
    matched = RecordRepository.from_session(session).target_company_ids(org_id, owner)
    by_company: dict[int, tuple[uuid.UUID, str | None]] = {}
    for company_id, dynamics_id, name in matched:
        by_company.setdefault(company_id, (dynamics_id, name))  # duplicates → one profile
    companies = platform_service.companies_by_ids(session, list(by_company))
    return [
        TargetAccount(
            company_id=c.id,
            platform_id=c.platform_id,
            name=c.name,
            domain=c.domain,
            account_name=by_company[c.id][1],
            dynamics_id=by_company[c.id][0],
        )
        for c in companies
    ]


def records(
    session: Session, org_id: uuid.UUID, obj: GtmObject, source_table: str | None = None
) -> Sequence[Any]:
    """Stored GTM records of one object (tests, CLI status, the search issue's reads)."""
    return RecordRepository.from_session(session).list_rows(obj, org_id, source_table)


def record_count(
    session: Session, org_id: uuid.UUID, obj: GtmObject, source_table: str | None = None
) -> int:
    return RecordRepository.from_session(session).count(obj, org_id, source_table)
