from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import GtmObject, MatchMethod, RunKind, RunStatus
from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.kit.clock import utc_now
from gtmsync.platform.models import Company, Contact
from tests.crm_import.conftest import Importer


def _company(
    session: Session, *, name: str, domain: str | None = None, platform_id: str | None = None
) -> Company:
    company = Company(
        platform_id=platform_id or f"c-{uuid.uuid4().hex[:12]}",
        name=name,
        name_lower=name.lower(),
        domain=domain,
        website=f"https://{domain}" if domain else None,
    )
    session.add(company)
    session.flush()
    return company


class TestBudget:
    def test_run_pauses_at_the_budget_and_resumes_later(self, importer: Importer) -> None:
        import_service.get_mapping(importer.session, importer.org_id, settings=importer.cfg)
        used = import_service.usage(importer.session, importer.org_id).today
        assert used > 0  # the metadata read for the mapping counts too
        importer.settings(daily_budget=used + 2)
        run = importer.one("account")
        assert run.status == RunStatus.PAUSED
        assert f"daily Dataverse API budget of {used + 2} requests" in (run.message or "")
        assert run.api_calls == 2
        usage = import_service.usage(importer.session, importer.org_id)
        assert usage.today == used + 2
        assert usage.budget == used + 2
        stored_before = importer.stored_ids(GtmObject.ACCOUNT)
        assert 0 < len(stored_before) < len(importer.store_ids("account"))
        assert importer.cursor("account:account").backfill_next_link  # resumes here

        again = importer.one("account")  # still over budget: pauses before any request
        assert again.status == RunStatus.PAUSED
        assert again.api_calls == 0

        importer.settings(daily_budget=1000)
        done = importer.one("account")
        assert done.status == RunStatus.SUCCEEDED, done.errors
        assert done.kind == RunKind.BACKFILL
        stored = importer.stored_ids(GtmObject.ACCOUNT)
        assert len(stored) == len(set(stored))
        assert set(stored) == importer.store_ids("account")
        status = import_service.status(importer.session, importer.org_id)
        assert status.used_today == usage.today + done.api_calls


class TestLimits:
    def test_limit_stops_the_table_and_keeps_what_it_has(self, importer: Importer) -> None:
        importer.settings(object_limits={"account": 120})
        run = importer.one("account")
        assert run.status == RunStatus.STOPPED
        assert "per-object limit of 120" in (run.message or "")
        assert len(importer.stored_ids(GtmObject.ACCOUNT)) == 120
        status = import_service.status(importer.session, importer.org_id)
        (account,) = [s for s in status.sources if s.source_key == "account:account"]
        assert "per-object limit" in (account.message or "")


class TestMatching:
    def test_accounts_match_by_domain_then_name_and_contacts_by_email(
        self, importer: Importer
    ) -> None:
        session = importer.session
        tag = uuid.uuid4().hex[:8]  # the Dynamics side outlives the test: keep keys unique
        domain = f"match{tag}.com"
        by_domain = _company(session, name="Some Other Name", domain=domain)
        by_name = _company(session, name=f"Exact Name Match {tag}")
        person = Contact(
            platform_id=f"p-{uuid.uuid4().hex[:12]}",
            first_name="Mae",
            last_name="Matched",
            email=f"mae.matched@{domain}",
        )
        session.add(person)
        session.flush()
        seller_user = importer.connected.systemuser_id(importer.connected.seller.email)
        with importer.client() as client:
            a1 = client.create(
                "accounts",
                {
                    "name": "Domain Matched Inc",
                    "websiteurl": f"https://www.{domain}/about",
                    "ownerid@odata.bind": f"/systemusers({seller_user})",
                },
            )
            a2 = client.create("accounts", {"name": f"  exact name match {tag.upper()}"})
            a3 = client.create("accounts", {"name": "Nobody Matches This Zq"})
            c1 = client.create(
                "contacts",
                {"lastname": "Matched", "emailaddress1": f"Mae.Matched@{domain.upper()}"},
            )
        importer.one("account")
        importer.one("contact")
        accounts = {
            r.dynamics_id: r
            for r in import_service.records(session, importer.org_id, GtmObject.ACCOUNT)
        }
        assert (accounts[a1].matched_company_id, accounts[a1].match_method) == (
            by_domain.id,
            MatchMethod.DOMAIN,
        )
        assert accounts[a1].domain == domain
        assert (accounts[a2].matched_company_id, accounts[a2].match_method) == (
            by_name.id,
            MatchMethod.NAME,
        )
        assert accounts[a3].matched_company_id is None  # kept, unmatched
        contacts = {
            r.dynamics_id: r
            for r in import_service.records(session, importer.org_id, GtmObject.CONTACT)
        }
        assert contacts[c1].matched_contact_id == person.id
        assert contacts[c1].match_method == MatchMethod.EMAIL

        targets = import_service.my_target_accounts(
            session, importer.org_id, importer.connected.seller.id
        )
        assert [t.company_id for t in targets if t.dynamics_id == a1] == [by_domain.id]
        assert all(t.company_id != by_name.id for t in targets)  # owned by someone else
        assert (
            import_service.my_target_accounts(
                session, importer.org_id, importer.connected.unmapped.id
            )
            == []
        )

    def test_leads_are_contacts_with_their_source_kept(self, importer: Importer) -> None:
        run = importer.one("lead")
        assert run.status == RunStatus.SUCCEEDED, run.errors
        leads = import_service.records(importer.session, importer.org_id, GtmObject.CONTACT, "lead")
        assert len(leads) == len(importer.store_ids("lead"))
        assert all(r.source_table == "lead" for r in leads)
        assert any(r.lead_status for r in leads)


class TestUsage:
    def test_every_request_is_counted_per_day(self, importer: Importer) -> None:
        runs = importer.run(table="account") + importer.run(table="opportunity")
        usage = import_service.usage(importer.session, importer.org_id, days=7)
        assert usage.days[-1].day == utc_now().date()
        assert usage.today == sum(r.api_calls for r in runs)
        assert len(usage.days) == 7


class TestTransientFaults:
    def test_throttled_pages_are_retried_and_counted(self, importer: Importer) -> None:
        import_service.get_mapping(importer.session, importer.org_id, settings=importer.cfg)
        importer.server.faults.add(
            FaultRule(kind="throttle", count=2, retry_after=0, method="GET", path="accounts")
        )
        run = importer.one("account")
        assert run.status == RunStatus.SUCCEEDED, run.errors
        pages = -(-len(importer.store_ids("account")) // 50)
        assert run.api_calls == pages + 2  # every attempt counts against the budget
        assert set(importer.stored_ids(GtmObject.ACCOUNT)) == importer.store_ids("account")
