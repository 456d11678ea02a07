"""Collection and entity reads: `$select`, `$filter`, `$orderby`, `$top`, `$count`, `$expand`,
keyset paging with opaque `$skiptoken` links, and the row's JSON shape with its annotations.

Paging is keyset, never OFFSET: the skiptoken carries the last row's sort key, so page 200
of a million-row table costs what page 1 costs (spec §2.4; Dataverse does not support $skip).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from gtmsync.dataverse_local import errors, odata_filter
from gtmsync.dataverse_local.context import Call, Reply
from gtmsync.dataverse_local.principal import Access
from gtmsync.dataverse_local.schema import Attribute, Table
from gtmsync.dataverse_local.store import TYPE_SUFFIX

FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
ASSOCIATED_NAV = "Microsoft.Dynamics.CRM.associatednavigationproperty"
TOTAL = "Microsoft.Dynamics.CRM.totalrecordcount"
TOTAL_EXCEEDED = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
COUNT_LIMIT = 5000
SUPPORTED_OPTIONS = frozenset(
    {
        "$select",
        "$filter",
        "$orderby",
        "$top",
        "$count",
        "$expand",
        "$skiptoken",
        "$deltatoken",
        "$apply",
    }
)
UNSUPPORTED_OPTIONS = frozenset({"$skip", "$search", "$format"})


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses and quotes."""
    parts: list[str] = []
    depth = 0
    quoted = False
    buf: list[str] = []
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if buf or parts:
        parts.append("".join(buf))
    return [p.strip() for p in parts if p.strip()]


@dataclass
class Expand:
    name: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class Options:
    select: list[str] | None = None
    filter: str | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)  # (property, descending)
    top: int | None = None
    count: bool = False
    expand: list[Expand] = field(default_factory=list)
    skiptoken: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)


def parse_options(query: Mapping[str, str]) -> Options:
    opts = Options(aliases={k: v for k, v in query.items() if k.startswith("@")})
    for name in query:
        if name in UNSUPPORTED_OPTIONS:
            raise errors.bad_request(f"The query parameter {name} is not supported", "0x80060888")
        if name.startswith("$") and name not in SUPPORTED_OPTIONS:
            raise errors.bad_request(
                f"The query parameter {name} is not supported. Query option names are "
                "case-sensitive.",
                "0x80060888",
            )
    if "$select" in query:
        opts.select = [s.strip() for s in query["$select"].split(",") if s.strip()]
    opts.filter = query.get("$filter")
    for item in split_top(query.get("$orderby", "")):
        words = item.split()
        prop = words[0]
        if prop.startswith("@"):
            prop = opts.aliases.get(prop, prop).strip("'")
        desc = len(words) > 1 and words[1].lower() == "desc"
        opts.orderby.append((prop, desc))
    if "$top" in query:
        try:
            opts.top = int(query["$top"])
        except ValueError as exc:
            raise errors.bad_request(f"Invalid value '{query['$top']}' for $top.", "0x0") from exc
    opts.count = query.get("$count", "").lower() == "true"
    for item in split_top(query.get("$expand", "")):
        name, _, rest = item.partition("(")
        inner: dict[str, str] = {}
        if rest:
            for part in split_top(rest[:-1], ";"):
                key, _, value = part.partition("=")
                inner[key.strip()] = value
        opts.expand.append(Expand(name.strip(), inner))
    if len(opts.expand) > 15:
        raise errors.bad_request(
            "Number of expands in the query exceeds the limit of 15.", "0x80060888"
        )
    opts.skiptoken = query.get("$skiptoken")
    return opts


# ---- serialisation --------------------------------------------------------------------------


def _format_number(value: Any, places: int) -> str:
    # Money and Decimal columns already read as Decimal: format them as they are.
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return f"{number:,.{places}f}"


