"""Batched upserts of validated platform rows, fast enough for millions of rows.

Each batch resolves its company references with one query and is written with one
`executemany` of an `INSERT … ON CONFLICT (key) DO UPDATE … WHERE <something changed>`
statement, compiled once and fed plain tuples: SQLAlchemy's per-row parameter handling took
about half of the load time. Rows whose values did not change are left alone, so
`modified_at` only moves when something did.

A file load writes through `OwnConnection`: one connection for the whole load, committed
every so many rows, so a crash keeps whole committed batches and a re-run is idempotent. On SQLite
that connection skips the foreign-key check (every `company_id` was just looked up in the same
transaction) and gets a bigger page cache; both measured to roughly halve the write time for
contacts, whose table carries five indexes. The connection is discarded afterwards rather than
returned to the pool with those settings.

Loading into an empty SQLite table defers its non-unique secondary indexes (like pg_restore):
they are dropped at the start of the load and built once at the end, which sorts each column
once instead of inserting a million keys into a B-tree in random order (benchmarks/load_data.py:
36,400 -> 47,800 contacts/s). On PostgreSQL it measured no gain (13,400 deferred against 15,100
kept, 300,000 contacts, client-bound), so there the indexes stay. The unique key the upsert
needs is never touched. The indexes are rebuilt in the loader's `finally`; a process killed
mid-load skips that, so `restore_deferred_indexes` rebuilds any that are missing and runs at the
start of every load and at service start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Index, Table, bindparam, func, inspect, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gtmsync.db.base import created_on
from gtmsync.kit.clock import utc_now
from gtmsync.platform.models import Company, Contact, IntentSignal

COMPANY_REF = "company_platform_id"
UNKNOWN_COMPANY = "unknown company (load its company first)"
_TIMESTAMPS = ("created_at", "modified_at")
_SQLITE_CACHE_KIB = 131_072

Row = dict[str, Any]
Batch = list[tuple[int, Row]]
Reject = tuple[int, str, str | None, str]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    getter: Callable[[Row], tuple[Any, ...]]
    processors: dict[int, Callable[[Any], Any]]
    stamp: Callable[[Any], Any] | None


class BatchWriter:
    """Upserts one table's validated rows keyed by `key`; references resolved per batch."""

    def __init__(self, table: Table, *, key: str, has_company_ref: bool) -> None:
        self.table = table
        self.key = key
        self.has_company_ref = has_company_ref
        self.columns = [c.name for c in table.columns if c.name != "id"]
        self._compiled: _Compiled | None = None

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())

    def write(self, conn: Connection, batch: Batch) -> tuple[int, list[Reject]]:
        """Upsert a batch; return how many rows were written and the rows refused."""
        compiled = self._statement(conn)
        rejects: list[Reject] = []
        if self.has_company_ref:
            batch = self._resolve_companies(conn, batch, rejects)
        now: Any = utc_now()
        if compiled.stamp is not None:
            now = compiled.stamp(now)
        latest: dict[str, tuple[Any, ...]] = {}
        key = self.key
        getter = compiled.getter
        processors = compiled.processors.items()
        for _row_no, row in batch:
            row["created_at"] = row["modified_at"] = now
            values = getter(row)
            if processors:
                listed = list(values)
                for i, process in processors:
                    if listed[i] is not None:
                        listed[i] = process(listed[i])
                values = tuple(listed)
            latest[row[key]] = values  # the last of repeated keys wins, as a re-load would
        if latest:
            conn.exec_driver_sql(compiled.sql, list(latest.values()))
        return len(batch), rejects

    def _statement(self, conn: Connection) -> _Compiled:
        if self._compiled is not None:
            return self._compiled
        dialect = conn.dialect
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        stmt = insert(self.table)
        changing = [c for c in self.columns if c not in (self.key, "created_at")]
        compared = [c for c in changing if c != "modified_at"]
        upsert = stmt.on_conflict_do_update(
            index_elements=[self.key],
            set_={c: stmt.excluded[c] for c in changing},
            where=or_(*(self.table.c[c].is_distinct_from(stmt.excluded[c]) for c in compared)),
        )
        # Positional parameters let each row be a plain tuple; psycopg takes `%s` as well.
        compiler_dialect = (
            dialect if dialect.positional else type(dialect)(paramstyle="format")  # type: ignore[call-arg]
        )
        compiled = upsert.compile(dialect=compiler_dialect, column_keys=self.columns)
        order = list(compiled.positiontup or [])
        if sorted(order) != sorted(self.columns):
            raise RuntimeError(f"unexpected upsert parameters for {dialect.name}: {order}")
        processors: dict[int, Callable[[Any], Any]] = {
            i: process
            for i, name in enumerate(order)
            if name not in _TIMESTAMPS
            and (process := _bind_processor(self.table, name, dialect)) is not None
        }
        stamp = _bind_processor(self.table, "created_at", dialect)
        self._compiled = _Compiled(str(compiled), itemgetter(*order), processors, stamp)
        return self._compiled

    def _resolve_companies(self, conn: Connection, batch: Batch, rejects: list[Reject]) -> Batch:
        refs = {row[COMPANY_REF] for _, row in batch if row.get(COMPANY_REF)}
        ids: dict[str, int] = {}
        if refs:
            companies = Company.__table__
            query = select(companies.c.platform_id, companies.c.id).where(
                companies.c.platform_id.in_(bindparam("refs", expanding=True))
            )
            ids = dict(conn.execute(query, {"refs": list(refs)}).all())
        kept = []
        for row_no, row in batch:
            ref = row.pop(COMPANY_REF, None)
            if ref is None:
                row["company_id"] = None
            elif ref in ids:
                row["company_id"] = ids[ref]
            else:
                rejects.append((row_no, COMPANY_REF, ref, UNKNOWN_COMPANY))
                continue
            kept.append((row_no, row))
        return kept


