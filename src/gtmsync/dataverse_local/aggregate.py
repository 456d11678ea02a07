"""`$apply`: `aggregate(...)`, `groupby((...),aggregate(...))` and a leading `filter(...)`.

Dataverse supports a subset of OData's data aggregation extension (sum, min, max, average,
countdistinct and `$count`); that subset is what reporting-style clients use, so it is what
this module evaluates, in SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from gtmsync.dataverse_local import errors, odata_filter
from gtmsync.dataverse_local.context import Call, Reply
from gtmsync.dataverse_local.principal import Access
from gtmsync.dataverse_local.query import json_value, split_top
from gtmsync.dataverse_local.schema import Attribute, Table

_ITEM = re.compile(r"^(?P<prop>\S+)\s+with\s+(?P<fn>\w+)\s+as\s+(?P<alias>\w+)$")
_COUNT = re.compile(r"^\$count\s+as\s+(?P<alias>\w+)$")
_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "sum": sa.func.sum,
    "min": sa.func.min,
    "max": sa.func.max,
    "average": sa.func.avg,
}


def _inner(text: str, name: str) -> str:
    if not (text.startswith(name + "(") and text.endswith(")")):
        raise errors.bad_request(f"Expected {name}(...) in $apply, got '{text}'.", "0x0")
    return text[len(name) + 1 : -1]


def _attribute(table: Table, prop: str) -> Attribute:
    name = prop[1:-6] if prop.startswith("_") and prop.endswith("_value") else prop
    attr = table.attributes.get(name)
    if attr is None or (attr.is_lookup and name == prop):
        raise errors.unknown_property(table.name, prop)
    return attr


def _aggregates(table: Table, sql: sa.Table, text: str) -> list[tuple[str, Any, Attribute | None]]:
    out: list[tuple[str, Any, Attribute | None]] = []
    for item in split_top(_inner(text, "aggregate")):
        count = _COUNT.match(item)
        if count:
            out.append((count.group("alias"), sa.func.count(), None))
            continue
        match = _ITEM.match(item)
        if not match:
            raise errors.bad_request(f"Invalid aggregate expression '{item}'.", "0x0")
        attr = _attribute(table, match.group("prop"))
        column = sql.c[attr.name]
        fn = match.group("fn").lower()
        if fn == "countdistinct":
            out.append((match.group("alias"), sa.func.count(sa.distinct(column)), None))
        elif fn in _FUNCTIONS:
            out.append((match.group("alias"), _FUNCTIONS[fn](column), attr))
        else:
            raise errors.bad_request(
                f"Aggregate function '{fn}' is not supported: use sum, min, max, average, "
                "countdistinct or $count.",
                "0x0",
            )
    return out


def apply(call: Call, table: Table, text: str) -> Reply:
    call.require(table, Access.READ)
    sql = call.store.tables[table.name]
    steps = split_top(text, "/")
    where: Any = sa.true()
    if steps and steps[0].startswith("filter("):
        where = odata_filter.to_sql(
            _inner(steps.pop(0), "filter"),
            catalogue=call.store.catalogue,
            table=table,
            sql_tables=call.store.tables,
            aliases={k: v for k, v in call.query.items() if k.startswith("@")},
            user_id=call.user_id,
        )
    if len(steps) != 1:
        raise errors.bad_request(
            "Use $apply=[filter(...)/]aggregate(...) or groupby((...),aggregate(...)).", "0x0"
        )
    step = steps[0]
    groups: list[tuple[str, Any, Attribute]] = []
    aggregates: list[tuple[str, Any, Attribute | None]] = []
    if step.startswith("groupby("):
        parts = split_top(_inner(step, "groupby"))
        columns = parts[0].strip()
        if not (columns.startswith("(") and columns.endswith(")")):
            raise errors.bad_request("groupby needs a parenthesised list of properties.", "0x0")
        for prop in split_top(columns[1:-1]):
            attr = _attribute(table, prop)
            groups.append((prop, sql.c[attr.name], attr))
        if len(parts) > 1:
            aggregates = _aggregates(table, sql, parts[1])
    else:
        aggregates = _aggregates(table, sql, step)
    selected = [c.label(f"g{i}") for i, (_, c, _) in enumerate(groups)]
    selected += [expr.label(f"a{i}") for i, (_, expr, _) in enumerate(aggregates)]
    stmt = sa.select(*selected).select_from(sql).where(where)
    if groups:
        stmt = stmt.group_by(*(c for _, c, _ in groups)).order_by(*(c for _, c, _ in groups))
    values = []
    for row in call.conn.execute(stmt):
        item: dict[str, Any] = {}
        for i, (name, _, attr) in enumerate(groups):
            item[name] = json_value(attr, row[i])
        for j, (name, _, agg_attr) in enumerate(aggregates):
            value = row[len(groups) + j]
            item[name] = json_value(agg_attr, value) if agg_attr is not None else value
        values.append(item)
    names = [n for n, _, _ in groups] + [n for n, _, _ in aggregates]
    return Reply.json(
        200,
        {
            "@odata.context": call.metadata_url(f"{table.entity_set}({','.join(names)})"),
            "value": values,
        },
    )
