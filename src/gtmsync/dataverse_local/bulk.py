"""`CreateMultiple`, `UpdateMultiple`, `UpsertMultiple` bound to an entity set (spec §5).

On standard tables any failing item rolls back the whole request, so every item runs in
the request's one transaction and the first error propagates.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from gtmsync.dataverse_local import errors, records
from gtmsync.dataverse_local.context import Call, Reply
from gtmsync.dataverse_local.schema import Table

ACTIONS = frozenset({"CreateMultiple", "UpdateMultiple", "UpsertMultiple"})


def _targets(call: Call, table: Table) -> list[Mapping[Any, Any]]:
    body = call.json_body()
    targets = body.get("Targets") if isinstance(body, Mapping) else None
    if not isinstance(targets, list) or not targets:
        raise errors.bad_request("The request needs a non-empty 'Targets' array.", "0x80048d19")
    expected = f"Microsoft.Dynamics.CRM.{table.name}"
    for item in targets:
        if not isinstance(item, Mapping) or item.get("@odata.type") != expected:
            raise errors.bad_request(
                f'Every item in Targets must carry "@odata.type": "{expected}".', "0x80048d19"
            )
    return targets


def execute(call: Call, table: Table, action: str) -> Reply:
    if action not in ACTIONS:
        raise errors.DataverseLocalError(
            501,
            "0x80060888",
            f"The action 'Microsoft.Dynamics.CRM.{action}' is not supported by the local server.",
        )
    targets = _targets(call, table)
    if action == "CreateMultiple":
        ids = []
        for item in targets:
            values = records.payload_to_columns(call, table, item, creating=True)
            ids.append(records.insert_row(call, table, values)[table.primary_id])
        return Reply.json(
            200,
            {
                "@odata.context": call.metadata_url(
                    "Microsoft.Dynamics.CRM.CreateMultipleResponse"
                ),
                "Ids": ids,
            },
        )
    if action == "UpdateMultiple":
        for item in targets:
            raw_id = item.get(table.primary_id)
            try:
                record_id = uuid.UUID(str(raw_id))
            except ValueError as exc:
                raise errors.bad_request(
                    f"Every item in Targets must carry its primary key '{table.primary_id}'.",
                    "0x80048d19",
                ) from exc
            existing = records.find(call, table, record_id)
            if existing is None:
                raise errors.not_found(table.name, record_id)
            values = records.payload_to_columns(call, table, item, creating=False)
            records.update_row(call, table, existing, values)
        return Reply.empty(204)
    for item in targets:
        key: records.Key
        ref = item.get("@odata.id")
        if ref:
            match = records.ENTITY_REF.match(str(ref).rsplit("/", 1)[-1])
            if match is None or match.group("set") != table.entity_set:
                raise errors.bad_request(
                    f"The @odata.id '{ref}' does not address {table.entity_set}.", "0x80048d19"
                )
            key = records.parse_key(table, match.group("key"))
        elif item.get(table.primary_id):
            key = uuid.UUID(str(item[table.primary_id]))
        else:
            raise errors.bad_request(
                "Every item in Targets needs @odata.id or its primary key.", "0x80048d19"
            )
        existing = records.find(call, table, key)
        if existing is None:
            values = records.payload_to_columns(call, table, item, creating=True)
            if isinstance(key, uuid.UUID):
                values.setdefault(table.primary_id, str(key))
            else:
                for column, value in records.key_columns(table, key).items():
                    values.setdefault(column, value)
            records.insert_row(call, table, values)
        else:
            values = records.payload_to_columns(call, table, item, creating=False)
            values.pop(table.primary_id, None)
            records.update_row(call, table, existing, values)
    return Reply.empty(204)


_CONDITIONS: dict[str, Callable[[Any, list[Any]], Any]] = {
    "Equal": lambda col, values: col == values[0],
    "NotEqual": lambda col, values: col != values[0],
    "In": lambda col, values: col.in_(values),
    "NotIn": lambda col, values: col.not_in(values),
    "Null": lambda col, _values: col.is_(None),
    "NotNull": lambda col, _values: col.is_not(None),
}


def bulk_delete(call: Call) -> Reply:
    """The `BulkDelete` action with `QueryExpression` criteria, run at once.

    On Dataverse it starts an asynchronous system job; here the job completes before the
    response, so the returned `JobId` names work that is already done.
    """
    body = call.json_body()
    query_set = body.get("QuerySet") if isinstance(body, Mapping) else None
    if not isinstance(query_set, list) or not query_set:
        raise errors.bad_request("BulkDelete needs a non-empty QuerySet.", "0x80040203")
    for query in query_set:
        table = call.store.catalogue.get(str(query.get("EntityName", "")))
        if table is None:
            raise errors.bad_request(
                f"The entity with a name = '{query.get('EntityName')}' was not found.",
                "0x80040217",
            )
        sql = call.store.tables[table.name]
        clauses = []
        criteria = query.get("Criteria") or {}
        for condition in criteria.get("Conditions") or []:
            attr = table.attributes.get(str(condition.get("AttributeName")))
            operator = _CONDITIONS.get(str(condition.get("Operator")))
            if attr is None or operator is None:
                raise errors.bad_request(
                    f"Unsupported condition {condition.get('AttributeName')!r} "
                    f"{condition.get('Operator')!r}: use one of {', '.join(_CONDITIONS)}.",
                    "0x80040203",
                )
            raw = [
                v.get("Value") if isinstance(v, Mapping) else v
                for v in condition.get("Values") or []
            ]
            values = [records.to_column(table, attr, v) for v in raw]
            clauses.append(operator(sql.c[attr.name], values))
        if not clauses:
            raise errors.bad_request("BulkDelete needs at least one condition.", "0x80040203")
        combined = sa.or_(*clauses) if criteria.get("FilterOperator") == "Or" else sa.and_(*clauses)
        for row in list(call.conn.execute(sa.select(sql).where(combined)).mappings()):
            records.delete_row(call, table, row)
    job_id = uuid.uuid4()
    return Reply.json(
        200,
        {
            "@odata.context": call.metadata_url("Microsoft.Dynamics.CRM.BulkDeleteResponse"),
            "JobId": job_id,
        },
    )