def _bind_processor(table: Table, name: str, dialect: Any) -> Callable[[Any], Any] | None:
    """The conversion SQLAlchemy applies to this column's values for this database, so rows
    written here read back exactly like rows written through the ORM."""
    column_type = table.c[name].type.dialect_impl(dialect)
    processor: Callable[[Any], Any] | None = column_type.bind_processor(dialect)
    return processor


_LOADED_TABLES: tuple[Table, ...] = (
    Company.__table__,  # type: ignore[assignment]
    Contact.__table__,
    IntentSignal.__table__,
)


def deferrable_indexes(table: Table, dialect: str | None = None) -> list[Index]:
    """The model's non-unique indexes on `table` (on `dialect`): safe to drop while it is
    bulk-loaded.

    Unique indexes and constraints stay, since the upsert's `ON CONFLICT` needs them.
    """
    return sorted(
        (i for i in table.indexes if not i.unique and created_on(i, dialect)),
        key=lambda i: str(i.name),
    )


def restore_deferred_indexes(engine: Engine) -> list[str]:
    """Recreate any deferred loader index that is missing; return the names created.

    A load into an empty table drops that table's non-unique indexes and rebuilds them in a
    `finally`; a SIGKILL or power loss skips the `finally` (on PostgreSQL, and on SQLite once
    the first batch committed) and leaves the table without them: correct but slow to query.
    Call this at process start-up (`gtmsync serve`, `worker`, `demo`) after migrations; every
    load also calls it first. It is idempotent and cheap when nothing is missing (one catalog
    query per table). Tables that do not exist yet are skipped.
    """
    with engine.connect() as conn:
        created = restore_indexes(conn, _LOADED_TABLES)
        conn.commit()
    return created


def restore_indexes(conn: Connection, tables: Sequence[Table]) -> list[str]:
    """Create the missing deferrable indexes of `tables` on `conn`; the caller commits."""
    created: list[str] = []
    inspector = inspect(conn)
    for table in tables:
        if not inspector.has_table(table.name):
            continue
        present = {ix["name"] for ix in inspector.get_indexes(table.name)}
        for index in deferrable_indexes(table, conn.dialect.name):
            if index.name not in present:
                index.create(conn, checkfirst=True)
                created.append(str(index.name))
    return created


class Target(Protocol):
    """Where batches are written; every call happens on one thread."""

    def count(self) -> int: ...

    def defer_indexes(self) -> None:
        """The table is empty: drop its non-unique indexes until the load ends, if worth it."""

    def write(self, batch: Batch) -> tuple[int, list[Reject]]: ...

    def finish(self) -> None: ...

    def close(self) -> None: ...


