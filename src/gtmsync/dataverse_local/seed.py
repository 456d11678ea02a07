"""A realistic, deterministic tenant for the demo and tests (`gtmsync dataverse seed`).

Identity: a business unit tree (Contoso > Sales > Sales West, Contoso > Marketing) and
~15 systemusers, each linked to an Entra user by `azureactivedirectoryobjectid`: Avery
Admin (Global Administrator + System Administrator), Dana Dynamics (System Administrator
but NOT a global admin), salespeople, a read-only user, a delegate, two disabled users, and
an application user for the pre-registered gtmsync app (`GTMSYNC_CLIENT_ID` /
`GTMSYNC_CLIENT_SECRET`, printed by the CLI). Data: a USD currency, ~200 accounts, ~500
contacts, ~150 leads, ~120 opportunities, ~20 products and tasks/appointments/phone calls
regarding them, with real option-set values and consistent statecode/statuscode pairs read
from the catalogue.

Every id is derived from the seed, so the same seed gives the same tenant, and seeding
twice changes nothing (it checks before inserting). Writes go through `store.insert` and
`store.bulk_insert`, the in-process API of the data plane.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from faker import Faker

from gtmsync.dataverse_local.directory import Directory, EntraUser
from gtmsync.dataverse_local.security import (
    DELEGATE,
    READ_ONLY,
    SALESPERSON,
    SYSTEM_ADMINISTRATOR,
    SecurityModel,
)

GTMSYNC_CLIENT_ID = "3d2c6a8e-5f0b-4c1e-9a7d-6b8e2f4a1c90"
GTMSYNC_CLIENT_SECRET = "gtmsync-local-dev-secret-not-for-production"  # noqa: S105 - local stand-in
GTMSYNC_REDIRECT_URIS = (
    "http://localhost:8000/connection/callback",
    "http://127.0.0.1:8000/connection/callback",
)
SYSTEM_USER_ID = uuid.UUID("00000000-0000-0000-0000-00000000a001")  # the SYSTEM user
_NS = uuid.UUID("6f1d3a9c-3c1e-4f7a-9b61-2a0b9e5d7c11")


@dataclass(frozen=True)
class SeedUser:
    first: str
    last: str
    roles: tuple[str, ...]
    global_admin: bool = False
    disabled: bool = False


SEED_USERS: tuple[SeedUser, ...] = (
    SeedUser("Avery", "Admin", (SYSTEM_ADMINISTRATOR,), global_admin=True),
    SeedUser("Dana", "Dynamics", (SYSTEM_ADMINISTRATOR,)),
    SeedUser("Sam", "Seller", (SALESPERSON,)),
    SeedUser("Riley", "Rep", (SALESPERSON,)),
    SeedUser("Jordan", "Lee", (SALESPERSON,)),
    SeedUser("Casey", "Kim", (SALESPERSON,)),
    SeedUser("Morgan", "Diaz", (SALESPERSON,)),
    SeedUser("Taylor", "Brooks", (SALESPERSON,)),
    SeedUser("Jamie", "Fox", (SALESPERSON,)),
    SeedUser("Alex", "Chen", (SALESPERSON,)),
    SeedUser("Robin", "Reader", (READ_ONLY,)),
    SeedUser("Pat", "Proxy", (SALESPERSON, DELEGATE)),
    SeedUser("Former", "Employee", (SALESPERSON,), disabled=True),
    SeedUser("Left", "Company", (SALESPERSON,), disabled=True),
)


@dataclass(frozen=True)
class SeedResult:
    tenant_id: str
    client_id: str
    client_secret: str
    users: dict[str, uuid.UUID]  # UPN -> systemuserid
    created: bool  # False when the data was already there
    redirect_uris: tuple[str, ...] = ()


def _id(seed: int, *parts: object) -> uuid.UUID:
    return uuid.uuid5(_NS, "/".join(str(p) for p in (seed, *parts)))


def root_business_unit(store: Any, *, name: str = "Contoso") -> uuid.UUID:
    """The root business unit (created on first call)."""
    table = store.tables["businessunit"]
    with store.engine.connect() as conn:
        found = conn.execute(
            sa.select(table.c.businessunitid).where(table.c.parentbusinessunitid.is_(None))
        ).first()
    if found is not None:
        return uuid.UUID(str(found[0]))
    bu_id = uuid.uuid5(_NS, f"root-bu/{name}")
    store.insert("businessunit", {"businessunitid": bu_id, "name": name}, as_user=SYSTEM_USER_ID)
    return bu_id


def provision_user(
    store: Any,
    directory: Directory,
    security: SecurityModel,
    *,
    first: str,
    last: str,
    upn: str | None = None,
    roles: tuple[str, ...] = (SALESPERSON,),
    global_admin: bool = False,
    disabled: bool = False,
    systemuserid: uuid.UUID | None = None,
    object_id: str | None = None,
    business_unit: uuid.UUID | None = None,
) -> tuple[EntraUser, uuid.UUID]:
    """An Entra user plus its linked systemuser with `roles` (idempotent by UPN)."""
    domain = directory.tenant().domain
    upn = upn or f"{first}.{last}@{domain}".lower()
    entra = directory.add_user(
        f"{first} {last}", upn, object_id=object_id, global_admin=global_admin, enabled=not disabled
    )
    row = store.find_systemuser(aad_object_id=entra.object_id)
    if row is not None:
        user_id = uuid.UUID(str(row["systemuserid"]))
    else:
        user_id = systemuserid or uuid.uuid5(_NS, f"systemuser/{upn}")
        store.insert(
            "systemuser",
            {
                "systemuserid": user_id,
                "firstname": first,
                "lastname": last,
                "internalemailaddress": upn,
                "domainname": upn,
                "azureactivedirectoryobjectid": uuid.UUID(entra.object_id),
                "isdisabled": disabled,
                "businessunitid": business_unit or root_business_unit(store),
                "accessmode": 0,
            },
            as_user=SYSTEM_USER_ID,
        )
    for role in roles:
        security.assign_role(user_id, role)
    return entra, user_id


def provision_application_user(
    store: Any,
    directory: Directory,
    security: SecurityModel,
    *,
    client_id: str,
    name: str,
    roles: tuple[str, ...] = (SYSTEM_ADMINISTRATOR,),
) -> uuid.UUID:
    """The application user (S2S) of an app registration (idempotent by application id)."""
    app = directory.app(client_id)
    if app is None:
        raise KeyError(f"register the app {client_id} in the directory first")
    row = store.find_systemuser(application_id=client_id)
    if row is not None:
        user_id = uuid.UUID(str(row["systemuserid"]))
    else:
        user_id = uuid.uuid5(_NS, f"appuser/{client_id}")
        email = f"{client_id}@{directory.tenant().domain}"
        store.insert(
            "systemuser",
            {
                "systemuserid": user_id,
                "firstname": "# " + name,
                "lastname": "",
                "internalemailaddress": email,
                "domainname": email,
                "applicationid": uuid.UUID(client_id),
                "azureactivedirectoryobjectid": uuid.UUID(app.service_principal_id),
                "businessunitid": root_business_unit(store),
                "accessmode": 4,
            },
            as_user=SYSTEM_USER_ID,
        )
    for role in roles:
        security.assign_role(user_id, role)
    return user_id


def _business_units(store: Any, seed_value: int, root: uuid.UUID) -> dict[str, uuid.UUID]:
    """Root > Sales > Sales West, and Root > Marketing (created once)."""
    tree = {"Sales": "root", "Marketing": "root", "Sales West": "Sales"}
    units = {"root": root}
    for name, parent in tree.items():
        unit_id = _id(seed_value, "businessunit", name)
        if store.get("businessunit", unit_id) is None:
            store.insert(
                "businessunit",
                {
                    "businessunitid": unit_id,
                    "name": f"Contoso {name}",
                    "parentbusinessunitid": units[parent],
                },
                as_user=SYSTEM_USER_ID,
            )
        units[name] = unit_id
    return units


def _ensure_system_user(store: Any) -> None:
    if store.find_systemuser(systemuserid=SYSTEM_USER_ID) is None:
        store.insert(
            "systemuser",
            {
                "systemuserid": SYSTEM_USER_ID,
                "firstname": "",
                "lastname": "SYSTEM",
                "internalemailaddress": "system@localhost",
                "domainname": "SYSTEM",
                "businessunitid": root_business_unit(store),
                "accessmode": 4,
            },
            as_user=SYSTEM_USER_ID,
        )


def _options(store: Any, table: str, column: str) -> list[int]:
    return [o.value for o in store.catalogue.tables[table].attributes[column].options]


def _status_pairs(store: Any, table: str) -> list[tuple[int, int]]:
    options = store.catalogue.tables[table].attributes["statuscode"].options
    return [(int(o.state), o.value) for o in options if o.state is not None]


def seed(
    store: Any,
    directory: Directory,
    security: SecurityModel,
    *,
    seed_value: int = 7,
    accounts: int = 200,
    contacts: int = 500,
    leads: int = 150,
    opportunities: int = 120,
    products: int = 20,
    redirect_uris: tuple[str, ...] = GTMSYNC_REDIRECT_URIS,
) -> SeedResult:
    """Load the demo tenant into `store` and `directory`; safe to call again."""
    tenant = directory.tenant()
    root = root_business_unit(store)
    _ensure_system_user(store)
    units = _business_units(store, seed_value, root)
    users: dict[str, uuid.UUID] = {}
    for index, spec in enumerate(SEED_USERS):
        unit = root
        if spec.roles == (SALESPERSON,):
            unit = units["Sales West"] if index % 2 else units["Sales"]
        entra, user_id = provision_user(
            store,
            directory,
            security,
            first=spec.first,
            last=spec.last,
            roles=spec.roles,
            global_admin=spec.global_admin,
            disabled=spec.disabled,
            object_id=str(_id(seed_value, "entra", spec.first, spec.last)),
            business_unit=unit,
        )
        users[entra.upn] = user_id
    app, _ = directory.register_app(
        "gtmsync",
        client_id=GTMSYNC_CLIENT_ID,
        secret=GTMSYNC_CLIENT_SECRET,
        redirect_uris=redirect_uris,
        multi_tenant=True,
    )
    for uri in redirect_uris:
        if uri not in app.redirect_uris:
            directory.add_redirect_uri(app.client_id, uri)
    admin = directory.user_by_upn(f"avery.admin@{tenant.domain}")
    if admin is not None and not directory.has_tenant_consent(app.client_id):
        directory.grant_consent(app.client_id, granted_by=admin.object_id, tenant_wide=True)
    app_user = provision_application_user(
        store, directory, security, client_id=app.client_id, name="gtmsync"
    )
    users[f"{app.client_id}@{tenant.domain}"] = app_user
    org_id = _id(seed_value, "organization")
    created = store.get("organization", org_id) is None
    if created:
        _seed_data(
            store,
            seed_value,
            org_id,
            owners=[users[u] for u, s in zip(users, SEED_USERS, strict=False) if not s.disabled],
            counts=(accounts, contacts, leads, opportunities, products),
        )
    registered = directory.app(app.client_id)
    return SeedResult(
        tenant.tenant_id,
        app.client_id,
        GTMSYNC_CLIENT_SECRET,
        users,
        created,
        registered.redirect_uris if registered else (),
    )


def _seed_data(
    store: Any,
    seed_value: int,
    org_id: uuid.UUID,
    *,
    owners: list[uuid.UUID],
    counts: tuple[int, int, int, int, int],
) -> None:
    n_accounts, n_contacts, n_leads, n_opps, n_products = counts
    rng = random.Random(seed_value)  # noqa: S311 - reproducible demo data
    fake = Faker("en_US")
    fake.seed_instance(seed_value)
    as_user = SYSTEM_USER_ID
    usd = _id(seed_value, "currency", "USD")
    store.insert(
        "transactioncurrency",
        {
            "transactioncurrencyid": usd,
            "currencyname": "US Dollar",
            "isocurrencycode": "USD",
            "currencysymbol": "$",
            "exchangerate": 1,
            "currencyprecision": 2,
        },
        as_user=as_user,
    )

    def owner() -> tuple[str, uuid.UUID]:
        return ("systemuser", rng.choice(owners))

    industries = _options(store, "account", "industrycode")
    customer_types = _options(store, "account", "customertypecode")
    lead_sources = _options(store, "lead", "leadsourcecode")
    account_ids = [_id(seed_value, "account", i) for i in range(n_accounts)]
    account_rows = []
    for i, account_id in enumerate(account_ids):
        company = fake.unique.company()
        domain = company.lower().replace(",", "").replace(" ", "")[:20] + ".example.com"
        account_rows.append(
            {
                "accountid": account_id,
                "name": company,
                "accountnumber": f"AC-{10000 + i}",
                "websiteurl": f"https://www.{domain}",
                "telephone1": fake.phone_number()[:50],
                "emailaddress1": f"info@{domain}",
                "address1_line1": fake.street_address(),
                "address1_city": fake.city(),
                "address1_stateorprovince": fake.state_abbr(),
                "address1_postalcode": fake.postcode(),
                "address1_country": "United States",
                "industrycode": rng.choice(industries),
                "customertypecode": rng.choice(customer_types),
                "numberofemployees": rng.choice([12, 48, 150, 420, 1200, 5400, 23000]),
                "revenue": rng.choice([250_000, 1_200_000, 8_500_000, 42_000_000, 310_000_000]),
                "transactioncurrencyid": usd,
                "ownerid": owner(),
                **_state(rng, _status_pairs(store, "account"), active_share=0.92),
            }
        )
    store.bulk_insert("account", account_rows, as_user=as_user)

    contact_ids = [_id(seed_value, "contact", i) for i in range(n_contacts)]
    contact_rows = []
    for i, contact_id in enumerate(contact_ids):
        first, last = fake.first_name(), fake.last_name()
        account = account_rows[i % n_accounts] if n_accounts else None
        row: dict[str, Any] = {
            "contactid": contact_id,
            "firstname": first,
            "lastname": last,
            "jobtitle": fake.job()[:100],
            "telephone1": fake.phone_number()[:50],
            "donotemail": rng.random() < 0.08,
            "transactioncurrencyid": usd,
            "ownerid": owner(),
            **_state(rng, _status_pairs(store, "contact"), active_share=0.95),
        }
        if account is not None:
            domain = str(account["emailaddress1"]).split("@", 1)[1]
            row["emailaddress1"] = f"{first}.{last}{i}@{domain}".lower()
            row["parentcustomerid"] = ("account", account["accountid"])
        contact_rows.append(row)
    store.bulk_insert("contact", contact_rows, as_user=as_user)

    lead_rows = []
    for i in range(n_leads):
        first, last = fake.first_name(), fake.last_name()
        company = fake.company()
        lead_rows.append(
            {
                "leadid": _id(seed_value, "lead", i),
                "firstname": first,
                "lastname": last,
                "companyname": company[:100],
                "subject": f"Interest from {company}"[:300],
                "emailaddress1": f"{first}.{last}{i}@lead.example.com".lower(),
                "jobtitle": fake.job()[:100],
                "leadsourcecode": rng.choice(lead_sources),
                "industrycode": rng.choice(industries),
                "transactioncurrencyid": usd,
                "ownerid": owner(),
                **_state(rng, _status_pairs(store, "lead"), active_share=0.7),
            }
        )
    store.bulk_insert("lead", lead_rows, as_user=as_user)

    stages = _options(store, "opportunity", "salesstage")
    opp_rows = []
    today = dt.date(2026, 11, 1)
    for i in range(n_opps):
        account = account_rows[rng.randrange(n_accounts)] if n_accounts else None
        row = {
            "opportunityid": _id(seed_value, "opportunity", i),
            "name": f"{rng.choice(['Renewal', 'Expansion', 'New business', 'Pilot'])} - "
            f"{account['name'] if account else fake.company()}"[:300],
            "estimatedvalue": rng.choice([5_000, 12_500, 40_000, 95_000, 250_000]),
            "estimatedclosedate": today + dt.timedelta(days=rng.randint(-60, 180)),
            "salesstage": rng.choice(stages),
            "closeprobability": rng.choice([10, 25, 50, 75, 90]),
            "transactioncurrencyid": usd,
            "ownerid": owner(),
            **_state(rng, _status_pairs(store, "opportunity"), active_share=0.75),
        }
        if account is not None:
            row["customerid"] = ("account", account["accountid"])
            row["parentaccountid"] = account["accountid"]
        opp_rows.append(row)
    store.bulk_insert("opportunity", opp_rows, as_user=as_user)

    product_rows = [
        {
            "productid": _id(seed_value, "product", i),
            "name": f"{rng.choice(['Data', 'Insights', 'Signals', 'Enrich'])} "
            f"{rng.choice(['Starter', 'Pro', 'Enterprise', 'Add-on'])} {i + 1}",
            "productnumber": f"PRD-{100 + i}",
            "price": rng.choice([99, 499, 1_500, 12_000]),
            "transactioncurrencyid": usd,
            "statecode": 0,
            "statuscode": 1,
        }
        for i in range(n_products)
    ]
    store.bulk_insert("product", product_rows, as_user=as_user)

    regarding = [("account", r["accountid"]) for r in account_rows] + [
        ("contact", r["contactid"]) for r in contact_rows[:100]
    ]
    for table, count, subject in (
        ("task", max(1, n_accounts // 2), "Follow up"),
        ("appointment", max(1, n_accounts // 4), "Meeting"),
        ("phonecall", max(1, n_accounts // 4), "Call"),
    ):
        if not regarding:
            break
        rows = []
        for i in range(count):
            target = regarding[rng.randrange(len(regarding))]
            start = dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC) + dt.timedelta(
                hours=rng.randint(0, 1400)
            )
            row = {
                "activityid": _id(seed_value, table, i),
                "subject": f"{subject} #{i + 1}",
                "regardingobjectid": target,
                "scheduledstart": start,
                "scheduledend": start + dt.timedelta(minutes=30),
                "ownerid": owner(),
                **_state(rng, _status_pairs(store, table), active_share=0.6),
            }
            if table == "appointment":
                row["location"] = rng.choice(["Teams", "Customer site", "HQ"])
            if table == "phonecall":
                row["phonenumber"] = fake.phone_number()[:200]
            rows.append(row)
        store.bulk_insert(table, rows, as_user=as_user)

    store.insert(
        "organization",
        {"organizationid": org_id, "name": "Contoso (local)", "basecurrencyid": usd},
        as_user=as_user,
    )


def _state(
    rng: random.Random, pairs: list[tuple[int, int]], *, active_share: float
) -> dict[str, int]:
    """A consistent statecode/statuscode pair, mostly in the first (open/active) state."""
    if not pairs:
        return {}
    first_state = pairs[0][0]
    open_pairs = [p for p in pairs if p[0] == first_state]
    closed = [p for p in pairs if p[0] != first_state] or open_pairs
    state, status = rng.choice(open_pairs if rng.random() < active_share else closed)
    return {"statecode": state, "statuscode": status}
