"""Admin Portal › Privacy & Security › Data Sharing: toggles and the Contributions tab."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gtmsync.kit.errors import GtmsyncError
from gtmsync.sharing import service as sharing_service
from gtmsync.web.deps import AdminUser, CurrentOrg, SessionDep, require_admin
from gtmsync.web.portal.rendering import redirect, render

admin_router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

PAGE = "/admin/privacy/data-sharing"


def _page(
    request: Request, db: SessionDep, org: CurrentOrg, *, error: GtmsyncError | None = None
) -> Response:
    tab = "contributions" if request.query_params.get("tab") == "contributions" else "settings"
    context = {
        "tab": tab,
        "state": sharing_service.state(db, org.id),
        "contributions": sharing_service.contributions(db, org.id)
        if tab == "contributions"
        else [],
        "categories": sharing_service.CATEGORIES,
        "error": error,
    }
    return render(
        request, "sharing/page.html", context, status_code=error.status_code if error else 200
    )


@admin_router.get("/privacy/data-sharing")
def data_sharing(request: Request, db: SessionDep, org: CurrentOrg) -> Response:
    return _page(request, db, org)


@admin_router.post("/privacy/data-sharing")
async def update_data_sharing(
    request: Request, db: SessionDep, org: CurrentOrg, admin: AdminUser
) -> Response:
    """Every category is submitted: a checked box is ON, an absent one OFF (HTML forms)."""
    form = await request.form()
    changes = {c.key: form.get(f"category_{c.key}") == "on" for c in sharing_service.CATEGORIES}
    try:
        sharing_service.update(db, org_id=org.id, actor=admin, changes=changes)
    except GtmsyncError as error:
        return _page(request, db, org, error=error)
    return redirect(request, PAGE, flash="Data sharing settings were saved.")


router = APIRouter()


@router.get("/privacy")
def privacy_policy(request: Request) -> Response:
    return render(request, "sharing/privacy.html", {"categories": sharing_service.CATEGORIES})
