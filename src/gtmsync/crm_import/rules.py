"""Import rules: exclude a Dynamics record when its conditions match.

Rules are evaluated on the fetched record (not pushed into `$filter`): change tracking does
not allow `$filter`, and an excluded record that was stored before must still be seen so it
can be removed. Values compare as text, case-insensitively, except `gt`/`lt` which compare
numbers when both sides are numbers. Choice and lookup columns match on their label or raw
value, so an admin may write either "Customer" or 3.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from gtmsync.crm_import.mapping import TableSchema, formatted_value, raw_value
from gtmsync.crm_import.schemas import Condition, ConditionGroup, ObjectRules, Operator
from gtmsync.kit.errors import UserError


def _number(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _texts(record: Any, attribute: str, schema: TableSchema) -> list[str]:
    raw = raw_value(record, attribute, schema)
    out = [] if raw is None else [str(raw).lower()]
    label = formatted_value(record, attribute, schema)
    if label is not None:
        out.append(label.lower())
    return out


def condition_matches(condition: Condition, record: Any, schema: TableSchema) -> bool:
    values = _texts(record, condition.attribute, schema)
    wanted = (condition.value or "").strip().lower()
    op = condition.operator
    if op == Operator.IS_EMPTY:
        return not values or all(v == "" for v in values)
    if op == Operator.IS_NOT_EMPTY:
        return any(v != "" for v in values)
    if op == Operator.EQ:
        return wanted in values
    if op == Operator.NE:
        return wanted not in values
    if op == Operator.CONTAINS:
        return any(wanted in v for v in values)
    if op == Operator.NOT_CONTAINS:
        return not any(wanted in v for v in values)
    if op == Operator.STARTS_WITH:
        return any(v.startswith(wanted) for v in values)
    if op == Operator.IN:
        options = {w.strip() for w in wanted.split(",") if w.strip()}
        return any(v in options for v in values)
    left = _number(raw_value(record, condition.attribute, schema))
    right = _number(wanted)
    if left is None or right is None:
        return False
    return left > right if op == Operator.GT else left < right


def _group_matches(group: ConditionGroup, record: Any, schema: TableSchema) -> bool:
    results = (condition_matches(c, record, schema) for c in group.conditions)
    return all(results) if group.match == "all" else any(results)


def excluded(rules: ObjectRules | None, record: Any, schema: TableSchema) -> bool:
    if rules is None or not rules.groups:
        return False
    groups = [g for g in rules.groups if g.conditions]
    if not groups:
        return False
    results = (_group_matches(g, record, schema) for g in groups)
    return all(results) if rules.match == "all" else any(results)


def rule_attributes(rules: ObjectRules | None) -> set[str]:
    if rules is None:
        return set()
    return {c.attribute for g in rules.groups for c in g.conditions}


def validate(
    rules: Iterable[ObjectRules], schemas: dict[str, TableSchema], tables: dict[str, str]
) -> None:
    """Every condition names a readable column of its source's table and has a value."""
    for rule in rules:
        table = tables.get(rule.source_key)
        if table is None:
            raise UserError(
                f"Import rule for unknown source {rule.source_key!r}.",
                field="source_key",
                fix="Pick one of the sources listed on the Import Mapping page.",
            )
        schema = schemas.get(table)
        for group in rule.groups:
            for condition in group.conditions:
                if schema is not None and not schema.readable(condition.attribute):
                    raise UserError(
                        f"Import rule column {condition.attribute!r} is not a readable column "
                        f"of {table}.",
                        field="attribute",
                        fix="Pick a column from the dropdown (only readable columns are offered).",
                    )
                if (
                    condition.operator not in (Operator.IS_EMPTY, Operator.IS_NOT_EMPTY)
                    and not (condition.value or "").strip()
                ):
                    raise UserError(
                        f"Import rule on {condition.attribute!r} needs a value.",
                        field="value",
                        fix="Type the value to compare with, or use 'is empty'.",
                    )
