"""`$filter` → SQLAlchemy Core, on odata-query's parser (spec §2.2, evaluation in §11.2).

odata-query parses standard OData; Dataverse adds three things it lacks, added here:
a pre-processor (parameter aliases `@p1`, JSON arrays `["a","b"]`, Dataverse's
unterminated-literal error), a visitor that knows the catalogue (lookup `_x_value`
properties, case-insensitive strings, ISO datetimes stored as text) and the
`Microsoft.Dynamics.CRM.*` query functions (`In`, `Between`, `LastXHours`, …).
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from odata_query import ast
from odata_query import exceptions as odata_errors
from odata_query.grammar import ODataLexer, ODataParser
from odata_query.sqlalchemy.core import AstToSqlAlchemyCoreVisitor

from gtmsync.dataverse_local import errors
from gtmsync.dataverse_local.schema import Attribute, Catalogue, Table
from gtmsync.dataverse_local.store import format_datetime

_IDENT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _scan_string(text: str, start: int) -> int:
    """Index just past the single-quoted literal opening at `start` ('' is an escaped quote)."""
    i = start + 1
    while i < len(text):
        if text[i] == "'":
            if i + 1 < len(text) and text[i + 1] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    raise errors.unterminated_literal(len(text), text)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _array_to_list(text: str, start: int) -> tuple[str, int]:
    """`["a","b"]` / `['a']` / `[1,2]` at `start` → `('a','b')`, and the index after `]`."""
    items: list[str] = []
    i = start + 1
    invalid = errors.bad_request(
        "Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two elements "
        "in an array and properties of an object must be separated by commas.",
        "0x0",
    )
    while i < len(text):
        ch = text[i]
        if ch in " \t,":
            i += 1
            continue
        if ch == "]":
            return "(" + ",".join(items) + ")", i + 1
        if ch == '"':
            decoder = json.JSONDecoder()
            value, end = decoder.raw_decode(text, i)
            items.append(_quote(str(value)))
            i = end
        elif ch == "'":
            end = _scan_string(text, i)
            items.append(text[i:end])
            i = end
        else:
            end = i
            while end < len(text) and text[end] not in ",]":
                end += 1
            items.append(text[i:end].strip())
            i = end
        if i < len(text) and text[i] not in ",] \t":
            raise invalid
    raise invalid


def preprocess(text: str, aliases: Mapping[str, str]) -> str:
    """Substitute aliases and JSON arrays so odata-query's lexer can read the expression."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            end = _scan_string(text, i)
            out.append(text[i:end])
            i = end
        elif ch == "[":
            converted, i = _array_to_list(text, i)
            out.append(converted)
        elif ch == "@":
            end = i + 1
            while end < len(text) and text[end] in _IDENT:
                end += 1
            name = text[i:end]
            value = aliases.get(name)
            out.append("null" if value is None else preprocess(value, {}))
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse(text: str, aliases: Mapping[str, str]) -> ast._Node:
    source = preprocess(text, aliases)
    try:
        return ODataParser().parse(ODataLexer().tokenize(source))  # type: ignore[no-any-return]
    # odata-query's parser (sly) raises AttributeError on some malformed input, e.g. a query
    # function given the same parameter twice: still the client's syntax error, not a 500.
    except (odata_errors.ODataException, ValueError, AttributeError) as exc:
        raise errors.bad_request(
            f"Syntax error in '$filter' expression '{text}': {exc}", "0x80060888"
        ) from exc


def coerce(attr: Attribute, value: Any) -> Any:
    """A literal as the column stores it (function parameters arrive as strings)."""
    if value is None:
        return None
    t = attr.type
    try:
        if t in {"Integer", "BigInt", "Picklist", "State", "Status"}:
            return int(value)
        if t in {"Money", "Decimal"}:
            return Decimal(str(value))
        if t == "Double":
            return float(value)
        if t == "Boolean":
            return value if isinstance(value, bool) else str(value).lower() in {"true", "1"}
        if t == "DateTime":
            if isinstance(value, dt.datetime):
                return value.date().isoformat() if attr.date_only else format_datetime(value)
            if isinstance(value, dt.date):
                return value.isoformat()
            return str(value)
        if attr.is_lookup or t == "Uniqueidentifier":
            return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise errors.bad_request(
            f"The value '{value}' is not valid for attribute '{attr.name}' of type {t}.", "0x0"
        ) from exc
    return str(value).lower() if attr.is_string else value


