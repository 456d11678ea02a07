"""Dynamics filters over the daily snapshot: every filter's include/exclude semantics, the
limits, toggles, custom fields, indicators, duplicates, snapshot timing and saved-search
alerts. The imported rows are written the way the import stores them (its tables), then the
snapshot is taken through the search feature, so only the import's network half is skipped
here (tests/search/test_real_import.py covers that with the local Dataverse server)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gtmsync.crm_import.models import (
    ImportedAccount,
    ImportedContact,
    ImportedOpportunity,
    ImportedUser,
)
from gtmsync.kit.errors import UserError
from gtmsync.platform.models import Company, Contact, Org
from gtmsync.search import profiles, saved, snapshot
from gtmsync.search import service as search_service
from gtmsync.search.filters import SearchObject
from gtmsync.search.models import SearchFilterSettings, SnapAccount
from tests.fixtures.factories import make_company, make_contact, make_user

T0 = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class World:
    org: Org
    owners: dict[str, uuid.UUID]
    companies: dict[str, Company]
    contacts: dict[str, Contact]
    accounts: dict[str, ImportedAccount]


def _account(
    session: Session, org: Org, company: Company | None, owner: uuid.UUID, **values: Any
) -> ImportedAccount:
    row = ImportedAccount(
        org_id=org.id,
        source_table="account",
        dynamics_id=uuid.uuid4(),
        owner_id=owner,
        matched_company_id=company.id if company else None,
        name=company.name if company else "Unmatched",
        **values,
    )
    session.add(row)
    session.flush()
    return row


def _person(
    session: Session, org: Org, contact: Contact, owner: uuid.UUID, table: str, **values: Any
) -> None:
    session.add(
        ImportedContact(
            org_id=org.id,
            source_table=table,
            dynamics_id=uuid.uuid4(),
            owner_id=owner,
            matched_contact_id=contact.id,
            first_name=contact.first_name,
            last_name=contact.last_name,
            modified_on=T0,
            **values,
        )
    )


def _opp(session: Session, org: Org, account: ImportedAccount, **values: Any) -> None:
    session.add(
        ImportedOpportunity(
            org_id=org.id,
            source_table="opportunity",
            dynamics_id=uuid.uuid4(),
            account_dynamics_id=account.dynamics_id,
            **values,
        )
    )


@pytest.fixture
def world(db_session: Session, org: Org) -> World:
    owners = {name: uuid.uuid4() for name in ("olivia", "oscar", "omar")}
    for name, owner_id in owners.items():
        db_session.add(
            ImportedUser(
                org_id=org.id,
                source_table="systemuser",
                dynamics_id=owner_id,
                full_name=name.capitalize(),
            )
        )
    companies = {
        key: make_company(db_session, name=f"{key.upper()} Corp", industry="Software")
        for key in ("a", "b", "c", "d")
    }
    a = _account(
        db_session,
        org,
        companies["a"],
        owners["olivia"],
        account_type="Customer",
        modified_on=T0,
        custom={"new_tier": "Gold"},
    )
    b = _account(
        db_session, org, companies["b"], owners["oscar"], account_type="Prospect", modified_on=T0
    )
    # Two Dynamics accounts match C (duplicates across locations): Omar's is newer.
    _account(
        db_session, org, companies["c"], owners["olivia"], account_type="Partner", modified_on=T0
    )
    c_new = _account(
        db_session,
        org,
        companies["c"],
        owners["omar"],
        account_type="Partner",
        modified_on=T0 + timedelta(days=3),
    )
    _account(db_session, org, None, owners["oscar"])  # unmatched: never in filters
    _opp(
        db_session,
        org,
        a,
        stage="Propose",
        amount=Decimal(50_000),
        close_date=date(2026, 12, 1),
        is_closed=False,
    )
    _opp(db_session, org, b, stage="Closed", amount=Decimal(9_000), is_closed=True, is_won=True)
    _opp(db_session, org, c_new, stage="Closed", is_closed=True, is_won=False)

    contacts = {
        key: make_contact(db_session, first_name=key.upper(), company_id=companies["a"].id)
        for key in ("p1", "p2", "p3", "p4")
    }
    _person(db_session, org, contacts["p1"], owners["olivia"], "contact", do_not_email=True)
    _person(
        db_session,
        org,
        contacts["p2"],
        owners["oscar"],
        "lead",
        do_not_email=False,
        lead_status="Qualified",
    )
    _person(
        db_session,
        org,
        contacts["p3"],
        owners["omar"],
        "lead",
        do_not_email=True,
        lead_status="New",
    )
    db_session.flush()
    snapshot.take(db_session, org.id)
    return World(org, owners, companies, contacts, {"a": a, "b": b})


def names(session: Session, world: World, obj: SearchObject, **params: str) -> set[str]:
    result = search_service.advanced_search(
        session, world.org.id, obj, list(params.items()), page_size=100
    )
    if obj == SearchObject.COMPANIES:
        return {h.name.split()[0].lower() for h in result.page.hits}  # type: ignore[union-attr]
    return {h.first_name.lower() for h in result.page.hits}  # type: ignore[union-attr]


C = SearchObject.COMPANIES
P = SearchObject.CONTACTS


class TestAccountFilters:
    def test_owner_include_and_exclude(self, db_session: Session, world: World) -> None:
        olivia, oscar = str(world.owners["olivia"]), str(world.owners["oscar"])
        assert names(db_session, world, C, crm_owner__in=olivia) == {"a", "c"}
        assert names(db_session, world, C, crm_owner__in=f"{olivia},{oscar}") == {"a", "b", "c"}
        assert names(db_session, world, C, crm_owner__exclude=olivia) == {"b", "d"}

    def test_all_owners_include_every_matched_and_exclude_removes_every_matched(
        self, db_session: Session, world: World
    ) -> None:
        assert names(db_session, world, C, crm_owner__in="all") == {"a", "b", "c"}
        assert names(db_session, world, C, crm_owner__exclude="all") == {"d"}
        assert names(db_session, world, C) == {"a", "b", "c", "d"}

    def test_more_than_ten_owners_is_refused_by_name(
        self, db_session: Session, world: World
    ) -> None:
        ten = ",".join(str(uuid.uuid4()) for _ in range(10))
        assert names(db_session, world, C, crm_owner__in=ten) == set()
        with pytest.raises(UserError) as exc:
            names(db_session, world, C, crm_owner__in=f"{ten},{uuid.uuid4()}")
        assert exc.value.field == "crm_owner__in"
        assert "at most 10" in str(exc.value)

    def test_owner_must_be_an_id(self, db_session: Session, world: World) -> None:
        with pytest.raises(UserError) as exc:
            names(db_session, world, C, crm_owner__exclude="Olivia")
        assert exc.value.field == "crm_owner__exclude"

    def test_account_type(self, db_session: Session, world: World) -> None:
        assert names(db_session, world, C, crm_account_type__in="Customer") == {"a"}
        assert names(db_session, world, C, crm_account_type__exclude="Prospect") == {
            "a",
            "c",
            "d",
        }

    def test_opportunity_stage_status_amount_and_close_date(
        self, db_session: Session, world: World
    ) -> None:
        assert names(db_session, world, C, crm_opp_stage__exclude="Closed") == {"a", "d"}
        assert names(db_session, world, C, crm_opp_stage__in="Propose") == {"a"}
        assert names(db_session, world, C, crm_opp_status__in="won") == {"b"}
        assert names(db_session, world, C, crm_opp_status__in="lost") == {"c"}
        assert names(db_session, world, C, crm_opp_status__exclude="open") == {"b", "c", "d"}
        assert names(db_session, world, C, crm_opp_amount__gte="10000") == {"a"}
        assert names(
            db_session, world, C, crm_opp_amount__lte="60000", crm_opp_close__gte="2026-11-15"
        ) == {"a"}
        assert names(db_session, world, C, crm_opp_close__lte="2026-11-15") == set()

    def test_combines_with_standard_filters(self, db_session: Session, world: World) -> None:
        world.companies["a"].industry = "Retail"
        db_session.flush()
        assert names(db_session, world, C, industry__in="Software", crm_owner__in="all") == {
            "b",
            "c",
        }

    def test_bad_values_name_the_field(self, db_session: Session, world: World) -> None:
        for param, value in (
            ("crm_opp_status__in", "pending"),
            ("crm_opp_amount__gte", "lots"),
            ("crm_opp_close__lte", "31/12/2026"),
            ("crm_owner__gte", "1"),
            ("crm_planet__in", "x"),
        ):
            with pytest.raises(UserError) as exc:
                names(db_session, world, C, **{param: value})
            assert exc.value.field == param, param
            assert exc.value.fix

    def test_sentences(self, db_session: Session, world: World) -> None:
        result = search_service.advanced_search(
            db_session,
            world.org.id,
            C,
            [("crm_owner__in", str(world.owners["olivia"])), ("crm_owner__exclude", "all")],
        )
        assert "Dynamics account owner is one of Olivia" in result.page.sentences
        assert any(s.startswith("Exclude every record in Dynamics") for s in result.crm_sentences)


class TestToggles:
    def test_switched_off_groups_are_refused_with_where_to_switch_them_on(
        self, db_session: Session, world: World
    ) -> None:
        db_session.add(
            SearchFilterSettings(
                org_id=world.org.id, account=True, opportunity=False, contact=True, lead=False
            )
        )
        db_session.flush()
        assert names(db_session, world, C, crm_owner__in="all") == {"a", "b", "c"}
        with pytest.raises(UserError) as exc:
            names(db_session, world, C, crm_opp_stage__exclude="Closed")
        assert "Search Filters" in (exc.value.fix or "")
        with pytest.raises(UserError):
            names(db_session, world, P, crm_lead_status__in="New")
        row = db_session.get(SearchFilterSettings, world.org.id)
        assert row is not None
        row.account, row.opportunity = False, True
        db_session.flush()
        with pytest.raises(UserError):  # ↳ Opportunity sits under Account
            names(db_session, world, C, crm_opp_stage__exclude="Closed")


class TestCustomFields:
    def test_custom_field_include_exclude(self, db_session: Session, world: World) -> None:
        db_session.add(
            SearchFilterSettings(
                org_id=world.org.id,
                account=True,
                opportunity=True,
                contact=True,
                lead=True,
                custom_fields={
                    "account": [{"attribute": "new_tier", "type": "Picklist", "label": "Tier"}]
                },
            )
        )
        db_session.flush()
        assert names(db_session, world, C, crm_custom_new_tier__in="Gold") == {"a"}
        assert names(db_session, world, C, crm_custom_new_tier__exclude="Gold") == {"b", "c", "d"}
        with pytest.raises(UserError) as exc:
            names(db_session, world, C, crm_custom_new_colour__in="Red")
        assert exc.value.field == "crm_custom_new_colour__in"


class TestContactFilters:
    def test_contact_owner_and_opt_out(self, db_session: Session, world: World) -> None:
        olivia = str(world.owners["olivia"])
        assert names(db_session, world, P, crm_owner__in=olivia) == {"p1"}
        assert names(db_session, world, P, crm_owner__in="all") == {"p1"}
        assert names(db_session, world, P, crm_owner__exclude="all") == {"p2", "p3", "p4"}
        assert names(db_session, world, P, crm_optout__exclude="1") == {"p2", "p3", "p4"}

    def test_lead_owner_status_and_opt_out(self, db_session: Session, world: World) -> None:
        oscar = str(world.owners["oscar"])
        assert names(db_session, world, P, crm_lead_owner__in=oscar) == {"p2"}
        assert names(db_session, world, P, crm_lead_owner__exclude="all") == {"p1", "p4"}
        assert names(db_session, world, P, crm_lead_status__in="Qualified,New") == {"p2", "p3"}
        assert names(db_session, world, P, crm_lead_status__exclude="New") == {"p1", "p2", "p4"}
        assert names(db_session, world, P, crm_lead_optout__exclude="true") == {"p1", "p2", "p4"}


class TestIndicators:
    def test_results_say_in_dynamics_with_owner_and_snapshot_date(
        self, db_session: Session, world: World
    ) -> None:
        result = search_service.advanced_search(db_session, world.org.id, C, [])
        marks = result.indicators
        a, d = world.companies["a"], world.companies["d"]
        assert marks[a.id].owner_name == "Olivia"
        assert marks[a.id].table == "account"
        assert marks[a.id].as_of == result.snapshot_taken_at
        assert d.id not in marks

    def test_several_matches_show_the_most_recent_and_count_the_others(
        self, db_session: Session, world: World
    ) -> None:
        c = world.companies["c"]
        mark = profiles.indicators(db_session, world.org.id, C, [c.id])[c.id]
        assert (mark.owner_name, mark.others) == ("Omar", 1)
        profile = profiles.company_profile(db_session, world.org.id, c.id)
        assert [m.owner_name for m in profile.matches] == ["Omar", "Olivia"]

    def test_org_chart_groups_by_department_and_level_with_indicators(
        self, db_session: Session, world: World
    ) -> None:
        p1, p2 = world.contacts["p1"], world.contacts["p2"]
        p1.department, p1.management_level = "Sales", "VP"
        p2.department, p2.management_level = "Sales", "C-Level"
        db_session.flush()
        chart = profiles.company_profile(db_session, world.org.id, world.companies["a"].id)
        sales = chart.org_chart.departments["Sales"]
        assert list(sales) == ["C-Level", "VP"]
        assert sales["VP"][0].indicator.owner_name == "Olivia"
        assert sales["C-Level"][0].indicator.table == "lead"
        other = chart.org_chart.departments["Other"]["Unknown"]
        assert {p.indicator.in_dynamics for p in other} == {True, False}  # p3 lead, p4 none


class TestSnapshot:
    def test_import_changes_show_only_after_the_next_snapshot(
        self, db_session: Session, world: World
    ) -> None:
        oscar = str(world.owners["oscar"])
        world.accounts["a"].owner_id = world.owners["oscar"]  # what a Sync Now would store
        db_session.flush()
        assert names(db_session, world, C, crm_owner__in=oscar) == {"b"}
        snapshot.take(db_session, world.org.id)
        assert names(db_session, world, C, crm_owner__in=oscar) == {"a", "b"}

    def test_rebuild_replaces_rather_than_adds(self, db_session: Session, world: World) -> None:
        def count() -> int:
            query = select(func.count()).where(SnapAccount.org_id == world.org.id)
            return int(db_session.scalar(query.select_from(SnapAccount)) or 0)

        before = count()
        info = snapshot.take(db_session, world.org.id)
        assert count() == before == info.accounts == 4
        assert (info.contacts, info.leads, info.opportunities) == (1, 2, 3)

    def test_limits_stop_at_the_cap_and_say_so(self, db_session: Session, world: World) -> None:
        info = snapshot.take(db_session, world.org.id, limits={"accounts": 2}, opportunity_limit=1)
        assert info.accounts == 2
        assert info.opportunities == 1
        assert info.truncated is not None
        assert "accounts beyond 2" in info.truncated


class TestSavedSearchAlerts:
    def test_daily_check_records_new_matches_only(self, db_session: Session, world: World) -> None:
        user = make_user(db_session, org=world.org)
        olivia = str(world.owners["olivia"])
        view = saved.save(
            db_session,
            world.org.id,
            user.id,
            name="Olivia's software",
            obj=C,
            params=[("industry__in", "Software"), ("crm_owner__in", olivia)],
        )
        assert view.new_matches == 0  # the baseline is what the user saw when saving
        assert saved.check_all(db_session) == {view.id: 0}

        e = make_company(db_session, name="E Corp", industry="Software")
        _account(db_session, world.org, e, world.owners["olivia"], modified_on=T0)
        assert saved.check(db_session, view.id) == 0  # not before the snapshot
        snapshot.take(db_session, world.org.id)
        assert saved.check_all(db_session) == {view.id: 1}
        (listed,) = saved.list_for(db_session, world.org.id, user.id)
        assert listed.new_matches == 1
        assert [m[1] for m in saved.new_matches(db_session, world.org.id, user.id, view.id)] == [
            "E Corp"
        ]
        saved.mark_seen(db_session, world.org.id, user.id, view.id)
        assert saved.list_for(db_session, world.org.id, user.id)[0].new_matches == 0

    def test_saving_validates_filters(self, db_session: Session, world: World) -> None:
        user = make_user(db_session, org=world.org)
        with pytest.raises(UserError) as exc:
            saved.save(
                db_session,
                world.org.id,
                user.id,
                name="Bad",
                obj=C,
                params=[("crm_owner__in", "not-an-id")],
            )
        assert exc.value.field == "crm_owner__in"
        with pytest.raises(UserError):
            saved.save(db_session, world.org.id, user.id, name=" ", obj=C, params=[])

    def test_other_users_saved_searches_are_not_found(
        self, db_session: Session, world: World
    ) -> None:
        owner = make_user(db_session, org=world.org)
        other = make_user(db_session, org=world.org)
        view = saved.save(db_session, world.org.id, owner.id, name="Mine", obj=C, params=[])
        assert saved.list_for(db_session, world.org.id, other.id) == []
        from gtmsync.kit.errors import NotFoundError

        with pytest.raises(NotFoundError):
            saved.delete(db_session, world.org.id, other.id, view.id)
