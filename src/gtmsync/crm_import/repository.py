"""All queries of the import. Row writes are Core upserts: an ORM object per imported
record would cost more than the network read at 5,000 records a page."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import DateTime, Select, Table, Uuid, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

from gtmsync.crm_import.models import (
    GTM_MODELS,
    GtmObject,
    ImportApiUsage,
    ImportCursor,
    ImportedAccount,
    ImportRun,
    ImportSettings,
    RunStatus,
)
from gtmsync.db.repository import RepositoryBase
from gtmsync.kit.clock import utc_now


class SettingsRepository(RepositoryBase[ImportSettings]):
    model = ImportSettings

    def for_org(self, org_id: uuid.UUID) -> ImportSettings | None:
        return self.session.get(ImportSettings, org_id)

    def get_or_create(self, org_id: uuid.UUID, defaults: dict[str, Any]) -> ImportSettings:
        """The org's row, inserted with `defaults` when missing. INSERT … ON CONFLICT DO
        NOTHING, so two workers (a scheduled run and the recovery sweep) meeting a new org at
        the same moment both get the row instead of one failing on the primary key."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        now = utc_now()
        self.session.execute(
            insert(ImportSettings)
            .values(org_id=org_id, created_at=now, modified_at=now, **defaults)
            .on_conflict_do_nothing(index_elements=["org_id"])
        )
        row = self.session.get(ImportSettings, org_id)
        assert row is not None
        return row

    def all_enabled_org_ids(self) -> list[uuid.UUID]:
        return list(
            self.session.scalars(select(ImportSettings.org_id).where(ImportSettings.enabled))
        )


