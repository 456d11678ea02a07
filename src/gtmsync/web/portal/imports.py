"""Portal pages of the imports feature.

`router` holds pages every signed-in user has; `admin_router` (prefix `/admin`) holds Admin
Portal pages and carries the admin check once.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from gtmsync.web.deps import require_admin

router = APIRouter()
admin_router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])
