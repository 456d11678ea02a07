"""Import mapping: GTM fields, default Dynamics → GTM mapping, readable columns, row conversion.

The seeds' key fields per GTM object are the `GTM_FIELDS` catalogue. `default_mapping`
maps the standard Dynamics tables onto it, offering only attributes that exist in the org
and that the connected user can read (`discover_table`). A column is unreadable when its
metadata says `IsValidForRead` is false, or when it is column-secured (`IsSecured`):
Dataverse then returns null to users without a field security profile, and importing those
nulls would overwrite real values, so secured columns are left out and shown as such.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from gtmsync.crm_import.models import GtmObject
from gtmsync.crm_import.schemas import AttributeOption, FieldMap, MappingDocument, Source
from gtmsync.dataverse import DataverseClient, odata
from gtmsync.kit.clock import ensure_utc
from gtmsync.platform.normalise import _TWO_LABEL_SUFFIXES, registrable_domain

LOOKUP_TYPES = frozenset({"Lookup", "Owner", "Customer"})
CUSTOM_PREFIX = "custom."


@dataclass(frozen=True)
class GtmField:
    name: str
    label: str
    kind: str  # text | uuid | decimal | bool | date | datetime


def _f(name: str, label: str, kind: str = "text") -> GtmField:
    return GtmField(name, label, kind)


GTM_FIELDS: dict[GtmObject, list[GtmField]] = {
    GtmObject.ACCOUNT: [
        _f("name", "Account Name"),
        _f("account_type", "Account Type"),
        _f("annual_spend", "Annual Spend (Current ACV)", "decimal"),
        _f("domain", "Domain"),
        _f("hq_phone", "HQ Phone"),
        _f("owner_id", "Owner Id", "uuid"),
        _f("website", "Website"),
        _f("platform_company_id", "Platform Company Id"),
    ],
    GtmObject.CONTACT: [
        _f("first_name", "First Name"),
        _f("last_name", "Last Name"),
        _f("do_not_email", "Do Not Email", "bool"),
        _f("email", "Email"),
        _f("job_title", "Job Title"),
        _f("department", "Department"),
        _f("mobile_phone", "Mobile Phone"),
        _f("owner_id", "Owner Id", "uuid"),
        _f("platform_contact_id", "Platform Contact Id"),
        _f("lead_status", "Lead Status"),
        _f("account_dynamics_id", "Account Id", "uuid"),
    ],
    GtmObject.OPPORTUNITY: [
        _f("account_dynamics_id", "Account Id", "uuid"),
        _f("amount", "Amount", "decimal"),
        _f("close_date", "Close Date", "date"),
        _f("currency", "Currency"),
        _f("is_closed", "Is Closed", "bool"),
        _f("is_won", "Is Won", "bool"),
        _f("name", "Opportunity Name"),
        _f("owner_id", "Owner Id", "uuid"),
        _f("stage", "Stage"),
        _f("opportunity_type", "Type"),
    ],
    GtmObject.PRODUCT: [
        _f("name", "Product Name"),
        _f("product_number", "Product Number"),
        _f("price", "Price", "decimal"),
        _f("owner_id", "Owner Id", "uuid"),
    ],
    GtmObject.TASK: [
        _f("subject", "Subject"),
        _f("regarding_id", "Regarding", "uuid"),
        _f("due_on", "Due", "datetime"),
        _f("state", "Status"),
        _f("owner_id", "Owner Id", "uuid"),
    ],
    GtmObject.USER: [
        _f("full_name", "Full Name"),
        _f("email", "Email"),
        _f("job_title", "Job Title"),
        _f("is_disabled", "Is Disabled", "bool"),
    ],
    GtmObject.ROLE: [],
}

# (Dynamics table, GTM object) → [(attribute, GTM field)], in the seeds' order.
DEFAULT_SOURCES: list[tuple[str, GtmObject, list[tuple[str, str]]]] = [
    (
        "account",
        GtmObject.ACCOUNT,
        [
            ("name", "name"),
            ("customertypecode", "account_type"),
            ("revenue", "annual_spend"),
            ("telephone1", "hq_phone"),
            ("ownerid", "owner_id"),
            ("websiteurl", "website"),
            ("gtmsync_platformid", "platform_company_id"),
        ],
    ),
    (
        "contact",
        GtmObject.CONTACT,
        [
            ("firstname", "first_name"),
            ("lastname", "last_name"),
            ("donotemail", "do_not_email"),
            ("emailaddress1", "email"),
            ("jobtitle", "job_title"),
            ("department", "department"),
            ("mobilephone", "mobile_phone"),
            ("ownerid", "owner_id"),
            ("parentcustomerid", "account_dynamics_id"),
            ("gtmsync_platformid", "platform_contact_id"),
        ],
    ),
    (
        "lead",
        GtmObject.CONTACT,
        [
            ("firstname", "first_name"),
            ("lastname", "last_name"),
            ("donotemail", "do_not_email"),
            ("emailaddress1", "email"),
            ("jobtitle", "job_title"),
            ("mobilephone", "mobile_phone"),
            ("ownerid", "owner_id"),
            ("statuscode", "lead_status"),
            ("parentaccountid", "account_dynamics_id"),
            ("gtmsync_platformid", "platform_contact_id"),
        ],
    ),
    (
        "opportunity",
        GtmObject.OPPORTUNITY,
        [
            ("parentaccountid", "account_dynamics_id"),
            ("estimatedvalue", "amount"),
            ("estimatedclosedate", "close_date"),
            ("transactioncurrencyid", "currency"),
            ("statecode", "is_closed"),
            ("statecode", "is_won"),
            ("name", "name"),
            ("ownerid", "owner_id"),
            ("salesstage", "stage"),
        ],
    ),
    (
        "product",
        GtmObject.PRODUCT,
        [("name", "name"), ("productnumber", "product_number"), ("price", "price")],
    ),
    (
        "task",
        GtmObject.TASK,
        [
            ("subject", "subject"),
            ("regardingobjectid", "regarding_id"),
            ("scheduledend", "due_on"),
            ("statecode", "state"),
            ("ownerid", "owner_id"),
        ],
    ),
    (
        "systemuser",
        GtmObject.USER,
        [
            ("fullname", "full_name"),
            ("internalemailaddress", "email"),
            ("jobtitle", "job_title"),
            ("isdisabled", "is_disabled"),
        ],
    ),
]


def gtm_field_names(obj: GtmObject, custom: Iterable[str] = ()) -> list[str]:
    return [f.name for f in GTM_FIELDS[obj]] + [CUSTOM_PREFIX + c for c in custom]


def field_kind(obj: GtmObject, field: str) -> str:
    for f in GTM_FIELDS[obj]:
        if f.name == field:
            return f.kind
    return "text"


# -- the org's schema, as far as the import needs it ------------------------------------


@dataclass(frozen=True)
class TableSchema:
    """What the import needs to know of one Dynamics table (cached in import settings)."""

    name: str
    entity_set: str
    primary_id: str
    change_tracking: bool
    attributes: dict[str, dict[str, Any]]  # name → {type, label, readable, reason}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entity_set": self.entity_set,
            "primary_id": self.primary_id,
            "change_tracking": self.change_tracking,
            "attributes": self.attributes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TableSchema:
        return cls(
            name=data["name"],
            entity_set=data["entity_set"],
            primary_id=data["primary_id"],
            change_tracking=bool(data["change_tracking"]),
            attributes=dict(data["attributes"]),
        )

    def readable(self, attribute: str) -> bool:
        info = self.attributes.get(attribute)
        return bool(info and info["readable"])

    def options(self) -> list[AttributeOption]:
        return [
            AttributeOption(
                name=name,
                label=info.get("label") or name,
                type=info["type"],
                readable=info["readable"],
                reason=info.get("reason"),
            )
            for name, info in sorted(self.attributes.items())
        ]


def discover_table(client: DataverseClient, table: str) -> TableSchema:
    """Two metadata requests: the table (entity set, key, change tracking) and its columns."""
    info = client.metadata.table(table)
    body = client.request(
        "GET",
        f"EntityDefinitions(LogicalName={odata.string_literal(odata.name(table))})/Attributes",
        params={
            "$select": "LogicalName,AttributeType,IsValidForRead,IsSecured,DisplayName,AttributeOf"
        },
        idempotent=True,
    ).json()
    attributes: dict[str, dict[str, Any]] = {}
    for row in body.get("value", []):
        if row.get("AttributeOf"):  # name/yomi shadows of lookups
            continue
        name = row["LogicalName"]
        kind = row.get("AttributeType")
        kind = kind.get("Value") if isinstance(kind, Mapping) else kind
        reason = None
        if not row.get("IsValidForRead", True):
            reason = "not valid for read"
        elif row.get("IsSecured"):
            reason = "column security: the connected user may not be able to read it"
        label = _label(row.get("DisplayName")) or name
        attributes[name] = {
            "type": str(kind or ""),
            "label": label,
            "readable": reason is None,
            "reason": reason,
        }
    return TableSchema(
        name=table,
        entity_set=info.entity_set_name,
        primary_id=info.primary_id_attribute,
        change_tracking=info.change_tracking_enabled,
        attributes=attributes,
    )


def _label(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    user = value.get("UserLocalizedLabel")
    if isinstance(user, Mapping) and user.get("Label"):
        return str(user["Label"])
    for item in value.get("LocalizedLabels") or []:
        if item.get("Label"):
            return str(item["Label"])
    return None


def default_mapping(schemas: Mapping[str, TableSchema]) -> MappingDocument:
    """The standard tables present in the org, with the default fields they can read."""
    sources: list[Source] = []
    for table, obj, pairs in DEFAULT_SOURCES:
        schema = schemas.get(table)
        if schema is None:
            continue
        fields = [FieldMap(attribute=a, field=f) for a, f in pairs if schema.readable(a)]
        sources.append(Source(table=table, object=obj, fields=fields))
    return MappingDocument(sources=sources)


# -- converting a Dynamics record to a GTM row ----------------------------------------------


def select_name(attribute: str, schema: TableSchema) -> str:
    """The `$select` spelling: lookups are read as `_x_value`."""
    info = schema.attributes.get(attribute)
    if info and info["type"] in LOOKUP_TYPES:
        return f"_{attribute}_value"
    return attribute


def raw_value(record: Mapping[str, Any], attribute: str, schema: TableSchema) -> Any:
    return record.get(select_name(attribute, schema))


def formatted_value(record: Any, attribute: str, schema: TableSchema) -> str | None:
    formatted: Callable[[str], str | None] | None = getattr(record, "formatted", None)
    if formatted is None:
        return None
    return formatted(select_name(attribute, schema))


def _to_uuid(value: Any) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _to_decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _to_datetime(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return ensure_utc(parsed)


def _to_date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def _to_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return str(value).lower() in ("true", "1", "yes")


def convert(obj: GtmObject, field: str, attribute: str, record: Any, schema: TableSchema) -> Any:
    """A GTM field's value from one attribute: typed, labels for choices and lookups."""
    raw = raw_value(record, attribute, schema)
    kind = field_kind(obj, field)
    if attribute == "statecode" and field in ("is_closed", "is_won"):
        if raw is None:
            return None
        return int(raw) != 0 if field == "is_closed" else int(raw) == 1
    if kind == "uuid":
        return _to_uuid(raw)
    if kind == "decimal":
        return _to_decimal(raw)
    if kind == "bool":
        return _to_bool(raw)
    if kind == "date":
        return _to_date(raw)
    if kind == "datetime":
        return _to_datetime(raw)
    attr_type = schema.attributes.get(attribute, {}).get("type")
    if attr_type in ("Picklist", "State", "Status", "Boolean") or attr_type in LOOKUP_TYPES:
        label = formatted_value(record, attribute, schema)
        if label is not None:
            return label[:250]
    if raw is None:
        return None
    if isinstance(raw, (dict, list)):
        return str(raw)[:250]
    return str(raw)[:250] if not isinstance(raw, bool) else raw


