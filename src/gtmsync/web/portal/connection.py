"""Portal pages of the connection feature: Connections, Connect, General settings, User
Mapping, the audit log, the OAuth callback and Settings › Integrations.

`router` holds pages every signed-in user has (the callback, a user's own connection);
`admin_router` (prefix `/admin`) holds Admin Portal pages and carries the admin check once.
Each handler parses the form, calls the connection service, and renders or redirects.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from pydantic import BaseModel
from starlette.responses import Response

from gtmsync.connection import gateway, oauth, org_url
from gtmsync.connection import service as connection_service
from gtmsync.connection.models import AttemptPurpose, ExportPreference, Integration
from gtmsync.dataverse import DataverseError
from gtmsync.kit.errors import GtmsyncError, PermissionDeniedError, UserError
from gtmsync.platform import audit
from gtmsync.platform import service as platform_service
from gtmsync.web.deps import AdminUser, CurrentUser, SessionDep, SettingsDep, require_admin
from gtmsync.web.portal.rendering import redirect, render

router = APIRouter()
admin_router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

CONNECTIONS = "/admin/integrations/connections"
DYNAMICS = "/admin/integrations/dynamics"
CATEGORIES = ("All", "CRM", "Marketing automation", "Data warehouse")
TILES: tuple[dict[str, str], ...] = (
    {
        "key": "dynamics",
        "name": "Microsoft Dynamics 365",
        "category": "CRM",
        "about": "Export companies and contacts to Dynamics 365 and import your CRM data.",
    },
)


class ConnectForm(BaseModel):
    org_url: str = ""


class GeneralForm(BaseModel):
    name: str = ""
    export_preference: str = ExportPreference.SERVICE_ACCOUNT.value


class ToggleForm(BaseModel):
    enabled: str = ""


class MappingForm(BaseModel):
    user_id: str = ""
    systemuser_id: str = ""


def _status(integration: Integration | None) -> dict[str, Any] | None:
    """What the pages show about the connection, including "reconnect needed"."""
    if integration is None:
        return None
    problem: GtmsyncError | None = None
    try:
        gateway.ensure_usable(integration)
    except gateway.IntegrationUnavailableError as error:
        problem = error
    return {
        "integration": integration,
        "reconnect_needed": integration.status.value == "reconnect_needed",
        "problem": problem,
    }


def _to_sign_in(request: Request, auth_uri: str) -> Response:
    """Send the browser to the identity provider.

    A page that navigates (meta refresh, plus a link) rather than a redirect: the portal's CSP
    says `form-action 'self'`, and browsers apply it to every redirect after a form post, so a
    303 to Microsoft from a form would be blocked.
    """
    return render(request, "connection/redirect.html", {"auth_uri": auth_uri})


# --- Connections ---------------------------------------------------------------------------


@admin_router.get("/integrations/connections")
def connections(
    request: Request,
    db: SessionDep,
    user: AdminUser,
    *,
    category: str = "All",
    q: str = "",
    tab: str = "all",
) -> Response:
    integration = gateway.get_integration(db, user.org_id)
    needle = q.strip().lower()
    tiles = [
        tile
        for tile in TILES
        if (category in ("", "All") or tile["category"] == category)
        and (not needle or needle in tile["name"].lower() or needle in tile["about"].lower())
    ]
    context = {
        "categories": CATEGORIES,
        "category": category,
        "q": q,
        "tab": "connected" if tab == "connected" else "all",
        "tiles": tiles,
        "status": _status(integration),
        "is_primary": integration is not None and integration.primary_admin_id == user.id,
    }
    return render(request, "connection/connections.html", context)


def _connect_page(
    request: Request, *, form: ConnectForm, error: GtmsyncError | None = None
) -> Response:
    return render(
        request,
        "connection/connect.html",
        {"form": form, "error": error, "example": org_url.EXAMPLE},
        status_code=error.status_code if error else 200,
    )


@admin_router.get("/integrations/dynamics/connect")
def connect_form(request: Request) -> Response:
    return _connect_page(request, form=ConnectForm())


@admin_router.post("/integrations/dynamics/connect")
def connect(
    request: Request,
    form: Annotated[ConnectForm, Form()],
    db: SessionDep,
    user: AdminUser,
    settings: SettingsDep,
) -> Response:
    """Validate the Organization URL, then send the admin to Microsoft to sign in."""
    try:
        checked = org_url.validate(form.org_url, settings)
        auth_uri = oauth.start(
            db,
            settings,
            org_id=user.org_id,
            user_id=user.id,
            purpose=AttemptPurpose.CONNECT,
            org_url=checked.url,
            notes=checked.notes,
        )
    except GtmsyncError as error:
        return _connect_page(request, form=form, error=error)
    return _to_sign_in(request, auth_uri)


# --- General settings ----------------------------------------------------------------------


def _general_page(
    request: Request,
    db: SessionDep,
    user: AdminUser,
    *,
    error: GtmsyncError | None = None,
) -> Response:
    integration = gateway.get_integration(db, user.org_id)
    if integration is None:
        return redirect(request, CONNECTIONS)
    primary = (
        platform_service.get_user(db, user.org_id, integration.primary_admin_id)
        if integration.primary_admin_id
        else None
    )
    context = {
        "status": _status(integration),
        "primary": primary,
        "is_primary": integration.primary_admin_id == user.id,
        "error": error,
        "preferences": list(ExportPreference),
    }
    return render(
        request,
        "connection/general.html",
        context,
        status_code=error.status_code if error else 200,
    )


@admin_router.get("/integrations/dynamics")
def general(request: Request, db: SessionDep, user: AdminUser) -> Response:
    return _general_page(request, db, user)


@admin_router.post("/integrations/dynamics/general")
def save_general(
    request: Request, form: Annotated[GeneralForm, Form()], db: SessionDep, user: AdminUser
) -> Response:
    try:
        preference = ExportPreference(form.export_preference)
    except ValueError:
        error = UserError(
            f"'{form.export_preference}' is not an export preference.",
            field="export_preference",
            fix="Choose Service Account or User Account.",
        )
        return _general_page(request, db, user, error=error)
    try:
        connection_service.update_general(db, actor=user, name=form.name, preference=preference)
    except GtmsyncError as error:
        db.rollback()
        return _general_page(request, db, user, error=error)
    return redirect(request, DYNAMICS, flash="Your changes were saved.")


@admin_router.post("/integrations/dynamics/change-user")
def change_user(
    request: Request, db: SessionDep, user: AdminUser, settings: SettingsDep
) -> Response:
    """Change User: this admin signs in and becomes the service account and primary admin."""
    try:
        integration = connection_service.require_connected(db, user.org_id)
        auth_uri = oauth.start(
            db,
            settings,
            org_id=user.org_id,
            user_id=user.id,
            purpose=AttemptPurpose.CHANGE_USER,
            org_url=integration.org_url,
        )
    except GtmsyncError as error:
        return _general_page(request, db, user, error=error)
    return _to_sign_in(request, auth_uri)


@admin_router.post("/integrations/dynamics/toggle")
def toggle(
    request: Request, form: Annotated[ToggleForm, Form()], db: SessionDep, user: AdminUser
) -> Response:
    enabled = form.enabled in ("true", "on", "1")
    connection_service.set_enabled(db, actor=user, enabled=enabled)
    message = (
        "Dynamics 365 is on: users can export."
        if enabled
        else "Dynamics 365 is off: exports are blocked; all settings were kept."
    )
    return redirect(request, f"{CONNECTIONS}?tab=connected", flash=message)


@admin_router.get("/integrations/dynamics/delete")
def delete_confirm(request: Request, db: SessionDep, user: AdminUser) -> Response:
    integration = connection_service.require_connected(db, user.org_id)
    if integration.primary_admin_id != user.id:
        raise PermissionDeniedError(
            "Only the primary connected admin can delete the Dynamics 365 connection.",
            field="integration",
            fix="Become primary with Change User on the General Settings page first.",
        )
    return render(request, "connection/delete.html", {"integration": integration})


@admin_router.post("/integrations/dynamics/delete")
def delete(request: Request, db: SessionDep, user: AdminUser) -> Response:
    connection_service.delete_integration(db, actor=user)
    return redirect(
        request,
        CONNECTIONS,
        flash="The Dynamics 365 connection was deleted with its settings, mappings and "
        "credentials.",
    )


# --- User mapping --------------------------------------------------------------------------


def _mapping_page(
    request: Request,
    db: SessionDep,
    user: AdminUser,
    settings: SettingsDep,
    *,
    error: GtmsyncError | None = None,
) -> Response:
    integration = connection_service.require_connected(db, user.org_id)
    candidates: list[connection_service.DynamicsUser] = []
    unavailable: GtmsyncError | None = None
    try:
        candidates = connection_service.offered_users(db, user.org_id, settings=settings)
    except gateway.IntegrationUnavailableError as problem:
        unavailable = problem
    except DataverseError as problem:
        unavailable = UserError(
            f"Dynamics 365 did not return its users: {problem}",
            field="integration",
            fix="Try again; if it persists, check the service account's privileges.",
        )
    context = {
        "integration": integration,
        "rows": connection_service.mapping_rows(db, user.org_id),
        "candidates": candidates,
        "unavailable": unavailable,
        "error": error,
    }
    return render(
        request,
        "connection/mapping.html",
        context,
        status_code=error.status_code if error else 200,
    )


@admin_router.get("/integrations/dynamics/user-mapping")
def user_mapping(
    request: Request, db: SessionDep, user: AdminUser, settings: SettingsDep
) -> Response:
    return _mapping_page(request, db, user, settings)


@admin_router.post("/integrations/dynamics/user-mapping")
def save_mapping(
    request: Request,
    form: Annotated[MappingForm, Form()],
    db: SessionDep,
    user: AdminUser,
    settings: SettingsDep,
) -> Response:
    try:
        target = uuid.UUID(form.user_id)
        systemuser = uuid.UUID(form.systemuser_id) if form.systemuser_id else None
    except ValueError:
        error = UserError("Pick a user from the list.", field="systemuser_id")
        return _mapping_page(request, db, user, settings, error=error)
    try:
        candidates = connection_service.offered_users(db, user.org_id, settings=settings)
        mapping = connection_service.set_mapping(
            db, actor=user, user_id=target, systemuser_id=systemuser, candidates=candidates
        )
    except GtmsyncError as error:
        db.rollback()
        return _mapping_page(request, db, user, settings, error=error)
    shown = mapping.dynamics_name or "no Dynamics user"
    return redirect(request, f"{DYNAMICS}/user-mapping", flash=f"Mapping saved: {shown}.")


@admin_router.post("/integrations/dynamics/user-mapping/reset")
def reset_mapping(
    request: Request, db: SessionDep, user: AdminUser, settings: SettingsDep
) -> Response:
    try:
        candidates = connection_service.offered_users(db, user.org_id, settings=settings)
        connection_service.reset_mapping(db, actor=user, candidates=candidates)
    except GtmsyncError as error:
        return _mapping_page(request, db, user, settings, error=error)
    return redirect(
        request,
        f"{DYNAMICS}/user-mapping",
        flash="The mapping was rebuilt by email from the connected instance.",
    )


# --- Audit log -----------------------------------------------------------------------------


@admin_router.get("/audit-log")
def audit_log(request: Request, db: SessionDep, user: AdminUser) -> Response:
    events = audit.list_events(db, user.org_id)
    return render(request, "connection/audit_log.html", {"events": events})


# --- callback and a user's own connection ---------------------------------------------------


def _result_page(request: Request, error: GtmsyncError) -> Response:
    consent_url = error.consent_url if isinstance(error, oauth.ConsentRequiredError) else None
    return render(
        request,
        "connection/result.html",
        {"error": error, "consent_url": consent_url},
        status_code=error.status_code,
    )


@router.get("/connection/callback")
def callback(
    request: Request, db: SessionDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    """Where Microsoft sends the browser back, with a code or an error, for every purpose."""
    params = dict(request.query_params)
    if "admin_consent" in params and "state" not in params:
        granted = params.get("admin_consent") == "True"
        return render(request, "connection/admin_consent.html", {"granted": granted})
    try:
        completed = oauth.complete(db, settings, user_id=user.id, params=params)
    except GtmsyncError as error:
        return _result_page(request, error)  # the unit of work still commits the spent attempt
    db.commit()  # the attempt is spent, whatever happens next
    try:
        if completed.purpose == AttemptPurpose.USER:
            connection_service.accept_user_sign_in(db, settings, user=user, completed=completed)
            return redirect(
                request,
                "/settings/integrations",
                flash=f"Connected to Dynamics 365 as {completed.signed_in.username}.",
            )
        if not user.is_admin:
            raise PermissionDeniedError(
                "Only admins of your org can connect Dynamics 365 for everyone.", field="user"
            )
        connection_service.accept_service_sign_in(db, settings, actor=user, completed=completed)
    except GtmsyncError as error:
        db.rollback()
        return _result_page(request, error)
    if completed.purpose == AttemptPurpose.CHANGE_USER:
        return redirect(
            request,
            DYNAMICS,
            flash=f"The service account is now {completed.signed_in.username}, and you are the "
            "primary connected admin.",
        )
    return redirect(
        request,
        f"{CONNECTIONS}?tab=connected",
        flash=f"Dynamics 365 is connected as {completed.signed_in.username}. Edit Settings to "
        "review the export preference and user mapping."
        + (f" {completed.notes}" if completed.notes else ""),
    )


@router.get("/settings/integrations")
def settings_integrations(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    """Settings › Integrations: a user's own Dynamics connection (User Account preference)."""
    integration = gateway.get_integration(db, user.org_id)
    connection = gateway.user_connection(db, integration, user.id) if integration else None
    context = {"status": _status(integration), "connection": connection}
    return render(request, "connection/user_integrations.html", context)


@router.post("/settings/integrations/dynamics/connect")
def connect_user(
    request: Request, db: SessionDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    try:
        integration = connection_service.require_connected(db, user.org_id)
        auth_uri = oauth.start(
            db,
            settings,
            org_id=user.org_id,
            user_id=user.id,
            purpose=AttemptPurpose.USER,
            org_url=integration.org_url,
            login_hint=user.email,
        )
    except GtmsyncError as error:
        return _result_page(request, error)
    return _to_sign_in(request, auth_uri)


@router.post("/settings/integrations/dynamics/disconnect")
def disconnect_user(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    connection_service.disconnect_user(db, user)
    return redirect(
        request, "/settings/integrations", flash="Your Dynamics 365 sign-in was removed."
    )
