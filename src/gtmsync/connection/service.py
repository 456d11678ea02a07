"""Connect Dynamics, and keep the user mapping that decides record ownership.

The OAuth round trip itself (start → identity provider → callback) is driven by the web layer
through `AuthCodeFlow`; this module records its outcome and everything that follows from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gtmsync.connection import gateway, privileges, token_store
from gtmsync.connection.gateway import get_integration
from gtmsync.connection.models import (
    AttemptPurpose,
    ConnectionStatus,
    ExportPreference,
    Integration,
    MappingSource,
    UserConnection,
    UserMapping,
)
from gtmsync.connection.oauth import Completed
from gtmsync.dataverse import DataverseClient, ReconnectRequiredError, SignedIn, odata
from gtmsync.kit.clock import utc_now
from gtmsync.kit.errors import ConflictError, NotFoundError, PermissionDeniedError, UserError
from gtmsync.platform import audit
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


# --- connecting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedSignIn:
    """What the hub learned from Dynamics with a new sign-in, before accepting it."""

    systemuser_id: uuid.UUID
    candidates: list[DynamicsUser]
    cache_state: str  # the cache after the checks (MSAL may have refreshed it)


def check_sign_in(settings: Settings, completed: Completed, *, list_users: bool) -> CheckedSignIn:
    """WhoAmI and the required privileges with the new sign-in; refuse listing what is missing.

    Raises `MissingPrivilegesError` (turned into a `UserError` by callers) before anything is
    stored, so a half-privileged connection never becomes the org's service account.
    """
    signed_in = completed.signed_in
    latest = {"cache": signed_in.cache_state}

    def remember(state: str) -> None:
        latest["cache"] = state

    with gateway.client_for_sign_in(
        settings,
        org_url=completed.org_url,
        authority=completed.authority,
        cache_state=signed_in.cache_state,
        account_id=signed_in.account_id,
        on_cache_change=remember,
    ) as client:
        me = client.who_am_i()
        missing = privileges.missing_privileges(client, me.user_id)
        if missing:
            raise privileges.MissingPrivilegesError(signed_in.username, missing)
        candidates = dynamics_users(client) if list_users else []
    return CheckedSignIn(me.user_id, candidates, latest["cache"])


def missing_privileges_error(error: privileges.MissingPrivilegesError) -> UserError:
    labels = ", ".join(r.label for r in error.missing)
    return UserError(
        f"{error.upn or 'The Dynamics user you signed in with'} does not have every privilege "
        f"gtmsync needs in Dynamics 365. Missing: {labels}.",
        field="privileges",
        fix="Ask your Dynamics administrator to add these to one of the user's security roles "
        "(Settings › Security › Security Roles), then connect again.",
    )


def accept_service_sign_in(
    session: Session, settings: Settings, *, actor: User, completed: Completed
) -> Integration:
    """Connect (first admin: primary) or Change User (a secondary admin becomes primary)."""
    if completed.purpose == AttemptPurpose.USER:
        raise UserError("This sign-in was started for a personal connection.", field="purpose")
    try:
        checked = check_sign_in(settings, completed, list_users=True)
    except privileges.MissingPrivilegesError as error:
        raise missing_privileges_error(error) from error
    existing = get_integration(session, actor.org_id)
    if completed.purpose == AttemptPurpose.CHANGE_USER and existing is None:
        raise UserError(
            "There is no Dynamics connection to change the user of.",
            field="integration",
            fix=f"Connect Dynamics under {gateway.CONNECTIONS_PAGE}.",
        )
    was_enabled = existing.enabled if existing else True
    previous_upn = existing.service_upn if existing else None
    previous_admin = existing.primary_admin_id if existing else None
    org = platform_service.get_org(session, actor.org_id)
    signed_in = completed.signed_in
    integration = record_service_connection(
        session,
        org=org,
        admin=actor,
        org_url=completed.org_url,
        authority=completed.authority,
        signed_in=SignedIn(
            account_id=signed_in.account_id,
            username=signed_in.username,
            object_id=signed_in.object_id,
            tenant_id=signed_in.tenant_id,
            cache_state=checked.cache_state,
        ),
        settings=settings,
        preference=existing.export_preference if existing else ExportPreference.SERVICE_ACCOUNT,
    )
    if existing is None:
        integration.connected_at = utc_now()
    integration.enabled = was_enabled  # the toggle is the admins' choice, kept across sign-ins
    integration.service_systemuser_id = checked.systemuser_id
    rebuild_user_mapping(session, integration, checked.candidates)
    if completed.purpose == AttemptPurpose.CHANGE_USER:
        audit.record(
            session,
            org_id=actor.org_id,
            actor=actor,
            action="connection.change_user",
            summary=f"Changed the service account user to {signed_in.username}; "
            f"{actor.email} is now the primary connected admin.",
            detail={
                "from_upn": previous_upn,
                "to_upn": signed_in.username,
                "from_primary_admin": str(previous_admin) if previous_admin else None,
                "to_primary_admin": str(actor.id),
            },
        )
    else:
        audit.record(
            session,
            org_id=actor.org_id,
            actor=actor,
            action="connection.connect",
            summary=f"Connected Dynamics 365 at {completed.org_url} as {signed_in.username}.",
            detail={
                "org_url": completed.org_url,
                "upn": signed_in.username,
                "reconnect": existing is not None,
            },
        )
    session.flush()
    return integration


def accept_user_sign_in(
    session: Session, settings: Settings, *, user: User, completed: Completed
) -> UserConnection:
    """A user's own connection (User Account preference)."""
    integration = get_integration(session, user.org_id)
    if integration is None:
        raise gateway.IntegrationUnavailableError(
            "Dynamics 365 is not connected for your organization.",
            reason="not_connected",
            fix=f"An admin connects it under {gateway.CONNECTIONS_PAGE}.",
        )
    try:
        checked = check_sign_in(settings, completed, list_users=False)
    except privileges.MissingPrivilegesError as error:
        raise missing_privileges_error(error) from error
    connection = gateway.user_connection(session, integration, user.id)
    if connection is None:
        connection = UserConnection(
            integration_id=integration.id, user_id=user.id, connected_at=utc_now()
        )
        session.add(connection)
    connection.upn = completed.signed_in.username
    connection.systemuser_id = checked.systemuser_id
    connection.account_id = completed.signed_in.account_id
    connection.token_cache = token_store.seal(settings, checked.cache_state)
    connection.status = ConnectionStatus.CONNECTED
    connection.status_detail = None
    connection.connected_at = utc_now()
    session.flush()
    return connection