def json_safe(value: Any) -> Any:
    if isinstance(value, (uuid.UUID, Decimal, datetime, date)):
        return str(value)
    return value


# The plain `[http(s)://]host[/]` shape nearly every website has: for these the host is the
# whole match and every label already passes `registrable_domain`'s label rule, so only the
# suffix rule is left. Anything else takes the full parser. `registrable_domain` cost more
# per record than storing it (a label regex each, punycode checks); tests/crm_import checks
# the two agree on tricky inputs.
_PLAIN_HOST_RE = re.compile(
    r"^(?:https?://)?((?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?!-)[a-z0-9-]{1,63}(?<!-))/?\Z"
)


def fast_registrable_domain(value: str) -> str:
    """`registrable_domain(value)`, without the full parse for a plain web address."""
    match = _PLAIN_HOST_RE.match(value.strip().lower())
    if match is None:
        return registrable_domain(value)
    labels = match.group(1).split(".")
    if labels[-1].isdigit():
        return registrable_domain(value)  # raises: an IP address
    keep = 3 if f"{labels[-2]}.{labels[-1]}" in _TWO_LABEL_SUFFIXES else 2
    if len(labels) < keep:
        return registrable_domain(value)  # raises: a public suffix
    return ".".join(labels[-keep:])


def domain_of(website: str | None, email: str | None) -> str | None:
    """The registrable domain from the website, else from the email address."""
    for candidate in (website, email.rsplit("@", 1)[-1] if email and "@" in email else None):
        if candidate:
            try:
                return fast_registrable_domain(candidate)
            except ValueError:
                continue
    return None


