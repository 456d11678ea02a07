"""API shapes of Advanced Search (`/api/v1/search/{object}`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Indicator(BaseModel):
    """Whether the hit exists in Dynamics, as of the daily snapshot."""

    in_dynamics: bool
    table: str | None = None
    dynamics_id: str | None = None
    owner_name: str | None = None
    others: int = Field(0, description="Further Dynamics records matching the same record.")
    as_of: str | None = None
    url: str | None = None


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
    dynamics: Indicator | None = None


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
    dynamics: Indicator | None = None


class SearchResult(BaseModel):
    object: str
    total: int = Field(
        description="Matches: exact, a lower bound (total_is_capped) or an estimate "
        "(total_is_estimate)."
    )
    total_is_capped: bool = Field(
        description="True when there are more matches than total (counting stopped there)."
    )
    total_is_estimate: bool = Field(
        False,
        description="True when total is estimated: a search with Dynamics filters and more "
        "than a few thousand candidates multiplies the exact count of its standard filters "
        "by the share of records the Dynamics filters keep, from the daily snapshot's "
        "statistics.",
    )
    total_label: str = Field(
        description='What the portal shows, e.g. "1,234", "10,000+" or "about 2,100".'
    )
    has_next: bool = Field(False, description="Whether a next page exists (always exact).")
    page: int
    page_size: int
    filters: list[str] = Field(description="The filters in words.")
    hits: list[CompanyHit | ContactHit]


class CustomFieldOut(BaseModel):
    attribute: str
    type: str
    label: str
    targets: list[str]


class FilterSettingsOut(BaseModel):
    account: bool
    opportunity: bool
    contact: bool
    lead: bool
    custom_fields: dict[str, list[CustomFieldOut]]


class FilterTogglesIn(BaseModel):
    account: bool | None = None
    opportunity: bool | None = None
    contact: bool | None = None
    lead: bool | None = None


class CustomFieldIn(BaseModel):
    object: str = Field(description="account, contact or lead")
    attribute: str = Field(description="The Dynamics column's logical name.")


class SavedSearchIn(BaseModel):
    name: str
    object: str
    params: list[tuple[str, str]] = Field(
        description="Filter pairs, e.g. [['crm_owner__in','all']]"
    )


class SavedSearchOut(BaseModel):
    id: str
    name: str
    object: str
    params: list[tuple[str, str]]
    new_matches: int