def disconnect_user(session: Session, user: User) -> None:
    integration = get_integration(session, user.org_id)
    if integration is None:
        return
    connection = gateway.user_connection(session, integration, user.id)
    if connection is not None:
        session.delete(connection)
        session.flush()


# --- managing ------------------------------------------------------------------------------


def require_connected(session: Session, org_id: uuid.UUID) -> Integration:
    integration = get_integration(session, org_id)
    if integration is None:
        raise NotFoundError(
            "Dynamics 365 is not connected for your organization.",
            field="integration",
            fix=f"Connect it under {gateway.CONNECTIONS_PAGE}.",
        )
    return integration


def is_primary(integration: Integration, user: User) -> bool:
    return integration.primary_admin_id == user.id


def set_enabled(session: Session, *, actor: User, enabled: bool) -> Integration:
    """The Connected tab's toggle: off keeps every setting and blocks exports."""
    integration = require_connected(session, actor.org_id)
    if integration.enabled != enabled:
        integration.enabled = enabled
        audit.record(
            session,
            org_id=actor.org_id,
            actor=actor,
            action="connection.toggle",
            summary=f"Turned the Dynamics 365 integration {'on' if enabled else 'off'}.",
            detail={"enabled": enabled},
        )
    session.flush()
    return integration


def update_general(
    session: Session,
    *,
    actor: User,
    name: str | None = None,
    preference: ExportPreference | None = None,
) -> Integration:
    """General settings: Connection Name and Export Preference.

    Switching User Account → Service Account follows the seeds: the integration must be
    toggled off first, so no export runs half-way through the switch.
    """
    integration = require_connected(session, actor.org_id)
    changes: dict[str, object] = {}
    if name is not None:
        clean = name.strip()
        if not clean or len(clean) > 100:
            raise UserError(
                "The Connection Name must be 1 to 100 characters.",
                field="name",
                fix="Enter a short name, e.g. Dynamics.",
            )
        if clean != integration.name:
            changes["name"] = {"from": integration.name, "to": clean}
            integration.name = clean
    if preference is not None and preference != integration.export_preference:
        if (
            preference == ExportPreference.SERVICE_ACCOUNT
            and integration.export_preference == ExportPreference.USER_ACCOUNT
            and integration.enabled
        ):
            raise ConflictError(
                "Turn the integration off before switching to the Service Account option.",
                field="export_preference",
                fix=f"Use the toggle on the Connected tab ({gateway.CONNECTIONS_PAGE}), switch, "
                "check Edit User Mapping, then turn it back on.",
            )
        changes["export_preference"] = {
            "from": integration.export_preference.value,
            "to": preference.value,
        }
        integration.export_preference = preference
    if changes:
        audit.record(
            session,
            org_id=actor.org_id,
            actor=actor,
            action="connection.settings",
            summary="Changed Dynamics 365 settings: " + ", ".join(sorted(changes)) + ".",
            detail=changes,
        )
    session.flush()
    return integration


def delete_integration(session: Session, *, actor: User) -> None:
    """Delete settings, mappings and credentials: the primary connected admin only."""
    integration = require_connected(session, actor.org_id)
    if not is_primary(integration, actor):
        raise PermissionDeniedError(
            "Only the primary connected admin can delete the Dynamics 365 connection.",
            field="integration",
            fix="Ask the primary connected admin, or become primary with Change User on the "
            "General Settings page first.",
        )
    org_url = integration.org_url
    # Explicit, not left to ON DELETE CASCADE: credentials must go even where FKs are off.
    session.execute(delete(UserConnection).where(UserConnection.integration_id == integration.id))
    session.execute(delete(UserMapping).where(UserMapping.integration_id == integration.id))
    session.delete(integration)
    audit.record(
        session,
        org_id=actor.org_id,
        actor=actor,
        action="connection.delete",
        summary=f"Deleted the Dynamics 365 connection to {org_url} (settings, mappings and "
        "credentials).",
        detail={"org_url": org_url},
    )
    session.flush()