class FilterVisitor(AstToSqlAlchemyCoreVisitor):
    """odata-query's Core visitor taught Dataverse's columns, strings and query functions."""

    def __init__(
        self,
        catalogue: Catalogue,
        table: Table,
        sql_tables: Mapping[str, sa.Table],
        *,
        user_id: uuid.UUID,
        business_unit_id: uuid.UUID | None = None,
        now: dt.datetime | None = None,
        sql: sa.FromClause | None = None,
        lambda_var: str | None = None,
    ) -> None:
        # odata-query annotates `table` as a class; it is used as a Table instance.
        super().__init__(sql_tables[table.name])  # type: ignore[arg-type]
        self.sql = sql if sql is not None else sql_tables[table.name]
        self.lambda_var = lambda_var
        self.catalogue = catalogue
        self.definition = table
        self.sql_tables = sql_tables
        self.user_id = user_id
        self.business_unit_id = business_unit_id
        self.now = now or dt.datetime.now(dt.UTC).replace(microsecond=0)

    # ---- columns ------------------------------------------------------------------------

    def attribute(self, name: str, table: Table | None = None) -> Attribute:
        table = table or self.definition
        attr_name = name[1:-6] if name.startswith("_") and name.endswith("_value") else name
        attr = table.attributes.get(attr_name)
        if attr is None or (attr.is_lookup and attr_name == name):
            raise errors.unknown_property(table.name, name)
        return attr

    def visit_Identifier(self, node: ast.Identifier) -> Any:  # noqa: N802
        attr = self.attribute(node.name)
        return self.sql.c[attr.name]

    def _is_lambda_member(self, node: ast._Node) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and isinstance(node.owner, ast.Identifier)
            and node.owner.name == self.lambda_var
        )

    def visit_Attribute(self, node: ast.Attribute) -> Any:  # noqa: N802
        """`primarycontactid/fullname`: a correlated scalar subquery through the lookup."""
        if self._is_lambda_member(node):
            return self.visit_Identifier(ast.Identifier(node.attr))
        if not isinstance(node.owner, ast.Identifier):
            raise errors.bad_request("Only one level of navigation is supported in $filter.")
        nav = self.definition.navigation_properties().get(node.owner.name)
        if nav is None:
            raise errors.unknown_property(self.definition.name, node.owner.name)
        target = self.catalogue.tables[nav.target]
        target_attr = self.attribute(node.attr, target)
        target_sql = self.sql_tables[target.name].alias()
        return (
            sa.select(target_sql.c[target_attr.name])
            .where(target_sql.c[target.primary_id] == self.sql.c[nav.attribute])
            .scalar_subquery()
        )

    def _attr_of(self, node: ast._Node) -> Attribute | None:
        if isinstance(node, ast.Identifier):
            return self.attribute(node.name)
        if isinstance(node, ast.Attribute) and self._is_lambda_member(node):
            return self.attribute(node.attr)
        if isinstance(node, ast.Attribute) and isinstance(node.owner, ast.Identifier):
            nav = self.definition.navigation_properties().get(node.owner.name)
            if nav is not None:
                return self.attribute(node.attr, self.catalogue.tables[nav.target])
        return None

    def _value(self, attr: Attribute | None, node: ast._Node) -> Any:
        if isinstance(node, ast.Null):
            return sa.null()
        if isinstance(node, ast.List):
            return [self._value(attr, n) for n in node.val]
        if isinstance(node, ast._Literal):
            py = node.val if isinstance(node, ast.GUID) else node.py_val
            return sa.literal(coerce(attr, py) if attr is not None else py)
        return self.visit(node)

    def _column_expr(self, attr: Attribute | None, node: ast._Node) -> Any:
        expr = self.visit(node)
        if attr is not None and attr.is_string:
            return sa.func.lower(expr)
        return expr

    def visit_Compare(self, node: ast.Compare) -> Any:  # noqa: N802
        left_attr = self._attr_of(node.left)
        right_attr = self._attr_of(node.right)
        attr = left_attr or right_attr
        left = (
            self._column_expr(left_attr, node.left) if left_attr else self._value(attr, node.left)
        )
        right = (
            self._column_expr(right_attr, node.right)
            if right_attr
            else self._value(attr, node.right)
        )
        op = self.visit(node.comparator)
        return op(left, right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:  # noqa: N802
        if (
            isinstance(node.op, ast.Not)
            and isinstance(node.operand, ast.Call)
            and node.operand.func.namespace
        ):
            raise errors.bad_request(
                "Not operator along with the Custom Named Condition operators is not allowed", "0x0"
            )
        return super().visit_UnaryOp(node)

    def visit_CollectionLambda(self, node: ast.CollectionLambda) -> Any:  # noqa: N802
        """`Account_Tasks/any(t:t/statecode eq 1)` → EXISTS; `all(...)` → NOT EXISTS(NOT ...)."""
        if not isinstance(node.owner, ast.Identifier):
            raise errors.bad_request(
                "Lambda operators need a collection-valued navigation property.", "0x0"
            )
        collection = self.catalogue.collection_navigations(self.definition.name).get(
            node.owner.name
        )
        if collection is None:
            raise errors.unknown_property(self.definition.name, node.owner.name)
        child = self.catalogue.tables[collection.table]
        child_sql = self.sql_tables[child.name].alias()
        link = child_sql.c[collection.attribute] == self.sql.c[self.definition.primary_id]
        if node.lambda_ is None:
            return sa.exists(sa.select(sa.literal(1)).select_from(child_sql).where(link))
        inner = FilterVisitor(
            self.catalogue,
            child,
            self.sql_tables,
            user_id=self.user_id,
            business_unit_id=self.business_unit_id,
            now=self.now,
            sql=child_sql,
            lambda_var=node.lambda_.identifier.name,
        )
        condition = inner.visit(node.lambda_.expression)
        if isinstance(node.operator, ast.All):
            condition = sa.not_(condition)
        found = sa.exists(sa.select(sa.literal(1)).select_from(child_sql).where(link, condition))
        return sa.not_(found) if isinstance(node.operator, ast.All) else found

    def _substr_function(self, field: ast._Node, substr: ast._Node, func: str) -> Any:
        attr = self._attr_of(field)
        if attr is None or not isinstance(substr, ast.String):
            raise errors.bad_request(f"'{func}' needs a string column and a string literal.", "0x0")
        pattern = substr.py_val.lower()
        column = sa.func.lower(self.visit(field))
        # Dataverse honours LIKE wildcards inside the value, so it is not escaped.
        if func == "contains":
            return column.like("%" + pattern + "%")
        if func == "startswith":
            return column.like(pattern + "%")
        return column.like("%" + pattern)

    # ---- Dataverse query functions ------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> Any:  # noqa: N802
        if not node.func.namespace:
            return super().visit_Call(node)
        if ".".join(node.func.namespace) != "Microsoft.Dynamics.CRM":
            raise errors.bad_request(f"Unknown function '{node.func.name}'.", "0x0")
        handler: Callable[..., Any] | None = getattr(self, "crm_" + node.func.name.lower(), None)
        if handler is None:
            raise errors.bad_request(
                f"The query function 'Microsoft.Dynamics.CRM.{node.func.name}' is not supported "
                "by the local server.",
                "0x0",
            )
        params: dict[str, ast._Node] = {}
        for arg in node.args:
            if not isinstance(arg, ast.NamedParam):
                raise errors.bad_request(
                    f"Microsoft.Dynamics.CRM.{node.func.name} takes named parameters "
                    "(PropertyName=…, PropertyValue=…).",
                    "0x0",
                )
            params[arg.name.name] = arg.param
        return handler(params)

    def _property(self, params: Mapping[str, ast._Node]) -> tuple[Attribute, Any]:
        node = params.get("PropertyName")
        if not isinstance(node, ast.String):
            raise errors.bad_request(
                "PropertyName must be a string literal naming a column.", "0x0"
            )
        # Query functions name columns by logical name, lookups included (`ownerid`).
        name = str(node.py_val)
        attr = self.definition.attributes.get(name) or self.attribute(name)
        column = self.sql.c[attr.name]
        return attr, sa.func.lower(column) if attr.is_string else column

    def _values(
        self, attr: Attribute, params: Mapping[str, ast._Node], name: str = "PropertyValues"
    ) -> list[Any]:
        node = params.get(name)
        if node is None:
            raise errors.bad_request(f"Parameter '{name}' is required.", "0x0")
        nodes = node.val if isinstance(node, ast.List) else [node]
        return [
            coerce(attr, n.val if isinstance(n, ast.GUID) else getattr(n, "py_val", None))
            for n in nodes
        ]

    def _scalar(
        self, attr: Attribute, params: Mapping[str, ast._Node], name: str = "PropertyValue"
    ) -> Any:
        values = self._values(attr, params, name)
        return values[0]

    def crm_in(self, p: Mapping[str, ast._Node]) -> Any:
        attr, column = self._property(p)
        return column.in_(self._values(attr, p))

    def crm_notin(self, p: Mapping[str, ast._Node]) -> Any:
        attr, column = self._property(p)
        return sa.or_(column.not_in(self._values(attr, p)), column.is_(None))

    def crm_between(self, p: Mapping[str, ast._Node]) -> Any:
        attr, column = self._property(p)
        values = self._values(attr, p)
        if len(values) != 2:
            raise errors.bad_request("Between takes exactly two PropertyValues.", "0x0")
        return column.between(values[0], values[1])

    def crm_notbetween(self, p: Mapping[str, ast._Node]) -> Any:
        return sa.not_(self.crm_between(p))

    def crm_equaluserid(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        return column == str(self.user_id)

    def crm_notequaluserid(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        return sa.or_(column != str(self.user_id), column.is_(None))

    def crm_equalbusinessid(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        return column == str(self.business_unit_id)

    def crm_notequalbusinessid(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        return sa.or_(column != str(self.business_unit_id), column.is_(None))

    def crm_containvalues(self, p: Mapping[str, ast._Node]) -> Any:
        attr, column = self._property(p)
        stored = sa.literal(",") + sa.func.replace(column, " ", "") + sa.literal(",")
        return sa.or_(*(stored.like(f"%,{v},%") for v in self._values(attr, p)))

    def crm_doesnotcontainvalues(self, p: Mapping[str, ast._Node]) -> Any:
        return sa.not_(self.crm_containvalues(p))

    # Hierarchy functions walk the table's self-referencing lookup (account.parentaccountid).
    def _hierarchy(self, p: Mapping[str, ast._Node], *, down: bool, include_self: bool) -> Any:
        _, column = self._property(p)
        parent_attr = next(
            (
                a
                for a in self.definition.attributes.values()
                if a.is_lookup
                and a.targets == (self.definition.name,)
                and a.name.startswith("parent")
            ),
            None,
        )
        if parent_attr is None:
            raise errors.bad_request(
                f"The entity '{self.definition.name}' has no hierarchical relationship.", "0x0"
            )
        start = str(self._scalar(_GUID, p))
        table = self.sql_tables[self.definition.name]
        pk, parent = table.c[self.definition.primary_id], table.c[parent_attr.name]
        if down:
            tree = sa.select(pk.label("id")).where(parent == start).cte(recursive=True)
            step = table.alias()
            tree = tree.union_all(
                sa.select(step.c[self.definition.primary_id]).where(
                    step.c[parent_attr.name] == tree.c.id
                )
            )
        else:
            tree = sa.select(parent.label("id")).where(pk == start).cte(recursive=True)
            step = table.alias()
            tree = tree.union_all(
                sa.select(step.c[parent_attr.name]).where(
                    step.c[self.definition.primary_id] == tree.c.id
                )
            )
        found = column.in_(sa.select(tree.c.id).where(tree.c.id.is_not(None)))
        return sa.or_(found, column == start) if include_self else found

    def crm_under(self, p: Mapping[str, ast._Node]) -> Any:
        return self._hierarchy(p, down=True, include_self=False)

    def crm_underorequal(self, p: Mapping[str, ast._Node]) -> Any:
        return self._hierarchy(p, down=True, include_self=True)

    def crm_notunder(self, p: Mapping[str, ast._Node]) -> Any:
        return sa.not_(self._hierarchy(p, down=True, include_self=False))

    def crm_above(self, p: Mapping[str, ast._Node]) -> Any:
        return self._hierarchy(p, down=False, include_self=False)

    def crm_aboveorequal(self, p: Mapping[str, ast._Node]) -> Any:
        return self._hierarchy(p, down=False, include_self=True)

    # Date functions compare the ISO text the store keeps.
    def _since(self, p: Mapping[str, ast._Node], delta: Callable[[int], dt.timedelta]) -> Any:
        _attr, column = self._property(p)
        count = int(self._scalar(_INT, p))
        return sa.and_(
            column >= format_datetime(self.now - delta(count)), column <= format_datetime(self.now)
        )

    def _until(self, p: Mapping[str, ast._Node], delta: Callable[[int], dt.timedelta]) -> Any:
        _, column = self._property(p)
        count = int(self._scalar(_INT, p))
        return sa.and_(
            column >= format_datetime(self.now), column <= format_datetime(self.now + delta(count))
        )

    def _older(self, p: Mapping[str, ast._Node], delta: Callable[[int], dt.timedelta]) -> Any:
        _, column = self._property(p)
        count = int(self._scalar(_INT, p))
        return column < format_datetime(self.now - delta(count))

    def crm_lastxhours(self, p: Mapping[str, ast._Node]) -> Any:
        return self._since(p, lambda n: dt.timedelta(hours=n))

    def crm_lastxdays(self, p: Mapping[str, ast._Node]) -> Any:
        return self._since(p, lambda n: dt.timedelta(days=n))

    def crm_lastxweeks(self, p: Mapping[str, ast._Node]) -> Any:
        return self._since(p, lambda n: dt.timedelta(weeks=n))

    def crm_nextxhours(self, p: Mapping[str, ast._Node]) -> Any:
        return self._until(p, lambda n: dt.timedelta(hours=n))

    def crm_nextxdays(self, p: Mapping[str, ast._Node]) -> Any:
        return self._until(p, lambda n: dt.timedelta(days=n))

    def crm_olderthanxhours(self, p: Mapping[str, ast._Node]) -> Any:
        return self._older(p, lambda n: dt.timedelta(hours=n))

    def crm_olderthanxdays(self, p: Mapping[str, ast._Node]) -> Any:
        return self._older(p, lambda n: dt.timedelta(days=n))

    def crm_olderthanxweeks(self, p: Mapping[str, ast._Node]) -> Any:
        return self._older(p, lambda n: dt.timedelta(weeks=n))

    def crm_last7days(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        return sa.and_(
            column >= format_datetime(self.now - dt.timedelta(days=7)),
            column <= format_datetime(self.now),
        )

    def crm_next7days(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        return sa.and_(
            column >= format_datetime(self.now),
            column <= format_datetime(self.now + dt.timedelta(days=7)),
        )

    def _day_range(self, column: Any, first: dt.date, last: dt.date) -> Any:
        return sa.and_(
            column >= first.isoformat(), column < (last + dt.timedelta(days=1)).isoformat()
        )

    def _date_param(self, p: Mapping[str, ast._Node]) -> dt.date:
        raw = str(self._scalar(_TEXT, p))
        try:
            return dt.date.fromisoformat(raw[:10])
        except ValueError as exc:
            raise errors.bad_request(f"PropertyValue '{raw}' is not a date.", "0x0") from exc

    def crm_on(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        day = self._date_param(p)
        return self._day_range(column, day, day)

    def crm_noton(self, p: Mapping[str, ast._Node]) -> Any:
        return sa.not_(self.crm_on(p))

    def crm_onorafter(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        return column >= self._date_param(p).isoformat()

    def crm_onorbefore(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        return column < (self._date_param(p) + dt.timedelta(days=1)).isoformat()

    def crm_today(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        return self._day_range(column, self.now.date(), self.now.date())

    def crm_yesterday(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        day = self.now.date() - dt.timedelta(days=1)
        return self._day_range(column, day, day)

    def crm_tomorrow(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        day = self.now.date() + dt.timedelta(days=1)
        return self._day_range(column, day, day)

    def crm_thismonth(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        first = self.now.date().replace(day=1)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        return sa.and_(column >= first.isoformat(), column < nxt.isoformat())

    def crm_thisyear(self, p: Mapping[str, ast._Node]) -> Any:
        _, column = self._property(p)
        year = self.now.year
        return sa.and_(column >= f"{year}-01-01", column < f"{year + 1}-01-01")


_INT = Attribute(name="value", type="Integer")
_GUID = Attribute(name="value", type="Uniqueidentifier")
_TEXT = Attribute(name="value", type="Memo")
_OPS: dict[str, Callable[[Any, Any], Any]] = {"eq": operator.eq}


def to_sql(
    text: str,
    *,
    catalogue: Catalogue,
    table: Table,
    sql_tables: Mapping[str, sa.Table],
    aliases: Mapping[str, str],
    user_id: uuid.UUID,
) -> Any:
    """The WHERE clause for `$filter=text` on `table`."""
    tree = parse(text, aliases)
    visitor = FilterVisitor(catalogue, table, sql_tables, user_id=user_id)
    try:
        return visitor.visit(tree)
    except odata_errors.ODataException as exc:
        raise errors.bad_request(f"Invalid '$filter' expression '{text}': {exc}", "0x0") from exc
