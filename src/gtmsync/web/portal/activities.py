"""Activities (log an email, call or meeting; follow its writeback) and the admin's CRM
Writeback settings page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from pydantic import BaseModel
from starlette.responses import Response

from gtmsync import tasks
from gtmsync.db.unit_of_work import after_commit
from gtmsync.kit.errors import GtmsyncError, UserError
from gtmsync.web.deps import AdminUser, CurrentUser, SessionDep, require_admin
from gtmsync.web.portal.rendering import redirect, render
from gtmsync.writeback import service as writeback_service
from gtmsync.writeback.models import ActivityKind, TargetType, WritebackMode

router = APIRouter()
admin_router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

SETTINGS_PAGE = "/admin/integrations/dynamics/writeback"


class ActivityForm(BaseModel):
    kind: str = ActivityKind.CALL.value
    subject: str = ""
    target_type: str = TargetType.CONTACT.value
    target_platform_id: str = ""
    occurred_at: str = ""  # datetime-local, read as UTC
    duration_minutes: str = ""
    participants: str = ""  # comma-separated platform contact IDs
    body: str = ""

    def parsed(self) -> writeback_service.ActivityCreate:
        try:
            kind = ActivityKind(self.kind)
        except ValueError:
            raise UserError("Choose email, call or meeting.", field="kind") from None
        try:
            target_type = TargetType(self.target_type)
        except ValueError:
            raise UserError("Choose a contact or a company.", field="target_type") from None
        try:
            when = (
                datetime.fromisoformat(self.occurred_at).replace(tzinfo=UTC)
                if self.occurred_at
                else datetime.now(UTC)
            )
        except ValueError:
            raise UserError(
                "When is not a date and time.", field="occurred_at", fix="Use the date picker."
            ) from None
        duration = None
        if self.duration_minutes.strip():
            if not self.duration_minutes.strip().isdigit():
                raise UserError(
                    "Duration must be a whole number of minutes.", field="duration_minutes"
                )
            duration = int(self.duration_minutes)
        return writeback_service.ActivityCreate(
            kind=kind,
            subject=self.subject,
            target_type=target_type,
            target_platform_id=self.target_platform_id.strip(),
            occurred_at=when,
            body=self.body.strip() or None,
            duration_minutes=duration,
            participants=tuple(p.strip() for p in self.participants.split(",") if p.strip()),
        )


def _page(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    *,
    form: ActivityForm | None = None,
    error: GtmsyncError | None = None,
) -> Response:
    context = {
        "activities": writeback_service.list_activities(db, user.org_id, user_id=user.id),
        "form": form or ActivityForm(target_platform_id=request.query_params.get("target", "")),
        "kinds": list(ActivityKind),
        "target_types": list(TargetType),
        "writeback": writeback_service.get_settings(db, user.org_id),
        "error": error,
    }
    status = error.status_code if error else 200
    return render(request, "activities/page.html", context, status_code=status)


@router.get("/activities")
def activities(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    return _page(request, db, user)


@router.post("/activities")
def log_activity(
    request: Request, form: Annotated[ActivityForm, Form()], db: SessionDep, user: CurrentUser
) -> Response:
    try:
        activity = writeback_service.log_activity(db, user=user, data=form.parsed())
    except GtmsyncError as error:
        return _page(request, db, user, form=form, error=error)
    activity_id = activity.id
    after_commit(db, lambda: tasks.write_activity(activity_id))
    return redirect(request, "/activities", flash=f"“{activity.subject}” was logged.")


class WritebackForm(BaseModel):
    enabled: str = ""
    mode: str = WritebackMode.TASKS.value
    calls_as_phonecalls: str = ""


@admin_router.get("/integrations/dynamics/writeback")
def writeback_settings(request: Request, db: SessionDep, admin: AdminUser) -> Response:
    context = {
        "settings": writeback_service.get_settings(db, admin.org_id),
        "modes": list(WritebackMode),
        "error": None,
    }
    return render(request, "activities/settings.html", context)


@admin_router.post("/integrations/dynamics/writeback")
def save_writeback_settings(
    request: Request, form: Annotated[WritebackForm, Form()], db: SessionDep, admin: AdminUser
) -> Response:
    try:
        mode = WritebackMode(form.mode)
    except ValueError:
        error = UserError("Choose tasks or events.", field="mode")
        context = {
            "settings": writeback_service.get_settings(db, admin.org_id),
            "modes": list(WritebackMode),
            "error": error,
        }
        return render(request, "activities/settings.html", context, status_code=400)
    writeback_service.update_settings(
        db,
        org_id=admin.org_id,
        actor=admin,
        enabled=form.enabled == "on",
        mode=mode,
        calls_as_phonecalls=form.calls_as_phonecalls == "on",
    )
    return redirect(request, SETTINGS_PAGE, flash="CRM writeback settings were saved.")
