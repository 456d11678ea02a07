"""The local server's own database: one real SQL table per Dataverse table.

Why real tables with typed, indexed columns (not a JSON blob per row): filters and keyset
paging over a million rows must stay indexed, exactly as they would on a tenant. Custom
tables, columns and alternate keys are created at run time (`CREATE TABLE`, `ALTER TABLE ADD
COLUMN`, unique indexes) and recorded in `dv_catalogue`, so they survive a restart.

`versionnumber` comes from one store-wide counter (`dv_counter`), so ETags are unique and
change tracking can ask "everything after version N" across tables; deletes leave a row in
`dv_tombstones` for the same reason.

In-process API (for seeding, sign-in and benchmarks; no HTTP, no privilege checks):

- `Store.open(url) -> Store` creates the schema on first use; `store.engine`, `store.catalogue`.
  `sqlite://` is in memory on one shared connection: for scripts and tests, not for a server.
- `store.insert(table, values, *, as_user) -> uuid.UUID` applies defaults, system columns and a
  version like a Web API create. Lookup values are a `uuid.UUID` or a `(target_table, uuid)` pair.
- `store.bulk_insert(table, rows, *, as_user) -> list[uuid.UUID]` the same, in one statement.
- `store.get(table, id) -> dict | None` the row by logical name (lookups as `uuid.UUID`,
  polymorphic targets under `<lookup>@type`).
- `store.find_systemuser(aad_object_id=…, application_id=…, systemuserid=…) -> dict | None`.
- `store.count(table) -> int`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from gtmsync.dataverse_local import errors
from gtmsync.dataverse_local.schema import (
    AlternateKey,
    Attribute,
    Catalogue,
    Option,
    Table,
)

TYPE_SUFFIX = "__type"
_INDEXED_STRINGS = frozenset(
    {"emailaddress1", "accountnumber", "internalemailaddress", "domainname"}
)


def format_datetime(value: dt.datetime) -> str:
    """Dataverse's wire form: UTC, second precision, `Z`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def sql_type(attr: Attribute) -> sa.types.TypeEngine[Any]:
    match attr.type:
        case "String" | "EntityName":
            return sa.String(attr.max_length or 4000)
        case "Memo":
            return sa.Text()
        case "Integer" | "Picklist" | "State" | "Status":
            return sa.Integer()
        case "BigInt":
            return sa.BigInteger()
        case "Money" | "Decimal":
            return sa.Numeric(23, 10 if attr.type == "Decimal" else 4)
        case "Double":
            return sa.Float()
        case "Boolean":
            return sa.Boolean()
        case "DateTime":
            # ISO text sorts and compares like the instant it names, on every backend.
            return sa.String(20)
        case "Uniqueidentifier" | "Lookup" | "Owner" | "Customer":
            return sa.String(36)
        case "MultiSelectPicklist":
            return sa.String(1000)
    raise ValueError(f"unsupported attribute type {attr.type!r} for {attr.name!r}")


def sql_columns(table: Table, attr: Attribute) -> list[sa.Column[Any]]:
    cols: list[sa.Column[Any]] = [
        sa.Column(attr.name, sql_type(attr), primary_key=attr.name == table.primary_id)
    ]
    if attr.is_lookup and len(attr.targets) > 1:
        cols.append(sa.Column(attr.name + TYPE_SUFFIX, sa.String(64)))
    return cols


def _indexes(table: Table, sql: sa.Table) -> None:
    name = table.name
    sa.Index(f"ix_{name}_modifiedon", sql.c.modifiedon, sql.c[table.primary_id])
    sa.Index(f"ix_{name}_versionnumber", sql.c.versionnumber)
    for attr in table.attributes.values():
        if attr.is_lookup and attr.name not in {
            "modifiedby",
            "createdonbehalfby",
            "modifiedonbehalfby",
        }:
            sa.Index(f"ix_{name}_{attr.name}", sql.c[attr.name], sql.c[table.primary_id])
        wanted = attr.name == table.primary_name or attr.name in _INDEXED_STRINGS
        if attr.is_string and wanted and attr.name in sql.c:
            sa.Index(f"ix_{name}_{attr.name}_lower", sa.func.lower(sql.c[attr.name]))
            sa.Index(f"ix_{name}_{attr.name}", sql.c[attr.name], sql.c[table.primary_id])


