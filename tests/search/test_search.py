"""Advanced Search: every standard filter's semantics, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from gtmsync.kit.errors import UserError
from gtmsync.platform.models import Company, IntentSignal
from gtmsync.search import filters as f
from gtmsync.search import service
from tests.fixtures.factories import make_company, make_contact


@pytest.fixture
def corpus(db_session: Session) -> dict[str, Company]:
    acme = make_company(
        db_session,
        name="Acme O'Brien & Sons",
        industry="Software",
        employee_count=250,
        revenue=40_000_000,
        country="United States",
        city="Austin",
    )
    globex = make_company(
        db_session,
        name="Globex 100% Corp",
        industry="Retail",
        employee_count=5_000,
        revenue=900_000_000,
        country="Germany",
        city="Berlin",
    )
    initech = make_company(
        db_session,
        name="Initech_Labs",
        industry="Software",
        employee_count=40,
        revenue=None,
        country="United States",
        city="Boston",
    )
    make_contact(
        db_session,
        company_id=acme.id,
        first_name="Ada",
        last_name="Lovelace",
        job_title="VP Engineering",
        department="Engineering",
        management_level="VP",
    )
    make_contact(
        db_session,
        company_id=globex.id,
        first_name="Grace",
        last_name="Hopper",
        job_title="Head of Sales",
        department="Sales",
        management_level="Director",
    )
    make_contact(
        db_session,
        company_id=None,
        first_name="Solo",
        last_name="Person",
        job_title="Consultant",
        department="Sales",
        management_level="Non-Manager",
    )
    for n, (company, topic, score) in enumerate(
        [(acme, "Cloud Security", 80), (globex, "Cloud Security", 40), (initech, "CRM", 95)]
    ):
        db_session.add(
            IntentSignal(
                signal_id=f"S-search-{n}-{company.id}",
                company_id=company.id,
                topic=topic,
                signal_score=score,
                issue_date=date(2026, 11, 1),
            )
        )
    db_session.flush()
    return {"acme": acme, "globex": globex, "initech": initech}


def names(session: Session, obj: f.SearchObject, **params: str) -> list[str]:
    page = service.search(session, f.parse(obj, params), page_size=100)
    out = []
    for hit in page.hits:
        out.append(
            hit.name if isinstance(hit, service.CompanyHit) else f"{hit.first_name} {hit.last_name}"
        )
    return out


class TestCompanyFilters:
    def test_industry_and_employee_range(
        self, db_session: Session, corpus: dict[str, Company]
    ) -> None:
        found = names(
            db_session, f.SearchObject.COMPANIES, industry__exact="software", employees__gte="100"
        )
        assert found == ["Acme O'Brien & Sons"]
        assert names(
            db_session, f.SearchObject.COMPANIES, employees__lte="250", industry__in="Software"
        ) == ["Acme O'Brien & Sons", "Initech_Labs"]

    def test_name_contains_treats_like_wildcards_literally(
        self, db_session: Session, corpus: dict[str, Company]
    ) -> None:
        assert names(db_session, f.SearchObject.COMPANIES, name__contains="100%") == [
            "Globex 100% Corp"
        ]
        assert names(db_session, f.SearchObject.COMPANIES, name__contains="e_h") == []
        assert names(db_session, f.SearchObject.COMPANIES, name__contains="_labs") == [
            "Initech_Labs"
        ]
        assert names(db_session, f.SearchObject.COMPANIES, name__contains="o'brien") == [
            "Acme O'Brien & Sons"
        ]

    def test_revenue_range_excludes_unknown_revenue(
        self, db_session: Session, corpus: dict[str, Company]
    ) -> None:
        assert names(db_session, f.SearchObject.COMPANIES, revenue__lte="100000000") == [
            "Acme O'Brien & Sons"
        ]

    def test_location(self, db_session: Session, corpus: dict[str, Company]) -> None:
        assert names(
            db_session,
            f.SearchObject.COMPANIES,
            country__in="Germany, United States",
            city__exact="berlin",
        ) == ["Globex 100% Corp"]

    def test_intent_topic_with_minimum_score_is_one_signal(
        self, db_session: Session, corpus: dict[str, Company]
    ) -> None:
        assert names(
            db_session, f.SearchObject.COMPANIES, intent_topic__exact="Cloud Security"
        ) == ["Acme O'Brien & Sons", "Globex 100% Corp"]
        assert names(
            db_session,
            f.SearchObject.COMPANIES,
            intent_topic__exact="Cloud Security",
            intent_score__gte="60",
        ) == ["Acme O'Brien & Sons"]
        # The score applies to the chosen topic's signal, not to any signal of the company.
        assert (
            names(
                db_session,
                f.SearchObject.COMPANIES,
                intent_topic__exact="Cloud Security",
                intent_score__gte="90",
            )
            == []
        )

    def test_sorting_and_paging(self, db_session: Session, corpus: dict[str, Company]) -> None:
        parsed = f.parse(f.SearchObject.COMPANIES, {"industry__in": "Software,Retail"})
        first = service.search(db_session, parsed, sort="employees:desc", page=1, page_size=2)
        second = service.search(db_session, parsed, sort="employees:desc", page=2, page_size=2)
        assert [h.name for h in first.hits if isinstance(h, service.CompanyHit)] == [
            "Globex 100% Corp",
            "Acme O'Brien & Sons",
        ]
        assert [h.name for h in second.hits if isinstance(h, service.CompanyHit)] == [
            "Initech_Labs"
        ]
        assert first.total == 3
        assert first.has_next
        assert not second.has_next
        assert first.total_label == "3"


class TestContactFilters:
    def test_person_and_company_filters(
        self, db_session: Session, corpus: dict[str, Company]
    ) -> None:
        assert names(db_session, f.SearchObject.CONTACTS, department__in="Sales") == [
            "Grace Hopper",
            "Solo Person",
        ]
        assert names(
            db_session,
            f.SearchObject.CONTACTS,
            department__in="Sales",
            company_industry__exact="Retail",
        ) == ["Grace Hopper"]
        assert names(db_session, f.SearchObject.CONTACTS, job_title__contains="engineering") == [
            "Ada Lovelace"
        ]
        assert names(db_session, f.SearchObject.CONTACTS, management_level__in="VP,Director") == [
            "Grace Hopper",  # sorted by last name
            "Ada Lovelace",
        ]
        assert names(
            db_session,
            f.SearchObject.CONTACTS,
            company_intent_topic__exact="Cloud Security",
            intent_score__gte="60",
        ) == ["Ada Lovelace"]
        assert names(db_session, f.SearchObject.CONTACTS, name__contains="ace hop") == [
            "Grace Hopper"
        ]


class TestParsing:
    @pytest.mark.parametrize(
        ("params", "field", "text"),
        [
            ({"colour__exact": "red"}, "colour__exact", "Unknown filter 'colour'"),
            ({"employees__contains": "5"}, "employees__contains", "does not support"),
            ({"employees__gte": "lots"}, "employees__gte", "whole number"),
            ({"employees__gte": "-1"}, "employees__gte", "negative"),
            ({"intent_score__gte": "101"}, "intent_score__gte", "between 0 and 100"),
            ({"industry__in": ",".join(str(n) for n in range(60))}, "industry__in", "at most 50"),
        ],
    )
    def test_bad_filters_name_the_field_and_the_fix(
        self, params: dict[str, str], field: str, text: str
    ) -> None:
        with pytest.raises(UserError) as raised:
            f.parse(f.SearchObject.COMPANIES, params)
        assert raised.value.field == field
        assert text in raised.value.message
        assert raised.value.fix

    def test_sentences_and_round_trip(self) -> None:
        parsed = f.parse(
            f.SearchObject.COMPANIES, {"industry__in": "Software, Retail", "employees__gte": "50"}
        )
        assert parsed.sentences() == [
            "Industry is one of Software, Retail",
            "Employees is at least 50",
        ]
        assert f.parse(f.SearchObject.COMPANIES, parsed.params()).sentences() == parsed.sentences()

    def test_bad_sort_and_page(self, db_session: Session) -> None:
        parsed = f.parse(f.SearchObject.COMPANIES, {})
        with pytest.raises(UserError, match="Cannot sort"):
            service.search(db_session, parsed, sort="colour")
        with pytest.raises(UserError) as raised:
            service.search(db_session, parsed, page_size=1000)
        assert raised.value.field == "page_size"

    def test_count_is_capped(
        self, db_session: Session, monkeypatch: pytest.MonkeyPatch, corpus: dict[str, Company]
    ) -> None:
        monkeypatch.setattr(service, "COUNT_CAP", 2)
        page = service.search(db_session, f.parse(f.SearchObject.COMPANIES, {}), page_size=1)
        assert page.total_is_capped
        assert page.total_label == "2+"
