"""Writes and single-record reads: create, retrieve, update, upsert, delete (spec §3).

Conditional headers (`If-Match`, `If-None-Match`), `@odata.bind` resolution (navigation
names are case-sensitive, as on Dataverse), alternate-key addressing, single-property
PUT/DELETE and single-valued `$ref`. Validation errors use Dataverse's codes and wording so
client error handling can be tested here.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from gtmsync.dataverse_local import dupdetect, errors
from gtmsync.dataverse_local.context import Call, Reply
from gtmsync.dataverse_local.principal import Access
from gtmsync.dataverse_local.query import (
    entity,
    json_value,
    parse_options,
    single_lookup_row,
    split_top,
)
from gtmsync.dataverse_local.schema import Attribute, CollectionNavigation, Table
from gtmsync.dataverse_local.store import TYPE_SUFFIX, format_datetime, utc_now

_GUID = re.compile(
    r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$"
)
ENTITY_REF = re.compile(r"^(?P<set>[A-Za-z_][A-Za-z0-9_]*)\((?P<key>.*)\)$")

Key = uuid.UUID | dict[str, Any]


def parse_key_literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("''", "'")
    if _GUID.match(text):
        return uuid.UUID(text.strip("{}"))
    if text in {"true", "false"}:
        return text == "true"
    if text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def parse_key(table: Table, text: str) -> Key:
    """`<guid>`, `accountid=<guid>`, `accountnumber='X'`, `a='x',b=2` → id or key values."""
    text = urllib.parse.unquote(text)
    parts = split_top(text)
    if len(parts) == 1 and "=" not in parts[0]:
        value = parse_key_literal(parts[0])
        if not isinstance(value, uuid.UUID):
            raise errors.invalid_key(table.name)
        return value
    values: dict[str, Any] = {}
    for part in parts:
        name, sep, raw = part.partition("=")
        if not sep:
            raise errors.invalid_key(table.name)
        values[name.strip()] = parse_key_literal(raw)
    primary = values.get(table.primary_id)
    if set(values) == {table.primary_id} and isinstance(primary, uuid.UUID):
        return primary
    return values


def key_columns(table: Table, key: dict[str, Any]) -> dict[str, Any]:
    """Validate named key properties against the table's alternate keys; → column values."""
    names = {n[1:-6] if n.startswith("_") and n.endswith("_value") else n for n in key}
    if not any(set(k.attributes) == names for k in table.keys):
        raise errors.invalid_key(table.name)
    out: dict[str, Any] = {}
    for name, value in key.items():
        column = name[1:-6] if name.startswith("_") and name.endswith("_value") else name
        attr = table.attributes[column]
        out[column] = to_column(table, attr, value)
    return out


def find(call: Call, table: Table, key: Key) -> Mapping[Any, Any] | None:
    sql = call.store.tables[table.name]
    if isinstance(key, uuid.UUID):
        return single_lookup_row(call, table, key)
    clauses: list[Any] = []
    for column, value in key_columns(table, key).items():
        attr = table.attributes[column]
        col = sql.c[column]
        if value is None:
            clauses.append(col.is_(None))
        elif attr.is_string:
            clauses.append(sa.func.lower(col) == str(value).lower())
        else:
            clauses.append(col == value)
    return call.conn.execute(sa.select(sql).where(*clauses)).mappings().first()


def key_url(call: Call, table: Table, key: Key, row: Mapping[Any, Any] | None = None) -> str:
    if isinstance(key, uuid.UUID) or (row is None and not isinstance(key, dict)):
        return f"{call.service_root}/{table.entity_set}({key})"
    parts = []
    for name, value in key.items():
        literal = (
            f"'{value.replace(chr(39), chr(39) * 2)}'" if isinstance(value, str) else str(value)
        )
        parts.append(f"{name}={literal}")
    return f"{call.service_root}/{table.entity_set}({','.join(parts)})"


def entity_url(call: Call, table: Table, record_id: Any) -> str:
    return f"{call.service_root}/{table.entity_set}({record_id})"


# ---- payload → column values ----------------------------------------------------------------