class CursorRepository(RepositoryBase[ImportCursor]):
    model = ImportCursor

    def for_source(self, org_id: uuid.UUID, source_key: str) -> ImportCursor | None:
        return self.get_one_or_none(
            select(ImportCursor).where(
                ImportCursor.org_id == org_id, ImportCursor.source_key == source_key
            )
        )

    def get_or_create(self, org_id: uuid.UUID, source_key: str, *, reason: str) -> ImportCursor:
        """The source's cursor, inserted (a backfill pending for `reason`) when missing.
        INSERT … ON CONFLICT DO NOTHING: Sync Now in the web process and the first run in a
        worker may both meet a new source at the same moment; both then get the one row."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        now = utc_now()
        self.session.execute(
            insert(ImportCursor)
            .values(
                id=uuid.uuid4(),
                org_id=org_id,
                source_key=source_key,
                backfill_pending=True,
                backfill_reason=reason,
                backfill_started=False,
                seq=0,
                created_at=now,
                modified_at=now,
            )
            .on_conflict_do_nothing(index_elements=["org_id", "source_key"])
        )
        cursor = self.for_source(org_id, source_key)
        assert cursor is not None
        return cursor

    def for_org(self, org_id: uuid.UUID) -> Sequence[ImportCursor]:
        return self.get_all(
            select(ImportCursor)
            .where(ImportCursor.org_id == org_id)
            .order_by(ImportCursor.source_key)
        )

    def take_lease(self, cursor_id: uuid.UUID, owner: str, until: datetime) -> bool:
        """Conditional UPDATE: true when this caller now holds the org+source lease."""
        now = utc_now()
        result = self.session.execute(
            update(ImportCursor)
            .where(
                ImportCursor.id == cursor_id,
                (ImportCursor.locked_until.is_(None)) | (ImportCursor.locked_until < now),
            )
            .values(locked_by=owner, locked_until=until)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    def renew_lease(self, cursor_id: uuid.UUID, owner: str, until: datetime) -> None:
        self.session.execute(
            update(ImportCursor)
            .where(ImportCursor.id == cursor_id, ImportCursor.locked_by == owner)
            .values(locked_until=until)
            .execution_options(synchronize_session=False)
        )

    def renew_leases_of(self, owner: str, until: datetime) -> int:
        """Renew every cursor lease `owner` holds (the worker's heartbeat, between pages)."""
        result = self.session.execute(
            update(ImportCursor)
            .where(ImportCursor.locked_by == owner, ImportCursor.locked_until.is_not(None))
            .values(locked_until=until)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def release_lease(self, cursor_id: uuid.UUID, owner: str) -> None:
        self.session.execute(
            update(ImportCursor)
            .where(ImportCursor.id == cursor_id, ImportCursor.locked_by == owner)
            .values(locked_by=None, locked_until=None)
            .execution_options(synchronize_session=False)
        )


class RunRepository(RepositoryBase[ImportRun]):
    model = ImportRun

    def orphaned(self, now: datetime) -> Sequence[ImportRun]:
        """Runs still `running` whose source's lease lapsed: their process died mid-run (a
        live run holds the lease, renewed at every page or by the worker's heartbeat)."""
        lease_free = (ImportCursor.locked_until.is_(None)) | (ImportCursor.locked_until < now)
        return self.get_all(
            select(ImportRun)
            .join(
                ImportCursor,
                (ImportCursor.org_id == ImportRun.org_id)
                & (ImportCursor.source_key == ImportRun.source_key),
            )
            .where(ImportRun.status == RunStatus.RUNNING.value, lease_free)
            .order_by(ImportRun.started_at)
        )

    def recent(self, org_id: uuid.UUID, *, limit: int = 100) -> Sequence[ImportRun]:
        return self.get_all(
            select(ImportRun)
            .where(ImportRun.org_id == org_id)
            .order_by(ImportRun.started_at.desc())
            .limit(limit)
        )


class UsageRepository(RepositoryBase[ImportApiUsage]):
    model = ImportApiUsage

    def add(self, org_id: uuid.UUID, day: date, count: int) -> None:
        if count <= 0:
            return
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(ImportApiUsage).values(org_id=org_id, day=day, requests=count)
        stmt = stmt.on_conflict_do_update(
            index_elements=["org_id", "day"],
            set_={"requests": ImportApiUsage.requests + stmt.excluded.requests},
        )
        self.session.execute(stmt)

    def on_day(self, org_id: uuid.UUID, day: date) -> int:
        value = self.session.scalar(
            select(ImportApiUsage.requests).where(
                ImportApiUsage.org_id == org_id, ImportApiUsage.day == day
            )
        )
        return int(value or 0)

    def since(self, org_id: uuid.UUID, first: date) -> Sequence[ImportApiUsage]:
        return self.get_all(
            select(ImportApiUsage)
            .where(ImportApiUsage.org_id == org_id, ImportApiUsage.day >= first)
            .order_by(ImportApiUsage.day)
        )


class RecordRepository:
    """Writes and reads of the GTM record tables (`GTM_MODELS`)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: Session) -> RecordRepository:
        return cls(session)

    def upsert(
        self,
        obj: GtmObject,
        rows: list[dict[str, Any]],
        *,
        execute: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        """Insert or update rows keyed by (org_id, source_table, dynamics_id).

        One `executemany` of a statement compiled once per table and database, fed plain
        tuples (values pass through the columns' bind processors, so rows read back exactly
        as ORM-written ones): SQLAlchemy's per-row parameter handling cost more than SQLite.
        `execute` receives the statement to run instead of running it here (the runner's
        write-behind thread); the parameters are ready, the session's connection is taken.
        """
        if not rows:
            return
        conn = self.session.connection()
        table: Table = GTM_MODELS[obj].__table__  # type: ignore[attr-defined]
        sql, columns, processors = _compiled_upsert(table, conn.dialect)
        now = utc_now()
        getter = itemgetter(*columns)
        # Bind processors (datetime → text, UUID → hex) are pure, and most columns repeat a
        # few values across a page (the org, `now`, owners, `modifiedon` of bulk edits):
        # each distinct value is converted once per call.
        converting = [
            (i, p, _memo(table, columns[i])) for i, p in enumerate(processors) if p is not None
        ]
        # Every column gets a value (None unless the row has one): a dict merge per row.
        template = dict.fromkeys(columns)
        params = []
        for row in rows:
            values = list(getter({**template, **row, "created_at": now, "modified_at": now}))
            for i, process, seen in converting:
                value = values[i]
                if value is None:
                    continue
                if seen is None:
                    values[i] = process(value)
                    continue
                done = seen.get(value, _MISSING)
                if done is _MISSING:
                    done = seen[value] = process(value)
                values[i] = done
            params.append(tuple(values))
        if execute is None:
            conn.exec_driver_sql(sql, params)
        else:
            execute(lambda: _run_many(conn, sql, params))

    def existing_ids(
        self, obj: GtmObject, org_id: uuid.UUID, source_table: str, ids: Sequence[uuid.UUID]
    ) -> set[uuid.UUID]:
        if not ids:
            return set()
        model = GTM_MODELS[obj]
        found: set[uuid.UUID] = set()
        items = list(ids)
        for i in range(0, len(items), 500):
            found.update(
                self.session.scalars(
                    select(model.dynamics_id).where(
                        model.org_id == org_id,
                        model.source_table == source_table,
                        model.dynamics_id.in_(items[i : i + 500]),
                    )
                )
            )
        return found

    def delete_ids(
        self, obj: GtmObject, org_id: uuid.UUID, source_table: str, ids: Sequence[uuid.UUID]
    ) -> int:
        model = GTM_MODELS[obj]
        removed = 0
        items = list(ids)
        for i in range(0, len(items), 500):
            result = self.session.execute(
                delete(model)
                .where(
                    model.org_id == org_id,
                    model.source_table == source_table,
                    model.dynamics_id.in_(items[i : i + 500]),
                )
                .execution_options(synchronize_session=False)
            )
            removed += int(getattr(result, "rowcount", 0) or 0)
        return removed

    def sweep(self, obj: GtmObject, org_id: uuid.UUID, source_table: str, seq: int) -> int:
        """Delete the source's rows a finished backfill did not see (deleted or excluded)."""
        model = GTM_MODELS[obj]
        result = self.session.execute(
            delete(model)
            .where(model.org_id == org_id, model.source_table == source_table, model.seen_seq < seq)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def count(self, obj: GtmObject, org_id: uuid.UUID, source_table: str | None = None) -> int:
        model = GTM_MODELS[obj]
        stmt = select(func.count()).select_from(model).where(model.org_id == org_id)
        if source_table is not None:
            stmt = stmt.where(model.source_table == source_table)
        return int(self.session.scalar(stmt) or 0)

    def list_rows(
        self, obj: GtmObject, org_id: uuid.UUID, source_table: str | None = None
    ) -> Sequence[Any]:
        model = GTM_MODELS[obj]
        stmt: Select[Any] = select(model).where(model.org_id == org_id)
        if source_table is not None:
            stmt = stmt.where(model.source_table == source_table)
        return list(self.session.scalars(stmt.order_by(model.id)))

    def target_company_ids(
        self, org_id: uuid.UUID, owner_id: uuid.UUID
    ) -> list[tuple[int, uuid.UUID, str | None]]:
        rows = self.session.execute(
            select(
                ImportedAccount.matched_company_id,
                ImportedAccount.dynamics_id,
                ImportedAccount.name,
            )
            .where(
                ImportedAccount.org_id == org_id,
                ImportedAccount.owner_id == owner_id,
                ImportedAccount.matched_company_id.is_not(None),
            )
            .order_by(ImportedAccount.id)
        )
        return [(int(c), d, n) for c, d, n in rows if c is not None]


def _run_many(conn: Connection, sql: str, params: list[tuple[Any, ...]]) -> None:
    conn.exec_driver_sql(sql, params)


_COMPILED: dict[tuple[str, str], tuple[str, list[str], list[Any]]] = {}
_MISSING = object()


def _memo(table: Table, column: str) -> dict[Any, Any] | None:
    """A cache of converted values for a datetime or UUID column; None for the natural key
    (never repeats) and other types (equal values may convert differently: 1.0 and 1.00)."""
    if column == "dynamics_id":
        return None
    kind = table.c[column].type
    impl = getattr(kind, "impl", kind)  # a TypeDecorator (UTCDateTime) converts through it
    return {} if isinstance(impl, DateTime | Uuid) else None


def _compiled_upsert(table: Table, dialect: Dialect) -> tuple[str, list[str], list[Any]]:
    key = (table.name, dialect.name)
    if key in _COMPILED:
        return _COMPILED[key]
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    columns = [c.name for c in table.columns if c.name != "id"]
    stmt = insert(table)
    natural = ("org_id", "source_table", "dynamics_id")
    stmt = stmt.on_conflict_do_update(
        index_elements=list(natural),
        set_={c: stmt.excluded[c] for c in columns if c not in (*natural, "created_at")},
    )
    compiler_dialect = (
        dialect if dialect.positional else type(dialect)(paramstyle="format")  # type: ignore[call-arg]
    )
    compiled = stmt.compile(dialect=compiler_dialect, column_keys=columns)
    order = list(compiled.positiontup or [])
    if sorted(order) != sorted(columns):
        raise RuntimeError(f"unexpected upsert parameters for {dialect.name}: {order}")
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order
    ]
    _COMPILED[key] = (str(compiled), order, processors)
    return _COMPILED[key]