# The attribute types `formatted_value` labels; other types never carry a FormattedValue.
FORMATTED_TYPES = frozenset(
    {
        "Picklist",
        "State",
        "Status",
        "MultiSelectPicklist",
        "Boolean",
        "Money",
        "Integer",
        "BigInt",
        "Decimal",
        "Double",
        "DateTime",
    }
)


def formatted_value(attr: Attribute, value: Any) -> str | None:
    if value is None:
        return None
    if attr.type in {"Picklist", "State", "Status"}:
        return attr.option_label(int(value))
    if attr.type == "MultiSelectPicklist":
        labels = [attr.option_label(int(v)) for v in str(value).split(",") if v]
        return "; ".join(label for label in labels if label)
    if attr.type == "Boolean":
        label = attr.option_label(1 if value else 0)
        return label or ("Yes" if value else "No")
    if attr.type == "Money":
        return "$" + _format_number(value, 2)
    if attr.type in {"Integer", "BigInt"}:
        return f"{int(value):,}"
    if attr.type in {"Decimal", "Double"}:
        return _format_number(value, attr.precision or 2)
    if attr.type == "DateTime":
        if attr.date_only:
            d = dt.date.fromisoformat(str(value)[:10])
            return f"{d.month}/{d.day}/{d.year}"
        # Stored as `YYYY-MM-DDTHH:MM:SSZ`; fromisoformat is many times faster than strptime.
        t = dt.datetime.fromisoformat(str(value).removesuffix("Z"))
        hour = t.hour % 12 or 12
        return f"{t.month}/{t.day}/{t.year} {hour}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"
    return None


def json_value(attr: Attribute, value: Any) -> Any:
    if value is None:
        return None
    if attr.type in {"Money", "Decimal"}:
        return float(value)
    if attr.type == "DateTime" and attr.date_only:
        return str(value)[:10]
    return value