def to_column(table: Table, attr: Attribute, value: Any) -> Any:
    """A JSON value as the store keeps it, validated against the column's type and limits."""
    if value is None:
        if attr.required == "SystemRequired" and attr.name != table.primary_id:
            raise errors.validation(
                f"Attribute '{attr.name}' of entity '{table.name}' is SystemRequired and "
                "cannot be set to null."
            )
        return None
    t = attr.type

    def wrong(expected: str) -> errors.DataverseLocalError:
        return errors.DataverseLocalError(
            400,
            "0x80048d19",
            f"Error identified in Payload provided by the user for Entity :'{table.name}', "
            f"----> InnerException : Microsoft.OData.ODataException: Cannot convert the literal "
            f"'{value}' to the expected type '{expected}' for property '{attr.name}'.",
        )

    if attr.is_string:
        if not isinstance(value, str):
            raise wrong("Edm.String")
        if attr.max_length is not None and len(value) > attr.max_length:
            raise errors.max_length_exceeded(table.name, attr.name, attr.max_length)
        return value
    if t in {"Integer", "BigInt", "Picklist", "State", "Status"}:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("Edm.Int32")
        if (
            t in {"Picklist", "State", "Status"}
            and attr.options
            and attr.option_label(value) is None
        ):
            raise errors.validation(
                f"The value {value} of '{attr.name}' on record of type '{table.name}' is "
                "outside the valid range."
            )
        _range(table, attr, value)
        return value
    if t in {"Money", "Decimal", "Double"}:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise wrong("Edm.Decimal")
        try:
            number = Decimal(str(value))
        except InvalidOperation as exc:
            raise wrong("Edm.Decimal") from exc
        _range(table, attr, number)
        return float(number) if t == "Double" else number
    if t == "Boolean":
        if not isinstance(value, bool):
            raise wrong("Edm.Boolean")
        return value
    if t == "DateTime":
        if not isinstance(value, str):
            raise wrong("Edm.DateTimeOffset")
        try:
            if attr.date_only:
                return dt.date.fromisoformat(value[:10]).isoformat()
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return format_datetime(parsed)
        except ValueError as exc:
            raise wrong("Edm.DateTimeOffset") from exc
    if t == "Uniqueidentifier" or attr.is_lookup:
        try:
            return str(uuid.UUID(str(value)))
        except ValueError as exc:
            raise wrong("Edm.Guid") from exc
    if t == "MultiSelectPicklist":
        # Written as "1, 9" and read back as "1,9" (spec §2.1).
        if not isinstance(value, str):
            raise wrong("Edm.String")
        try:
            chosen = [int(v) for v in value.split(",") if v.strip()]
        except ValueError as exc:
            raise wrong("Edm.String") from exc
        for choice in chosen:
            if attr.options and attr.option_label(choice) is None:
                raise errors.validation(
                    f"The value {choice} of '{attr.name}' on record of type '{table.name}' is "
                    "outside the valid range."
                )
        return ",".join(str(v) for v in chosen) or None
    return value


def _range(table: Table, attr: Attribute, value: Any) -> None:
    low, high = attr.min_value, attr.max_value
    if (low is not None and value < low) or (high is not None and value > high):
        raise errors.validation(
            f"The value {value} of '{attr.name}' on record of type '{table.name}' is outside the "
            f"valid range. Accepted Values: {low} to {high}"
        )


def resolve_reference(call: Call, ref: str) -> tuple[Table, str]:
    """`/contacts(<id>)`, `contacts(<id>)`, the full URL or an alternate-key form → (table, id)."""
    path = urllib.parse.urlsplit(ref).path if "://" in ref else ref
    marker = "/api/data/"
    if marker in path:
        path = path.split(marker, 1)[1].split("/", 1)[1]
    path = path.lstrip("/")
    match = ENTITY_REF.match(path)
    table = call.store.catalogue.by_set(match.group("set")) if match else None
    if match is None or table is None:
        raise errors.bad_request(f"The entity reference '{ref}' is not valid.", "0x80048d19")
    key = parse_key(table, match.group("key"))
    row = find(call, table, key)
    if row is None:
        if isinstance(key, uuid.UUID):
            raise errors.not_found(table.name, key)
        raise errors.DataverseLocalError(
            404,
            "0x80040217",
            f"A record with the specified key values does not exist in {table.name} entity",
        )
    return table, str(row[table.primary_id])