class OwnConnection:
    """One connection for a whole file load; commits every `commit_rows` rows written.

    Batches bound memory; commits bound what a crash loses. They are separate because on
    SQLite each commit writes every page it touched to the WAL, and the random-order email
    index touches a page per row: committing every 100,000 rows instead of every 10,000
    measured about a quarter less CPU for a million contacts.
    """

    def __init__(
        self,
        engine: Engine,
        writer: BatchWriter,
        *,
        commit_rows: int,
        defer_indexes: bool = True,
    ) -> None:
        self.engine = engine
        self.writer = writer
        self.commit_rows = commit_rows
        self.may_defer_indexes = defer_indexes
        self._conn: Connection | None = None
        self._tuned = False
        self._uncommitted = 0
        self._deferred = False

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
            if self._conn.dialect.name == "sqlite":
                # Both pragmas only take effect outside a transaction, hence here.
                self._conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                self._conn.exec_driver_sql(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
                self._tuned = True
            self._conn.commit()
            # A load killed earlier may have left any loaded table without its indexes.
            restore_indexes(self._conn, _LOADED_TABLES)
            self._conn.commit()
        return self._conn

    def _begin(self) -> Connection:
        conn = self._connection()
        if not conn.in_transaction():
            conn.begin()
            if self._tuned and not _in_transaction(conn):
                # Take the write lock first, so the reference lookup and the upsert see one
                # state (pysqlite would only begin at the INSERT).
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        return conn

    def count(self) -> int:
        return self.writer.count(self._begin())

    def defer_indexes(self) -> None:
        """Drop the table's non-unique indexes, committed at once.

        Committed on its own because PostgreSQL's DROP INDEX locks the table against readers
        until commit. Emptiness only decides whether deferring pays; rows another writer adds
        meanwhile are indexed by the rebuild like every other row.
        """
        if not self.may_defer_indexes or self.engine.dialect.name != "sqlite":
            return  # PostgreSQL measured no faster with deferred indexes (see the module doc)
        conn = self._begin()
        for index in deferrable_indexes(self.writer.table, conn.dialect.name):
            index.drop(conn, checkfirst=True)
        self._deferred = True
        self.finish()

    def write(self, batch: Batch) -> tuple[int, list[Reject]]:
        conn = self._begin()
        written = self.writer.write(conn, batch)
        self._uncommitted += len(batch)
        if self._uncommitted >= self.commit_rows:
            self.finish()
        return written

    def finish(self) -> None:
        """Commit what has been written so far."""
        if self._conn is not None and self._conn.in_transaction():
            self._conn.commit()
        self._uncommitted = 0

    def close(self) -> None:
        """Roll back anything not yet finished, rebuild deferred indexes, drop the connection."""
        if self._conn is None:
            return
        try:
            if self._conn.in_transaction():
                self._conn.rollback()
            if self._deferred:
                restore_indexes(self._conn, [self.writer.table])
                self._conn.commit()
                self._deferred = False
        finally:
            if self._tuned:
                self._conn.invalidate()  # never hand the untuned-for-safety connection to others
            self._conn.close()
            self._conn = None


def _in_transaction(conn: Connection) -> bool:
    return bool(getattr(conn.connection.dbapi_connection, "in_transaction", False))


class CallerSession:
    """The caller's session and transaction: nothing is committed here."""

    def __init__(self, session: Session, writer: BatchWriter) -> None:
        self.session = session
        self.writer = writer

    def count(self) -> int:
        return self.writer.count(self.session.connection())

    def defer_indexes(self) -> None:
        """Never: DDL inside the caller's transaction is not ours to issue."""
        return

    def write(self, batch: Batch) -> tuple[int, list[Reject]]:
        return self.writer.write(self.session.connection(), batch)

    def finish(self) -> None:
        self.session.flush()

    def close(self) -> None:
        return None


def engine_of(factory: Any) -> Engine:
    """The engine a `sessionmaker` is bound to."""
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("the session factory must be bound to an Engine")
    return bind


def length_limits(table: Table, names: Sequence[str]) -> dict[str, int]:
    """Input column -> the table column's length, so a long value is a reject, not a crash."""
    from sqlalchemy import String

    limits = {
        col.name: col.type.length
        for col in table.columns
        if isinstance(col.type, String) and col.type.length and col.name in names
    }
    if COMPANY_REF in names:
        limits[COMPANY_REF] = Company.__table__.c.platform_id.type.length  # type: ignore[attr-defined]
    return limits
