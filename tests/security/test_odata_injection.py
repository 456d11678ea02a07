"""OData injection: every string a person types that reaches a Dynamics `$filter` or path.

Found by grepping `odata.` and the filter builders in src/ (outside dataverse/):

| value (who types it)                              | where it reaches OData                     |
|---------------------------------------------------|--------------------------------------------|
| company names, websites (platform data, exported) | export duplicate checks: `In()` in $batch  |
| person emails and names (exported contacts)       | export duplicate checks: `In()` in $batch  |
| activity target ID (typed in the activity form)   | writeback: `eq` on the export anchor       |
| company name of an activity's company             | writeback: `name eq '…'`                   |
| participants' emails                              | writeback: `In()` on emailaddress1         |
| table / column names (import, export, filters)    | `EntityDefinitions(LogicalName='…')` |

Not sent to Dynamics at all (checked by reading the code, said here so nobody looks again):
search terms and CRM filters (local SQL over the snapshot), import rule values (evaluated
on fetched records, crm_import/rules.py), user and org mapping emails (matched locally
against the system users read with the constant filter `isdisabled eq false`).

Each value runs through the real code path against the local Dataverse server, next to a
row that an injected filter would also match; the filter must match only the literal value,
and nothing may fail. Names are validated instead of escaped: a bad one is a 4xx that names
the field, never a 5xx or a request with the raw name.
"""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gtmsync.export.duplicates import InQuery, fetch_in
from gtmsync.export.schemas import ExportObject
from gtmsync.writeback import service as writeback_service
from tests.fixtures.connection import ConnectedOrg
from tests.fixtures.factories import make_company, make_contact
from tests.security.world import World, bearer

# The name checks share one world per module: keep them on one xdist worker.
pytestmark = pytest.mark.xdist_group("security-odata")

PAYLOADS = [
    "O'Brien",
    "' or 1 eq 1 or name eq '",
    "'' or true or ''",
    "x') or contains(name,'",
    "%27 or 1 eq 1 or name eq %27",
    "%2527",
    "\u2019 or 1 eq 1 or name eq \u2019",  # right single quotation mark
    "\u02bc or 1 eq 1 \u02bc",  # modifier letter apostrophe
    "\uff07 or 1 eq 1 \uff07",  # fullwidth apostrophe
    '"] ,PropertyValues=["',  # ends the JSON array of In()
    '\\" or true or \\"',
    "&$filter=true&x=",
    "#$top=1",
    "a+b c/d?e",
    "*",
    "café ünïcødé 名前",
]


def _tagged(payload: str) -> str:
    """The payload behind a per-run tag: the local server outlives the test."""
    return f"inj{uuid.uuid4().hex[:8]} {payload}"