def payload_to_columns(
    call: Call, table: Table, body: Mapping[Any, Any], *, creating: bool
) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise errors.bad_request("The request body must be a JSON object.", "0x80048d19")
    navs = table.navigation_properties()
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name.startswith("@odata.") or name.startswith("@"):
            continue
        if "@" in name:
            prop, _, annotation = name.partition("@")
            if annotation != "odata.bind":
                continue
            nav = navs.get(prop)
            if nav is None:
                if prop in call.store.catalogue.collection_navigations(table.name):
                    continue  # collection binds (Account_Tasks@odata.bind) handled after insert
                raise errors.undeclared_annotation_property(prop)
            lookup = table.attributes[nav.attribute]
            _check_writable(call, table, lookup)
            if value is None:
                out[lookup.name] = None
                if len(lookup.targets) > 1:
                    out[lookup.name + TYPE_SUFFIX] = None
                continue
            target, target_id = resolve_reference(call, str(value))
            # `ownerid` is one navigation property over principals (users and teams).
            allowed = lookup.targets if lookup.type == "Owner" else (nav.target,)
            if target.name not in allowed:
                raise errors.bad_request(
                    f"The navigation property '{prop}' expects '{nav.target}', not "
                    f"'{target.name}'.",
                    "0x80048d19",
                )
            call.require(table, Access.APPEND)
            call.require(target, Access.APPEND_TO)
            out[lookup.name] = target_id
            if len(lookup.targets) > 1:
                out[lookup.name + TYPE_SUFFIX] = target.name
            continue
        if isinstance(value, dict) and name in navs:
            if not creating:
                raise errors.DataverseLocalError(
                    501, "0x80060888", "Deep update is not supported; update the related row."
                )
            nav = navs[name]
            lookup = table.attributes[nav.attribute]
            target = call.store.catalogue.tables[nav.target]
            call.require(table, Access.APPEND)
            call.require(target, Access.APPEND_TO)
            nested = create_from_payload(call, target, value)
            out[lookup.name] = nested[target.primary_id]
            if len(lookup.targets) > 1:
                out[lookup.name + TYPE_SUFFIX] = target.name
            continue
        if isinstance(value, list) and name in call.store.catalogue.collection_navigations(
            table.name
        ):
            if not creating:
                raise errors.DataverseLocalError(
                    501, "0x80060888", "Deep update is not supported; create the related rows."
                )
            continue  # created after the parent row, see create_from_payload
        attr = table.attributes.get(name)
        if attr is None:
            raise errors.invalid_payload_property(table.name, name)
        if attr.is_lookup:
            if value is not None:
                raise errors.invalid_payload_property(table.name, name)
            _check_writable(call, table, attr)
            out[attr.name] = None
            if len(attr.targets) > 1:
                out[attr.name + TYPE_SUFFIX] = None
            continue
        if not attr.valid_for_create and not attr.valid_for_update:
            continue  # read-only columns in a payload are ignored, as Dataverse does
        if attr.name == table.primary_id and not creating:
            continue
        _check_writable(call, table, attr)
        out[attr.name] = to_column(table, attr, value)
    return out


def _check_writable(call: Call, table: Table, attr: Attribute) -> None:
    if attr.secured and not call.principal.can_read_attribute(table.name, attr.name):
        raise errors.secured_attribute(table.name, attr.name)


# ---- operations -----------------------------------------------------------------------------


def _integrity(table: Table, exc: sa.exc.IntegrityError) -> errors.DataverseLocalError:
    text = str(exc.orig).lower()
    for key in table.keys:
        if key.name.lower() in text or all(a in text for a in key.attributes):
            return errors.duplicate_key(key.name, list(key.attributes))
    return errors.duplicate_record()


