"""Dynamics filters against real imported data: the local Dataverse server's seeded accounts,
contacts, leads and opportunities, imported by the real import, snapshotted, searched; and
custom field filters validated against the org's live metadata."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.schemas import GtmObject
from gtmsync.dataverse_local.seed import SYSTEM_USER_ID
from gtmsync.kit.errors import UserError
from gtmsync.platform import audit
from gtmsync.search import profiles, snapshot
from gtmsync.search import service as search_service
from gtmsync.search import settings as filter_settings
from gtmsync.search.filters import SearchObject
from tests.fixtures.connection import ConnectedOrg
from tests.fixtures.factories import make_company

pytestmark = pytest.mark.timeout(300)


def _import(connected_org: ConnectedOrg, session: Session) -> None:
    import_service.run_import(
        session, connected_org.org.id, checkpoint=session.flush, settings=connected_org.settings
    )


def test_filters_indicators_and_snapshot_timing_on_imported_data(
    connected_org: ConnectedOrg, db_session: Session
) -> None:
    org_id = connected_org.org.id
    with connected_org.client(db_session) as client:
        accounts = list(
            client.query(
                "accounts",
                select=["accountid", "name", "_ownerid_value"],
                # The seeded accounts only: other tests on this shared server add their own.
                filter=f"statecode eq 0 and _createdby_value eq {SYSTEM_USER_ID}",
                orderby="name",
                top=12,
            )
        )
        users = {
            str(u["systemuserid"]): u["fullname"]
            for u in client.query("systemusers", select=["systemuserid", "fullname"])
        }
    accounts = [a for a in accounts if a.get("name")]
    names = sorted({a["name"] for a in accounts})
    by_name = {n: make_company(db_session, name=n) for n in names}
    make_company(db_session, name="Not In Dynamics Anywhere Ltd")
    _import(connected_org, db_session)
    info = snapshot.take(db_session, org_id)
    assert info.accounts >= len(names)
    assert info.opportunities >= 0

    def found(*params: tuple[str, str]) -> set[str]:
        result = search_service.advanced_search(
            db_session, org_id, SearchObject.COMPANIES, list(params), page_size=100
        )
        return {h.name for h in result.page.hits}  # type: ignore[union-attr]

    assert found(("crm_owner__in", "all")) == set(names)
    assert found(("crm_owner__exclude", "all")) == {"Not In Dynamics Anywhere Ltd"}

    first = accounts[0]
    owner = str(first["_ownerid_value"])
    owned = {a["name"] for a in accounts if str(a["_ownerid_value"]) == owner}
    assert owned <= found(("crm_owner__in", owner))
    assert not owned & found(("crm_owner__exclude", owner))

    company = by_name[first["name"]]
    mark = profiles.indicators(db_session, org_id, SearchObject.COMPANIES, [company.id])[company.id]
    assert mark.owner_name == users[owner]
    assert mark.as_of == info.taken_at
    org_url = connected_org.integration.org_url.rstrip("/")
    profile = profiles.company_profile(db_session, org_id, company.id)
    assert any(
        m.url == f"{org_url}/main.aspx?etn=account&id={m.dynamics_id}&pagetype=entityrecord"
        for m in profile.matches
    )
    assert any(str(m.dynamics_id) == str(first["accountid"]) for m in profile.matches)

    # Sync Now: the owner changes in Dynamics and the import stores it at once, but the
    # filters and indicators keep the snapshot's view until the next snapshot.
    new_owner = next(u for u in users if u != owner and users[u])
    with connected_org.client(db_session) as client:
        client.update(
            "accounts",
            first["accountid"],
            {"ownerid@odata.bind": f"/systemusers({new_owner})"},
        )
    _import(connected_org, db_session)
    stored = [
        r
        for r in import_service.records(db_session, org_id, GtmObject.ACCOUNT)
        if str(getattr(r, "dynamics_id", "")) == str(first["accountid"])
    ]
    assert [str(getattr(r, "owner_id", "")) for r in stored] == [new_owner]

    def owner_of_first() -> str | None:
        matches = profiles.company_profile(db_session, org_id, company.id).matches
        (match,) = [m for m in matches if str(m.dynamics_id) == str(first["accountid"])]
        return match.owner_name

    assert owner_of_first() == users[owner]  # still the snapshot's owner
    snapshot.take(db_session, org_id)
    assert owner_of_first() == users[new_owner]
    assert first["name"] in found(("crm_owner__in", new_owner))


def test_custom_field_filters_are_checked_against_live_metadata(
    connected_org: ConnectedOrg, db_session: Session
) -> None:
    org_id, admin = connected_org.org.id, connected_org.admin

    def add(obj: str, attribute: str) -> filter_settings.FilterSettingsView:
        return filter_settings.add_custom_field(
            db_session, org_id, admin, obj, attribute, settings=connected_org.settings
        )

    add("account", "customertypecode")  # a picklist
    view = add("account", "parentaccountid")  # a lookup to account
    assert [f.type for f in view.custom_fields["account"]] == ["Picklist", "Lookup"]
    assert view.custom_fields["account"][1].targets == ("account",)

    with pytest.raises(UserError) as exc:
        add("account", "transactioncurrencyid")  # a lookup to currency
    assert "transactioncurrency" in str(exc.value)
    assert exc.value.field == "custom_fields.account"
    with pytest.raises(UserError) as exc:
        add("account", "name")
    assert "String" in str(exc.value)
    assert "picklist and lookup" in str(exc.value)
    with pytest.raises(UserError) as exc:
        add("account", "new_no_such_column")
    assert "not a column" in str(exc.value)

    add("account", "primarycontactid")
    with pytest.raises(UserError) as exc:
        add("account", "industrycode")
    assert "3 custom field filters" in str(exc.value)

    contact = add("contact", "parentcustomerid")  # Customer: account or contact
    assert set(contact.custom_fields["contact"][0].targets) == {"account", "contact"}

    filter_settings.remove_custom_field(db_session, org_id, admin, "account", "parentaccountid")
    filter_settings.update_toggles(db_session, org_id, admin, {"lead": False})
    actions = [e.action for e in audit.list_events(db_session, org_id, action_prefix="search.")]
    assert actions.count("search.filters.custom_field_added") == 4
    assert "search.filters.custom_field_removed" in actions
    assert "search.filters.toggles" in actions
    assert not filter_settings.get(db_session, org_id).lead
