"""Table, column, choice and key definitions from `EntityDefinitions`, cached per client.

Metadata changes rarely and costs several requests per table, so answers are cached on
the client until `refresh()` (all) or `refresh(table)` (one table). Type-specific facts
live behind cast segments (`…/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata`
for `MaxLength`, `…PicklistAttributeMetadata` with `$expand=OptionSet` for choices), which
is why one table's columns take two requests.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gtmsync.dataverse import odata
from gtmsync.dataverse.errors import APIError, ConfigurationError

if TYPE_CHECKING:
    from gtmsync.dataverse.client import DataverseClient

_TABLE_SELECT = (
    "LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,"
    "MetadataId,ChangeTrackingEnabled,IsCustomEntity,DisplayName"
)
_ATTRIBUTE_SELECT = (
    "LogicalName,SchemaName,AttributeType,RequiredLevel,IsValidForRead,IsValidForCreate,"
    "IsValidForUpdate,IsCustomAttribute,DisplayName,MetadataId"
)
_OPTION_CASTS = {
    "Picklist": "PicklistAttributeMetadata",
    "State": "StateAttributeMetadata",
    "Status": "StatusAttributeMetadata",
    "MultiSelectPicklist": "MultiSelectPicklistAttributeMetadata",
}
REQUIRED_LEVELS = ("None", "Recommended", "ApplicationRequired", "SystemRequired")


def label_text(label: Any) -> str | None:
    """The user's label from a Dataverse `Label` complex type."""
    if not isinstance(label, Mapping):
        return None
    user = label.get("UserLocalizedLabel")
    if isinstance(user, Mapping) and user.get("Label"):
        return str(user["Label"])
    for localized in label.get("LocalizedLabels") or []:
        if localized.get("Label"):
            return str(localized["Label"])
    return None


def _managed(value: Any) -> Any:
    return value.get("Value") if isinstance(value, Mapping) else value


@dataclass(frozen=True)
class TableInfo:
    logical_name: str
    schema_name: str | None
    entity_set_name: str
    primary_id_attribute: str
    primary_name_attribute: str | None
    metadata_id: uuid.UUID | None
    change_tracking_enabled: bool
    is_custom: bool
    display_name: str | None


@dataclass(frozen=True)
class AttributeInfo:
    logical_name: str
    schema_name: str | None
    type: str
    required_level: str
    max_length: int | None
    readable: bool
    creatable: bool
    updatable: bool
    is_custom: bool
    display_name: str | None

    @property
    def required(self) -> bool:
        return self.required_level in {"ApplicationRequired", "SystemRequired"}


@dataclass(frozen=True)
class OptionInfo:
    value: int
    label: str | None


@dataclass(frozen=True)
class AlternateKeyInfo:
    logical_name: str
    schema_name: str | None
    attributes: tuple[str, ...]


def _table(row: Mapping[str, Any]) -> TableInfo:
    metadata_id = row.get("MetadataId")
    return TableInfo(
        logical_name=row["LogicalName"],
        schema_name=row.get("SchemaName"),
        entity_set_name=row["EntitySetName"],
        primary_id_attribute=row["PrimaryIdAttribute"],
        primary_name_attribute=row.get("PrimaryNameAttribute"),
        metadata_id=uuid.UUID(metadata_id) if metadata_id else None,
        change_tracking_enabled=bool(row.get("ChangeTrackingEnabled")),
        is_custom=bool(row.get("IsCustomEntity")),
        display_name=label_text(row.get("DisplayName")),
    )


