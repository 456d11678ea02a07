"""Server-rendered portal: one router module per section, composed here.

Three layers of protection are applied once, on the routers, never per page:
- every portal route checks the CSRF token on unsafe methods;
- every route except sign-in needs a signed-in user (else a redirect to `/sign-in?next=…`);
- every `/admin` route needs an admin (else a 403 page).

A later section adds its module and one `include_router` line below.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from gtmsync.web.deps import require_user, verify_portal_csrf
from gtmsync.web.portal import (
    activities,
    admin,
    auth,
    connection,
    export_settings,
    exports,
    imports,
    member,
    search,
    sharing,
)


def build_portal_router() -> APIRouter:
    portal = APIRouter(include_in_schema=False)
    public = APIRouter(dependencies=[Depends(verify_portal_csrf)])
    public.include_router(auth.public_router)
    portal.include_router(public)

    # Sign-in first: a signed-out browser posting a stale form is sent to sign in, not 403'd.
    signed_in = APIRouter(dependencies=[Depends(require_user), Depends(verify_portal_csrf)])
    signed_in.include_router(auth.member_router)
    signed_in.include_router(member.router)
    signed_in.include_router(search.router)
    signed_in.include_router(sharing.router)
    signed_in.include_router(activities.router)
    signed_in.include_router(activities.admin_router)
    signed_in.include_router(sharing.admin_router)
    signed_in.include_router(admin.router)
    for feature in (connection, export_settings, exports, imports):
        signed_in.include_router(feature.router)
        signed_in.include_router(feature.admin_router)
    portal.include_router(signed_in)
    return portal
