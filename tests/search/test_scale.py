"""Advanced Search at scale: the total's three forms (exact, capped, "about N"), the snapshot
statistics behind the estimate, the case-insensitive industry filter served by an index, and
the index the first page walks. On SQLite and PostgreSQL, through `advanced_search` (the
portal's and API's path) over a snapshot taken from imported rows.

The estimate only starts beyond `EXACT_LIMIT` candidates (2,000); the tests lower that limit
rather than write thousands of rows, the code path is the same."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from gtmsync.crm_import.models import ImportedAccount, ImportedOpportunity, ImportedUser
from gtmsync.db.unit_of_work import session_scope
from gtmsync.platform.models import Company, Org
from gtmsync.search import filters as search_filters
from gtmsync.search import service, snapshot
from gtmsync.search.filters import SearchObject
from gtmsync.search.models import SearchSnapshot, SnapStat
from tests.fixtures.factories import make_company
from tests.fixtures.web import WebOrg

C = SearchObject.COMPANIES
COMPANIES = 30


@dataclass
class Crowd:
    org: Org
    industry: str
    owners: list[uuid.UUID]
    companies: list[Company]


@pytest.fixture
def crowd(db_session: Session, org: Org) -> Crowd:
    """30 companies of one industry; even ones have an account of owner 0, every third one
    an account of owner 1; those of them divisible by 5 have a "Won" opportunity."""
    industry = f"Scale {uuid.uuid4().hex[:8]}"
    owners = [uuid.uuid4(), uuid.uuid4()]
    for n, owner in enumerate(owners):
        db_session.add(
            ImportedUser(
                org_id=org.id,
                source_table="systemuser",
                dynamics_id=owner,
                full_name=f"Owner {n}",
            )
        )
    companies = [
        make_company(db_session, name=f"Crowd {i:02d}", industry=industry, employee_count=i * 10)
        for i in range(COMPANIES)
    ]
    for i, company in enumerate(companies):
        mine = [owners[0]] if i % 2 == 0 else []
        mine += [owners[1]] if i % 3 == 0 else []
        for owner in mine:
            account = ImportedAccount(
                org_id=org.id,
                source_table="account",
                dynamics_id=uuid.uuid4(),
                owner_id=owner,
                matched_company_id=company.id,
                name=company.name,
            )
            db_session.add(account)
            if i % 5 == 0 and owner == mine[0]:
                db_session.add(
                    ImportedOpportunity(
                        org_id=org.id,
                        source_table="opportunity",
                        dynamics_id=uuid.uuid4(),
                        account_dynamics_id=account.dynamics_id,
                        stage="Won",
                        amount=Decimal(1_000),
                        is_closed=True,
                        is_won=True,
                    )
                )
    db_session.flush()
    snapshot.take(db_session, org.id)
    return Crowd(org, industry, owners, companies)


def _search(
    session: Session, crowd: Crowd, *pairs: tuple[str, str], page: int = 1, page_size: int = 5
) -> service.SearchPage:
    params = [("industry__in", crowd.industry), *pairs]
    return service.advanced_search(
        session, crowd.org.id, C, params, page=page, page_size=page_size
    ).page


def _all_names(session: Session, crowd: Crowd, *pairs: tuple[str, str]) -> list[str]:
    page = _search(session, crowd, *pairs, page_size=100)
    return [h.name for h in page.hits]  # type: ignore[union-attr]


class TestSnapshotStatistics:
    def test_distinct_companies_per_owner_stage_and_any(
        self, db_session: Session, crowd: Crowd
    ) -> None:
        rows = db_session.execute(
            select(SnapStat.kind, SnapStat.value, SnapStat.records).where(
                SnapStat.org_id == crowd.org.id
            )
        ).all()
        stats = {(kind, value): n for kind, value, n in rows}
        owner0, owner1 = (str(o) for o in crowd.owners)
        assert stats[("account_owner", owner0)] == 15  # 0, 2, ..., 28
        assert stats[("account_owner", owner1)] == 10  # 0, 3, ..., 27
        assert stats[("account_any", "")] == 20  # even or divisible by 3
        assert stats[("opp_stage", "Won")] == 4  # 0, 10, 15, 20 (5 and 25 have no account)
        assert stats[("opp_status", "won")] == 4
        assert stats[("company_industry", crowd.industry)] == COMPANIES
        taken = db_session.get(SearchSnapshot, crowd.org.id)
        assert taken is not None
        assert taken.platform_companies == db_session.scalar(
            select(text("count(*)")).select_from(Company)
        )

    def test_a_new_snapshot_replaces_the_statistics(
        self, db_session: Session, crowd: Crowd
    ) -> None:
        for account in db_session.scalars(
            select(ImportedAccount).where(ImportedAccount.owner_id == crowd.owners[1])
        ):
            db_session.delete(account)
        db_session.flush()
        snapshot.take(db_session, crowd.org.id)
        kinds = db_session.execute(
            select(SnapStat.value).where(
                SnapStat.org_id == crowd.org.id, SnapStat.kind == "account_owner"
            )
        ).all()
        assert kinds == [(str(crowd.owners[0]),)]


class TestTotals:
    def test_small_candidate_sets_are_counted_exactly(
        self, db_session: Session, crowd: Crowd
    ) -> None:
        owner0 = str(crowd.owners[0])
        page = _search(db_session, crowd, ("crm_owner__in", owner0))
        assert (page.total, page.total_is_estimate, page.total_is_capped) == (15, False, False)
        assert page.total_label == "15"
        assert page.has_next
        assert len(_all_names(db_session, crowd, ("crm_owner__in", owner0))) == 15

    def test_beyond_the_exact_limit_the_total_is_an_estimate_labelled_about(
        self, db_session: Session, crowd: Crowd, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(service, "EXACT_LIMIT", 5)
        owner0, owner1 = (str(o) for o in crowd.owners)
        pairs = (("crm_owner__in", f"{owner0},{owner1}"), ("crm_opp_stage__exclude", "Won"))
        page = _search(db_session, crowd, *pairs)
        taken = db_session.get(SearchSnapshot, crowd.org.id)
        assert taken is not None
        everyone = taken.platform_companies
        # Either owner: 1 - (1 - 15/N)(1 - 10/N), at most the 20/N with any account; not "Won".
        owners = min(20 / everyone, 1 - (1 - 15 / everyone) * (1 - 10 / everyone))
        expected = round(COMPANIES * owners * (1 - 4 / everyone))
        assert page.total_is_estimate
        assert not page.total_is_capped
        assert page.total == max(expected, 6)  # never fewer than the rows already seen
        assert page.total_label == f"about {page.total:,}"
        # The hits themselves stay exact: 20 with an owner, minus the 4 with a won deal.
        exact = _all_names(db_session, crowd, *pairs)
        assert len(exact) == 16
        assert [h.name for h in page.hits] == exact[:5]  # type: ignore[union-attr]
        assert page.has_next

    def test_the_standard_matches_are_estimated_from_a_short_walk_of_the_industry(
        self, db_session: Session, crowd: Crowd, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Even companies have 100 employees, odd ones none: "at least 50" keeps 15 of 30.
        for i, company in enumerate(crowd.companies):
            company.employee_count = 100 if i % 2 == 0 else 0
        db_session.flush()
        monkeypatch.setattr(service, "EXACT_LIMIT", 5)
        owner0 = str(crowd.owners[0])  # the 15 even companies
        page = _search(db_session, crowd, ("employees__gte", "50"), ("crm_owner__in", owner0))
        # The 6th match in name order is Crowd 10: the walk read 11 of the industry's 30
        # entries, so the standard filters keep about 30 * 6 / 11; owner 0 has 15 of the
        # platform's companies.
        taken = db_session.get(SearchSnapshot, crowd.org.id)
        assert taken is not None
        expected = round(30 * 6 / 11 * 15 / taken.platform_companies)
        assert page.total_is_estimate
        assert page.total == max(expected, 6)
        assert len(_all_names(db_session, crowd, ("employees__gte", "50"))) == 15

    def test_without_industry_statistics_the_standard_filters_are_counted(
        self, db_session: Session, crowd: Crowd, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        db_session.execute(
            delete(SnapStat).where(
                SnapStat.org_id == crowd.org.id, SnapStat.kind == "company_industry"
            )
        )
        monkeypatch.setattr(service, "EXACT_LIMIT", 5)
        page = _search(db_session, crowd, ("crm_owner__in", str(crowd.owners[0])))
        taken = db_session.get(SearchSnapshot, crowd.org.id)
        assert taken is not None
        assert page.total_is_estimate
        assert page.total == max(round(30 * 15 / taken.platform_companies), 6)

    def test_the_last_page_gives_the_exact_total_even_beyond_the_limit(
        self, db_session: Session, crowd: Crowd, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(service, "EXACT_LIMIT", 5)
        page = _search(db_session, crowd, ("crm_owner__in", str(crowd.owners[0])), page=3)
        assert (len(page.hits), page.total, page.total_is_estimate) == (5, 15, False)
        assert not page.has_next
        empty = _search(db_session, crowd, ("crm_owner__in", str(crowd.owners[0])), page=4)
        assert empty.hits == []
        assert not empty.has_next

    def test_filters_without_statistics_fall_back_to_the_exact_count(
        self, db_session: Session, crowd: Crowd, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(service, "EXACT_LIMIT", 5)
        page = _search(db_session, crowd, ("crm_opp_amount__gte", "500"), page_size=2)
        # No statistics for amounts: the 4 companies with a won deal are counted one by one.
        assert (page.total, page.total_is_estimate, page.has_next) == (4, False, True)
        # "Exclude all owners" has statistics (companies with any account): estimated.
        page = _search(db_session, crowd, ("crm_owner__exclude", "all"), page_size=2)
        taken = db_session.get(SearchSnapshot, crowd.org.id)
        assert taken is not None
        expected = round(COMPANIES * (1 - 20 / taken.platform_companies))
        assert (page.total, page.total_is_estimate) == (max(expected, 3), True)

    def test_without_crm_filters_the_count_is_exact_up_to_the_cap(
        self, db_session: Session, crowd: Crowd, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(service, "COUNT_CAP", 12)
        page = _search(db_session, crowd, page_size=5)
        assert (page.total, page.total_is_capped, page.total_label) == (12, True, "12+")
        monkeypatch.setattr(service, "COUNT_CAP", 100)
        page = _search(db_session, crowd, page_size=5)
        assert (page.total, page.total_is_capped, page.total_label) == (30, False, "30")

    def test_the_api_says_when_the_total_is_an_estimate(self) -> None:
        fields = service.SearchPage.__dataclass_fields__
        assert {"total_is_estimate", "has_next"} <= set(fields)
        from gtmsync.search.schemas import SearchResult

        assert {"total_is_estimate", "has_next", "total_label"} <= set(SearchResult.model_fields)

    @pytest.mark.parametrize(
        ("value", "shown"), [(0.4, 0), (87.0, 87), (2134.0, 2100), (2150.0, 2200), (98765, 99000)]
    )
    def test_estimates_keep_two_significant_digits(self, value: float, shown: int) -> None:
        assert service._about(value) == shown


class TestIndustryFilter:
    def test_any_spelling_matches_every_stored_spelling(
        self, db_session: Session, crowd: Crowd
    ) -> None:
        odd = make_company(db_session, name="Shouting", industry=crowd.industry.upper())
        db_session.flush()
        parsed = search_filters.parse(C, {"industry__exact": crowd.industry.lower()})
        stored = service.stored_values(db_session, parsed)
        assert sorted(stored["industry__exact"]) == sorted([crowd.industry, odd.industry])
        page = service.search(db_session, parsed, page_size=100)
        assert page.total == COMPANIES + 1

    def test_too_many_distinct_values_keep_the_lower_comparison(
        self, db_session: Session, crowd: Crowd, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(service, "LOOSE_SCAN_CAP", 1)
        parsed = search_filters.parse(C, {"industry__in": crowd.industry.upper()})
        assert service.stored_values(db_session, parsed) == {}
        assert service.search(db_session, parsed, page_size=100).total == COMPANIES

    def test_the_first_page_walks_the_industry_name_index(
        self, db_session: Session, crowd: Crowd
    ) -> None:
        parsed = search_filters.parse(
            C, {"industry__exact": crowd.industry, "employees__gte": "50"}
        )
        query = (
            service._base(C)
            .where(*parsed.where(service.stored_values(db_session, parsed)))
            .order_by(*service._order(C, "name"))
            .limit(26)
        )
        bind = db_session.get_bind()
        sql = str(query.compile(bind, compile_kwargs={"literal_binds": True}))
        if bind.dialect.name == "sqlite":
            plan = " ".join(
                str(r[-1]) for r in db_session.execute(text("EXPLAIN QUERY PLAN " + sql))
            )
            assert "ix_companies_industry_name (industry=?)" in plan
            assert "TEMP B-TREE" not in plan  # name order comes from the index
        else:
            # A 30-row table is best scanned (or sorted after any index); say what large
            # tables get: an index that yields the name order by itself.
            db_session.execute(text("SET LOCAL enable_seqscan = off"))
            db_session.execute(text("SET LOCAL enable_sort = off"))
            plan = " ".join(r[0] for r in db_session.execute(text("EXPLAIN " + sql)))
            assert "ix_companies_industry_name" in plan
            assert "Sort" not in plan


class TestApiAndPage:
    """The API fields and the portal's wording of an estimated total."""

    def _seed(self, app: FastAPI, org_id: uuid.UUID) -> str:
        industry = f"Web {uuid.uuid4().hex[:8]}"
        owner = uuid.uuid4()
        with session_scope(app.state.session_factory) as session:
            for i in range(40):  # 26 in Dynamics: more than the portal's page of 25
                company = make_company(session, name=f"Web {i:02d}", industry=industry)
                if i % 3:
                    session.add(
                        ImportedAccount(
                            org_id=org_id,
                            source_table="account",
                            dynamics_id=uuid.uuid4(),
                            owner_id=owner,
                            matched_company_id=company.id,
                            name=company.name,
                        )
                    )
            session.flush()
            snapshot.take(session, org_id)
        return industry

    def test_api_and_page_say_about_when_estimated(
        self,
        app: FastAPI,
        web_org: WebOrg,
        signed_in_client: TestClient,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        industry = self._seed(app, web_org.org_id)
        monkeypatch.setattr(service, "EXACT_LIMIT", 3)
        params = {"industry__in": industry, "crm_owner__in": "all"}
        body = signed_in_client.get(
            "/api/v1/search/companies", params={**params, "page_size": "2"}
        ).json()
        assert body["total_is_estimate"] is True
        assert body["has_next"] is True
        assert body["total_label"] == f"about {body['total']:,}"
        assert len(body["hits"]) == 2
        page = signed_in_client.get("/search", params={**params, "object": "companies"})
        assert page.status_code == 200
        assert f'<span id="result-count">about {body["total"]:,}</span>' in page.text
        assert 'id="count-estimate"' in page.text
        # Exact again when nothing more needs counting: every hit fits on one page.
        exact = signed_in_client.get(
            "/api/v1/search/companies", params={**params, "page_size": "100"}
        ).json()
        assert (exact["total"], exact["total_is_estimate"], exact["has_next"]) == (26, False, False)
        assert (
            'id="count-estimate"'
            not in signed_in_client.get(
                "/search", params={"object": "companies", "industry__in": industry}
            ).text
        )