class MetadataCache:
    def __init__(self, client: DataverseClient) -> None:
        self._client = client
        self._lock = threading.RLock()
        self._tables: dict[str, TableInfo] | None = None
        self._attributes: dict[str, dict[str, AttributeInfo]] = {}
        self._options: dict[tuple[str, str], list[OptionInfo]] = {}
        self._keys: dict[str, list[AlternateKeyInfo]] = {}

    def refresh(self, table: str | None = None) -> None:
        """Forget cached answers (one table's columns, choices and keys, or everything)."""
        with self._lock:
            if table is None:
                self._tables = None
                self._attributes.clear()
                self._options.clear()
                self._keys.clear()
                return
            self._attributes.pop(table, None)
            self._keys.pop(table, None)
            for key in [k for k in self._options if k[0] == table]:
                del self._options[key]

    def _definition(self, table: str) -> str:
        return f"EntityDefinitions(LogicalName={odata.string_literal(odata.name(table))})"

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self._client.request("GET", path, params=params, idempotent=True).json()

    def tables(self) -> dict[str, TableInfo]:
        with self._lock:
            if self._tables is None:
                body = self._get("EntityDefinitions", {"$select": _TABLE_SELECT})
                self._tables = {t.logical_name: t for t in map(_table, body["value"])}
            return self._tables

    def table(self, logical_name: str) -> TableInfo:
        try:
            return self.tables()[logical_name]
        except KeyError:
            raise ConfigurationError(
                f"table {logical_name!r} does not exist in this org: use a logical name from "
                "metadata.tables()"
            ) from None

    def attributes(self, table: str) -> dict[str, AttributeInfo]:
        with self._lock:
            if table not in self._attributes:
                self._attributes[table] = self._load_attributes(table)
            return self._attributes[table]

    def attribute(self, table: str, logical_name: str) -> AttributeInfo:
        try:
            return self.attributes(table)[logical_name]
        except KeyError:
            raise ConfigurationError(
                f"column {logical_name!r} does not exist on {table!r}: pick one from "
                "metadata.attributes(table)"
            ) from None

    def _max_lengths(self, table: str) -> dict[str, int]:
        lengths: dict[str, int] = {}
        for cast in ("StringAttributeMetadata", "MemoAttributeMetadata"):
            try:
                body = self._get(
                    f"{self._definition(table)}/Attributes/Microsoft.Dynamics.CRM.{cast}",
                    {"$select": "LogicalName,MaxLength"},
                )
            except APIError as exc:
                if exc.transient:
                    raise
                continue
            for row in body.get("value", []):
                if row.get("MaxLength") is not None:
                    lengths[row["LogicalName"]] = int(row["MaxLength"])
        return lengths

    def _load_attributes(self, table: str) -> dict[str, AttributeInfo]:
        body = self._get(f"{self._definition(table)}/Attributes", {"$select": _ATTRIBUTE_SELECT})
        lengths = self._max_lengths(table)
        result: dict[str, AttributeInfo] = {}
        for row in body["value"]:
            name = row["LogicalName"]
            result[name] = AttributeInfo(
                logical_name=name,
                schema_name=row.get("SchemaName"),
                type=str(_managed(row.get("AttributeType")) or ""),
                required_level=str(_managed(row.get("RequiredLevel")) or "None"),
                max_length=row.get("MaxLength", lengths.get(name)),
                readable=bool(row.get("IsValidForRead", True)),
                creatable=bool(row.get("IsValidForCreate", False)),
                updatable=bool(row.get("IsValidForUpdate", False)),
                is_custom=bool(row.get("IsCustomAttribute", False)),
                display_name=label_text(row.get("DisplayName")),
            )
        return result

    def options(self, table: str, attribute: str) -> list[OptionInfo]:
        """Choice values and labels of a Picklist, State, Status or multi-select column."""
        with self._lock:
            key = (table, attribute)
            if key not in self._options:
                info = self.attribute(table, attribute)
                cast = _OPTION_CASTS.get(info.type)
                if cast is None:
                    raise ConfigurationError(
                        f"{table}.{attribute} is a {info.type} column, not a choice: options "
                        "exist only for Picklist, State, Status and MultiSelectPicklist columns"
                    )
                body = self._get(
                    f"{self._definition(table)}/Attributes(LogicalName="
                    f"{odata.string_literal(odata.name(attribute))})/Microsoft.Dynamics.CRM.{cast}",
                    {"$select": "LogicalName", "$expand": "OptionSet($select=Options)"},
                )
                options = (body.get("OptionSet") or {}).get("Options") or []
                self._options[key] = [
                    OptionInfo(int(o["Value"]), label_text(o.get("Label"))) for o in options
                ]
            return self._options[key]

    def alternate_keys(self, table: str) -> list[AlternateKeyInfo]:
        with self._lock:
            if table not in self._keys:
                body = self._get(
                    f"{self._definition(table)}/Keys",
                    {"$select": "LogicalName,SchemaName,KeyAttributes"},
                )
                self._keys[table] = [
                    AlternateKeyInfo(
                        row["LogicalName"],
                        row.get("SchemaName"),
                        tuple(row.get("KeyAttributes") or ()),
                    )
                    for row in body.get("value", [])
                ]
            return self._keys[table]

    def create_alternate_key(
        self, table: str, *, schema_name: str, attributes: list[str]
    ) -> uuid.UUID | None:
        """Define an alternate key (what upserts by business key need); refreshes the cache."""
        if not attributes:
            raise ConfigurationError("an alternate key needs at least one column in attributes")
        body = {
            "SchemaName": odata.name(schema_name),
            "DisplayName": {
                "@odata.type": "Microsoft.Dynamics.CRM.Label",
                "LocalizedLabels": [
                    {
                        "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                        "Label": schema_name,
                        "LanguageCode": 1033,
                    }
                ],
            },
            "KeyAttributes": [odata.name(a) for a in attributes],
        }
        response = self._client.request(
            "POST", f"{self._definition(table)}/Keys", json=body, idempotent=False
        )
        self.refresh(table)
        return _id_from_link(response.headers.get("OData-EntityId", ""))

    def create_string_attribute(
        self,
        table: str,
        *,
        schema_name: str,
        label: str,
        max_length: int = 100,
        required_level: str = "None",
        language_code: int = 1033,
    ) -> uuid.UUID | None:
        """Add a custom text column (`new_Foo`); the table's cached columns are refreshed."""
        if "_" not in schema_name:
            raise ConfigurationError(
                f"schema_name {schema_name!r} needs the publisher prefix, e.g. 'new_{schema_name}'"
            )
        odata.name(schema_name)
        if required_level not in REQUIRED_LEVELS:
            raise ConfigurationError(f"required_level must be one of {REQUIRED_LEVELS}")
        if not 1 <= max_length <= 4000:
            raise ConfigurationError("max_length of a text column must be between 1 and 4000")
        body = {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": schema_name,
            "AttributeType": "String",
            "AttributeTypeName": {"Value": "StringType"},
            "MaxLength": max_length,
            "FormatName": {"Value": "Text"},
            "RequiredLevel": {
                "Value": required_level,
                "CanBeChanged": True,
                "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
            },
            "DisplayName": {
                "@odata.type": "Microsoft.Dynamics.CRM.Label",
                "LocalizedLabels": [
                    {
                        "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                        "Label": label,
                        "LanguageCode": language_code,
                    }
                ],
            },
        }
        response = self._client.request(
            "POST", f"{self._definition(table)}/Attributes", json=body, idempotent=False
        )
        self.refresh(table)
        return _id_from_link(response.headers.get("OData-EntityId", ""))


def _id_from_link(link: str) -> uuid.UUID | None:
    inside = link.rstrip(")").rpartition("(")[2]
    try:
        return uuid.UUID(inside)
    except ValueError:
        return None
