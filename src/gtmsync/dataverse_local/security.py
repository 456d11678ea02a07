"""Security roles, field security and impersonation: who may do what (spec §3.8, §8.2).

A systemuser's privileges are the union of its roles' privileges, as in Dataverse (the
local server models every privilege at Organization depth: no business-unit or owner
scoping). Built-in roles:

- **System Administrator**: every privilege on every table, `prvActOnBehalfOfAnotherUser`,
  and every secured column;
- **Salesperson**: create/read/write/append on account, contact and lead and on the
  activities (task, appointment, phonecall, email, activityparty), as Dynamics' Salesperson
  role lets sellers log their own activities; read on opportunity, product, systemuser and
  the reference tables;
- **Read-only**: read on every table;
- **Delegate**: `prvActOnBehalfOfAnotherUser` only (pair it with a data role).

Tests define more with `SecurityModel.define_role`. Column security marks `(table, column)`
pairs secured; a field security profile lets its holders read some of them; everyone else
(except System Administrators) reads them as absent. Impersonation needs the caller to
hold `prvActOnBehalfOfAnotherUser`; the effective privileges are the intersection of both
users' and the unreadable columns the union.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Engine, MetaData, String, Table, Text, delete, insert, select

from gtmsync.dataverse_local.errors import DataverseLocalError
from gtmsync.dataverse_local.principal import Access, Principal

ACT_ON_BEHALF = "prvActOnBehalfOfAnotherUser"
SYSTEM_ADMINISTRATOR = "System Administrator"
SALESPERSON = "Salesperson"
READ_ONLY = "Read-only"
DELEGATE = "Delegate"
SYSTEMUSER_OTC = 8

metadata = MetaData()
roles_table = Table(
    "sec_roles",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("definition", Text, nullable=False),
)
user_roles_table = Table(
    "sec_user_roles",
    metadata,
    Column("systemuserid", String(36), primary_key=True),
    Column("role", String(100), primary_key=True),
)
secured_columns_table = Table(
    "sec_secured_columns",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("attribute", String(100), primary_key=True),
)
profiles_table = Table(
    "sec_field_profiles",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("readable", Text, nullable=False),  # JSON list of [table, attribute]
)
user_profiles_table = Table(
    "sec_user_field_profiles",
    metadata,
    Column("systemuserid", String(36), primary_key=True),
    Column("profile", String(100), primary_key=True),
)

_WRITE = (Access.CREATE, Access.READ, Access.WRITE, Access.APPEND, Access.APPEND_TO)


@dataclass(frozen=True)
class Role:
    """A named set of table privileges plus special privileges."""

    name: str
    privileges: frozenset[tuple[str, Access]] = field(default_factory=frozenset)
    special: frozenset[str] = field(default_factory=frozenset)
    reads_secured_columns: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "privileges": sorted([t, a.value] for t, a in self.privileges),
                "special": sorted(self.special),
                "reads_secured_columns": self.reads_secured_columns,
            }
        )

    @classmethod
    def from_json(cls, name: str, text: str) -> Role:
        data = json.loads(text)
        return cls(
            name=name,
            privileges=frozenset((t, Access(a)) for t, a in data["privileges"]),
            special=frozenset(data["special"]),
            reads_secured_columns=bool(data["reads_secured_columns"]),
        )


def _grant(tables: Iterable[str], accesses: Iterable[Access]) -> frozenset[tuple[str, Access]]:
    accesses = tuple(accesses)
    return frozenset((t, a) for t in tables for a in accesses)


BUILT_IN_ROLES: dict[str, Role] = {
    SYSTEM_ADMINISTRATOR: Role(
        SYSTEM_ADMINISTRATOR,
        _grant([Principal.ALL_TABLES], Access),
        frozenset({ACT_ON_BEHALF}),
        reads_secured_columns=True,
    ),
    SALESPERSON: Role(
        SALESPERSON,
        _grant(
            [
                "account",
                "contact",
                "lead",
                "task",
                "appointment",
                "phonecall",
                "email",
                "activityparty",
            ],
            _WRITE,
        )
        | _grant(
            [
                "opportunity",
                "product",
                "systemuser",
                "businessunit",
                "team",
                "transactioncurrency",
                "organization",
            ],
            [Access.READ],
        ),
    ),
    READ_ONLY: Role(READ_ONLY, _grant([Principal.ALL_TABLES], [Access.READ])),
    DELEGATE: Role(DELEGATE, special=frozenset({ACT_ON_BEHALF})),
}


@dataclass(frozen=True)
class SystemUser:
    """The facts about a systemuser that authorisation needs."""

    systemuserid: uuid.UUID
    fullname: str
    is_disabled: bool
    aad_object_id: str | None
    application_id: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SystemUser:
        def text(value: Any) -> str | None:
            return None if value is None else str(value).lower()

        return cls(
            systemuserid=uuid.UUID(str(row["systemuserid"])),
            fullname=str(row.get("fullname") or ""),
            is_disabled=bool(row.get("isdisabled")),
            aad_object_id=text(row.get("azureactivedirectoryobjectid")),
            application_id=text(row.get("applicationid")),
        )

    @property
    def is_application_user(self) -> bool:
        return self.application_id is not None


class SecurityModel:
    """Roles and field security in `sec_*` tables on the store's engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        on_secure: Callable[[str, str, bool], None] | None = None,
    ) -> None:
        self.engine = engine
        # Told about every secured column, so the data plane's metadata can say IsSecured.
        self.on_secure = on_secure
        metadata.create_all(engine)
        if on_secure is not None:
            for table, attribute in self.secured_columns():
                on_secure(table, attribute, True)

    def secured_columns(self) -> set[tuple[str, str]]:
        with self.engine.connect() as conn:
            return {
                (row.table_name, row.attribute)
                for row in conn.execute(select(secured_columns_table))
            }

    def define_role(self, role: Role) -> Role:
        """Create or replace a custom role (built-in names cannot be redefined)."""
        if role.name in BUILT_IN_ROLES:
            raise ValueError(f"role {role.name!r} is built in; pick another name")
        with self.engine.begin() as conn:
            conn.execute(delete(roles_table).where(roles_table.c.name == role.name))
            conn.execute(insert(roles_table).values(name=role.name, definition=role.to_json()))
        return role

    def role(self, name: str) -> Role:
        if name in BUILT_IN_ROLES:
            return BUILT_IN_ROLES[name]
        with self.engine.connect() as conn:
            text = conn.execute(
                select(roles_table.c.definition).where(roles_table.c.name == name)
            ).scalar()
        if text is None:
            raise KeyError(f"no security role named {name!r}; define it with define_role first")
        return Role.from_json(name, text)

    def assign_role(self, systemuserid: uuid.UUID, role_name: str) -> None:
        self.role(role_name)
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(user_roles_table.c.role).where(
                    user_roles_table.c.systemuserid == str(systemuserid),
                    user_roles_table.c.role == role_name,
                )
            ).first()
            if exists is None:
                conn.execute(
                    insert(user_roles_table).values(systemuserid=str(systemuserid), role=role_name)
                )

    def remove_role(self, systemuserid: uuid.UUID, role_name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(user_roles_table).where(
                    user_roles_table.c.systemuserid == str(systemuserid),
                    user_roles_table.c.role == role_name,
                )
            )

    def roles_of(self, systemuserid: uuid.UUID) -> list[Role]:
        with self.engine.connect() as conn:
            names = list(
                conn.execute(
                    select(user_roles_table.c.role).where(
                        user_roles_table.c.systemuserid == str(systemuserid)
                    )
                ).scalars()
            )
        return [self.role(n) for n in sorted(names)]

    def secure_column(self, table: str, attribute: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(secured_columns_table).where(
                    secured_columns_table.c.table_name == table,
                    secured_columns_table.c.attribute == attribute,
                )
            )
            conn.execute(
                insert(secured_columns_table).values(table_name=table, attribute=attribute)
            )
        if self.on_secure is not None:
            self.on_secure(table, attribute, True)

    def unsecure_column(self, table: str, attribute: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(secured_columns_table).where(
                    secured_columns_table.c.table_name == table,
                    secured_columns_table.c.attribute == attribute,
                )
            )
        if self.on_secure is not None:
            self.on_secure(table, attribute, False)

    def define_field_profile(self, name: str, readable: Iterable[tuple[str, str]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(profiles_table).where(profiles_table.c.name == name))
            conn.execute(
                insert(profiles_table).values(
                    name=name, readable=json.dumps(sorted([t, a] for t, a in readable))
                )
            )

    def assign_field_profile(self, systemuserid: uuid.UUID, profile: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(user_profiles_table).where(
                    user_profiles_table.c.systemuserid == str(systemuserid),
                    user_profiles_table.c.profile == profile,
                )
            )
            conn.execute(
                insert(user_profiles_table).values(systemuserid=str(systemuserid), profile=profile)
            )

    def _unreadable(self, systemuserid: uuid.UUID, roles: list[Role]) -> frozenset[tuple[str, str]]:
        if any(r.reads_secured_columns for r in roles):
            return frozenset()
        with self.engine.connect() as conn:
            secured = {
                (row.table_name, row.attribute)
                for row in conn.execute(select(secured_columns_table))
            }
            if not secured:
                return frozenset()
            readable: set[tuple[str, str]] = set()
            profile_rows = conn.execute(
                select(profiles_table.c.readable)
                .join(user_profiles_table, user_profiles_table.c.profile == profiles_table.c.name)
                .where(user_profiles_table.c.systemuserid == str(systemuserid))
            ).scalars()
            for text in profile_rows:
                readable.update((t, a) for t, a in json.loads(text))
        return frozenset(secured - readable)

    def principal(self, user: SystemUser, *, tenant_id: str) -> Principal:
        """The principal a token's own systemuser runs as."""
        roles = self.roles_of(user.systemuserid)
        privileges: set[tuple[str, Access]] = set()
        for role in roles:
            privileges |= role.privileges
        return Principal(
            user_id=user.systemuserid,
            caller_id=user.systemuserid,
            tenant_id=tenant_id,
            privileges=frozenset(privileges),
            unreadable_attributes=self._unreadable(user.systemuserid, roles),
            is_application_user=user.is_application_user,
        )

    def has_special(self, systemuserid: uuid.UUID, privilege: str) -> bool:
        return any(privilege in r.special for r in self.roles_of(systemuserid))

    def impersonate(self, caller: SystemUser, target: SystemUser, *, tenant_id: str) -> Principal:
        """The principal for `caller` acting as `target`, or the 403 Dataverse answers."""
        if not self.has_special(caller.systemuserid, ACT_ON_BEHALF):
            raise missing_special_privilege(caller.systemuserid, ACT_ON_BEHALF)
        if target.is_disabled:
            raise user_disabled(target.systemuserid)
        mine = self.principal(caller, tenant_id=tenant_id)
        theirs = self.principal(target, tenant_id=tenant_id)
        return Principal(
            user_id=target.systemuserid,
            caller_id=caller.systemuserid,
            tenant_id=tenant_id,
            privileges=intersect(mine, theirs),
            unreadable_attributes=mine.unreadable_attributes | theirs.unreadable_attributes,
            is_application_user=caller.is_application_user,
        )


def intersect(a: Principal, b: Principal) -> frozenset[tuple[str, Access]]:
    """Privileges both principals hold, with the `*` wildcard resolved against the other side."""
    out: set[tuple[str, Access]] = set()
    for table, access in a.privileges:
        if table == Principal.ALL_TABLES:
            out |= {(t, x) for t, x in b.privileges if x == access}
        elif b.can(table, access):
            out.add((table, access))
    return frozenset(out)


def missing_special_privilege(user_id: uuid.UUID, privilege: str) -> DataverseLocalError:
    privilege_id = uuid.uuid5(uuid.NAMESPACE_URL, privilege)
    return DataverseLocalError(
        403,
        "0x80040220",
        f"Principal user (Id={user_id}, type=8, roleCount=1, privilegeCount=0, accessMode=0), "
        f"is missing {privilege} privilege (Id={privilege_id}) on OTC={SYSTEMUSER_OTC} for "
        f"entity 'systemuser'. context.Caller={user_id}. Consider assigning a role with the "
        "required access level to the user or team.",
    )


def user_disabled(user_id: uuid.UUID) -> DataverseLocalError:
    return DataverseLocalError(
        403, "0x80040225", f"The user with SystemUserId={user_id} is disabled."
    )


def not_a_member(object_id: str, *, application_id: str | None = None) -> DataverseLocalError:
    who = f"application {application_id}" if application_id else f"Azure AD object {object_id}"
    return DataverseLocalError(
        403,
        "0x80072560",
        f"The user is not a member of the organization. No systemuser is linked to {who}; "
        "create a user (or an application user) for it in this environment.",
    )


def impersonated_not_found(header: str, value: str) -> DataverseLocalError:
    return DataverseLocalError(
        404,
        "0x80040217",
        f"systemuser With Id = {value} Does Not Exist (from the {header} header).",
    )
