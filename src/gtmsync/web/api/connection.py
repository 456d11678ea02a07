"""`/api/v1` routes of the connection feature (admins only, checked once on the router).

Response models list exactly what is published: no token cache, account id or secret can
reach a response because none of these models has a field for it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from gtmsync.connection import gateway
from gtmsync.connection import service as connection_service
from gtmsync.connection.models import ConnectionStatus, ExportPreference, MappingSource
from gtmsync.platform import audit
from gtmsync.web.deps import AdminUser, SessionDep, SettingsDep, require_admin

router = APIRouter(tags=["connection"], dependencies=[Depends(require_admin)])


class Connection(BaseModel):
    """The org's Dynamics 365 connection as admins see it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    org_url: str
    tenant_id: str | None
    export_preference: ExportPreference
    enabled: bool
    status: ConnectionStatus
    status_detail: str | None
    primary_admin_id: uuid.UUID | None
    service_upn: str | None
    service_systemuser_id: uuid.UUID | None
    connected_at: datetime
    problem: str | None = Field(
        default=None, description="Why exports cannot run now (off, reconnect needed), if so."
    )


class ConnectionUpdate(BaseModel):
    enabled: bool | None = Field(default=None, description="The Connected tab's toggle.")
    name: str | None = Field(default=None, max_length=100)
    export_preference: ExportPreference | None = None


class UserMapping(BaseModel):
    user_id: uuid.UUID
    name: str
    email: str
    systemuser_id: uuid.UUID | None
    dynamics_name: str | None
    dynamics_email: str | None
    source: MappingSource | None
    status: Literal["mapped", "not_mapped"]


class UserMappingUpdate(BaseModel):
    user_id: uuid.UUID
    systemuser_id: uuid.UUID | None = Field(description="None maps the user to no one.")


class AuditEvent(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    actor_email: str | None
    action: str
    summary: str
    detail: dict[str, object]


def _connection(db: SessionDep, org_id: uuid.UUID) -> Connection:
    integration = connection_service.require_connected(db, org_id)
    body = Connection.model_validate(integration)
    try:
        gateway.ensure_usable(integration)
    except gateway.IntegrationUnavailableError as error:
        body.problem = str(error)
    return body


def _mappings(db: SessionDep, org_id: uuid.UUID) -> list[UserMapping]:
    return [
        UserMapping(
            user_id=row.user_id,
            name=row.name,
            email=row.email,
            systemuser_id=row.systemuser_id,
            dynamics_name=row.dynamics_name,
            dynamics_email=row.dynamics_email,
            source=row.source,
            status="mapped" if row.mapped else "not_mapped",
        )
        for row in connection_service.mapping_rows(db, org_id)
    ]


@router.get("/connection", response_model=Connection)
def get_connection(db: SessionDep, admin: AdminUser) -> Connection:
    return _connection(db, admin.org_id)


@router.patch("/connection", response_model=Connection)
def update_connection(body: ConnectionUpdate, db: SessionDep, admin: AdminUser) -> Connection:
    """Toggle, rename, or change the export preference (User → Service needs it off first)."""
    if body.enabled is False:  # off first, so an off + switch in one request is allowed
        connection_service.set_enabled(db, actor=admin, enabled=False)
    if body.name is not None or body.export_preference is not None:
        connection_service.update_general(
            db, actor=admin, name=body.name, preference=body.export_preference
        )
    if body.enabled is True:
        connection_service.set_enabled(db, actor=admin, enabled=True)
    return _connection(db, admin.org_id)


@router.delete("/connection", status_code=204)
def delete_connection(db: SessionDep, admin: AdminUser) -> Response:
    """Primary connected admin only: removes settings, mappings and credentials."""
    connection_service.delete_integration(db, actor=admin)
    return Response(status_code=204)


@router.get("/connection/user-mappings", response_model=list[UserMapping])
def list_user_mappings(db: SessionDep, admin: AdminUser) -> list[UserMapping]:
    return _mappings(db, admin.org_id)


@router.put("/connection/user-mappings", response_model=list[UserMapping])
def put_user_mapping(
    body: UserMappingUpdate, db: SessionDep, admin: AdminUser, settings: SettingsDep
) -> list[UserMapping]:
    """Map one platform user manually (kept until Reset Mapping)."""
    candidates = connection_service.offered_users(db, admin.org_id, settings=settings)
    connection_service.set_mapping(
        db,
        actor=admin,
        user_id=body.user_id,
        systemuser_id=body.systemuser_id,
        candidates=candidates,
    )
    return _mappings(db, admin.org_id)


@router.post("/connection/user-mappings/reset", response_model=list[UserMapping])
def reset_user_mappings(
    db: SessionDep, admin: AdminUser, settings: SettingsDep
) -> list[UserMapping]:
    candidates = connection_service.offered_users(db, admin.org_id, settings=settings)
    connection_service.reset_mapping(db, actor=admin, candidates=candidates)
    return _mappings(db, admin.org_id)


@router.get("/audit-events", response_model=list[AuditEvent])
def list_audit_events(
    db: SessionDep, admin: AdminUser, action_prefix: str | None = None
) -> list[AuditEvent]:
    return [
        AuditEvent.model_validate(event)
        for event in audit.list_events(db, admin.org_id, action_prefix=action_prefix)
    ]