class TestExportDuplicateChecks:
    """`fetch_in` is what the export planner sends for every duplicate criterion.

    One test walks every payload (an MSAL sign-in per test is the expensive part)."""

    def test_account_names_match_only_themselves(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        wrong = []
        with connected_org.client(db_session) as client:
            for payload in PAYLOADS:
                value = _tagged(payload)
                literal = client.create("accounts", {"name": value})
                # What `' or 1 eq 1 …` or a broken In() array would also return.
                client.create("accounts", {"name": value + " decoy"})
                [rows] = fetch_in(
                    client,
                    [
                        InQuery(
                            "accounts", "name", [value, value + " absent"], ["accountid", "name"]
                        )
                    ],
                )
                if [(r["accountid"], r["name"]) for r in rows] != [(str(literal), value)]:
                    wrong.append((payload, [r["name"] for r in rows]))
        assert not wrong

    def test_contact_emails_and_names_match_only_themselves(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        wrong = []
        with connected_org.client(db_session) as client:
            for payload in PAYLOADS:
                value = _tagged(payload)
                email = f"{value}@example.com"
                literal = client.create(
                    "contacts", {"lastname": value, "emailaddress1": email, "firstname": "Inj"}
                )
                client.create(
                    "contacts", {"lastname": value + " decoy", "emailaddress1": "d" + email}
                )
                by_email, by_name = fetch_in(
                    client,
                    [
                        InQuery("contacts", "emailaddress1", [email], ["contactid"]),
                        InQuery("contacts", "lastname", [value], ["contactid"]),
                    ],
                )
                for rows in (by_email, by_name):
                    if [r["contactid"] for r in rows] != [str(literal)]:
                        wrong.append((payload, len(rows)))
        assert not wrong


class TestWritebackLookups:
    def test_company_by_anchor_then_name(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        org_id = connected_org.org.id
        wrong = []
        with connected_org.client(db_session) as client:
            for payload in PAYLOADS:
                value = _tagged(payload)
                named = make_company(
                    db_session, name=value, platform_id=f"C-{uuid.uuid4().hex[:10]}"
                )
                # A typed target ID holding the payload, for a company Dynamics does not have.
                absent = make_company(db_session, name=value + " absent", platform_id=value)
                account = client.create("accounts", {"name": value})
                client.create("accounts", {"name": value + " decoy"})
                found = writeback_service.find_company(
                    client, db_session, org_id, named.platform_id
                )
                if found != account:
                    wrong.append((payload, "by name", found))
                found = writeback_service.find_company(
                    client, db_session, org_id, absent.platform_id
                )
                if found is not None:
                    wrong.append((payload, "by anchor", found))
        assert not wrong

    def test_participants_by_email(self, connected_org: ConnectedOrg, db_session: Session) -> None:
        expected, people = {}, []
        with connected_org.client(db_session) as client:
            for payload in PAYLOADS:
                value = _tagged(payload).replace(" ", "")
                email, decoy = f"{value}@example.com", f"{value}x@example.com"
                person = make_contact(
                    db_session, platform_id=f"P-{uuid.uuid4().hex[:10]}", email=email
                )
                other = make_contact(
                    db_session, platform_id=f"P-{uuid.uuid4().hex[:10]}", email=value
                )
                contact = client.create("contacts", {"lastname": "Inj", "emailaddress1": email})
                client.create("contacts", {"lastname": "Inj", "emailaddress1": decoy})
                expected[person.platform_id] = (ExportObject.CONTACT, contact)
                people += [person.platform_id, other.platform_id]
            found = writeback_service.find_people(client, db_session, connected_org.org.id, people)
        assert found == expected


NAMES = ["account' or 1 eq 1 or LogicalName eq 'x", "account)", "x%27", "account;x", "a b", ""]


class TestNamesReachingMetadataPaths:
    """Table and column names typed by admins are validated, never escaped into a path."""

    @pytest.fixture
    def admin(self, world: World) -> dict[str, str]:
        return bearer(world.a.admin_token)

    @pytest.mark.parametrize("name", NAMES)
    def test_import_attributes(self, world: World, admin: dict[str, str], name: str) -> None:
        with TestClient(world.app) as http:
            response = http.get(f"/api/v1/imports/attributes/{name}", headers=admin)
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])

    @pytest.mark.parametrize("name", NAMES)
    def test_export_attributes(self, world: World, admin: dict[str, str], name: str) -> None:
        with TestClient(world.app) as http:
            response = http.get(f"/api/v1/export-settings/attributes/{name}", headers=admin)
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])

    @pytest.mark.parametrize("name", NAMES)
    def test_search_filter_custom_field(
        self, world: World, admin: dict[str, str], name: str
    ) -> None:
        with TestClient(world.app) as http:
            response = http.post(
                "/api/v1/search/filter-settings/fields",
                json={"object": "account", "attribute": name},
                headers=admin,
            )
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
        assert response.json().get("field"), response.text[:300]

    @pytest.mark.parametrize("name", NAMES)
    def test_import_custom_field(self, world: World, admin: dict[str, str], name: str) -> None:
        """A custom GTM field is the hub's own column: its name is reduced to word characters."""
        with TestClient(world.app) as http:
            response = http.post(
                "/api/v1/imports/custom-fields",
                json={"object": "account", "name": name},
                headers=admin,
            )
        if not name.strip():
            assert response.status_code == 400
            assert response.json()["field"] == "name"
            return
        assert response.status_code == 200, response.text[:300]
        fields = response.json()["custom_fields"]["account"]
        assert fields
        assert all(re.fullmatch(r"\w+", field) for field in fields), fields