class RowBuilder:
    """Builds GTM rows for one source, with each field's converter chosen once.

    A backfill converts millions of records; deciding per value which attribute type and
    GTM field kind apply took longer than reading the page.
    """

    def __init__(self, source: Source, schema: TableSchema) -> None:
        self.source = source
        self.plan: list[tuple[str, bool, Callable[[Any], Any]]] = []
        for fm in source.fields:
            if not schema.readable(fm.attribute):
                continue
            custom = fm.field.startswith(CUSTOM_PREFIX)
            target = fm.field.removeprefix(CUSTOM_PREFIX) if custom else fm.field
            self.plan.append((target, custom, _converter(source.object, fm, schema)))
        self.email_key = (
            select_name("emailaddress1", schema)
            if source.object == GtmObject.ACCOUNT and schema.readable("emailaddress1")
            else None
        )

    def build(self, record: Any) -> dict[str, Any]:
        row: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for target, is_custom, convert_ in self.plan:
            value = convert_(record)
            if is_custom:
                custom[target] = json_safe(value)
            else:
                row[target] = value
        row["custom"] = custom or None
        obj = self.source.object
        if obj == GtmObject.ACCOUNT and not row.get("domain"):
            email = record.get(self.email_key) if self.email_key else None
            row["domain"] = domain_of(row.get("website"), email)
        elif obj == GtmObject.CONTACT and row.get("email"):
            row["email"] = str(row["email"]).strip().lower()
        return row


