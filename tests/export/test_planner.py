"""Planning an export against the local Dataverse server: what will happen, nothing written."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from gtmsync.export import service as export_service
from gtmsync.export.models import ExportItem, ItemAction
from gtmsync.export.schemas import DuplicateAction, ExportObject, ExportSettingsDocument
from gtmsync.kit.errors import UserError
from tests.export.exporting import SPECIAL, Calls, anchor, company, configure, person, tag
from tests.fixtures.connection import ConnectedOrg


def _by_pid(session: Session, export_id: object) -> dict[str, ExportItem]:
    export = export_service.get(session, _org(session, export_id), export_id)  # type: ignore[arg-type]
    return {i.platform_id: i for i in export_service.items(session, export)}


def _org(session: Session, export_id: object) -> object:
    from gtmsync.export.models import Export

    found = session.get(Export, export_id)
    assert found is not None
    return found.org_id


class TestAccountPlan:
    def test_duplicates_in_the_seeds_order_without_writing(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        by_id = company(db_session, f"Anchored {t}")
        by_name = company(db_session, f"{SPECIAL} {t}")
        by_site = company(db_session, f"Site {t}", website=f"https://www.site-{t}.example")
        new = company(db_session, f"Brand New {t}")
        with connected_org.client(db_session) as client:
            acct = anchor(client, ExportObject.ACCOUNT)
            client.create(
                "accounts", {"name": f"Other name {t}", acct.attribute: by_id.platform_id}
            )
            # Exact name, other case (Dataverse compares names case-insensitively).
            client.create("accounts", {"name": f"{SPECIAL} {t}".replace("Sons", "SONS")})
            client.create(
                "accounts", {"name": f"Site Inc {t}", "websiteurl": f"https://www.site-{t}.example"}
            )
            before = connected_org.server.store.count("account")
        calls = Calls()
        export = export_service.plan(
            db_session,
            org_id=connected_org.org.id,
            user_id=connected_org.seller.id,
            obj=ExportObject.ACCOUNT,
            platform_ids=[
                by_id.platform_id,
                by_name.platform_id,
                by_site.platform_id,
                new.platform_id,
            ],
            settings=connected_org.settings,
            on_request=calls,
        )
        items = _by_pid(db_session, export.id)
        assert items[by_id.platform_id].duplicate["matched_by"] == "platform_id"  # type: ignore[index]
        assert items[by_name.platform_id].duplicate["matched_by"] == "name"  # type: ignore[index]
        assert items[by_site.platform_id].duplicate["matched_by"] == "website"  # type: ignore[index]
        assert items[new.platform_id].duplicate is None
        assert items[new.platform_id].action == ItemAction.CREATE
        # Admin default (update existing) pre-selected, every option offered, so a person reviews.
        dup = items[by_name.platform_id]
        assert dup.action == ItemAction.UPDATE
        assert dup.duplicate_choice == DuplicateAction.UPDATE
        assert dup.needs_review
        assert items[new.platform_id].values["name"] == f"Brand New {t}"
        assert connected_org.server.store.count("account") == before  # nothing written
        # The duplicate look-ups were one $batch, not one query per record or criterion.
        assert calls.by_resource()["$batch"] == 1
        assert calls.by_resource()["accounts"] == 0


class TestPeoplePlan:
    def test_contact_before_lead_email_and_full_name(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        acme = company(db_session, f"Acme's #{t}")
        both = person(db_session, "Bo", f"Both{t}", email=f"both-{t}@x.example", company_id=acme.id)
        lead_only = person(db_session, "Li", f"Lead{t}", email=f"lead-{t}@x.example")
        named = person(db_session, "Zoë", f"D'Arcy+{t}", company_id=acme.id)
        fresh = person(db_session, "Fe", f"Fresh{t}", email=f"fresh-{t}@x.example")
        with connected_org.client(db_session) as client:
            account_id = client.create("accounts", {"name": f"Acme's #{t}"})
            client.create(
                "leads", {"lastname": f"Both{t}", "subject": "x", "emailaddress1": both.email}
            )
            contact_id = client.create(
                "contacts", {"lastname": f"Both{t}", "emailaddress1": both.email}
            )
            lead_id = client.create(
                "leads", {"lastname": f"Lead{t}", "subject": "x", "emailaddress1": lead_only.email}
            )
            named_id = client.create(
                "contacts",
                {
                    "firstname": "Zoë",
                    "lastname": f"D'Arcy+{t}",
                    "parentcustomerid_account@odata.bind": f"/accounts({account_id})",
                },
            )
        export = export_service.plan(
            db_session,
            org_id=connected_org.org.id,
            user_id=connected_org.seller.id,
            obj=ExportObject.CONTACT,
            platform_ids=[
                both.platform_id,
                lead_only.platform_id,
                named.platform_id,
                fresh.platform_id,
            ],
            settings=connected_org.settings,
        )
        items = _by_pid(db_session, export.id)
        assert items[both.platform_id].duplicate == {
            **items[both.platform_id].duplicate,  # type: ignore[dict-item]
            "entity_set": "contacts",
            "id": str(contact_id),
            "matched_by": "email",
        }
        assert items[lead_only.platform_id].duplicate["id"] == str(lead_id)  # type: ignore[index]
        assert items[named.platform_id].duplicate["id"] == str(named_id)  # type: ignore[index]
        assert items[named.platform_id].duplicate["matched_by"] == "full_name"  # type: ignore[index]
        assert items[fresh.platform_id].duplicate is None
        # Acme exists once: one-match association, manual by default (confirm pre-selected).
        association = items[both.platform_id].association
        assert association is not None
        assert association["situation"] == "one"
        assert association["choice"] == str(account_id)


class TestLimits:
    def test_more_than_the_limit_is_refused_naming_it(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        def limit(document: ExportSettingsDocument) -> None:
            document.preferences.objects[ExportObject.ACCOUNT].max_records = 2

        configure(db_session, connected_org, limit)
        with pytest.raises(UserError, match="limit of 2") as caught:
            export_service.plan(
                db_session,
                org_id=connected_org.org.id,
                user_id=connected_org.seller.id,
                obj=ExportObject.ACCOUNT,
                platform_ids=["a", "b", "c"],
                settings=connected_org.settings,
            )
        assert caught.value.field == "platform_ids"

    def test_disabled_object_is_refused(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        def disable(document: ExportSettingsDocument) -> None:
            document.preferences.objects[ExportObject.LEAD].enabled = False

        configure(db_session, connected_org, disable)
        with pytest.raises(UserError, match="turned off"):
            export_service.plan(
                db_session,
                org_id=connected_org.org.id,
                user_id=connected_org.seller.id,
                obj=ExportObject.LEAD,
                platform_ids=["a"],
                settings=connected_org.settings,
            )

    def test_unknown_platform_ids_are_named(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        with pytest.raises(UserError, match="nope-1"):
            export_service.plan(
                db_session,
                org_id=connected_org.org.id,
                user_id=connected_org.seller.id,
                obj=ExportObject.ACCOUNT,
                platform_ids=["nope-1"],
                settings=connected_org.settings,
            )
