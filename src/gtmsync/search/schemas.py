"""API shapes of Advanced Search (`/api/v1/search/{object}`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CompanyHit(BaseModel):
    id: int
    platform_id: str
    name: str
    website: str | None
    industry: str | None
    employee_count: int | None
    revenue: int | None
    city: str | None
    country: str | None


class ContactHit(BaseModel):
    id: int
    platform_id: str
    first_name: str
    last_name: str
    email: str | None
    job_title: str | None
    department: str | None
    management_level: str | None
    company_name: str | None
    company_platform_id: str | None


class SearchResult(BaseModel):
    object: str
    total: int = Field(description="Matches, exact up to the cap (see total_is_capped).")
    total_is_capped: bool
    total_label: str = Field(description='What the portal shows, e.g. "1,234" or "10,000+".')
    page: int
    page_size: int
    filters: list[str] = Field(description="The filters in words.")
    hits: list[CompanyHit | ContactHit]