def insert_row(call: Call, table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """Create a row from validated column values; returns the stored row."""
    call.require(table, Access.CREATE)
    principal = call.principal
    version = call.store.next_versions(call.conn)
    row = call.store.defaults(
        table,
        values,
        as_user=principal.user_id,
        on_behalf_of=principal.caller_id if principal.is_impersonating else None,
        version=version,
        now=format_datetime(utc_now()),
    )
    dupdetect.check(call, table, row, None)
    sql = call.store.tables[table.name]
    if (
        row.get(table.primary_id)
        and single_lookup_row(call, table, row[table.primary_id]) is not None
    ):
        raise errors.duplicate_record()
    try:
        with call.conn.begin_nested():
            call.conn.execute(sql.insert().values({c.name: row.get(c.name) for c in sql.c}))
    except sa.exc.IntegrityError as exc:
        raise _integrity(table, exc) from exc
    return row


def update_row(
    call: Call, table: Table, existing: Mapping[Any, Any], values: dict[str, Any]
) -> dict[str, Any]:
    call.require(table, Access.WRITE)
    principal = call.principal
    changes = dict(values)
    changes.pop(table.primary_id, None)
    call.store.compute(table, changes, existing)
    if "ownerid" in changes:
        owner_type = changes.get("ownerid" + TYPE_SUFFIX) or "systemuser"
        changes["ownerid" + TYPE_SUFFIX] = owner_type
        changes["owninguser"] = changes["ownerid"] if owner_type == "systemuser" else None
        changes["owningteam"] = changes["ownerid"] if owner_type == "team" else None
    changes.update(
        modifiedon=format_datetime(utc_now()),
        modifiedby=str(principal.user_id),
        modifiedonbehalfby=str(principal.caller_id) if principal.is_impersonating else None,
        versionnumber=call.store.next_versions(call.conn),
    )
    dupdetect.check(call, table, {**existing, **changes}, existing[table.primary_id])
    sql = call.store.tables[table.name]
    try:
        with call.conn.begin_nested():
            call.conn.execute(
                sql.update()
                .where(sql.c[table.primary_id] == existing[table.primary_id])
                .values(changes)
            )
    except sa.exc.IntegrityError as exc:
        raise _integrity(table, exc) from exc
    return {**existing, **changes}


def delete_row(call: Call, table: Table, existing: Mapping[Any, Any]) -> None:
    call.require(table, Access.DELETE)
    sql = call.store.tables[table.name]
    record_id = existing[table.primary_id]
    call.conn.execute(sql.delete().where(sql.c[table.primary_id] == record_id))
    call.conn.execute(
        call.store.tombstones.insert().values(
            version=call.store.next_versions(call.conn),
            table_name=table.name,
            record_id=record_id,
            deleted_on=format_datetime(utc_now()),
        )
    )


def _etag_matches(header: str, row: Mapping[Any, Any]) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or f'W/"{row["versionnumber"]}"' in tags


def _representation(call: Call) -> bool:
    return call.prefer.get("return") == "representation"


def _rep_reply(call: Call, table: Table, row: Mapping[Any, Any], status: int) -> Reply:
    # `$expand` shapes a create's representation but is ignored on PATCH (spec §3.1, §3.3).
    allowed = {"$select", "$expand"} if call.method == "POST" else {"$select"}
    opts = parse_options({k: v for k, v in call.query.items() if k in allowed})
    reply = entity(call, table, row, opts, status)
    reply.headers.append(("Preference-Applied", "return=representation"))
    return reply


def create_from_payload(
    call: Call, table: Table, body: Mapping[Any, Any], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Create a row from a JSON body, with deep insert of related rows (spec §3.1)."""
    values = payload_to_columns(call, table, body, creating=True)
    values.update(extra or {})
    row = insert_row(call, table, values)
    _bind_collections(call, table, body, row[table.primary_id])
    collections = call.store.catalogue.collection_navigations(table.name)
    for name, value in body.items():
        if not isinstance(value, list) or name not in collections:
            continue
        coll = collections[name]
        child = call.store.catalogue.tables[coll.table]
        link: dict[str, Any] = {coll.attribute: row[table.primary_id]}
        if len(child.attributes[coll.attribute].targets) > 1:
            link[coll.attribute + TYPE_SUFFIX] = table.name
        for item in value:
            if not isinstance(item, Mapping):
                raise errors.bad_request(f"'{name}' must be an array of objects.", "0x80048d19")
            create_from_payload(call, child, item, link)
    return row


def create(call: Call, table: Table) -> Reply:
    row = create_from_payload(call, table, call.json_body())
    if _representation(call):
        return _rep_reply(call, table, row, 201)
    url = entity_url(call, table, row[table.primary_id])
    return Reply.empty(
        204, {"OData-EntityId": url, "Location": url} if call.in_batch else {"OData-EntityId": url}
    )


def _bind_collections(call: Call, table: Table, body: Mapping[Any, Any], record_id: str) -> None:
    """`Account_Tasks@odata.bind: ["/tasks(<id>)"]` on create: point the children at the new row."""
    collections = call.store.catalogue.collection_navigations(table.name)
    for name, value in body.items():
        prop, _, annotation = name.partition("@")
        if annotation != "odata.bind" or prop not in collections:
            continue
        coll = collections[prop]
        child = call.store.catalogue.tables[coll.table]
        for ref in value or []:
            child_table, child_id = resolve_reference(call, str(ref))
            existing = single_lookup_row(call, child_table, child_id)
            assert existing is not None
            changes: dict[str, Any] = {coll.attribute: record_id}
            if len(child.attributes[coll.attribute].targets) > 1:
                changes[coll.attribute + TYPE_SUFFIX] = table.name
            update_row(call, child_table, existing, changes)


def retrieve(call: Call, table: Table, key: Key) -> Reply:
    call.require(table, Access.READ)
    row = find(call, table, key)
    if row is None:
        raise missing(table, key)
    opts = parse_options(call.query)
    if_none_match = call.headers.get("If-None-Match")
    if (
        if_none_match
        and if_none_match != "null"
        and not opts.expand
        and not call.annotations
        and _etag_matches(if_none_match, row)
    ):
        return Reply(304, [("OData-Version", "4.0"), ("ETag", f'W/"{row["versionnumber"]}"')])
    return entity(call, table, row, opts)


def missing(table: Table, key: Key) -> errors.DataverseLocalError:
    """Dataverse's not-found error for an id, or for alternate-key values."""
    if isinstance(key, uuid.UUID):
        return errors.not_found(table.name, key)
    return errors.DataverseLocalError(
        404,
        "0x80040217",
        f"A record with the specified key values does not exist in {table.name} entity",
    )


def patch(call: Call, table: Table, key: Key) -> Reply:
    """PATCH = update, or upsert unless `If-Match` forbids creating (spec §3.3-3.5)."""
    body = call.json_body()
    existing = find(call, table, key)
    if_match = call.headers.get("If-Match")
    if_none_match = call.headers.get("If-None-Match")
    if if_none_match == "*" and existing is not None:
        raise errors.record_exists()
    if if_match is not None:
        if existing is None:
            raise missing(table, key)
        if not _etag_matches(if_match, existing):
            raise errors.concurrency_mismatch()
    if existing is None:
        values = payload_to_columns(call, table, body, creating=True)
        if isinstance(key, uuid.UUID):
            values.setdefault(table.primary_id, str(key))
        else:
            for column, value in key_columns(table, key).items():
                values.setdefault(column, value)
        row = insert_row(call, table, values)
        if _representation(call):
            return _rep_reply(call, table, row, 201)
        return Reply.empty(204, {"OData-EntityId": _write_url(call, table, key, row)})
    values = payload_to_columns(call, table, body, creating=False)
    if isinstance(key, dict):
        for column in key_columns(table, key):
            values.pop(column, None)
    row = update_row(call, table, existing, values)
    if _representation(call):
        return _rep_reply(call, table, row, 200)
    return Reply.empty(204, {"OData-EntityId": _write_url(call, table, key, row)})


def _write_url(call: Call, table: Table, key: Key, row: Mapping[Any, Any]) -> str:
    if isinstance(key, dict):
        return key_url(call, table, key, row)
    return entity_url(call, table, row[table.primary_id])


def delete(call: Call, table: Table, key: Key) -> Reply:
    existing = find(call, table, key)
    if existing is None:
        raise missing(table, key)
    if_match = call.headers.get("If-Match")
    if if_match is not None and not _etag_matches(if_match, existing):
        raise errors.concurrency_mismatch()
    delete_row(call, table, existing)
    return Reply.empty(204)


# ---- properties and references --------------------------------------------------------------


def get_property(call: Call, table: Table, key: Key, prop: str) -> Reply:
    call.require(table, Access.READ)
    row = find(call, table, key)
    if row is None:
        raise missing(table, key)
    name = prop[1:-6] if prop.startswith("_") and prop.endswith("_value") else prop
    attr = table.attributes.get(name)
    if attr is None:
        raise errors.unknown_property(table.name, prop)
    value = row[attr.name] if call.principal.can_read_attribute(table.name, attr.name) else None
    body = {
        "@odata.context": call.metadata_url(f"{table.entity_set}({row[table.primary_id]})/{prop}"),
        "value": json_value(attr, value),
    }
    return Reply.json(200, body)


def put_property(call: Call, table: Table, key: Key, prop: str) -> Reply:
    body = call.json_body()
    existing = find(call, table, key)
    if existing is None:
        raise missing(table, key)
    if not isinstance(body, Mapping) or "value" not in body:
        raise errors.bad_request('A single-property PUT needs a body {"value": …}.', "0x80048d19")
    values = payload_to_columns(call, table, {prop: body["value"]}, creating=False)
    update_row(call, table, existing, values)
    return Reply.empty(204)


def delete_property(call: Call, table: Table, key: Key, prop: str) -> Reply:
    existing = find(call, table, key)
    if existing is None:
        raise missing(table, key)
    attr = table.attributes.get(prop)
    if attr is None or attr.is_lookup:
        raise errors.unknown_property(table.name, prop)
    update_row(call, table, existing, payload_to_columns(call, table, {prop: None}, creating=False))
    return Reply.empty(204)


def set_reference(call: Call, table: Table, key: Key, nav_name: str, ref: str | None) -> Reply:
    """PUT/DELETE `<set>(<id>)/<single-valued nav>/$ref`."""
    existing = find(call, table, key)
    if existing is None:
        raise missing(table, key)
    body: dict[str, Any] = {f"{nav_name}@odata.bind": ref}
    update_row(call, table, existing, payload_to_columns(call, table, body, creating=False))
    return Reply.empty(204)


def add_to_collection(call: Call, table: Table, key: Key, nav_name: str, ref: str) -> Reply:
    """POST `<set>(<id>)/<collection nav>/$ref`: point the referenced child at this row."""
    existing = find(call, table, key)
    if existing is None:
        raise missing(table, key)
    _bind_collections(call, table, {f"{nav_name}@odata.bind": [ref]}, existing[table.primary_id])
    return Reply.empty(204)


def replace_activity_parties(
    call: Call, table: Table, key: Key, coll: CollectionNavigation
) -> Reply:
    """`PUT <activity>(<id>)/<activity>_activity_parties` with `{"value": [...]}`: replace all
    parties of the activity (a PUT special to activity parties, spec §1.5)."""
    existing = find(call, table, key)
    if existing is None:
        raise missing(table, key)
    body = call.json_body()
    parties = body.get("value") if isinstance(body, Mapping) else None
    if not isinstance(parties, list):
        raise errors.bad_request('The body must be {"value": [<activity party>, …]}.', "0x80048d19")
    party_table = call.store.catalogue.tables[coll.table]
    sql = call.store.tables[party_table.name]
    activity_id = existing[table.primary_id]
    for old in list(
        call.conn.execute(sa.select(sql).where(sql.c[coll.attribute] == activity_id)).mappings()
    ):
        delete_row(call, party_table, old)
    link = {coll.attribute: activity_id, coll.attribute + TYPE_SUFFIX: table.name}
    for party in parties:
        if not isinstance(party, Mapping):
            raise errors.bad_request("Each activity party must be an object.", "0x80048d19")
        create_from_payload(call, party_table, party, link)
    return Reply.empty(204)


def remove_from_collection(call: Call, table: Table, key: Key, nav_name: str, ref: str) -> Reply:
    existing = find(call, table, key)
    if existing is None:
        raise missing(table, key)
    coll = call.store.catalogue.collection_navigations(table.name)[nav_name]
    child_table, child_id = resolve_reference(call, ref)
    child = single_lookup_row(call, child_table, child_id)
    assert child is not None
    if child[coll.attribute] != existing[table.primary_id]:
        raise errors.bad_request(
            "The referenced record is not associated with this record.", "0x80060888"
        )
    changes: dict[str, Any] = {coll.attribute: None}
    if coll.attribute + TYPE_SUFFIX in child:
        changes[coll.attribute + TYPE_SUFFIX] = None
    update_row(call, child_table, child, changes)
    return Reply.empty(204)
