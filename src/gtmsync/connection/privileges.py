"""The Dynamics privileges the seeds require, checked right after sign-in.

*Permissions and Considerations*: read/write Account, Contact and Lead; read Opportunity,
Product, System User, Event and Task. Checking them when the admin connects (with
`RetrieveUserPrivileges`) turns "export failed with 403 three weeks later" into a list of what
to add to the user's security role now.

In Dataverse, tasks, appointments (events) and phone calls share the activity privileges
(`prvReadActivity`), and the System User table's privileges are named `…User`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gtmsync.dataverse import DataverseClient, PrivilegeError


@dataclass(frozen=True)
class Requirement:
    label: str  # what an admin reads: "Write Account"
    privilege: str  # Dataverse's name: prvWriteAccount


def _rw(entity: str, label: str) -> list[Requirement]:
    return [
        Requirement(f"Create {label}", f"prvCreate{entity}"),
        Requirement(f"Read {label}", f"prvRead{entity}"),
        Requirement(f"Write {label}", f"prvWrite{entity}"),
    ]


REQUIRED: tuple[Requirement, ...] = (
    *_rw("Account", "Account"),
    *_rw("Contact", "Contact"),
    *_rw("Lead", "Lead"),
    Requirement("Read Opportunity", "prvReadOpportunity"),
    Requirement("Read Product", "prvReadProduct"),
    Requirement("Read System User", "prvReadUser"),
    Requirement("Read Task and Event (activities)", "prvReadActivity"),
)


class MissingPrivilegesError(Exception):
    """The signed-in Dynamics user lacks some required privileges (listed, by label)."""

    def __init__(self, upn: str | None, missing: list[Requirement]) -> None:
        self.upn = upn
        self.missing = missing
        labels = ", ".join(r.label for r in missing)
        super().__init__(f"{upn or 'The Dynamics user'} is missing: {labels}")


def held_privileges(client: DataverseClient, systemuser_id: uuid.UUID) -> set[str]:
    """Privilege names the user holds through their roles (`RetrieveUserPrivileges`)."""
    body = client.request(
        "GET",
        f"systemusers({systemuser_id})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()",
        idempotent=True,
    ).json()
    return {str(p.get("PrivilegeName")) for p in body.get("RolePrivileges", [])}


def missing_privileges(client: DataverseClient, systemuser_id: uuid.UUID) -> list[Requirement]:
    """The required privileges the user does not hold, in the seeds' order.

    A user who may not even read their own System User row cannot list their privileges;
    that is itself a missing privilege, and the rest cannot be known yet.
    """
    try:
        held = held_privileges(client, systemuser_id)
    except PrivilegeError:
        return [r for r in REQUIRED if r.privilege == "prvReadUser"]
    return [r for r in REQUIRED if r.privilege not in held]
