"""Sample data: deterministic per seed, realistic, and loadable without a single reject."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.platform import normalise
from gtmsync.platform.loaders import Kind, load_files
from gtmsync.platform.models import Company, Contact, IntentSignal
from gtmsync.platform.sample import (
    DEPARTMENTS,
    MANAGEMENT_LEVELS,
    TOPICS,
    generate_sample,
    write_sample_files,
)


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


class TestSampleFiles:
    def test_same_seed_gives_byte_identical_files(self, tmp_path: Path) -> None:
        a = write_sample_files(tmp_path / "a", companies=60, contacts_per_company=4, seed=7)
        b = write_sample_files(tmp_path / "b", companies=60, contacts_per_company=4, seed=7)
        c = write_sample_files(tmp_path / "c", companies=60, contacts_per_company=4, seed=8)
        for name in ("companies.csv", "contacts.csv", "intent.csv"):
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert a.companies.read_bytes() != c.companies.read_bytes()
        assert a.summary == b.summary
        assert (a.summary.companies, a.summary.contacts) == (60, 240)

    def test_data_is_realistic_and_consistent(self, tmp_path: Path) -> None:
        files = write_sample_files(tmp_path, companies=300, contacts_per_company=5, seed=42)
        companies = read(files.companies)
        contacts = read(files.contacts)
        signals = read(files.intent)
        assert len(companies) == 300
        assert len(contacts) == 1500
        assert signals

        ids = [c["platform_id"] for c in companies]
        assert ids[0] == "C000000001"
        assert len(set(ids)) == len(ids)
        assert len({c["name"] for c in companies}) == len(companies)
        domains = {c["platform_id"]: normalise.registrable_domain(c["website"]) for c in companies}
        assert len(set(domains.values())) == len(companies)
        assert {c["country"] for c in companies} >= {"United States", "United Kingdom"}
        for company in companies:
            employees, revenue = int(company["employee_count"]), int(company["revenue"])
            assert employees >= 1
            assert 40_000 * employees <= revenue <= 1_500_000 * employees

        assert len({c["platform_id"] for c in contacts}) == len(contacts)
        assert {c["department"] for c in contacts} <= set(DEPARTMENTS)
        assert {c["management_level"] for c in contacts} == set(MANAGEMENT_LEVELS)
        orphans = [c for c in contacts if not c["company_platform_id"]]
        without_email = [c for c in contacts if not c["email"]]
        assert 0 < len(orphans) < len(contacts) * 0.1
        assert 0 < len(without_email) < len(contacts) * 0.15
        for contact in contacts:
            if contact["email"] and contact["company_platform_id"]:
                domain = contact["email"].split("@", 1)[1]
                assert domain == domains[contact["company_platform_id"]]
        emails = [c["email"] for c in contacts if c["email"]]
        assert len(set(emails)) == len(emails)
        chiefs = [c for c in contacts if c["management_level"] == "C-Level"]
        assert all(c["department"] == "C-Suite" for c in chiefs)

        assert {s["topic"] for s in signals} <= set(TOPICS)
        assert all(0 <= int(s["signal_score"]) <= 100 for s in signals)
        assert {s["audience_strength"] for s in signals} <= set("ABCDE")
        pairs = Counter((s["company_platform_id"], s["topic"]) for s in signals)
        assert max(pairs.values()) == 1

    def test_files_load_without_rejects(
        self, session_factory: sessionmaker[Session], tmp_path: Path
    ) -> None:
        files = write_sample_files(tmp_path, companies=80, contacts_per_company=3, seed=3)
        summary = load_files(
            session_factory,
            [
                (Kind.COMPANIES, files.companies),
                (Kind.CONTACTS, files.contacts),
                (Kind.INTENT, files.intent),
            ],
        )
        assert summary.rejected == 0
        assert [r.loaded for r in summary.results] == [
            files.summary.companies,
            files.summary.contacts,
            files.summary.intent_signals,
        ]


class TestGenerateSample:
    def test_generates_into_the_callers_transaction(self, db_session: Session) -> None:
        summary = generate_sample(db_session, companies=40, contacts_per_company=3, seed=11)
        assert (summary.companies, summary.contacts) == (40, 120)

        def total(model: type) -> int:
            return int(db_session.execute(select(func.count()).select_from(model)).scalar_one())

        assert total(Company) == 40
        assert total(Contact) == 120
        assert total(IntentSignal) == summary.intent_signals
        linked = db_session.execute(
            select(func.count()).select_from(Contact).where(Contact.company_id.is_not(None))
        ).scalar_one()
        assert 100 <= linked < 120
        again = generate_sample(db_session, companies=40, contacts_per_company=3, seed=11)
        assert again == summary
        assert total(Contact) == 120