def _converter(obj: GtmObject, fm: FieldMap, schema: TableSchema) -> Callable[[Any], Any]:
    key = select_name(fm.attribute, schema)
    kind = field_kind(obj, fm.field)
    attr_type = schema.attributes.get(fm.attribute, {}).get("type")
    if fm.attribute == "statecode" and fm.field in ("is_closed", "is_won"):
        won = fm.field == "is_won"

        def state(record: Any) -> bool | None:
            raw = record.get(key)
            return None if raw is None else (int(raw) == 1 if won else int(raw) != 0)

        return state
    typed: dict[str, Callable[[Any], Any]] = {
        "uuid": _to_uuid,
        "decimal": _to_decimal,
        "bool": _to_bool,
        "date": _to_date,
        "datetime": _to_datetime,
    }
    if kind in typed:
        cast = typed[kind]
        if kind != "uuid":
            return lambda record: cast(record.get(key))
        # A lookup's ids repeat across a page (a few owners own many accounts): parse each
        # distinct id once. Bounded, so a long run's memory stays flat.
        seen: dict[Any, Any] = {}

        def lookup_id(record: Any) -> Any:
            raw = record.get(key)
            try:
                return seen[raw]
            except KeyError:
                if len(seen) >= 4096:
                    seen.clear()
                value = seen[raw] = cast(raw)
                return value
            except TypeError:  # not hashable (a malformed value): no memo
                return cast(raw)

        return lookup_id
    labelled = attr_type in ("Picklist", "State", "Status", "Boolean") or attr_type in LOOKUP_TYPES

    def text(record: Any) -> Any:
        raw = record.get(key)
        if type(raw) is str:  # the common case, once per text field of every record
            return raw[:250]
        if raw is None or isinstance(raw, bool):
            return raw
        return str(raw)[:250]

    if not labelled:
        return text

    def label_or_text(record: Any) -> Any:
        label = record.formatted(key) if hasattr(record, "formatted") else None
        if label is not None:
            return label[:250]
        return text(record)

    return label_or_text


def build_row(source: Source, record: Any, schema: TableSchema) -> dict[str, Any]:
    """The GTM row (without keys) for one Dynamics record under a source's mapping."""
    return RowBuilder(source, schema).build(record)


def select_for(source: Source, schema: TableSchema, extra: Iterable[str] = ()) -> list[str]:
    """Columns to read: the primary key, modifiedon, mapped and rule attributes (readable only)."""
    names = {schema.primary_id, "modifiedon"}
    names.update(fm.attribute for fm in source.fields)
    names.update(extra)
    if source.object == GtmObject.ACCOUNT and "emailaddress1" in schema.attributes:
        names.add("emailaddress1")
    if source.object == GtmObject.ROLE:
        names.update(a for a in (source.record_id_attribute, source.related_id_attribute) if a)
    return sorted(
        select_name(n, schema) for n in names if n == schema.primary_id or schema.readable(n)
    )
