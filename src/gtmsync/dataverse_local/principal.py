"""Who a Web API request runs as: the seam between the identity layer and the data plane.

The identity layer (`auth.py`, `security.py`) turns a bearer token plus any
`CallerObjectId`/`MSCRMCallerID` header into a `Principal`; the data plane (`webapi.py`,
`store.py`) only asks it questions. Privileges are the effective ones: when impersonating,
the intersection of the caller's and the impersonated user's, as Dataverse does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class Access(StrEnum):
    """Dataverse privilege kinds (`prvCreateAccount`, `prvReadAccount`, …)."""

    CREATE = "Create"
    READ = "Read"
    WRITE = "Write"
    DELETE = "Delete"
    APPEND = "Append"
    APPEND_TO = "AppendTo"


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID  # effective systemuserid: owner/createdby of what it creates
    caller_id: uuid.UUID  # the token's own systemuserid (createdonbehalfby when different)
    tenant_id: str
    # Effective privileges as (table logical name, access) pairs; ALL_TABLES grants every table.
    privileges: frozenset[tuple[str, Access]] = field(default_factory=frozenset)
    # Secured columns (column security) this principal may not read: (table, attribute).
    unreadable_attributes: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    is_application_user: bool = False

    ALL_TABLES = "*"

    @property
    def is_impersonating(self) -> bool:
        return self.user_id != self.caller_id

    def can(self, table: str, access: Access) -> bool:
        return (table, access) in self.privileges or (self.ALL_TABLES, access) in self.privileges

    def can_read_attribute(self, table: str, attribute: str) -> bool:
        return (table, attribute) not in self.unreadable_attributes


def system_administrator(user_id: uuid.UUID, tenant_id: str = "local") -> Principal:
    """A principal with every privilege on every table (tests of the data plane use it)."""
    return Principal(
        user_id=user_id,
        caller_id=user_id,
        tenant_id=tenant_id,
        privileges=frozenset((Principal.ALL_TABLES, a) for a in Access),
    )