class Serializer:
    """Turns stored rows into Dataverse's JSON, batching the look-ups annotations need."""

    def __init__(self, call: Call, table: Table, select: Sequence[str] | None) -> None:
        self.call = call
        self.table = table
        self.columns = resolve_select(table, select)
        self.formatted = call.wants_annotation(FORMATTED)
        self.lookup_names = call.wants_annotation(LOOKUP_NAME)
        self.associated = call.wants_annotation(ASSOCIATED_NAV)
        self.navs = {
            (n.attribute, n.target): n.name for n in table.navigation_properties().values()
        }
        self._names: dict[tuple[str, str], str | None] = {}
        self._labels: dict[tuple[str, Any], str | None] = {}
        self._row_plan: list[tuple[Attribute, str, bool, bool, bool, str]] | None = None

    def preload_names(self, rows: Iterable[Mapping[Any, Any]]) -> None:
        """Primary names of lookup targets, fetched per target table in one query each."""
        if not self.formatted:
            return
        wanted: dict[str, set[str]] = {}
        for row in rows:
            for attr in self.columns:
                if attr.is_lookup and row.get(attr.name):
                    wanted.setdefault(self._target(attr, row), set()).add(row[attr.name])
        for target, ids in wanted.items():
            definition = self.call.store.catalogue.get(target)
            if definition is None or definition.primary_name not in definition.attributes:
                continue
            sql = self.call.store.tables[target]
            pk = sql.c[definition.primary_id]
            for chunk in _chunks(sorted(ids), 500):
                for rid, name in self.call.conn.execute(
                    sa.select(pk, sql.c[definition.primary_name]).where(pk.in_(chunk))
                ):
                    self._names[(target, rid)] = name

    def sql_columns(self, sql: sa.Table) -> list[sa.Column[Any]]:
        """The stored columns `row()` reads: a page of a wide table fetches only these.

        Reading every column of a 46-column table cost the server more than serialising
        the few `$select`ed ones (a sync reads millions of rows).
        """
        names = {self.table.primary_id, "versionnumber"}
        for attr in self.columns:
            names.add(attr.name)
            if attr.is_lookup and len(attr.targets) > 1:
                names.add(attr.name + TYPE_SUFFIX)
        return [column for column in sql.c if column.name in names]

    @staticmethod
    def _target(attr: Attribute, row: Mapping[Any, Any]) -> str:
        return str(row.get(attr.name + TYPE_SUFFIX) or attr.targets[0])

    def _plan(self) -> list[tuple[Attribute, str, bool, bool, bool, str]]:
        """Per selected column, decided once per request instead of once per row and column:
        (attribute, the JSON key, readable, is a lookup, may carry a formatted value,
        the formatted value's key)."""
        if self._row_plan is None:
            principal = self.call.principal
            plan = []
            for attr in self.columns:
                lookup = attr.is_lookup
                key = f"_{attr.name}_value" if lookup else attr.name
                plan.append(
                    (
                        attr,
                        key,
                        principal.can_read_attribute(self.table.name, attr.name),
                        lookup,
                        self.formatted
                        and attr.name != "versionnumber"
                        and attr.type in FORMATTED_TYPES,
                        f"{key}@{FORMATTED}",
                    )
                )
            self._row_plan = plan
        return self._row_plan

    def _label(self, attr: Attribute, value: Any) -> str | None:
        """`formatted_value`, remembered per attribute and value (option sets, dates repeat)."""
        key = (attr.name, value)
        try:
            return self._labels[key]
        except KeyError:
            label = self._labels[key] = formatted_value(attr, value)
            return label
        except TypeError:  # an unhashable value
            return formatted_value(attr, value)

    def row(self, row: Mapping[Any, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": f'W/"{row["versionnumber"]}"'}
        for attr, key, readable, lookup, formats, formatted_key in self._plan():
            value = row.get(attr.name) if readable else None
            if lookup:
                if value is not None:
                    target = self._target(attr, row)
                    if self.formatted:
                        out[formatted_key] = self._names.get((target, value))
                    if self.associated:
                        out[f"{key}@{ASSOCIATED_NAV}"] = self.navs.get(
                            (attr.name, target), attr.name
                        )
                    if self.lookup_names:
                        out[f"{key}@{LOOKUP_NAME}"] = target
                out[key] = value
                continue
            if value is None:
                out[key] = None
                continue
            if formats:
                label = self._label(attr, value)
                if label is not None:
                    out[formatted_key] = label
            out[key] = json_value(attr, value)
        return out


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def resolve_select(table: Table, select: Sequence[str] | None) -> list[Attribute]:
    """The columns to return: the selected ones plus the key and the companions Dataverse adds."""
    if select is None:
        return list(table.attributes.values())
    chosen: dict[str, Attribute] = {table.primary_id: table.attributes[table.primary_id]}
    for name in select:
        attr_name = name[1:-6] if name.startswith("_") and name.endswith("_value") else name
        attr = table.attributes.get(attr_name)
        if attr is None or (
            attr.is_lookup and attr_name == name and name not in table.navigation_properties()
        ):
            raise errors.unknown_property(table.name, name)
        chosen[attr.name] = attr
        if attr.type == "Money" and "transactioncurrencyid" in table.attributes:
            chosen["transactioncurrencyid"] = table.attributes["transactioncurrencyid"]
        if attr.name.startswith("address1_") and "address1_composite" in table.attributes:
            chosen["address1_composite"] = table.attributes["address1_composite"]
    return list(chosen.values())


def context_url(call: Call, table: Table, select: Sequence[str] | None, suffix: str = "") -> str:
    shape = f"({','.join(select)})" if select else ""
    return call.metadata_url(f"{table.entity_set}{shape}{suffix}")


# ---- keyset paging --------------------------------------------------------------------------


def encode_skiptoken(page: int, last: Sequence[Any], *, tracking: bool = False) -> str:
    payload = base64.urlsafe_b64encode(
        json.dumps([page, list(last)], default=str).encode()
    ).decode()
    return f'<cookie pagenumber="{page}" pagingcookie="{payload}" istracking="{tracking}" />'


def decode_skiptoken(token: str) -> tuple[int, list[Any]]:
    try:
        start = token.index('pagingcookie="') + len('pagingcookie="')
        payload = token[start : token.index('"', start)]
        page, last = json.loads(base64.urlsafe_b64decode(payload.encode()))
        return int(page), list(last)
    except (ValueError, TypeError) as exc:
        raise errors.bad_request(
            "The $skiptoken is not valid for this query.", "0x80060888"
        ) from exc


@dataclass
class SortKey:
    column: Any
    descending: bool
    name: str
    lowered: bool = False  # sorted by lower(column): strings compare case-insensitively
    decimal: bool = False  # Money/Decimal travel as text in the skiptoken

    def token_value(self, value: Any) -> Any:
        if value is None:
            return None
        if self.lowered:
            return str(value).lower()
        return str(value) if self.decimal else value

    def sql_value(self, value: Any) -> Any:
        return Decimal(value) if self.decimal and value is not None else value


def sort_keys(table: Table, sql: sa.Table, orderby: Sequence[tuple[str, bool]]) -> list[SortKey]:
    keys: list[SortKey] = []
    for prop, desc in orderby:
        name = prop[1:-6] if prop.startswith("_") and prop.endswith("_value") else prop
        attr = table.attributes.get(name)
        if attr is None or (attr.is_lookup and name == prop):
            raise errors.unknown_property(table.name, prop)
        column = sa.func.lower(sql.c[name]) if attr.is_string else sql.c[name]
        decimal = attr.type in {"Money", "Decimal"}
        keys.append(SortKey(column, desc, name, lowered=attr.is_string, decimal=decimal))
    if not any(k.name == table.primary_id for k in keys):
        keys.append(SortKey(sql.c[table.primary_id], False, table.primary_id))
    return keys


def order_clauses(keys: Sequence[SortKey]) -> list[Any]:
    # NULLs first ascending and last descending, the same on SQLite and PostgreSQL, so the
    # keyset predicate below matches the sort order.
    return [
        k.column.desc().nulls_last() if k.descending else k.column.asc().nulls_first() for k in keys
    ]


def after(keys: Sequence[SortKey], token_values: Sequence[Any]) -> Any:
    """Rows strictly after `last` in the order of `keys` (NULL-aware lexicographic)."""
    if len(token_values) != len(keys):
        raise errors.bad_request("The $skiptoken is not valid for this query.", "0x80060888")
    last = [k.sql_value(v) for k, v in zip(keys, token_values, strict=True)]
    clauses = []
    for i, key in enumerate(keys):
        prefix = [
            k.column.is_(None) if v is None else k.column == v
            for k, v in zip(keys[:i], last[:i], strict=True)
        ]
        v = last[i]
        if key.descending:
            if v is None:
                continue
            beyond = sa.or_(key.column < v, key.column.is_(None))
        else:
            beyond = key.column.is_not(None) if v is None else key.column > v
        clauses.append(sa.and_(*prefix, beyond))
    return sa.or_(*clauses) if clauses else sa.false()


def _sort_values(keys: Sequence[SortKey], row: Mapping[Any, Any]) -> list[Any]:
    return [k.token_value(row[k.name]) for k in keys]


def page_size(call: Call, opts: Options) -> tuple[int, bool]:
    """Rows per page and whether `odata.maxpagesize` was applied ($top is ignored with it)."""
    raw = call.prefer.get("odata.maxpagesize")
    if raw:
        try:
            size = int(raw)
        except ValueError:
            size = call.settings.max_page_size
        return max(1, min(size, call.settings.max_page_size)), True
    if opts.top is not None:
        return max(0, min(opts.top, call.settings.max_page_size)), False
    return call.settings.max_page_size, False


def next_link(call: Call, token: str) -> str:
    params = {k: v for k, v in call.query.items() if k != "$skiptoken"}
    params["$skiptoken"] = token
    encoded = urllib.parse.urlencode(params, quote_via=urllib.parse.quote, safe="$,()'@=")
    return f"{call.service_root}/{call.path}?{encoded}"


# ---- execution ------------------------------------------------------------------------------


def where_clause(call: Call, table: Table, opts: Options) -> Any:
    if not opts.filter:
        return sa.true()
    return odata_filter.to_sql(
        opts.filter,
        catalogue=call.store.catalogue,
        table=table,
        sql_tables=call.store.tables,
        aliases=opts.aliases,
        user_id=call.user_id,
    )


def list_rows(
    call: Call, table: Table, opts: Options, *, extra_where: Any = None, paged: bool = True
) -> Reply:
    """GET on a collection (or a collection-valued navigation property)."""
    call.require(table, Access.READ)
    sql = call.store.tables[table.name]
    where = where_clause(call, table, opts)
    if extra_where is not None:
        where = sa.and_(where, extra_where)
    keys = sort_keys(table, sql, opts.orderby)
    size, maxpagesize_applied = page_size(call, opts)
    page = 1
    stmt = sa.select(sql).where(where)
    if opts.skiptoken:
        page, last = decode_skiptoken(opts.skiptoken)
        stmt = stmt.where(after(keys, last))
    limit = size + 1 if (paged and (maxpagesize_applied or opts.top is None)) else size
    rows = list(call.conn.execute(stmt.order_by(*order_clauses(keys)).limit(limit)).mappings())
    more = len(rows) > size
    rows = rows[:size]
    serializer = Serializer(call, table, opts.select)
    serializer.preload_names(rows)
    values = [serializer.row(r) for r in rows]
    expand_rows(call, table, rows, values, opts.expand)
    body: dict[str, Any] = {"@odata.context": context_url(call, table, _shape(opts))}
    applied: list[str] = []
    want_total = call.wants_annotation(TOTAL)
    count: int | None = None
    if opts.count or want_total:
        count = _count(call, sql, where) if opts.count else -1
    if opts.count:
        body["@odata.count"] = count
    if want_total:
        body[f"@{TOTAL}"] = count
    if call.wants_annotation(TOTAL_EXCEEDED):
        body[f"@{TOTAL_EXCEEDED}"] = bool(
            opts.count
            and count is not None
            and count >= COUNT_LIMIT
            and _count(call, sql, where, COUNT_LIMIT + 1) > COUNT_LIMIT
        )
    body["value"] = values
    if more and paged:
        body["@odata.nextLink"] = next_link(
            call, encode_skiptoken(page + 1, _sort_values(keys, rows[-1]))
        )
    if maxpagesize_applied:
        applied.append(f"odata.maxpagesize={size}")
    if call.annotations:
        applied.append(f'odata.include-annotations="{call.annotations}"')
    headers = {"Preference-Applied": ",".join(applied)} if applied else {}
    return Reply.json(200, body, headers)


def _shape(opts: Options) -> list[str] | None:
    if opts.select is None and not opts.expand:
        return None
    shape = list(opts.select or [])
    for e in opts.expand:
        inner = e.options.get("$select")
        shape.append(f"{e.name}({inner})" if inner else f"{e.name}()")
    return shape


def _count(call: Call, sql: sa.Table, where: Any, cap: int = COUNT_LIMIT) -> int:
    limited = sa.select(sa.literal(1)).select_from(sql).where(where).limit(cap).subquery()
    return int(call.conn.execute(sa.select(sa.func.count()).select_from(limited)).scalar_one())


def count_text(call: Call, table: Table, opts: Options, extra_where: Any = None) -> Reply:
    """`GET <set>/$count`: the number as text/plain (Dataverse caps it at 5,000)."""
    call.require(table, Access.READ)
    sql = call.store.tables[table.name]
    where = where_clause(call, table, opts)
    if extra_where is not None:
        where = sa.and_(where, extra_where)
    n = _count(call, sql, where)
    return Reply(200, [("Content-Type", "text/plain"), ("OData-Version", "4.0")], str(n).encode())


def entity(
    call: Call, table: Table, row: Mapping[Any, Any], opts: Options, status: int = 200
) -> Reply:
    """A single row as `$entity`, with its `ETag` header."""
    serializer = Serializer(call, table, opts.select)
    serializer.preload_names([row])
    value = serializer.row(row)
    expand_rows(call, table, [row], [value], opts.expand)
    body = {"@odata.context": context_url(call, table, _shape(opts), "/$entity"), **value}
    headers = {"ETag": value["@odata.etag"]}
    if call.annotations:
        headers["Preference-Applied"] = f'odata.include-annotations="{call.annotations}"'
    return Reply.json(status, body, headers)


def expand_rows(
    call: Call,
    table: Table,
    rows: Sequence[Mapping[Any, Any]],
    values: list[dict[str, Any]],
    expands: Sequence[Expand],
) -> None:
    if not expands or not rows:
        return
    navs = table.navigation_properties()
    collections = call.store.catalogue.collection_navigations(table.name)
    for exp in expands:
        ref = exp.name.endswith("/$ref")
        name = exp.name[: -len("/$ref")] if ref else exp.name
        inner = parse_options(exp.options)
        if name in navs:
            nav = navs[name]
            target = call.store.catalogue.tables[nav.target]
            call.require(target, Access.READ)
            sql = call.store.tables[target.name]
            type_col = nav.attribute + TYPE_SUFFIX
            ids = {
                r[nav.attribute]
                for r in rows
                if r[nav.attribute] and (type_col not in r or r[type_col] in (None, nav.target))
            }
            found: dict[str, Mapping[Any, Any]] = {}
            for chunk in _chunks(sorted(ids), 500):
                stmt = sa.select(sql).where(sql.c[target.primary_id].in_(chunk))
                for found_row in call.conn.execute(stmt).mappings():
                    found[found_row[target.primary_id]] = found_row
            serializer = Serializer(call, target, inner.select)
            serializer.preload_names(found.values())
            for r, v in zip(rows, values, strict=True):
                child = found.get(r[nav.attribute]) if r[nav.attribute] else None
                if ref:
                    v[name] = (
                        {
                            "@odata.id": (
                                f"{call.service_root}/{target.entity_set}"
                                f"({child[target.primary_id]})"
                            )
                        }
                        if child
                        else None
                    )
                else:
                    v[name] = serializer.row(child) if child else None
        elif name in collections:
            if ref:
                raise errors.bad_request(
                    "Expand with $ref is only supported on lookup type navigation property.",
                    "0x80060888",
                )
            coll = collections[name]
            child_table = call.store.catalogue.tables[coll.table]
            call.require(child_table, Access.READ)
            sql = call.store.tables[child_table.name]
            where = where_clause(call, child_table, inner)
            keys = sort_keys(child_table, sql, inner.orderby)
            parent_ids = [r[table.primary_id] for r in rows]
            grouped: dict[str, list[Mapping[Any, Any]]] = {pid: [] for pid in parent_ids}
            for chunk in _chunks(parent_ids, 500):
                stmt = (
                    sa.select(sql)
                    .where(where, sql.c[coll.attribute].in_(chunk))
                    .order_by(*order_clauses(keys))
                )
                for child_row in call.conn.execute(stmt).mappings():
                    grouped[child_row[coll.attribute]].append(child_row)
            serializer = Serializer(call, child_table, inner.select)
            for r, v in zip(rows, values, strict=True):
                children = grouped[r[table.primary_id]]
                if inner.top is not None:
                    children = children[: inner.top]
                serializer.preload_names(children)
                v[name] = [serializer.row(c) for c in children]
        else:
            raise errors.unknown_property(table.name, name)


def single_lookup_row(
    call: Call, table: Table, record_id: uuid.UUID | str
) -> Mapping[Any, Any] | None:
    sql = call.store.tables[table.name]
    return (
        call.conn.execute(sa.select(sql).where(sql.c[table.primary_id] == str(record_id)))
        .mappings()
        .first()
    )
