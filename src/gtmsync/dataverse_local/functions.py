"""Unbound functions `WhoAmI` and `RetrieveTotalRecordCount` (spec §7, §2.5), and the bound
function `systemusers(<id>)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()`."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa

from gtmsync.dataverse_local import errors
from gtmsync.dataverse_local.context import Call, Reply
from gtmsync.dataverse_local.principal import Access, Principal
from gtmsync.dataverse_local.security import BUILT_IN_ROLES, Role, roles_table, user_roles_table

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


# Activity tables share one set of privileges in Dataverse (`prvReadActivity`, ...); the
# local server grants them per table, so the shared privilege is held when all are.
_ACTIVITY_TABLES = ("task", "appointment", "phonecall")
# Privilege names that are not `prv<Access><SchemaName>` in Dataverse.
_PRIVILEGE_ENTITY = {"systemuser": "User"}
_PRIVILEGE_NS = uuid.UUID("0b6f3f7e-2f7a-4a55-9d7c-6a1f0c9e4b21")


def _roles_privileges(call: Call, user_id: uuid.UUID) -> frozenset[tuple[str, Access]]:
    """Another user's privileges: the union of their roles' (read from the security tables)."""
    names = call.conn.execute(
        sa.select(user_roles_table.c.role).where(user_roles_table.c.systemuserid == str(user_id))
    ).scalars()
    privileges: set[tuple[str, Access]] = set()
    for name in names:
        role = BUILT_IN_ROLES.get(name)
        if role is None:
            text = call.conn.execute(
                sa.select(roles_table.c.definition).where(roles_table.c.name == name)
            ).scalar_one_or_none()
            if text is None:
                continue
            role = Role.from_json(name, text)
        privileges |= role.privileges
    return frozenset(privileges)


def retrieve_user_privileges(call: Call, user_id: uuid.UUID) -> Reply:
    """`RetrieveUserPrivileges`: the user's privileges as `RolePrivilege` entries.

    Depth is always `Global`: the local server models every privilege at organization depth.
    """
    if user_id == call.principal.user_id:
        privileges = call.principal.privileges
    else:
        privileges = _roles_privileges(call, user_id)
    holder = Principal(user_id=user_id, caller_id=user_id, tenant_id="local", privileges=privileges)
    business_unit = str(business_unit_of(call, user_id))
    names: list[str] = []
    catalogue = call.store.catalogue
    present = [t for t in _ACTIVITY_TABLES if catalogue.get(t) is not None]
    for access in Access:
        if present and all(holder.can(t, access) for t in present):
            names.append(f"prv{access.value}Activity")
        for table in catalogue.tables.values():
            if table.is_activity or not holder.can(table.name, access):
                continue
            entity = _PRIVILEGE_ENTITY.get(table.name, table.schema_name)
            names.append(f"prv{access.value}{entity}")
    return Reply.json(
        200,
        {
            "@odata.context": call.metadata_url(
                "Microsoft.Dynamics.CRM.RetrieveUserPrivilegesResponse"
            ),
            "RolePrivileges": [
                {
                    "Depth": "Global",
                    "PrivilegeId": str(uuid.uuid5(_PRIVILEGE_NS, name)),
                    "BusinessUnitId": business_unit,
                    "PrivilegeName": name,
                }
                for name in sorted(set(names))
            ],
        },
    )
