"""Metadata: `EntityDefinitions`, attributes, option sets, alternate keys, `$metadata` (spec §7).

Served from the store's catalogue, so custom tables and columns created here appear in the
same answers as the standard ones. Covers the queries Microsoft's Python SDK sends (its
exact URLs are in the tests) and creating custom tables, columns and alternate keys.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from odata_query import ast

from gtmsync.dataverse_local import errors, odata_filter
from gtmsync.dataverse_local.context import Call, Reply
from gtmsync.dataverse_local.query import parse_options, split_top
from gtmsync.dataverse_local.schema import (
    AlternateKey,
    Attribute,
    Option,
    Table,
    build_table,
    metadata_id,
)

NS = "Microsoft.Dynamics.CRM"
_ENUM = re.compile(r"Microsoft\.Dynamics\.CRM\.\w+'(\w+)'")
_TYPE_NAMES = {
    "String": "StringAttributeMetadata",
    "Memo": "MemoAttributeMetadata",
    "Integer": "IntegerAttributeMetadata",
    "BigInt": "BigIntAttributeMetadata",
    "Decimal": "DecimalAttributeMetadata",
    "Double": "DoubleAttributeMetadata",
    "Money": "MoneyAttributeMetadata",
    "Boolean": "BooleanAttributeMetadata",
    "DateTime": "DateTimeAttributeMetadata",
    "Picklist": "PicklistAttributeMetadata",
    "State": "StateAttributeMetadata",
    "Status": "StatusAttributeMetadata",
    "Lookup": "LookupAttributeMetadata",
    "Owner": "LookupAttributeMetadata",
    "Customer": "LookupAttributeMetadata",
    "Uniqueidentifier": "UniqueIdentifierAttributeMetadata",
    "EntityName": "EntityNameAttributeMetadata",
    "MultiSelectPicklist": "MultiSelectPicklistAttributeMetadata",
}
_CREATABLE = {
    v: k
    for k, v in _TYPE_NAMES.items()
    if k
    in {
        "String",
        "Memo",
        "Integer",
        "Decimal",
        "Double",
        "Money",
        "Boolean",
        "DateTime",
        "Picklist",
        "MultiSelectPicklist",
        "BigInt",
    }
}
_EDM = {
    "String": "Edm.String",
    "Memo": "Edm.String",
    "EntityName": "Edm.String",
    "Integer": "Edm.Int32",
    "Picklist": "Edm.Int32",
    "State": "Edm.Int32",
    "Status": "Edm.Int32",
    "BigInt": "Edm.Int64",
    "Decimal": "Edm.Decimal",
    "Money": "Edm.Decimal",
    "Double": "Edm.Double",
    "Boolean": "Edm.Boolean",
    "DateTime": "Edm.DateTimeOffset",
    "Uniqueidentifier": "Edm.Guid",
    "MultiSelectPicklist": "Edm.String",
}


def label(text: str, *parts: str) -> dict[str, Any]:
    localized = {
        "Label": text,
        "LanguageCode": 1033,
        "IsManaged": True,
        "MetadataId": str(metadata_id("label", *parts)),
        "HasChanged": None,
    }
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def _label_text(value: Any) -> str | None:
    if isinstance(value, Mapping):
        labels = value.get("LocalizedLabels") or []
        if labels:
            return str(labels[0].get("Label"))
        user = value.get("UserLocalizedLabel")
        if isinstance(user, Mapping):
            return str(user.get("Label"))
    return None


def entity_json(table: Table) -> dict[str, Any]:
    return {
        "MetadataId": str(table.metadata_id),
        "LogicalName": table.name,
        "SchemaName": table.schema_name,
        "EntitySetName": table.entity_set,
        "LogicalCollectionName": table.entity_set,
        "CollectionSchemaName": table.schema_name + "s",
        "PrimaryIdAttribute": table.primary_id,
        "PrimaryNameAttribute": table.primary_name,
        "ObjectTypeCode": table.object_type_code,
        "OwnershipType": table.ownership,
        "IsCustomEntity": table.custom,
        "IsActivity": table.is_activity,
        "ChangeTrackingEnabled": table.change_tracking,
        "CanChangeTrackingBeEnabled": {
            "Value": True,
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "canchangetrackingbeenabled",
        },
        "IsOptimisticConcurrencyEnabled": True,
        "DisplayName": label(table.display_name, table.name),
        "DisplayCollectionName": label(table.display_name + "s", table.name, "collection"),
    }


def option_set(table: Table, attr: Attribute) -> dict[str, Any]:
    return {
        "MetadataId": str(metadata_id(table.name, attr.name, "optionset")),
        "Name": f"{table.name}_{attr.name}",
        "OptionSetType": attr.type if attr.type != "Boolean" else "Boolean",
        "IsGlobal": False,
        "Options": [_option(table, attr, o) for o in attr.options],
    }


def _option(table: Table, attr: Attribute, o: Option) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Value": o.value,
        "Label": label(o.label, table.name, attr.name, str(o.value)),
        "Description": label("", table.name, attr.name, str(o.value), "d"),
        "Color": None,
        "IsManaged": not attr.custom,
        "ExternalValue": None,
    }
    if o.state is not None:
        out["State"] = o.state
    if o.default_status is not None:
        out["DefaultStatus"] = o.default_status
    return out


def attribute_json(table: Table, attr: Attribute) -> dict[str, Any]:
    out: dict[str, Any] = {
        "@odata.type": f"#{NS}.{_TYPE_NAMES.get(attr.type, 'AttributeMetadata')}",
        "MetadataId": str(metadata_id(table.name, attr.name)),
        "LogicalName": attr.name,
        "SchemaName": attr.schema_name,
        "EntityLogicalName": table.name,
        "AttributeType": attr.type,
        "AttributeTypeName": {"Value": f"{attr.type}Type"},
        "RequiredLevel": {
            "Value": attr.required,
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
        "IsCustomAttribute": attr.custom,
        "IsSecured": attr.secured,
        "IsPrimaryId": attr.name == table.primary_id,
        "IsPrimaryName": attr.name == table.primary_name,
        "IsValidForCreate": attr.valid_for_create,
        "IsValidForUpdate": attr.valid_for_update,
        "IsValidForRead": True,
        "DisplayName": label(attr.display_name or attr.name, table.name, attr.name),
    }
    if attr.is_string:
        out["MaxLength"] = attr.max_length
    if attr.is_lookup:
        out["Targets"] = list(attr.targets)
    if attr.type in {"Integer", "BigInt", "Decimal", "Double", "Money"}:
        out["MinValue"] = attr.min_value
        out["MaxValue"] = attr.max_value
        out["Precision"] = attr.precision
    if attr.type == "DateTime":
        out["DateTimeBehavior"] = {"Value": "DateOnly" if attr.date_only else "UserLocal"}
        out["Format"] = "DateOnly" if attr.date_only else "DateAndTime"
    if attr.type in {"Picklist", "State", "Status", "Boolean", "MultiSelectPicklist"}:
        out["DefaultFormValue"] = attr.default if isinstance(attr.default, int) else -1
    return out


# ---- a small evaluator for $filter over metadata objects ------------------------------------


def _matcher(text: str | None, aliases: Mapping[str, str]) -> Callable[[Mapping[str, Any]], bool]:
    if not text:
        return lambda _: True
    tree = odata_filter.parse(_ENUM.sub(r"'\1'", text), aliases)

    def value(node: ast._Node, obj: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Identifier):
            return obj.get(node.name)
        if isinstance(node, ast.Attribute):
            owner = value(node.owner, obj)
            return owner.get(node.attr) if isinstance(owner, Mapping) else None
        if isinstance(node, ast.Null):
            return None
        if isinstance(node, ast.Boolean):
            return node.val == "true"
        if isinstance(node, ast.GUID):
            return node.val
        if isinstance(node, ast._Literal):
            return node.py_val
        raise errors.bad_request("This $filter is not supported on metadata.", "0x0")

    def test(node: ast._Node, obj: Mapping[str, Any]) -> bool:
        if isinstance(node, ast.BoolOp):
            lhs, rhs = test(node.left, obj), test(node.right, obj)
            return (lhs and rhs) if isinstance(node.op, ast.And) else (lhs or rhs)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not test(node.operand, obj)
        if isinstance(node, ast.Compare):
            left, right = value(node.left, obj), value(node.right, obj)
            if isinstance(left, str) and isinstance(right, str):
                left, right = left.lower(), right.lower()
            if isinstance(node.comparator, ast.Eq):
                return bool(left == right)
            if isinstance(node.comparator, ast.NotEq):
                return bool(left != right)
            if isinstance(node.comparator, ast.In):
                return left in (right or [])
        raise errors.bad_request("This $filter is not supported on metadata.", "0x0")

    return lambda obj: test(tree, obj)


def _project(obj: dict[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
    if select is None:
        return obj
    keep = {"MetadataId", "@odata.type", *select}
    return {k: v for k, v in obj.items() if k in keep}


def _expand_option_set(table: Table, attr: Attribute, obj: dict[str, Any], expand: str) -> None:
    for item in split_top(expand):
        name, _, rest = item.partition("(")
        if name.strip() in {"OptionSet", "GlobalOptionSet"}:
            if name.strip() == "GlobalOptionSet":
                obj["GlobalOptionSet"] = None
                continue
            options = option_set(table, attr)
            inner = (
                parse_options(dict(p.split("=", 1) for p in split_top(rest[:-1], ";") if "=" in p))
                if rest
                else None
            )
            obj["OptionSet"] = _project(options, inner.select if inner else None)


# ---- routing --------------------------------------------------------------------------------


def _find_table(call: Call, key: str) -> Table:
    key = key.strip()
    if key.startswith("LogicalName="):
        name = key.split("=", 1)[1].strip("'")
        table = call.store.catalogue.get(name)
    else:
        try:
            wanted = uuid.UUID(key)
        except ValueError as exc:
            raise errors.bad_request(
                f"Invalid EntityDefinitions key '{key}'.", "0x80060888"
            ) from exc
        table = next(
            (t for t in call.store.catalogue.tables.values() if t.metadata_id == wanted), None
        )
    if table is None:
        raise errors.DataverseLocalError(
            404, "0x80040217", f"Could not find entity with key '{key}'."
        )
    return table


def _find_attribute(table: Table, key: str) -> Attribute:
    key = key.strip()
    if key.startswith("LogicalName="):
        attr = table.attributes.get(key.split("=", 1)[1].strip("'"))
    else:
        attr = next(
            (
                a
                for a in table.attributes.values()
                if str(metadata_id(table.name, a.name)) == key.lower()
            ),
            None,
        )
    if attr is None:
        raise errors.DataverseLocalError(
            404,
            "0x80040217",
            f"Could not find attribute with key '{key}' on entity '{table.name}'.",
        )
    return attr


def _split(segment: str) -> tuple[str, str | None]:
    if segment.endswith(")") and "(" in segment:
        name, _, rest = segment.partition("(")
        return name, rest[:-1]
    return segment, None


def handle(call: Call, segments: list[str]) -> Reply:
    head, key = _split(segments[0])
    if head != "EntityDefinitions":
        return Reply.json(200, {"@odata.context": call.metadata_url(f"{head}"), "value": []})
    opts_select = (
        [s.strip() for s in call.query["$select"].split(",")] if "$select" in call.query else None
    )
    aliases = {k: v for k, v in call.query.items() if k.startswith("@")}
    if key is None:
        if call.method == "POST":
            return create_table(call)
        match = _matcher(call.query.get("$filter"), aliases)
        values = []
        for table in call.store.catalogue.tables.values():
            obj = entity_json(table)
            if match(obj):
                item = _project(obj, opts_select)
                _expand_attributes(call, table, item)
                values.append(item)
        return Reply.json(
            200,
            {"@odata.context": call.metadata_url("EntityDefinitions"), "value": values},
        )
    table = _find_table(call, key)
    if len(segments) == 1:
        if call.method == "DELETE":
            _require_custom(table.custom, f"table '{table.name}'")
            call.store.drop_table(call.conn, table.name)
            return Reply.empty(204)
        if call.method in {"PUT", "PATCH"}:
            body = call.json_body()
            if "ChangeTrackingEnabled" in body:
                call.store.set_change_tracking(
                    call.conn, table.name, bool(body["ChangeTrackingEnabled"])
                )
            return Reply.empty(204)
        item = _project(entity_json(table), opts_select)
        _expand_attributes(call, table, item)
        return Reply.json(
            200,
            {"@odata.context": call.metadata_url("EntityDefinitions/$entity"), **item},
        )
    member, member_key = _split(segments[1])
    if member == "Keys":
        if call.method == "POST":
            return create_key(call, table)
        if call.method == "DELETE" and member_key is not None:
            alt_key = next(
                (
                    k
                    for k in table.keys
                    if str(metadata_id(table.name, "key", k.name)) == member_key
                ),
                None,
            )
            if alt_key is None:
                raise errors.DataverseLocalError(
                    404, "0x80040217", f"Could not find key with id '{member_key}'."
                )
            call.store.drop_key(call.conn, table.name, alt_key)
            return Reply.empty(204)
        keys = [_key_json(table, k) for k in table.keys]
        return Reply.json(
            200,
            {
                "@odata.context": call.metadata_url(f"EntityDefinitions('{table.name}')/Keys"),
                "value": keys,
            },
        )
    if member != "Attributes":
        raise errors.resource_not_found(member)
    if call.method == "POST" and member_key is None:
        return create_attribute(call, table)
    if call.method == "DELETE" and member_key is not None:
        attr = _find_attribute(table, member_key)
        _require_custom(attr.custom, f"column '{attr.name}'")
        call.store.drop_attribute(call.conn, table.name, attr.name)
        return Reply.empty(204)
    cast = next((s for s in segments[2:] if s.startswith(f"{NS}.")), None)
    type_filter = cast.removeprefix(f"{NS}.") if cast else None
    if type_filter == "EnumAttributeMetadata":
        raise errors.bad_request("Cannot cast to EnumAttributeMetadata.", "0x80060888")
    attrs = [_find_attribute(table, member_key)] if member_key else list(table.attributes.values())
    if type_filter:
        attrs = [a for a in attrs if _TYPE_NAMES.get(a.type) == type_filter]
    tail = segments[-1]
    if member_key and tail in {"OptionSet", "GlobalOptionSet"}:
        if not attrs or not attrs[0].options:
            return Reply.json(
                200,
                {
                    "@odata.context": call.metadata_url(
                        f"EntityDefinitions('{table.name}')/Attributes/OptionSet"
                    ),
                    "value": None,
                },
            )
        return Reply.json(200, _project(option_set(table, attrs[0]), opts_select))
    match = _matcher(call.query.get("$filter"), aliases)
    items = []
    for attr in attrs:
        obj = attribute_json(table, attr)
        if not match(obj):
            continue
        item = _project(obj, opts_select)
        if "$expand" in call.query:
            _expand_option_set(table, attr, item, call.query["$expand"])
        items.append(item)
    context = call.metadata_url(f"EntityDefinitions('{table.name}')/Attributes")
    if cast:
        context += f"/{cast}"
    if member_key:
        if not items:
            raise errors.DataverseLocalError(
                404, "0x80040217", f"The attribute is not a {type_filter}."
            )
        return Reply.json(200, {"@odata.context": context + "/$entity", **items[0]})
    return Reply.json(200, {"@odata.context": context, "value": items})


def _expand_attributes(call: Call, table: Table, item: dict[str, Any]) -> None:
    expand = call.query.get("$expand")
    if not expand:
        return
    for part in split_top(expand):
        name, _, rest = part.partition("(")
        if name.strip() != "Attributes":
            continue
        inner: dict[str, str] = {}
        if rest:
            for p in split_top(rest[:-1], ";"):
                k, _, v = p.partition("=")
                inner[k.strip()] = v
        select = [s.strip() for s in inner["$select"].split(",")] if "$select" in inner else None
        match = _matcher(inner.get("$filter"), {})
        item["Attributes"] = [
            _project(attribute_json(table, a), select)
            for a in table.attributes.values()
            if match(attribute_json(table, a))
        ]


def _require_custom(custom: bool, what: str) -> None:
    if not custom:
        raise errors.DataverseLocalError(
            403, "0x80048405", f"The {what} is a system component and cannot be deleted."
        )


def _key_json(table: Table, key: AlternateKey) -> dict[str, Any]:
    return {
        "MetadataId": str(metadata_id(table.name, "key", key.name)),
        "LogicalName": key.name.lower(),
        "SchemaName": key.name,
        "EntityLogicalName": table.name,
        "KeyAttributes": list(key.attributes),
        "EntityKeyIndexStatus": "Active",
        "DisplayName": label(key.name, table.name, "key", key.name),
    }


# ---- metadata writes ------------------------------------------------------------------------


def _required_level(body: Mapping[str, Any]) -> str:
    level = body.get("RequiredLevel")
    value = level.get("Value") if isinstance(level, Mapping) else level
    if value is None:
        return "None"
    if value not in {"None", "ApplicationRequired", "SystemRequired", "Recommended"}:
        raise errors.bad_request(
            f"RequiredLevel '{value}' is not valid: use None, Recommended, ApplicationRequired "
            "or SystemRequired.",
            "0x80048d19",
        )
    return str(value)


def attribute_from_payload(body: Mapping[str, Any]) -> Attribute:
    odata_type = str(body.get("@odata.type", "")).lstrip("#").removeprefix(f"{NS}.")
    odata_type = odata_type.removeprefix("Complex")  # CreateEntities' Complex* variants
    attr_type = _CREATABLE.get(odata_type)
    if attr_type is None:
        raise errors.bad_request(
            f"Unsupported attribute type '{odata_type}': "
            f"use one of {', '.join(sorted(_CREATABLE))}.",
            "0x80048d19",
        )
    schema = body.get("SchemaName")
    if not isinstance(schema, str) or "_" not in schema:
        raise errors.bad_request(
            "SchemaName is required and must start with a customization prefix, e.g. 'new_Rating'.",
            "0x80048d19",
        )
    options: tuple[Option, ...] = ()
    if attr_type in {"Picklist", "MultiSelectPicklist"}:
        raw = (body.get("OptionSet") or {}).get("Options") or []
        options = tuple(
            Option(int(o["Value"]), _label_text(o.get("Label")) or str(o["Value"])) for o in raw
        )
    if attr_type == "Boolean":
        raw_set = body.get("OptionSet") or {}
        false = _label_text((raw_set.get("FalseOption") or {}).get("Label")) or "No"
        true = _label_text((raw_set.get("TrueOption") or {}).get("Label")) or "Yes"
        options = (Option(0, false), Option(1, true))
    max_length = body.get("MaxLength")
    if attr_type in {"String", "Memo"}:
        max_length = int(max_length or (2000 if attr_type == "Memo" else 100))
    date_only = attr_type == "DateTime" and (
        body.get("Format") == "DateOnly"
        or (body.get("DateTimeBehavior") or {}).get("Value") == "DateOnly"
    )
    return Attribute(
        name=schema.lower(),
        type=attr_type,
        max_length=max_length if attr_type in {"String", "Memo"} else None,
        required=_required_level(body),
        options=options,
        date_only=date_only,
        custom=True,
        min_value=body.get("MinValue"),
        max_value=body.get("MaxValue"),
        precision=body.get("Precision"),
        display_name=_label_text(body.get("DisplayName")) or schema,
        secured=bool(body.get("IsSecured", False)),
    )


def create_attribute(call: Call, table: Table) -> Reply:
    attr = attribute_from_payload(call.json_body())
    if attr.name in table.attributes:
        raise errors.bad_request(
            f"An attribute named '{attr.name}' already exists on entity '{table.name}'.",
            "0x80044363",
        )
    call.store.add_attribute(call.conn, table.name, attr)
    attribute_id = metadata_id(table.name, attr.name)
    url = f"{call.service_root}/EntityDefinitions({table.metadata_id})/Attributes({attribute_id})"
    return Reply.empty(204, {"OData-EntityId": url})


def create_table(call: Call) -> Reply:
    table = _create_table(call, call.json_body())
    return Reply.empty(
        204, {"OData-EntityId": f"{call.service_root}/EntityDefinitions({table.metadata_id})"}
    )


def create_entities(call: Call) -> Reply:
    """The `CreateEntities` action (Microsoft's SDK creates tables with it): one or more
    `ComplexEntityMetadata` with their attributes, in one transaction."""
    body = call.json_body()
    entities = body.get("Entities") if isinstance(body, Mapping) else None
    if not isinstance(entities, list) or not entities:
        raise errors.bad_request("CreateEntities needs a non-empty 'Entities' array.", "0x80048d19")
    for entity in entities:
        _create_table(call, entity)
    return Reply.empty(204)


def _create_table(call: Call, body: Mapping[str, Any]) -> Table:
    schema = body.get("SchemaName")
    if not isinstance(schema, str) or "_" not in schema:
        raise errors.bad_request(
            "SchemaName is required and must start with a customization prefix, e.g. "
            "'new_BankAccount'.",
            "0x80048d19",
        )
    name = schema.lower()
    if call.store.catalogue.get(name) is not None:
        raise errors.bad_request(f"An entity named '{name}' already exists.", "0x80044363")
    payload_attrs = body.get("Attributes") or []
    primary = next((a for a in payload_attrs if a.get("IsPrimaryName")), None)
    if primary is None:
        raise errors.bad_request(
            "Attributes must include the primary name column (a StringAttributeMetadata with "
            "IsPrimaryName: true).",
            "0x80048d19",
        )
    attrs = [attribute_from_payload(a) for a in payload_attrs]
    ownership = str(body.get("OwnershipType", "UserOwned"))
    otc = 10000 + len([t for t in call.store.catalogue.tables.values() if t.custom])
    table = build_table(
        name,
        name + "s",
        name + "id",
        primary["SchemaName"].lower(),
        otc,
        attrs,
        owned=ownership == "UserOwned",
        display=_label_text(body.get("DisplayName")) or schema,
        change_tracking=bool(body.get("ChangeTrackingEnabled", False)),
    )
    table.custom = True
    call.store.create_table(call.conn, table)
    return table


def create_key(call: Call, table: Table) -> Reply:
    body = call.json_body()
    schema = body.get("SchemaName")
    attributes = body.get("KeyAttributes")
    if not isinstance(schema, str) or not isinstance(attributes, list) or not attributes:
        raise errors.bad_request(
            "A key needs SchemaName and a non-empty KeyAttributes list.", "0x80048d19"
        )
    for a in attributes:
        if a not in table.attributes:
            raise errors.unknown_property(table.name, a)
    key = AlternateKey(schema, tuple(attributes))
    call.store.add_key(call.conn, table.name, key)
    key_id = metadata_id(table.name, "key", schema)
    url = f"{call.service_root}/EntityDefinitions({table.metadata_id})/Keys({key_id})"
    return Reply.empty(204, {"OData-EntityId": url})


# ---- service document and CSDL --------------------------------------------------------------


def service_document(call: Call) -> Reply:
    sets = [
        {"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set}
        for t in call.store.catalogue.tables.values()
    ]
    return Reply.json(200, {"@odata.context": f"{call.service_root}/$metadata", "value": sets})


def csdl(call: Call) -> Reply:
    annotate = call.query.get("annotations", "").lower() == "true"
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
        "<edmx:DataServices>",
        f'<Schema Namespace="{NS}" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
    ]
    for t in call.store.catalogue.tables.values():
        out.append(f'<EntityType Name="{t.name}"><Key><PropertyRef Name="{t.primary_id}" /></Key>')
        for a in t.attributes.values():
            if a.is_lookup:
                out.append(f'<Property Name="_{a.name}_value" Type="Edm.Guid" />')
            else:
                out.append(f'<Property Name="{a.name}" Type="{_EDM.get(a.type, "Edm.String")}" />')
        for nav in t.navigation_properties().values():
            out.append(
                f'<NavigationProperty Name="{escape(nav.name)}" Type="mscrm.{nav.target}" />'
            )
        for coll in call.store.catalogue.collection_navigations(t.name).values():
            out.append(
                f'<NavigationProperty Name="{escape(coll.name)}" '
                f'Type="Collection(mscrm.{coll.table})" />'
            )
        out.append("</EntityType>")
    out.append('<EntityContainer Name="System">')
    for t in call.store.catalogue.tables.values():
        if annotate and t.change_tracking:
            out.append(
                f'<EntitySet Name="{t.entity_set}" EntityType="mscrm.{t.name}">'
                '<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking"><Record>'
                '<PropertyValue Property="Supported" Bool="true" '
                "/></Record></Annotation></EntitySet>"
            )
        else:
            out.append(f'<EntitySet Name="{t.entity_set}" EntityType="mscrm.{t.name}" />')
    out.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return Reply(
        200, [("Content-Type", "application/xml"), ("OData-Version", "4.0")], "".join(out).encode()
    )
