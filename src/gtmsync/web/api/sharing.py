"""`/api/v1/data-sharing`: the Data Sharing page's settings and contributions (admins only)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from gtmsync.sharing import service as sharing_service
from gtmsync.web.deps import AdminUser, CurrentOrg, SessionDep, require_admin

router = APIRouter(
    prefix="/data-sharing", tags=["data sharing"], dependencies=[Depends(require_admin)]
)


class CategoryOut(BaseModel):
    key: str
    label: str
    description: str
    enabled: bool


class SharingOut(BaseModel):
    locked: bool = Field(description="True when the org's contract opts out: everything is OFF.")
    message: str | None
    categories: list[CategoryOut]


class SharingUpdate(BaseModel):
    categories: dict[str, bool] = Field(description='e.g. {"accounts": false}')


class ContributionOut(BaseModel):
    day: date
    counts: dict[str, int]
    total: int


def _out(state: sharing_service.SharingState) -> SharingOut:
    return SharingOut(
        locked=state.locked,
        message=state.message,
        categories=[
            CategoryOut(
                key=s.category.key,
                label=s.category.label,
                description=s.category.description,
                enabled=s.enabled,
            )
            for s in state.categories
        ],
    )


@router.get("", response_model=SharingOut)
def get_sharing(db: SessionDep, org: CurrentOrg) -> SharingOut:
    return _out(sharing_service.state(db, org.id))


@router.put("", response_model=SharingOut)
def put_sharing(
    body: SharingUpdate, db: SessionDep, org: CurrentOrg, admin: AdminUser
) -> SharingOut:
    return _out(sharing_service.update(db, org_id=org.id, actor=admin, changes=body.categories))


@router.get("/contributions", response_model=list[ContributionOut])
def get_contributions(db: SessionDep, org: CurrentOrg) -> list[ContributionOut]:
    return [
        ContributionOut(day=d.day, counts=d.counts, total=d.total)
        for d in sharing_service.contributions(db, org.id)
    ]