# --- user mapping --------------------------------------------------------------------------


def offered_users(
    session: Session, org_id: uuid.UUID, *, settings: Settings | None = None
) -> list[DynamicsUser]:
    """Enabled Dynamics users of the connected instance (works while toggled off)."""
    gateway.ensure_signed_in(gateway.require_integration(session, org_id))
    try:
        with gateway.client_for(
            session, org_id, settings=settings, require_enabled=False
        ) as client:
            return dynamics_users(client)
    except ReconnectRequiredError:
        session.expire_all()  # the gateway has just marked it, in its own transaction
        gateway.ensure_signed_in(gateway.require_integration(session, org_id))
        raise


def set_mapping(
    session: Session,
    *,
    actor: User,
    user_id: uuid.UUID,
    systemuser_id: uuid.UUID | None,
    candidates: Sequence[DynamicsUser],
) -> UserMapping:
    """A manual mapping (or "not mapped" with None); survives rebuilds until Reset Mapping."""
    integration = require_connected(session, actor.org_id)
    user = platform_service.get_user(session, actor.org_id, user_id)
    offered = {c.systemuser_id: c for c in candidates}
    if systemuser_id is not None and systemuser_id not in offered:
        raise UserError(
            "That Dynamics user is not an enabled user of the connected instance.",
            field="systemuser_id",
            fix="Pick a user from the list (disabled Dynamics users cannot own records).",
        )
    current = mappings(session, integration).get(user.id)
    if current is None:
        current = UserMapping(integration_id=integration.id, user_id=user.id)
        session.add(current)
    before = current.dynamics_email or current.dynamics_name
    _apply(current, offered.get(systemuser_id) if systemuser_id else None, MappingSource.MANUAL)
    audit.record(
        session,
        org_id=actor.org_id,
        actor=actor,
        action="connection.mapping_edit",
        summary=f"Mapped {user.email} to "
        f"{current.dynamics_name or 'no Dynamics user'}"
        f"{' (' + current.dynamics_email + ')' if current.dynamics_email else ''}.",
        detail={"user": user.email, "from": before, "to": current.dynamics_email},
    )
    session.flush()
    return current


def reset_mapping(
    session: Session, *, actor: User, candidates: Sequence[DynamicsUser]
) -> dict[uuid.UUID, UserMapping]:
    """Reset Mapping: rebuild every row by email from the currently connected instance."""
    integration = require_connected(session, actor.org_id)
    result = rebuild_user_mapping(session, integration, candidates, reset=True)
    mapped = sum(1 for m in result.values() if m.systemuser_id is not None)
    audit.record(
        session,
        org_id=actor.org_id,
        actor=actor,
        action="connection.mapping_reset",
        summary=f"Reset the user mapping from {integration.org_url}: {mapped} of "
        f"{len(result)} users mapped.",
        detail={"mapped": mapped, "users": len(result)},
    )
    return result


def ensure_user_mapped(
    session: Session,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    settings: Settings | None = None,
) -> UserMapping | None:
    """Map a platform user on first use (the seeds' *Adding Users to Your Org Over Time*).

    Exports call this before writing; an existing row (mapped or not) is returned as is.
    None when the integration is missing or uses user accounts.
    """
    integration = get_integration(session, org_id)
    if integration is None or integration.export_preference != ExportPreference.SERVICE_ACCOUNT:
        return None
    existing = mappings(session, integration).get(user_id)
    if existing is not None:
        return existing
    user = platform_service.get_user(session, org_id, user_id)
    candidates = offered_users(session, org_id, settings=settings)
    mapping = UserMapping(integration_id=integration.id, user_id=user.id)
    _apply(mapping, match_by_email(user.email, candidates), MappingSource.AUTO)
    session.add(mapping)
    session.flush()
    return mapping


@dataclass(frozen=True)
class MappingRow:
    user_id: uuid.UUID
    name: str
    email: str
    systemuser_id: uuid.UUID | None
    dynamics_name: str | None
    dynamics_email: str | None
    source: MappingSource | None

    @property
    def mapped(self) -> bool:
        return self.systemuser_id is not None


def mapping_rows(session: Session, org_id: uuid.UUID) -> list[MappingRow]:
    """Every platform user of the org with their mapping (unmapped when there is no row)."""
    integration = require_connected(session, org_id)
    current = mappings(session, integration)
    rows = []
    for user in platform_service.list_users(session, org_id):
        mapping = current.get(user.id)
        rows.append(
            MappingRow(
                user_id=user.id,
                name=user.name,
                email=user.email,
                systemuser_id=mapping.systemuser_id if mapping else None,
                dynamics_name=mapping.dynamics_name if mapping else None,
                dynamics_email=mapping.dynamics_email if mapping else None,
                source=mapping.source if mapping else None,
            )
        )
    return rows
