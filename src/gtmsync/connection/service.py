"""Connect Dynamics, and keep the user mapping that decides record ownership.

The OAuth round trip itself (start → identity provider → callback) is driven by the web layer
through `AuthCodeFlow`; this module records its outcome and everything that follows from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gtmsync.connection import token_store
from gtmsync.connection.gateway import get_integration
from gtmsync.connection.models import (
    ConnectionStatus,
    ExportPreference,
    Integration,
    MappingSource,
    UserMapping,
)
from gtmsync.dataverse import DataverseClient, SignedIn, odata
from gtmsync.kit.clock import utc_now
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import Org, User
from gtmsync.settings import Settings

SYSTEMUSER_COLUMNS = (
    "systemuserid",
    "fullname",
    "internalemailaddress",
    "domainname",
    "azureactivedirectoryobjectid",
    "isdisabled",
    "applicationid",
)


@dataclass(frozen=True)
class DynamicsUser:
    """An enabled, interactive Dynamics user that platform users may be mapped to."""

    systemuser_id: uuid.UUID
    name: str
    email: str | None
    domain_name: str | None
    entra_object_id: str | None


def record_service_connection(
    session: Session,
    *,
    org: Org,
    admin: User,
    org_url: str,
    authority: str,
    signed_in: SignedIn,
    settings: Settings,
    preference: ExportPreference = ExportPreference.SERVICE_ACCOUNT,
) -> Integration:
    """Create or update the org's integration from a completed sign-in; `admin` is primary."""
    integration = get_integration(session, org.id)
    if integration is None:
        integration = Integration(org_id=org.id, connected_at=utc_now())
        session.add(integration)
    integration.org_url = org_url
    integration.authority = authority
    integration.tenant_id = signed_in.tenant_id
    integration.export_preference = preference
    integration.primary_admin_id = admin.id
    integration.service_upn = signed_in.username
    integration.account_id = signed_in.account_id
    integration.token_cache = token_store.seal(settings, signed_in.cache_state)
    integration.status = ConnectionStatus.CONNECTED
    integration.status_detail = None
    integration.enabled = True
    session.flush()
    return integration


def dynamics_users(client: DataverseClient) -> list[DynamicsUser]:
    """Enabled interactive users; disabled users and application users are never offered."""
    rows = client.query(
        "systemusers",
        select=SYSTEMUSER_COLUMNS,
        filter=odata.eq("isdisabled", False),
        orderby="fullname asc",
        page_size=5000,
    )
    users = []
    for row in rows:
        if row.get("applicationid"):
            continue
        users.append(
            DynamicsUser(
                systemuser_id=uuid.UUID(str(row["systemuserid"])),
                name=str(row.get("fullname") or ""),
                email=row.get("internalemailaddress"),
                domain_name=row.get("domainname"),
                entra_object_id=row.get("azureactivedirectoryobjectid"),
            )
        )
    return users


def match_by_email(email: str, candidates: Sequence[DynamicsUser]) -> DynamicsUser | None:
    """Primary email (`internalemailaddress`) first, then the sign-in name (`domainname`)."""
    wanted = email.strip().lower()
    for candidate in candidates:
        if candidate.email and candidate.email.strip().lower() == wanted:
            return candidate
    for candidate in candidates:
        if candidate.domain_name and candidate.domain_name.strip().lower() == wanted:
            return candidate
    return None


def _apply(mapping: UserMapping, match: DynamicsUser | None, source: MappingSource) -> None:
    mapping.systemuser_id = match.systemuser_id if match else None
    mapping.entra_object_id = match.entra_object_id if match else None
    mapping.dynamics_name = match.name if match else None
    mapping.dynamics_email = (match.email or match.domain_name) if match else None
    mapping.source = source


def mappings(session: Session, integration: Integration) -> dict[uuid.UUID, UserMapping]:
    rows = session.scalars(select(UserMapping).where(UserMapping.integration_id == integration.id))
    return {row.user_id: row for row in rows}


def rebuild_user_mapping(
    session: Session,
    integration: Integration,
    candidates: Sequence[DynamicsUser],
    *,
    reset: bool = False,
) -> dict[uuid.UUID, UserMapping]:
    """Map every platform user by email. Manual choices survive unless `reset` (Reset Mapping).

    A manual mapping to a user who is no longer offered (disabled, or another instance after
    a sandbox → production switch) is dropped and re-matched by email.
    """
    existing = mappings(session, integration)
    offered = {c.systemuser_id: c for c in candidates}
    for user in platform_service.list_users(session, integration.org_id):
        mapping = existing.get(user.id)
        if mapping is None:
            mapping = UserMapping(integration_id=integration.id, user_id=user.id)
            session.add(mapping)
            existing[user.id] = mapping
        elif (
            not reset
            and mapping.source == MappingSource.MANUAL
            and mapping.systemuser_id in offered
        ):
            continue
        _apply(mapping, match_by_email(user.email, candidates), MappingSource.AUTO)
    session.flush()
    return existing