def key_index_name(table: str, key: AlternateKey) -> str:
    return f"uk_{table}_{key.name}".lower()


def key_index(table: Table, sql: sa.Table, key: AlternateKey) -> sa.Index:
    """A unique index for an alternate key; strings compare case-insensitively as on Dataverse."""
    parts: list[Any] = [
        sa.func.lower(sql.c[a]) if table.attributes[a].is_string else sql.c[a]
        for a in key.attributes
    ]
    return sa.Index(key_index_name(table.name, key), *parts, unique=True)


def _sqlite_no_pysqlite_transactions(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own BEGIN handling breaks SAVEPOINT (SQLAlchemy SQLite dialect docs,
    # "Serializable isolation / Savepoints / Transactional DDL"); SQLAlchemy emits BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "BEGIN")
    conn.exec_driver_sql(mode)


class Store:
    """A Dataverse environment's data and schema, in its own SQLAlchemy database."""

    def __init__(self, engine: Engine, catalogue: Catalogue) -> None:
        self.engine = engine
        self.catalogue = catalogue
        self.metadata = sa.MetaData()
        self.tables: dict[str, sa.Table] = {}
        self._write_lock = threading.Lock()
        self.organization_id = uuid.uuid5(uuid.NAMESPACE_URL, str(engine.url))
        self.schema_generation = 0  # bumped by every recorded metadata change
        self.counter = sa.Table(
            "dv_counter",
            self.metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("value", sa.BigInteger, nullable=False),
        )
        self.tombstones = sa.Table(
            "dv_tombstones",
            self.metadata,
            sa.Column("version", sa.BigInteger, primary_key=True),
            sa.Column("table_name", sa.String(64), nullable=False),
            sa.Column("record_id", sa.String(36), nullable=False),
            sa.Column("deleted_on", sa.String(20), nullable=False),
            sa.Index("ix_dv_tombstones_table_version", "table_name", "version"),
        )
        self.catalogue_table = sa.Table(
            "dv_catalogue",
            self.metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("table_name", sa.String(64), nullable=False),
            sa.Column("definition", sa.Text, nullable=False),
        )
        for table in catalogue.tables.values():
            self._define(table)

    # ---- opening and schema -------------------------------------------------------------

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (creating on first use) the store at `url`, e.g. `sqlite:///data/dataverse.db`."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                engine = sa.create_engine(url)
            else:
                # One shared connection, or every pooled connection would see its own empty
                # in-memory database.
                engine = sa.create_engine(
                    url, poolclass=StaticPool, connect_args={"check_same_thread": False}
                )
            sa.event.listen(engine, "connect", _sqlite_no_pysqlite_transactions)
            sa.event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        store = cls(engine, Catalogue())
        store.metadata.create_all(engine)
        with store.write() as conn:
            if conn.execute(sa.select(store.counter.c.value)).first() is None:
                conn.execute(store.counter.insert().values(id=1, value=1000))
            store._load_custom(conn)
        return store

    def _define(self, table: Table) -> sa.Table:
        cols: list[sa.Column[Any]] = []
        for attr in table.attributes.values():
            cols.extend(sql_columns(table, attr))
        sql = sa.Table(f"dv_{table.name}", self.metadata, *cols)
        _indexes(table, sql)
        for key in table.keys:
            key_index(table, sql, key)
        self.tables[table.name] = sql
        return sql

    def _load_custom(self, conn: Connection) -> None:
        rows = conn.execute(sa.select(self.catalogue_table).order_by(self.catalogue_table.c.id))
        for row in rows:
            definition = json.loads(row.definition)
            if row.kind == "table":
                table = table_from_json(definition)
                self.catalogue.tables[table.name] = table
                self._define(table)
            elif row.kind == "attribute":
                attr = attribute_from_json(definition)
                self.catalogue.add_attribute(row.table_name, attr)
                for col in sql_columns(self.catalogue.tables[row.table_name], attr):
                    self.tables[row.table_name].append_column(col)
            elif row.kind == "key":
                key = AlternateKey(definition["name"], tuple(definition["attributes"]))
                self.catalogue.tables[row.table_name].keys.append(key)
                key_index(self.catalogue.tables[row.table_name], self.tables[row.table_name], key)
            elif row.kind == "drop_table":
                self._drop_table(None, row.table_name)
            elif row.kind == "drop_attribute":
                self._forget_attribute(row.table_name, definition["name"])
            elif row.kind == "drop_key":
                keys = self.catalogue.tables[row.table_name].keys
                self._forget_key(
                    row.table_name, next(k for k in keys if k.name == definition["name"])
                )
            elif row.kind == "tracking":
                self.catalogue.tables[row.table_name].change_tracking = bool(definition["enabled"])

    def create_table(self, conn: Connection, table: Table) -> None:
        sql = self._define(table)
        sql.create(conn)
        self.catalogue.tables[table.name] = table
        self._record(conn, "table", table.name, table_to_json(table))

    def add_attribute(self, conn: Connection, table_name: str, attr: Attribute) -> None:
        table = self.catalogue.tables[table_name]
        sql = self.tables[table_name]
        for col in sql_columns(table, attr):
            ddl = sa.schema.CreateColumn(col).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE "{sql.name}" ADD COLUMN {ddl}')
            sql.append_column(col)
        self.catalogue.add_attribute(table_name, attr)
        self._record(conn, "attribute", table_name, attribute_to_json(attr))

    def add_key(self, conn: Connection, table_name: str, key: AlternateKey) -> None:
        sql = self.tables[table_name]
        index = key_index(self.catalogue.tables[table_name], sql, key)
        try:
            with conn.begin_nested():
                index.create(conn)
        except sa.exc.IntegrityError as exc:
            sql.indexes.discard(index)
            raise errors.validation(
                f"The alternate key '{key.name}' cannot be activated: existing rows of "
                f"'{table_name}' have duplicate values for {', '.join(key.attributes)}."
            ) from exc
        self.catalogue.tables[table_name].keys.append(key)
        self._record(
            conn, "key", table_name, {"name": key.name, "attributes": list(key.attributes)}
        )

    def drop_table(self, conn: Connection, table_name: str) -> None:
        self._drop_table(conn, table_name)
        self._record(conn, "drop_table", table_name, {})

    def _drop_table(self, conn: Connection | None, table_name: str) -> None:
        sql = self.tables.pop(table_name)
        if conn is not None:
            sql.drop(conn)
        self.metadata.remove(sql)
        del self.catalogue.tables[table_name]

    def drop_attribute(self, conn: Connection, table_name: str, name: str) -> None:
        """`ALTER TABLE … DROP COLUMN` (SQLite ≥ 3.35, PostgreSQL) and forget the column."""
        sql = self.tables[table_name]
        for column in [c for c in sql.c if c.name in {name, name + TYPE_SUFFIX}]:
            for index in [i for i in sql.indexes if column.name in {c.name for c in i.columns}]:
                conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{index.name}"')
                sql.indexes.discard(index)
            conn.exec_driver_sql(f'ALTER TABLE "{sql.name}" DROP COLUMN "{column.name}"')
        self._forget_attribute(table_name, name)
        self._record(conn, "drop_attribute", table_name, {"name": name})

    def _forget_attribute(self, table_name: str, name: str) -> None:
        sql = self.tables[table_name]
        for column in [c for c in sql.c if c.name in {name, name + TYPE_SUFFIX}]:
            sql._columns.remove(column)  # SQLAlchemy has no public API to drop a Column
        del self.catalogue.tables[table_name].attributes[name]

    def drop_key(self, conn: Connection, table_name: str, key: AlternateKey) -> None:
        conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{key_index_name(table_name, key)}"')
        self._forget_key(table_name, key)
        self._record(conn, "drop_key", table_name, {"name": key.name})

    def _forget_key(self, table_name: str, key: AlternateKey) -> None:
        sql = self.tables[table_name]
        for index in [i for i in sql.indexes if i.name == key_index_name(table_name, key)]:
            sql.indexes.discard(index)
        self.catalogue.tables[table_name].keys.remove(key)

    def set_change_tracking(self, conn: Connection, table_name: str, enabled: bool) -> None:
        self.catalogue.tables[table_name].change_tracking = enabled
        self._record(conn, "tracking", table_name, {"enabled": enabled})

    def reload_schema(self, conn: Connection | None = None) -> None:
        """Rebuild the catalogue from `dv_catalogue`, e.g. after a metadata change rolled back.

        Pass the open connection to see its uncommitted changes (a `$batch` after a failed
        change set); without one, the committed state is read.
        """
        fresh = Store(self.engine, Catalogue())
        if conn is None:
            with fresh.read() as own:
                fresh._load_custom(own)
        else:
            fresh._load_custom(conn)
        # Column security is set on the live catalogue by the security layer, not recorded
        # in dv_catalogue, so it is carried over.
        for name, table in self.catalogue.tables.items():
            reloaded = fresh.catalogue.tables.get(name)
            if reloaded is None:
                continue
            for attr in table.attributes.values():
                if attr.secured and attr.name in reloaded.attributes:
                    fresh.catalogue.add_attribute(
                        name, dataclasses.replace(reloaded.attributes[attr.name], secured=True)
                    )
        self.catalogue, self.metadata, self.tables = fresh.catalogue, fresh.metadata, fresh.tables
        self.counter, self.tombstones = fresh.counter, fresh.tombstones
        self.catalogue_table = fresh.catalogue_table
        self.schema_generation += 1
        self.engine.clear_compiled_cache()

    def _record(self, conn: Connection, kind: str, table: str, definition: dict[str, Any]) -> None:
        self.schema_generation += 1
        # `table.insert()` keeps one cache key however many columns the Table has, so a
        # statement compiled before a column was added would go on leaving it out (silently:
        # executemany ignores extra parameters). Schema changes are rare; drop the cache.
        self.engine.clear_compiled_cache()
        conn.execute(
            self.catalogue_table.insert().values(
                kind=kind, table_name=table, definition=json.dumps(definition)
            )
        )

    # ---- transactions and versions ------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; writers in this process queue here instead of failing on locks."""
        with self._write_lock, self.engine.connect() as raw:
            conn = raw.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with conn.begin():
                yield conn

    def next_versions(self, conn: Connection, n: int = 1) -> int:
        """Reserve `n` versions; returns the first."""
        conn.execute(self.counter.update().values(value=self.counter.c.value + n))
        last = conn.execute(sa.select(self.counter.c.value)).scalar_one()
        return int(last) - n + 1

    def current_version(self, conn: Connection) -> int:
        return int(conn.execute(sa.select(self.counter.c.value)).scalar_one())

    # ---- row shaping ----------------------------------------------------------------------

    def table(self, name: str) -> Table:
        table = self.catalogue.get(name)
        if table is None:
            raise errors.bad_request(f"Entity '{name}' does not exist.", "0x80040217")
        return table

    def defaults(
        self,
        table: Table,
        values: dict[str, Any],
        *,
        as_user: uuid.UUID,
        on_behalf_of: uuid.UUID | None,
        version: int,
        now: str,
    ) -> dict[str, Any]:
        """Column values of a new row: defaults, computed names, system and owner columns."""
        row: dict[str, Any] = {}
        for attr in table.attributes.values():
            if attr.default is not None:
                row[attr.name] = attr.default
        row.update(values)
        row.setdefault(table.primary_id, str(uuid.uuid4()))
        row.update(
            createdon=now,
            modifiedon=now,
            versionnumber=version,
            createdby=str(as_user),
            modifiedby=str(as_user),
            createdonbehalfby=str(on_behalf_of) if on_behalf_of else None,
            modifiedonbehalfby=str(on_behalf_of) if on_behalf_of else None,
        )
        if "ownerid" in table.attributes:
            if row.get("ownerid") is None:
                row["ownerid"] = str(as_user)
                row["ownerid" + TYPE_SUFFIX] = "systemuser"
            row.setdefault("ownerid" + TYPE_SUFFIX, "systemuser")
            owner_type = row["ownerid" + TYPE_SUFFIX]
            row["owninguser"] = row["ownerid"] if owner_type == "systemuser" else None
            row["owningteam"] = row["ownerid"] if owner_type == "team" else None
        self.compute(table, row)
        return row

    def compute(
        self, table: Table, row: dict[str, Any], existing: Mapping[Any, Any] | None = None
    ) -> None:
        """Read-only columns Dataverse derives from others (full name, composite address)."""
        merged = {**(existing or {}), **row}
        named = table.name in {"contact", "lead", "systemuser"} and "fullname" in table.attributes
        if named and ({"firstname", "lastname"} & row.keys() or existing is None):
            parts = [merged.get("firstname"), merged.get("lastname")]
            row["fullname"] = " ".join(p for p in parts if p) or None
        if "address1_composite" in table.attributes and any(k.startswith("address1_") for k in row):
            parts = [
                merged.get(k)
                for k in (
                    "address1_line1",
                    "address1_line2",
                    "address1_line3",
                    "address1_city",
                    "address1_stateorprovince",
                    "address1_postalcode",
                    "address1_country",
                )
            ]
            row["address1_composite"] = "\r\n".join(str(p) for p in parts if p) or None
        if "statecode" in row and "statuscode" not in row and "statuscode" in table.attributes:
            state = next(
                (o for o in table.attributes["statecode"].options if o.value == row["statecode"]),
                None,
            )
            if state is not None and state.default_status is not None:
                row["statuscode"] = state.default_status

    def to_storage(self, table: Table, values: Mapping[Any, Any]) -> dict[str, Any]:
        """Python values (as seeding passes them) → column values."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            attr = table.attributes.get(name)
            if attr is None:
                raise ValueError(
                    f"{table.name} has no column {name!r}; add it to the catalogue first"
                )
            if attr.is_lookup:
                target, ref = value if isinstance(value, tuple) else (None, value)
                out[name] = str(ref) if ref is not None else None
                if len(attr.targets) > 1:
                    out[name + TYPE_SUFFIX] = target or (
                        attr.targets[0] if ref is not None else None
                    )
            elif attr.type == "Uniqueidentifier" and value is not None:
                out[name] = str(value)
            elif attr.type == "DateTime" and isinstance(value, dt.datetime):
                out[name] = value.date().isoformat() if attr.date_only else format_datetime(value)
            elif attr.type == "DateTime" and isinstance(value, dt.date):
                out[name] = value.isoformat()
            elif attr.type in {"Money", "Decimal"} and value is not None:
                out[name] = Decimal(str(value))
            else:
                out[name] = value
        return out

    def from_storage(self, table: Table, row: Mapping[Any, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, attr in table.attributes.items():
            value = row.get(name)
            if value is not None and (attr.is_lookup or attr.type == "Uniqueidentifier"):
                value = uuid.UUID(value)
            out[name] = value
            if attr.is_lookup and len(attr.targets) > 1:
                out[name + "@type"] = row.get(name + TYPE_SUFFIX)
        return out

    # ---- in-process API -----------------------------------------------------------------

    def insert(
        self,
        table: str,
        values: Mapping[Any, Any],
        *,
        as_user: uuid.UUID,
        conn: Connection | None = None,
    ) -> uuid.UUID:
        return self.bulk_insert(table, [values], as_user=as_user, conn=conn)[0]

    def bulk_insert(
        self,
        table: str,
        rows: Sequence[Mapping[Any, Any]],
        *,
        as_user: uuid.UUID,
        conn: Connection | None = None,
    ) -> list[uuid.UUID]:
        if not rows:
            return []
        if conn is None:
            with self.write() as own:
                return self.bulk_insert(table, rows, as_user=as_user, conn=own)
        definition = self.table(table)
        first = self.next_versions(conn, len(rows))
        now = format_datetime(utc_now())
        prepared = [
            self.defaults(
                definition,
                self.to_storage(definition, values),
                as_user=as_user,
                on_behalf_of=None,
                version=first + i,
                now=now,
            )
            for i, values in enumerate(rows)
        ]
        self._insert_rows(conn, self.tables[table], prepared)
        return [uuid.UUID(r[definition.primary_id]) for r in prepared]

    def _insert_rows(self, conn: Connection, sql: sa.Table, rows: list[dict[str, Any]]) -> None:
        columns = list(sql.c)
        if conn.dialect.name != "sqlite" or len(rows) < 100:
            conn.execute(sql.insert(), [{c.name: r.get(c.name) for c in columns} for r in rows])
            return
        # Seeding and benchmarks insert hundreds of thousands of rows; SQLAlchemy's per-row
        # statement bookkeeping costs more than SQLite's insert, so bind values are processed
        # once per column and handed to the driver's executemany.
        processors = [c.type._cached_bind_processor(conn.dialect) for c in columns]
        names = ", ".join(f'"{c.name}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        params = [
            tuple(
                p(r.get(c.name)) if p is not None else r.get(c.name)
                for c, p in zip(columns, processors, strict=True)
            )
            for r in rows
        ]
        statement = f'INSERT INTO "{sql.name}" ({names}) VALUES ({marks})'  # noqa: S608 - names come from the catalogue
        conn.exec_driver_sql(statement, params)

    @contextmanager
    def deferred_indexes(self, table: str) -> Iterator[None]:
        """Drop `table`'s non-unique indexes for a bulk load and rebuild them afterwards.

        Building an index once over a loaded table is far cheaper than maintaining it row by
        row; unique (alternate-key) indexes stay so key violations are still caught.
        """
        sql = self.tables[table]
        indexes = [i for i in sql.indexes if not i.unique]
        with self.write() as conn:
            for index in indexes:
                conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{index.name}"')
        try:
            yield
        finally:
            with self.write() as conn:
                for index in indexes:
                    conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{index.name}"')
                    index.create(conn)

    def get(
        self, table: str, record_id: uuid.UUID, *, conn: Connection | None = None
    ) -> dict[str, Any] | None:
        if conn is None:
            with self.read() as own:
                return self.get(table, record_id, conn=own)
        definition = self.table(table)
        sql = self.tables[table]
        row = (
            conn.execute(sa.select(sql).where(sql.c[definition.primary_id] == str(record_id)))
            .mappings()
            .first()
        )
        return None if row is None else self.from_storage(definition, row)

    def find_systemuser(
        self,
        *,
        aad_object_id: str | None = None,
        application_id: str | None = None,
        systemuserid: uuid.UUID | None = None,
    ) -> dict[str, Any] | None:
        sql = self.tables["systemuser"]
        clauses = []
        if aad_object_id is not None:
            clauses.append(
                sa.func.lower(sql.c.azureactivedirectoryobjectid) == aad_object_id.lower()
            )
        if application_id is not None:
            clauses.append(sa.func.lower(sql.c.applicationid) == application_id.lower())
        if systemuserid is not None:
            clauses.append(sql.c.systemuserid == str(systemuserid))
        if not clauses:
            raise ValueError("find_systemuser needs aad_object_id, application_id or systemuserid")
        with self.read() as conn:
            row = conn.execute(sa.select(sql).where(*clauses)).mappings().first()
        return None if row is None else self.from_storage(self.table("systemuser"), row)

    def count(self, table: str) -> int:
        with self.read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(self.tables[table])
                ).scalar_one()
            )


def attribute_to_json(attr: Attribute) -> dict[str, Any]:
    data = asdict(attr)
    data["options"] = [asdict(o) for o in attr.options]
    data["targets"] = list(attr.targets)
    return data


def attribute_from_json(data: dict[str, Any]) -> Attribute:
    data = dict(data)
    data["options"] = tuple(Option(**o) for o in data.get("options", []))
    data["targets"] = tuple(data.get("targets", []))
    return Attribute(**data)


def table_to_json(table: Table) -> dict[str, Any]:
    return {
        "name": table.name,
        "entity_set": table.entity_set,
        "primary_id": table.primary_id,
        "primary_name": table.primary_name,
        "object_type_code": table.object_type_code,
        "ownership": table.ownership,
        "change_tracking": table.change_tracking,
        "display_name": table.display_name,
        "attributes": [attribute_to_json(a) for a in table.attributes.values()],
    }


def table_from_json(data: dict[str, Any]) -> Table:
    attrs = {a["name"]: attribute_from_json(a) for a in data["attributes"]}
    return Table(
        name=data["name"],
        entity_set=data["entity_set"],
        primary_id=data["primary_id"],
        primary_name=data["primary_name"],
        attributes=attrs,
        object_type_code=data["object_type_code"],
        ownership=data["ownership"],
        change_tracking=data["change_tracking"],
        custom=True,
        display_name=data["display_name"],
    )
