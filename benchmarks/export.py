"""Export benchmark: plan + run of 10,000 contacts across 2,000 companies vs a naive exporter.

    .venv/bin/python benchmarks/export.py [--contacts 10000] [--companies 2000] [--naive 500]

Against the local Dataverse server over HTTPS with 25 ms latency added to every request
(a `latency` fault rule), 30% of the contacts already in Dynamics (a third each matched by
platform ID, by email and by first + last + company name, their companies as accounts), and
account association automatic. Untimed set-up writes the existing rows through the API.

Measured: the export as gtmsync does it (`export.service.plan` then `.run`: duplicate checks
as `$batch` GETs, writes as `$batch` upserts of up to 1,000) and a naive per-record exporter
(per contact: a look-up per duplicate criterion in contacts and leads, the company's account
look-ups by ID, name and website, create the account if missing, create the contact), run on
`--naive` fresh contacts and scaled to the same count. Requests are HTTP requests counted by
the client's `on_request` hook (retries included); operations count each request inside a
`$batch` (what Dataverse's API entitlement counts). Targets: <= 60 requests for the export,
>= 500x fewer requests than naive.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from gtmsync.dataverse import BatchOperation, DataverseClient, RequestInfo, odata
from gtmsync.dataverse_local.app import ServerConfig
from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.dataverse_local.limits import LimitConfig
from gtmsync.dataverse_local.seed import seed
from gtmsync.dataverse_local.server import serve_in_thread
from gtmsync.dataverse_local.store import Store
from gtmsync.db import migrate
from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import service as export_service
from gtmsync.export import settings as export_settings
from gtmsync.export.anchor import ensure_anchor
from gtmsync.export.schemas import (
    ExportObject,
    ManyMatchAccount,
    NoMatchAccount,
    OneMatchAccount,
)
from gtmsync.platform.models import Company, Contact

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' real sign-in helper
from tests.fixtures.connection import connect_org, connection_settings

LATENCY_MS = 25
TARGET_REQUESTS = 60
TARGET_RATIO = 500


@dataclass
class Counter:
    requests: int = 0
    operations: int = 0

    def __call__(self, info: RequestInfo) -> None:
        self.requests += 1
        self.operations += info.operations


@dataclass
class Row:
    name: str
    records: int
    requests: float
    operations: float
    seconds: float


def make_platform(
    session: object, companies: int, contacts: int, run: str
) -> tuple[list[Company], list[Contact]]:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    firms = [
        Company(
            platform_id=f"BC-{run}-{i}",
            name=f"Bench Co {run} {i}",
            name_lower=f"bench co {run} {i}",
            website=f"https://bench-{run}-{i}.example",
            industry="Software",
            phone=f"+1 555 {i:06d}",
        )
        for i in range(companies)
    ]
    session.add_all(firms)
    session.flush()
    people = [
        Contact(
            platform_id=f"BP-{run}-{i}",
            company_id=firms[i % companies].id,
            first_name=f"First{i % 97}",
            last_name=f"Last{run}{i}",
            email=f"p{i}-{run}@bench.example",
            job_title="Engineer",
        )
        for i in range(contacts)
    ]
    session.add_all(people)
    session.flush()
    return firms, people


def preexisting(client: DataverseClient, firms: list[Company], people: list[Contact]) -> None:
    """30% of the contacts in Dynamics already: by platform ID, by email, by name + company."""
    contact_anchor = ensure_anchor(client, ExportObject.CONTACT).attribute
    account_anchor = ensure_anchor(client, ExportObject.ACCOUNT).attribute
    by_id = {f.id: f for f in firms}
    existing = people[: int(len(people) * 0.3)]
    third = len(existing) // 3
    companies_needed = {p.company_id for p in existing[2 * third :]}
    accounts = [
        BatchOperation(
            "POST",
            "accounts",
            {"name": by_id[c].name, account_anchor: by_id[c].platform_id},
            ref=c,
        )
        for c in sorted(companies_needed, key=lambda c: c or 0)
        if c is not None
    ]
    account_ids: dict[int, str] = {}
    for start in range(0, len(accounts), 1000):
        for result in client.batch(accounts[start : start + 1000], continue_on_error=True):
            account_ids[result.operation.ref] = str(result.entity_id)
    operations = []
    for index, person in enumerate(existing):
        body: dict[str, object] = {"lastname": person.last_name, "firstname": person.first_name}
        if index < third:
            body[contact_anchor] = person.platform_id
        elif index < 2 * third:
            body["emailaddress1"] = person.email
        else:
            body["parentcustomerid_account@odata.bind"] = (
                f"/accounts({account_ids[person.company_id or 0]})"
            )
        operations.append(BatchOperation("POST", "contacts", body))
    for start in range(0, len(operations), 1000):
        client.batch(operations[start : start + 1000], continue_on_error=True)


def naive_export(client: DataverseClient, firms: dict[int, Company], people: list[Contact]) -> None:
    """One request per look-up and per write, as a simple connector would do it."""
    anchor = "gtmsync_platformid"
    accounts: dict[int, str] = {}
    for person in people:
        for table in ("contacts", "leads"):
            for clause in (
                odata.eq(anchor, person.platform_id),
                odata.eq("emailaddress1", person.email or ""),
                odata.and_(
                    odata.eq("firstname", person.first_name), odata.eq("lastname", person.last_name)
                ),
            ):
                if table == "leads" and clause.startswith(anchor):
                    continue  # the lead table has no anchor column here
                list(client.query(table, filter=clause, select=["fullname"], top=5))
        company = firms[person.company_id or 0]
        if company.id not in accounts:
            found = None
            for clause in (
                odata.eq(anchor, company.platform_id),
                odata.eq("name", company.name),
                odata.eq("websiteurl", company.website or ""),
            ):
                rows = list(client.query("accounts", filter=clause, select=["accountid"], top=1))
                if rows and found is None:
                    found = str(rows[0]["accountid"])
            accounts[company.id] = found or str(
                client.create("accounts", {"name": company.name, anchor: company.platform_id})
            )
        client.create(
            "contacts",
            {
                "firstname": person.first_name,
                "lastname": person.last_name,
                "emailaddress1": person.email,
                "parentcustomerid_account@odata.bind": f"/accounts({accounts[company.id]})",
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--companies", type=int, default=2_000)
    parser.add_argument("--naive", type=int, default=500)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="export-bench-"))
    store = Store.open(f"sqlite:///{data / 'dataverse.db'}")
    with serve_in_thread(store, data, config=ServerConfig(data_dir=data)) as server:
        for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
            os.environ[name] = str(server.ca_bundle)
        seed(
            store, server.directory, server.security,
            accounts=0, contacts=0, leads=0, opportunities=0, products=0,
        )  # fmt: skip
        server.limits.config = LimitConfig(enabled=False)  # measure requests, not throttling
        url = f"sqlite:///{data / 'hub.db'}"
        migrate.upgrade(url)
        factory = create_session_factory(create_engine(url))
        settings = connection_settings(server, data)
        run = uuid.uuid4().hex[:6]
        with session_scope(factory) as session:
            connected = connect_org(session, server, settings)
            org_id, user_id = connected.org.id, connected.seller.id
            document = export_settings.get_document(session, org_id)
            document.preferences.objects[ExportObject.CONTACT].max_records = 10_000
            document.preferences.association.no_match = NoMatchAccount.AUTOMATIC
            document.preferences.association.one_match = OneMatchAccount.AUTOMATIC
            document.preferences.association.many_match = ManyMatchAccount.AUTOMATIC
            with connected.client(session) as client:
                export_settings.save_document(session, org_id, connected.admin, document, client)
                firms, people = make_platform(session, args.companies, args.contacts, run)
                preexisting(client, firms, people)
            pids = [p.platform_id for p in people]
            naive_firms, naive_people = make_platform(
                session, max(1, args.naive // 5), args.naive, run + "n"
            )
            naive_by_id = {f.id: f for f in naive_firms}
        server.faults.add(FaultRule(kind="latency", latency_ms=LATENCY_MS))

        calls = Counter()
        started = time.perf_counter()
        with session_scope(factory) as session:
            export = export_service.plan(
                session, org_id=org_id, user_id=user_id, obj=ExportObject.CONTACT,
                platform_ids=pids, settings=settings, on_request=calls,
            )  # fmt: skip
            planned = export_service.view(session, export, with_items=False).planned
            session.commit()
            done = export_service.run(
                session, org_id, export.id, checkpoint=session.commit, settings=settings,
                on_request=calls,
            )  # fmt: skip
            results = export_service.view(session, done, with_items=False).results
        ours = Row("gtmsync (plan + run)", len(pids), calls.requests, calls.operations,
                   time.perf_counter() - started)  # fmt: skip

        naive_calls = Counter()
        started = time.perf_counter()
        with session_scope(factory) as session, connected.client(session) as client:
            client.on_request = naive_calls
            naive_export(client, naive_by_id, naive_people)
        seconds = time.perf_counter() - started
        scale = len(pids) / len(naive_people)
        naive = Row(f"naive per record ({len(naive_people)} run, scaled x{scale:g})",
                    len(pids), naive_calls.requests * scale, naive_calls.operations * scale,
                    seconds * scale)  # fmt: skip

    print(
        f"\nExport benchmark: {len(pids):,} contacts across {args.companies:,} companies, "
        f"30% already in Dynamics, association automatic, +{LATENCY_MS} ms per request"
    )
    print(f"plan: {planned}; results: {results}\n")
    header = f"{'exporter':<44} {'records':>8} {'requests':>10} {'operations':>11} {'wall s':>9}"
    print(header)
    print("-" * len(header))
    for row in (ours, naive):
        print(
            f"{row.name:<44} {row.records:>8,} {row.requests:>10,.0f} {row.operations:>11,.0f} "
            f"{row.seconds:>9.1f}"
        )
    ratio = naive.requests / ours.requests
    print(
        f"\nrequests: {ours.requests} (target <= {TARGET_REQUESTS}: "
        f"{'met' if ours.requests <= TARGET_REQUESTS else 'MISSED'}); naive/gtmsync = "
        f"{ratio:,.0f}x fewer (target >= {TARGET_RATIO}x: "
        f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}); wall time naive/gtmsync = "
        f"{naive.seconds / ours.seconds:,.1f}x; operations naive/gtmsync = "
        f"{naive.operations / ours.operations:,.1f}x"
    )


if __name__ == "__main__":
    main()
