"""Admin Portal pages. The admin check sits once on the router, so a page added here later
cannot forget it (a test walks every `/admin` route as a non-admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from gtmsync.kit.errors import GtmsyncError
from gtmsync.platform import service as platform_service
from gtmsync.platform.models import Role
from gtmsync.web.deps import CurrentOrg, SessionDep, require_admin
from gtmsync.web.portal.forms import UserCreateForm
from gtmsync.web.portal.rendering import redirect, render

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])


@router.get("")
def admin_home(request: Request) -> Response:
    return redirect(request, "/admin/integrations/connections")


def _users_page(
    request: Request,
    db: SessionDep,
    org: CurrentOrg,
    *,
    form: UserCreateForm | None = None,
    error: GtmsyncError | None = None,
) -> Response:
    context = {
        "users": platform_service.list_users(db, org.id),
        "roles": list(Role),
        "form": form or UserCreateForm(),
        "error": error,
    }
    return render(
        request, "admin/users.html", context, status_code=error.status_code if error else 200
    )


@router.get("/users")
def users(request: Request, db: SessionDep, org: CurrentOrg) -> Response:
    return _users_page(request, db, org)


@router.post("/users")
def add_user(
    request: Request, form: Annotated[UserCreateForm, Form()], db: SessionDep, org: CurrentOrg
) -> Response:
    try:
        user = platform_service.create_user(
            db,
            org=org,
            name=form.require_name(),
            email=form.email,
            password=form.password,
            role=form.parsed_role(),
        )
    except GtmsyncError as error:
        blank = form.model_copy(update={"password": ""})
        return _users_page(request, db, org, form=blank, error=error)
    return redirect(request, "/admin/users", flash=f"{user.name} ({user.email}) was added.")
