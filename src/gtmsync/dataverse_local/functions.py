"""Unbound functions: `WhoAmI` and `RetrieveTotalRecordCount` (spec §7, §2.5)."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from gtmsync.dataverse_local import errors
from gtmsync.dataverse_local.context import Call, Reply
from gtmsync.dataverse_local.principal import Access

UNBOUND = frozenset({"WhoAmI", "RetrieveTotalRecordCount"})


def call_unbound(call: Call, name: str, args: str | None) -> Reply:
    if call.method != "GET":
        raise errors.DataverseLocalError(405, "0x80060888", f"{name} is a function: use GET.")
    if name == "WhoAmI":
        return who_am_i(call)
    return retrieve_total_record_count(call, args or "")


def business_unit_of(call: Call, user_id: uuid.UUID) -> uuid.UUID:
    sql = call.store.tables["systemuser"]
    value = call.conn.execute(
        sa.select(sql.c.businessunitid).where(sql.c.systemuserid == str(user_id))
    ).scalar_one_or_none()
    if value:
        return uuid.UUID(value)
    bu = call.store.tables["businessunit"]
    root = call.conn.execute(
        sa.select(bu.c.businessunitid).where(bu.c.parentbusinessunitid.is_(None)).limit(1)
    ).scalar_one_or_none()
    return uuid.UUID(root) if root else uuid.uuid5(call.store.organization_id, "businessunit")


def who_am_i(call: Call) -> Reply:
    user = call.principal.user_id
    return Reply.json(
        200,
        {
            "@odata.context": call.metadata_url("Microsoft.Dynamics.CRM.WhoAmIResponse"),
            "BusinessUnitId": str(business_unit_of(call, user)),
            "UserId": str(user),
            "OrganizationId": str(call.store.organization_id),
        },
    )


def _names(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = json.loads(text.replace("'", '"'))
        return [str(v) for v in value]
    return [text.strip("'")]


def retrieve_total_record_count(call: Call, args: str) -> Reply:
    name, _, value = args.partition("=")
    if name.strip() != "EntityNames" or not value:
        raise errors.bad_request(
            "RetrieveTotalRecordCount needs EntityNames, e.g. "
            "RetrieveTotalRecordCount(EntityNames=['account']).",
            "0x80040203",
        )
    value = value.strip()
    if value.startswith("@"):
        alias = call.query.get(value)
        if alias is None:
            raise errors.bad_request(f"The parameter alias '{value}' has no value.", "0x80040203")
        value = alias
    names = _names(value)
    counts = []
    for table_name in names:
        table = call.store.catalogue.get(table_name)
        if table is None:
            raise errors.bad_request(
                f"The entity with a name = '{table_name}' was not found in the MetadataCache.",
                "0x80040217",
            )
        call.require(table, Access.READ)
        sql = call.store.tables[table.name]
        counts.append(
            int(call.conn.execute(sa.select(sa.func.count()).select_from(sql)).scalar_one())
        )
    return Reply.json(
        200,
        {
            "@odata.context": call.metadata_url(
                "Microsoft.Dynamics.CRM.RetrieveTotalRecordCountResponse"
            ),
            "EntityRecordCountCollection": {
                "Count": len(names),
                "IsReadOnly": False,
                "Keys": names,
                "Values": counts,
            },
        },
    )
