"""The catalogue of tables, columns, choices and relationships the local server knows (spec §1.5).

Dataverse describes itself through metadata; the local server does the same from these
definitions. Standard tables are declared here with Microsoft's real option values, lengths
and requirement levels; custom tables, columns and alternate keys are added at run time
(`store.py` persists them) and live in the same `Catalogue`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

STRING_TYPES = frozenset({"String", "Memo", "EntityName"})
LOOKUP_TYPES = frozenset({"Lookup", "Owner", "Customer"})
CHOICE_TYPES = frozenset({"Picklist", "State", "Status"})
NUMBER_TYPES = frozenset({"Integer", "BigInt", "Decimal", "Double", "Money"})

_NS = uuid.UUID("6f2b6cb4-3c1e-4c0c-9d59-1b7c1e5d0a11")


def metadata_id(*parts: str) -> uuid.UUID:
    """Stable MetadataIds so EntityDefinitions(<id>) URLs survive restarts."""
    return uuid.uuid5(_NS, "/".join(parts))


@dataclass(frozen=True)
class Option:
    value: int
    label: str
    state: int | None = None  # for Status options: the statecode they belong to
    default_status: int | None = None  # for State options: the statuscode set by default


@dataclass(frozen=True)
class Attribute:
    """One column. `targets` lists the tables a lookup may point at (several = polymorphic)."""

    name: str
    type: str
    max_length: int | None = None
    required: str = "None"
    options: tuple[Option, ...] = ()
    targets: tuple[str, ...] = ()
    date_only: bool = False
    secured: bool = False
    custom: bool = False
    valid_for_create: bool = True
    valid_for_update: bool = True
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = None
    display_name: str = ""
    default: Any = None

    @property
    def is_lookup(self) -> bool:
        return self.type in LOOKUP_TYPES

    @property
    def is_string(self) -> bool:
        return self.type in STRING_TYPES

    @property
    def schema_name(self) -> str:
        return self.name if self.custom else self.name[:1].upper() + self.name[1:]

    def option_label(self, value: int) -> str | None:
        return next((o.label for o in self.options if o.value == value), None)


@dataclass(frozen=True)
class NavigationProperty:
    """A single-valued navigation property: the name used in `@odata.bind` and `$expand`."""

    name: str
    attribute: str
    target: str


@dataclass(frozen=True)
class CollectionNavigation:
    """A one-to-many navigation: rows of `table` whose `attribute` points back at this row."""

    name: str
    table: str
    attribute: str


@dataclass(frozen=True)
class AlternateKey:
    name: str
    attributes: tuple[str, ...]


@dataclass
class Table:
    name: str
    entity_set: str
    primary_id: str
    primary_name: str
    attributes: dict[str, Attribute]
    object_type_code: int
    ownership: str = "UserOwned"
    change_tracking: bool = True
    custom: bool = False
    display_name: str = ""
    is_activity: bool = False
    keys: list[AlternateKey] = field(default_factory=list)

    @property
    def schema_name(self) -> str:
        return self.name if self.custom else self.name[:1].upper() + self.name[1:]

    @property
    def metadata_id(self) -> uuid.UUID:
        return metadata_id(self.name)

    def navigation_properties(self) -> dict[str, NavigationProperty]:
        """Single-valued navigation names, polymorphic ones suffixed like Dataverse does."""
        navs: dict[str, NavigationProperty] = {}
        for attr in self.attributes.values():
            if not attr.is_lookup:
                continue
            if attr.type == "Owner" or len(attr.targets) == 1:
                navs[attr.name] = NavigationProperty(attr.name, attr.name, attr.targets[0])
                if attr.type == "Owner":
                    continue
            if len(attr.targets) > 1:
                for target in attr.targets:
                    name = f"{attr.name}_{target}"
                    if attr.name == "regardingobjectid":
                        name = f"{attr.name}_{target}_{self.name}"
                    navs[name] = NavigationProperty(name, attr.name, target)
        return navs


def _a(name: str, type_: str, **kw: Any) -> Attribute:
    return Attribute(name=name, type=type_, **kw)


def _s(name: str, max_length: int, **kw: Any) -> Attribute:
    return Attribute(name=name, type="String", max_length=max_length, **kw)


def _opts(*labels: str, start: int = 1) -> tuple[Option, ...]:
    return tuple(Option(start + i, label) for i, label in enumerate(labels))


def _state_status(
    states: list[tuple[int, str, int]], statuses: list[tuple[int, str, int]]
) -> list[Attribute]:
    return [
        _a(
            "statecode",
            "State",
            options=tuple(Option(v, label, default_status=d) for v, label, d in states),
            valid_for_create=False,
            required="SystemRequired",
            default=states[0][0],
        ),
        _a(
            "statuscode",
            "Status",
            options=tuple(Option(v, label, state=s) for v, label, s in statuses),
            default=states[0][2],
        ),
    ]


ACTIVE_INACTIVE = _state_status(
    [(0, "Active", 1), (1, "Inactive", 2)], [(1, "Active", 0), (2, "Inactive", 1)]
)

INDUSTRY = _opts(
    "Accounting",
    "Agriculture and Non-petrol Natural Resource Extraction",
    "Broadcasting Printing and Publishing",
    "Brokers",
    "Building Supply Retail",
    "Business Services",
    "Consulting",
    "Consumer Services",
    "Design, Direction and Creative Management",
    "Distributors, Dispatchers and Processors",
    "Doctor's Offices and Clinics",
    "Durable Manufacturing",
    "Eating and Drinking Places",
    "Entertainment Retail",
    "Equipment Rental and Leasing",
    "Financial",
    "Food and Tobacco Processing",
    "Inbound Capital Intensive Processing",
    "Inbound Repair and Services",
    "Insurance",
    "Legal Services",
    "Non-Durable Merchandise Retail",
    "Outbound Consumer Service",
    "Petrochemical Extraction and Distribution",
    "Service Retail",
    "SIG Affiliations",
    "Social Services",
    "Special Outbound Trade Contractors",
    "Specialty Realty",
    "Transportation",
    "Utility Creation and Distribution",
    "Vehicle Retail",
    "Wholesale",
)
CUSTOMER_TYPE = _opts(
    "Competitor",
    "Consultant",
    "Customer",
    "Investor",
    "Partner",
    "Influencer",
    "Press",
    "Prospect",
    "Reseller",
    "Supplier",
    "Vendor",
    "Other",
)
DO_NOT = (Option(0, "Allow"), Option(1, "Do Not Allow"))
YES_NO = (Option(0, "No"), Option(1, "Yes"))
SALES_STAGE = (Option(0, "Qualify"), Option(1, "Develop"), Option(2, "Propose"), Option(3, "Close"))
LEAD_SOURCE = _opts(
    "Advertisement",
    "Employee Referral",
    "External Referral",
    "Partner",
    "Public Relations",
    "Seminar",
    "Trade Show",
    "Web",
    "Word of Mouth",
    "Other",
)
PARTICIPATION = _opts(
    "Sender",
    "To Recipient",
    "CC Recipient",
    "BCC Recipient",
    "Required attendee",
    "Optional attendee",
    "Organizer",
    "Regarding",
    "Owner",
    "Resource",
    "Customer",
    "Chat Participant",
    "Related",
)

SYSTEM_COLUMNS = (
    _a("createdon", "DateTime", valid_for_create=False, valid_for_update=False),
    _a("modifiedon", "DateTime", valid_for_create=False, valid_for_update=False),
    _a(
        "createdby",
        "Lookup",
        targets=("systemuser",),
        valid_for_create=False,
        valid_for_update=False,
    ),
    _a(
        "modifiedby",
        "Lookup",
        targets=("systemuser",),
        valid_for_create=False,
        valid_for_update=False,
    ),
    _a(
        "createdonbehalfby",
        "Lookup",
        targets=("systemuser",),
        valid_for_create=False,
        valid_for_update=False,
    ),
    _a(
        "modifiedonbehalfby",
        "Lookup",
        targets=("systemuser",),
        valid_for_create=False,
        valid_for_update=False,
    ),
    _a("versionnumber", "BigInt", valid_for_create=False, valid_for_update=False),
)
OWNER_COLUMNS = (
    _a("ownerid", "Owner", targets=("systemuser", "team"), required="SystemRequired"),
    _a(
        "owninguser",
        "Lookup",
        targets=("systemuser",),
        valid_for_create=False,
        valid_for_update=False,
    ),
    _a("owningteam", "Lookup", targets=("team",), valid_for_create=False, valid_for_update=False),
    _a(
        "owningbusinessunit",
        "Lookup",
        targets=("businessunit",),
        valid_for_create=False,
        valid_for_update=False,
    ),
)
ADDRESS1 = (
    _s("address1_line1", 250),
    _s("address1_line2", 250),
    _s("address1_line3", 250),
    _s("address1_city", 80),
    _s("address1_stateorprovince", 50),
    _s("address1_postalcode", 20),
    _s("address1_country", 80),
    _s("address1_county", 50),
    _a("address1_latitude", "Double", min_value=-90, max_value=90, precision=5),
    _a("address1_longitude", "Double", min_value=-180, max_value=180, precision=5),
    _a(
        "address1_composite",
        "Memo",
        max_length=1000,
        valid_for_create=False,
        valid_for_update=False,
    ),
)
MONEY_LIMIT = 100_000_000_000_000


def _money(name: str) -> Attribute:
    return _a(name, "Money", min_value=0, max_value=MONEY_LIMIT, precision=2)


def build_table(  # noqa: PLR0917 - a declarative table DSL
    name: str,
    entity_set: str,
    primary_id: str,
    primary_name: str,
    otc: int,
    columns: list[Attribute] | tuple[Attribute, ...],
    *,
    owned: bool = True,
    activity: bool = False,
    display: str = "",
    change_tracking: bool = True,
) -> Table:
    attrs: dict[str, Attribute] = {
        primary_id: _a(
            primary_id, "Uniqueidentifier", required="SystemRequired", valid_for_update=False
        )
    }
    for col in (*columns, *SYSTEM_COLUMNS, *(OWNER_COLUMNS if owned else ())):
        attrs[col.name] = col
    return Table(
        name=name,
        entity_set=entity_set,
        primary_id=primary_id,
        primary_name=primary_name,
        attributes=attrs,
        object_type_code=otc,
        ownership="UserOwned" if owned else "OrganizationOwned",
        is_activity=activity,
        display_name=display or name.capitalize(),
        change_tracking=change_tracking,
    )


def _activity(
    name: str, entity_set: str, otc: int, extra: list[Attribute], states: list[Attribute]
) -> Table:
    return build_table(
        name,
        entity_set,
        "activityid",
        "subject",
        otc,
        [
            _s("subject", 200, required="ApplicationRequired" if name != "task" else "None"),
            _a("description", "Memo", max_length=2000),
            _a("scheduledstart", "DateTime"),
            _a("scheduledend", "DateTime"),
            _a("actualstart", "DateTime"),
            _a("actualend", "DateTime"),
            _a(
                "regardingobjectid", "Lookup", targets=("account", "contact", "lead", "opportunity")
            ),
            _a(
                "activitytypecode",
                "EntityName",
                valid_for_create=False,
                valid_for_update=False,
                default=name,
            ),
            _a(
                "prioritycode",
                "Picklist",
                options=(Option(0, "Low"), Option(1, "Normal"), Option(2, "High")),
                default=1,
            ),
            *extra,
            *states,
        ],
        activity=True,
    )


def standard_tables() -> dict[str, Table]:
    """Fresh copies of the standard tables (each store mutates its own catalogue)."""
    tables = [
        build_table(
            "account",
            "accounts",
            "accountid",
            "name",
            1,
            [
                _s("name", 160, required="ApplicationRequired"),
                _s("accountnumber", 20),
                _s("websiteurl", 200),
                _s("telephone1", 50),
                _s("telephone2", 50),
                _s("fax", 50),
                _s("emailaddress1", 100),
                *ADDRESS1,
                _a("industrycode", "Picklist", options=INDUSTRY),
                _a("numberofemployees", "Integer", min_value=0, max_value=1_000_000_000),
                _money("revenue"),
                _a("customertypecode", "Picklist", options=CUSTOMER_TYPE),
                _a(
                    "accountcategorycode",
                    "Picklist",
                    options=(Option(1, "Preferred Customer"), Option(2, "Standard")),
                ),
                _a("parentaccountid", "Lookup", targets=("account",)),
                _a("primarycontactid", "Lookup", targets=("contact",)),
                _a("transactioncurrencyid", "Lookup", targets=("transactioncurrency",)),
                _a("donotemail", "Boolean", options=DO_NOT, default=False),
                _a("donotphone", "Boolean", options=DO_NOT, default=False),
                _a("creditonhold", "Boolean", options=YES_NO, default=False),
                _a("description", "Memo", max_length=2000),
                _s("tickersymbol", 10),
                *ACTIVE_INACTIVE,
            ],
        ),
        build_table(
            "contact",
            "contacts",
            "contactid",
            "fullname",
            2,
            [
                _s("firstname", 50),
                _s("lastname", 50, required="ApplicationRequired"),
                _s("fullname", 160, valid_for_create=False, valid_for_update=False),
                _s("jobtitle", 100),
                _s("emailaddress1", 100),
                _s("emailaddress2", 100),
                _s("telephone1", 50),
                _s("mobilephone", 50),
                *ADDRESS1,
                _a("parentcustomerid", "Customer", targets=("account", "contact")),
                _a("donotemail", "Boolean", options=DO_NOT, default=False),
                _a("donotphone", "Boolean", options=DO_NOT, default=False),
                _a("transactioncurrencyid", "Lookup", targets=("transactioncurrency",)),
                _a("description", "Memo", max_length=2000),
                _a("birthdate", "DateTime", date_only=True),
                *ACTIVE_INACTIVE,
            ],
        ),
        build_table(
            "lead",
            "leads",
            "leadid",
            "fullname",
            4,
            [
                _s("firstname", 50),
                _s("lastname", 50),
                _s("fullname", 160, valid_for_create=False, valid_for_update=False),
                _s("companyname", 100),
                _s("jobtitle", 100),
                _s("emailaddress1", 100),
                _s("telephone1", 50),
                _s("mobilephone", 50),
                _s("websiteurl", 200),
                _s("subject", 300, required="ApplicationRequired"),
                *ADDRESS1,
                _a("donotemail", "Boolean", options=DO_NOT, default=False),
                _a("parentaccountid", "Lookup", targets=("account",)),
                _a("parentcontactid", "Lookup", targets=("contact",)),
                _a("originatingleadid", "Lookup", targets=("lead",)),
                _a("transactioncurrencyid", "Lookup", targets=("transactioncurrency",)),
                _money("revenue"),
                _a("numberofemployees", "Integer", min_value=0, max_value=1_000_000_000),
                _a("industrycode", "Picklist", options=INDUSTRY),
                _a("leadsourcecode", "Picklist", options=LEAD_SOURCE),
                _a("salesstage", "Picklist", options=(Option(0, "Qualify"),)),
                _a("description", "Memo", max_length=2000),
                *_state_status(
                    [(0, "Open", 1), (1, "Qualified", 3), (2, "Disqualified", 4)],
                    [
                        (1, "New", 0),
                        (2, "Contacted", 0),
                        (3, "Qualified", 1),
                        (4, "Lost", 2),
                        (5, "Cannot Contact", 2),
                        (6, "No Longer Interested", 2),
                        (7, "Canceled", 2),
                    ],
                ),
            ],
        ),
        build_table(
            "opportunity",
            "opportunities",
            "opportunityid",
            "name",
            3,
            [
                _s("name", 300, required="ApplicationRequired"),
                _money("estimatedvalue"),
                _money("actualvalue"),
                _a("estimatedclosedate", "DateTime", date_only=True),
                _a("actualclosedate", "DateTime", date_only=True),
                _a("parentaccountid", "Lookup", targets=("account",)),
                _a("parentcontactid", "Lookup", targets=("contact",)),
                _a("customerid", "Customer", targets=("account", "contact")),
                _a(
                    "transactioncurrencyid",
                    "Lookup",
                    targets=("transactioncurrency",),
                    required="ApplicationRequired",
                ),
                _s("stepname", 200),
                _a("salesstage", "Picklist", options=SALES_STAGE),
                _a("salesstagecode", "Picklist", options=(Option(1, "Default Value"),)),
                _a("closeprobability", "Integer", min_value=0, max_value=100),
                _a("description", "Memo", max_length=2000),
                *_state_status(
                    [(0, "Open", 1), (1, "Won", 3), (2, "Lost", 4)],
                    [
                        (1, "In Progress", 0),
                        (2, "On Hold", 0),
                        (3, "Won", 1),
                        (4, "Canceled", 2),
                        (5, "Out-Sold", 2),
                    ],
                ),
            ],
        ),
        build_table(
            "systemuser",
            "systemusers",
            "systemuserid",
            "fullname",
            8,
            [
                _s("fullname", 200, valid_for_create=False, valid_for_update=False),
                _s("firstname", 64),
                _s("lastname", 64),
                _s("internalemailaddress", 100, required="SystemRequired"),
                _s("domainname", 1024, required="SystemRequired"),
                _a(
                    "isdisabled",
                    "Boolean",
                    options=(Option(0, "Enabled"), Option(1, "Disabled")),
                    default=False,
                    valid_for_create=False,
                ),
                _a("azureactivedirectoryobjectid", "Uniqueidentifier"),
                _a("applicationid", "Uniqueidentifier"),
                _a(
                    "businessunitid", "Lookup", targets=("businessunit",), required="SystemRequired"
                ),
                _a(
                    "accessmode",
                    "Picklist",
                    options=(
                        Option(0, "Read-Write"),
                        Option(1, "Administrative"),
                        Option(2, "Read"),
                        Option(3, "Support User"),
                        Option(4, "Non-interactive"),
                        Option(5, "Delegated Admin"),
                    ),
                    default=0,
                ),
                _s("title", 128),
                _s("jobtitle", 100),
            ],
            owned=False,
            display="User",
        ),
        build_table(
            "businessunit",
            "businessunits",
            "businessunitid",
            "name",
            10,
            [
                _s("name", 160, required="SystemRequired"),
                _a("parentbusinessunitid", "Lookup", targets=("businessunit",)),
            ],
            owned=False,
            display="Business Unit",
        ),
        build_table(
            "team",
            "teams",
            "teamid",
            "name",
            9,
            [
                _s("name", 160, required="SystemRequired"),
                _a(
                    "businessunitid", "Lookup", targets=("businessunit",), required="SystemRequired"
                ),
                _a(
                    "teamtype",
                    "Picklist",
                    options=(Option(0, "Owner"), Option(1, "Access")),
                    default=0,
                ),
            ],
            owned=False,
        ),
        build_table(
            "transactioncurrency",
            "transactioncurrencies",
            "transactioncurrencyid",
            "currencyname",
            9105,
            [
                _s("currencyname", 100, required="SystemRequired"),
                _s("isocurrencycode", 5, required="SystemRequired"),
                _s("currencysymbol", 10),
                _a("exchangerate", "Decimal", precision=10),
                _a("currencyprecision", "Integer", min_value=0, max_value=4),
            ],
            owned=False,
            display="Currency",
        ),
        build_table(
            "product",
            "products",
            "productid",
            "name",
            1024,
            [
                _s("name", 100, required="SystemRequired"),
                _s("productnumber", 100, required="SystemRequired"),
                _a("description", "Memo", max_length=2000),
                _money("price"),
                _a("transactioncurrencyid", "Lookup", targets=("transactioncurrency",)),
                *_state_status(
                    [
                        (0, "Active", 1),
                        (1, "Retired", 2),
                        (2, "Draft", 0),
                        (3, "Under Revision", 3),
                    ],
                    [
                        (1, "Active", 0),
                        (2, "Retired", 1),
                        (0, "Draft", 2),
                        (3, "Under Revision", 3),
                    ],
                ),
            ],
            owned=False,
        ),
        build_table(
            "organization",
            "organizations",
            "organizationid",
            "name",
            1019,
            [
                _s("name", 160, required="SystemRequired"),
                _a("expirechangetrackingindays", "Integer", min_value=0, max_value=365, default=7),
                _a("basecurrencyid", "Lookup", targets=("transactioncurrency",)),
            ],
            owned=False,
        ),
        _activity(
            "task",
            "tasks",
            4212,
            [
                _a("percentcomplete", "Integer", min_value=0, max_value=100),
            ],
            _state_status(
                [(0, "Open", 2), (1, "Completed", 5), (2, "Canceled", 6)],
                [
                    (2, "Not Started", 0),
                    (3, "In Progress", 0),
                    (4, "Waiting on someone else", 0),
                    (7, "Deferred", 0),
                    (5, "Completed", 1),
                    (6, "Canceled", 2),
                ],
            ),
        ),
        _activity(
            "appointment",
            "appointments",
            4201,
            [
                _s("location", 200),
            ],
            _state_status(
                [(0, "Open", 1), (1, "Completed", 3), (2, "Canceled", 4), (3, "Scheduled", 5)],
                [
                    (1, "Free", 0),
                    (2, "Tentative", 0),
                    (3, "Completed", 1),
                    (4, "Canceled", 2),
                    (5, "Busy", 3),
                    (6, "Out of Office", 3),
                ],
            ),
        ),
        _activity(
            "phonecall",
            "phonecalls",
            4210,
            [
                _s("phonenumber", 200),
                _a(
                    "directioncode",
                    "Boolean",
                    options=(Option(0, "Incoming"), Option(1, "Outgoing")),
                    default=True,
                ),
            ],
            _state_status(
                [(0, "Open", 1), (1, "Completed", 2), (2, "Canceled", 3)],
                [(1, "Open", 0), (2, "Made", 1), (4, "Received", 1), (3, "Canceled", 2)],
            ),
        ),
        _activity(
            "email",
            "emails",
            4202,
            [
                _s("sender", 250),
                _s("torecipients", 500),
                _a(
                    "directioncode",
                    "Boolean",
                    options=(Option(0, "Incoming"), Option(1, "Outgoing")),
                    default=True,
                ),
            ],
            _state_status(
                [(0, "Open", 1), (1, "Completed", 3), (2, "Canceled", 5)],
                [
                    (1, "Draft", 0),
                    (8, "Failed", 0),
                    (2, "Completed", 1),
                    (3, "Sent", 1),
                    (4, "Received", 1),
                    (6, "Pending Send", 1),
                    (7, "Sending", 1),
                    (5, "Canceled", 2),
                ],
            ),
        ),
        build_table(
            "activityparty",
            "activityparties",
            "activitypartyid",
            "partyidname",
            135,
            [
                _s("partyidname", 400, valid_for_create=False, valid_for_update=False),
                _a("activityid", "Lookup", targets=("task", "appointment", "phonecall", "email")),
                _a("partyid", "Lookup", targets=("account", "contact", "lead", "systemuser")),
                _a("participationtypemask", "Picklist", options=PARTICIPATION),
                _s("addressused", 200),
            ],
            owned=False,
            display="Activity Party",
            change_tracking=False,
        ),
    ]
    return {t.name: t for t in tables}


@dataclass
class Catalogue:
    """All tables a store serves, addressable by logical name or entity-set name."""

    tables: dict[str, Table] = field(default_factory=standard_tables)

    def by_set(self, entity_set: str) -> Table | None:
        return next((t for t in self.tables.values() if t.entity_set == entity_set), None)

    def get(self, name: str) -> Table | None:
        return self.tables.get(name)

    def add_attribute(self, table: str, attribute: Attribute) -> None:
        self.tables[table].attributes[attribute.name] = attribute

    def collection_navigations(self, table: str) -> dict[str, CollectionNavigation]:
        """One-to-many navigations pointing at `table` (`Account_Tasks`, `user_accounts`…)."""
        out: dict[str, CollectionNavigation] = {}
        for other in self.tables.values():
            for attr in other.attributes.values():
                if not attr.is_lookup or table not in attr.targets:
                    continue
                if attr.name in {
                    "createdby",
                    "modifiedby",
                    "createdonbehalfby",
                    "modifiedonbehalfby",
                }:
                    continue
                name = _relationship_name(table, other, attr)
                out[name] = CollectionNavigation(name, other.name, attr.name)
        return out


def _relationship_name(table: str, other: Table, attr: Attribute) -> str:
    if attr.name == "regardingobjectid":
        return f"{table.capitalize()}_{other.name.capitalize()}s"
    if attr.type == "Customer":
        return f"{other.name}_customer_{table}s"
    if attr.type == "Owner":
        return f"{'user' if table == 'systemuser' else table}_{other.name}s"
    if attr.name == "activityid":
        return f"{table}_activity_parties"
    return f"{other.name}_{attr.name}_{table}"


def with_option_set(attr: Attribute, options: tuple[Option, ...]) -> Attribute:
    return replace(attr, options=options)
