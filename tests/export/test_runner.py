"""Running planned exports against the local Dataverse server over HTTPS."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy.orm import Session

from gtmsync.connection import service as connection_service
from gtmsync.dataverse import odata
from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.export import service as export_service
from gtmsync.export import settings as export_settings
from gtmsync.export.mapping import default_rows
from gtmsync.export.models import Export, ExportItem, ExportSettings, ExportStatus, ItemStatus
from gtmsync.export.runner import DELETED_MESSAGE
from gtmsync.export.schemas import (
    DuplicateAction,
    ExportObject,
    ExportSettingsDocument,
    IntentDataPoint,
    IntentMappingRow,
    ManyMatchAccount,
    NoMatchAccount,
    UpdateMode,
)
from gtmsync.kit.errors import UserError
from gtmsync.platform.models import IntentSignal, User
from tests.export.exporting import SPECIAL, anchor, company, configure, person, tag
from tests.fixtures.connection import ConnectedOrg
from tests.fixtures.factories import make_user


def plan(
    session: Session, connected: ConnectedOrg, obj: ExportObject, ids: list[str], user: User
) -> Export:
    return export_service.plan(
        session,
        org_id=connected.org.id,
        user_id=user.id,
        obj=obj,
        platform_ids=ids,
        settings=connected.settings,
    )


def run(session: Session, connected: ConnectedOrg, export: Export, **kwargs: object) -> Export:
    return export_service.run(
        session,
        connected.org.id,
        export.id,
        checkpoint=session.commit,
        settings=connected.settings,
        **kwargs,  # type: ignore[arg-type]
    )


def items(session: Session, export: Export) -> dict[str, ExportItem]:
    return {i.platform_id: i for i in export_service.items(session, export)}


def by_anchor(connected: ConnectedOrg, session: Session, entity_set: str, pid: str) -> list[dict]:  # type: ignore[type-arg]
    with connected.client(session) as client:
        attribute = anchor(client, ExportObject(entity_set.removesuffix("s"))).attribute
        return [dict(r) for r in client.query(entity_set, filter=odata.eq(attribute, pid))]


class TestCreateAndUpdate:
    def test_creates_carry_the_anchor_and_are_owned_by_the_mapped_user(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        mine = company(db_session, f"{SPECIAL} {t}", website=f"https://{t}.example")
        theirs = company(db_session, f"Unmapped Corp {t}")
        export = plan(
            db_session,
            connected_org,
            ExportObject.ACCOUNT,
            [mine.platform_id],
            connected_org.seller,
        )
        done = run(db_session, connected_org, export)
        assert done.status == ExportStatus.COMPLETED
        result = items(db_session, done)[mine.platform_id]
        assert result.status == ItemStatus.CREATED
        [row] = by_anchor(connected_org, db_session, "accounts", mine.platform_id)
        assert row["name"] == f"{SPECIAL} {t}"
        assert uuid.UUID(row["accountid"]) == result.dynamics_id
        seller = connected_org.systemuser_id(connected_org.seller.email)
        assert uuid.UUID(row["_ownerid_value"]) == seller
        assert uuid.UUID(row["_createdby_value"]) == seller
        assert uuid.UUID(row["_modifiedby_value"]) == seller
        # Unmapped user: the record falls to the service account (the primary connected admin).
        other = plan(
            db_session,
            connected_org,
            ExportObject.ACCOUNT,
            [theirs.platform_id],
            connected_org.unmapped,
        )
        run(db_session, connected_org, other)
        [row] = by_anchor(connected_org, db_session, "accounts", theirs.platform_id)
        assert uuid.UUID(row["_ownerid_value"]) == connected_org.systemuser_id(
            connected_org.admin.email
        )

    def test_complete_if_missing_is_decided_at_run_time(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        acme = company(
            db_session,
            f"Acme {t}",
            website=f"https://acme-{t}.example",
            phone="+1 555 0100",
            city="Springfield",
        )

        def overwrite_city(document: ExportSettingsDocument) -> None:
            for row in document.mappings[ExportObject.ACCOUNT]:
                if row.target_attribute == "address1_city":
                    row.update_mode = UpdateMode.OVERWRITE

        configure(db_session, connected_org, overwrite_city)
        with connected_org.client(db_session) as client:
            account_id = client.create(
                "accounts", {"name": f"Acme {t}", "telephone1": "kept", "address1_city": "Old"}
            )
        export = plan(
            db_session,
            connected_org,
            ExportObject.ACCOUNT,
            [acme.platform_id],
            connected_org.seller,
        )
        assert items(db_session, export)[acme.platform_id].duplicate["id"] == str(account_id)  # type: ignore[index]
        with connected_org.client(db_session) as client:  # someone fills the website meanwhile
            client.update("accounts", account_id, {"websiteurl": "https://theirs.example"})
        run(db_session, connected_org, export)
        result = items(db_session, export)[acme.platform_id]
        assert result.status == ItemStatus.UPDATED
        with connected_org.client(db_session) as client:
            row = client.retrieve("accounts", account_id)
        assert row["telephone1"] == "kept"  # complete if missing: had a value
        assert row["websiteurl"] == "https://theirs.example"  # filled after the plan: kept
        assert row["address1_city"] == "Springfield"  # overwrite

    def test_do_not_export_and_create_duplicate_choices(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        skip = company(db_session, f"Skip {t}")
        dupe = company(db_session, f"Dupe {t}")
        with connected_org.client(db_session) as client:
            client.create("accounts", {"name": f"Skip {t}"})
            client.create("accounts", {"name": f"Dupe {t}"})
        export = plan(
            db_session,
            connected_org,
            ExportObject.ACCOUNT,
            [skip.platform_id, dupe.platform_id],
            connected_org.seller,
        )
        export_service.decide(
            db_session,
            connected_org.org.id,
            export.id,
            [
                export_service.Decision(
                    platform_id=skip.platform_id, duplicate=DuplicateAction.SKIP
                ),
                export_service.Decision(
                    platform_id=dupe.platform_id, duplicate=DuplicateAction.CREATE_DUPLICATE
                ),
            ],
        )
        run(db_session, connected_org, export)
        results = items(db_session, export)
        assert results[skip.platform_id].status == ItemStatus.SKIPPED
        assert results[dupe.platform_id].status == ItemStatus.CREATED
        with connected_org.client(db_session) as client:
            assert len(list(client.query("accounts", filter=odata.eq("name", f"Dupe {t}")))) == 2
            assert len(list(client.query("accounts", filter=odata.eq("name", f"Skip {t}")))) == 1

    def test_a_choice_outside_the_admins_options_is_refused_naming_them(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        acme = company(db_session, f"Limited {t}")

        def only_update_or_skip(document: ExportSettingsDocument) -> None:
            pref = document.preferences.objects[ExportObject.ACCOUNT]
            pref.duplicate_user_options = [DuplicateAction.UPDATE, DuplicateAction.SKIP]

        configure(db_session, connected_org, only_update_or_skip)
        with connected_org.client(db_session) as client:
            client.create("accounts", {"name": f"Limited {t}"})
        export = plan(
            db_session,
            connected_org,
            ExportObject.ACCOUNT,
            [acme.platform_id],
            connected_org.seller,
        )
        item = items(db_session, export)[acme.platform_id]
        assert item.duplicate_choice == "update"
        assert item.duplicate_options == ["update", "do_not_export"]
        with pytest.raises(UserError, match="not an option") as caught:
            export_service.decide(
                db_session,
                connected_org.org.id,
                export.id,
                [
                    export_service.Decision(
                        item_id=item.id, duplicate=DuplicateAction.CREATE_DUPLICATE
                    )
                ],
            )
        assert "update, do_not_export" in str(caught.value)


class TestFailures:
    def test_record_deleted_between_plan_and_run_is_reported(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        gone = company(db_session, f"Gone {t}")
        with connected_org.client(db_session) as client:
            account_id = client.create("accounts", {"name": f"Gone {t}"})
        export = plan(
            db_session,
            connected_org,
            ExportObject.ACCOUNT,
            [gone.platform_id],
            connected_org.seller,
        )
        with connected_org.client(db_session) as client:
            client.delete("accounts", account_id)
        done = run(db_session, connected_org, export)
        result = items(db_session, done)[gone.platform_id]
        assert done.status == ExportStatus.COMPLETED
        assert result.status == ItemStatus.FAILED
        assert result.message == DELETED_MESSAGE
        assert by_anchor(connected_org, db_session, "accounts", gone.platform_id) == []

    def test_permission_denied_on_create_is_a_per_record_failure(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        domain = connected_org.server.directory.tenant().domain
        reader = make_user(db_session, org=connected_org.org, email=f"robin.reader@{domain}")
        with connected_org.client(db_session) as client:
            candidates = connection_service.dynamics_users(client)
        connection_service.rebuild_user_mapping(db_session, connected_org.integration, candidates)
        t = tag()
        acme = company(db_session, f"Denied {t}")
        export = plan(db_session, connected_org, ExportObject.ACCOUNT, [acme.platform_id], reader)
        done = run(db_session, connected_org, export)
        result = items(db_session, done)[acme.platform_id]
        assert done.status == ExportStatus.COMPLETED
        assert result.status == ItemStatus.FAILED
        assert result.message is not None
        assert "prvCreateAccount" in result.message  # Dataverse's own message
        assert by_anchor(connected_org, db_session, "accounts", acme.platform_id) == []

    def test_picklist_miss_is_reported_and_the_rest_is_sent(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        odd = company(db_session, f"Odd {t}", industry="Underwater Basket Weaving")
        export = plan(
            db_session, connected_org, ExportObject.ACCOUNT, [odd.platform_id], connected_org.seller
        )
        item = items(db_session, export)[odd.platform_id]
        assert any("Underwater Basket Weaving" in p for p in item.problems)
        run(db_session, connected_org, export)
        [row] = by_anchor(connected_org, db_session, "accounts", odd.platform_id)
        assert row["name"] == f"Odd {t}"
        assert row["industrycode"] is None

    def test_throttling_is_waited_out_not_failed(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        records = [company(db_session, f"Throttled {i} {t}") for i in range(3)]
        export = plan(
            db_session,
            connected_org,
            ExportObject.ACCOUNT,
            [c.platform_id for c in records],
            connected_org.seller,
        )
        rule = connected_org.server.faults.add(
            FaultRule(kind="throttle", method="POST", path=r"\$batch", count=2, retry_after=1)
        )
        done = run(db_session, connected_org, export)
        assert rule.injected == 2
        assert done.status == ExportStatus.COMPLETED
        assert {i.status for i in items(db_session, done).values()} == {ItemStatus.CREATED}


class TestRequiredAttribute:
    def test_required_attribute_left_unmapped_is_reported_at_run(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        """Settings saved before Dynamics made a column required (Save validates, so the
        stored document is written directly): the run refuses, naming the column."""
        t = tag()
        someone = person(db_session, "Rae", f"Req{t}")
        export = plan(
            db_session,
            connected_org,
            ExportObject.LEAD,
            [someone.platform_id],
            connected_org.seller,
        )
        document = export_settings.get_document(db_session, connected_org.org.id)
        document.mappings[ExportObject.LEAD] = [
            row for row in default_rows(ExportObject.LEAD) if row.target_attribute != "subject"
        ]
        db_session.add(
            ExportSettings(
                org_id=connected_org.org.id, document=document.model_dump(mode="json"), version=1
            )
        )
        db_session.flush()
        with pytest.raises(UserError, match=r"Topic|subject") as caught:
            run(db_session, connected_org, export)
        assert "add a row" in str(caught.value)
        assert db_session.get(Export, export.id).status == ExportStatus.INTERRUPTED  # type: ignore[union-attr]
        assert by_anchor(connected_org, db_session, "leads", someone.platform_id) == []


class TestAssociation:
    def test_automatic_no_match_creates_the_account_once(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        def automatic(document: ExportSettingsDocument) -> None:
            document.preferences.association.no_match = NoMatchAccount.AUTOMATIC

        configure(db_session, connected_org, automatic)
        t = tag()
        acme = company(db_session, f"New Co {t}")
        people = [
            person(db_session, "A", f"One{t}", company_id=acme.id, email=f"one-{t}@x.example"),
            person(db_session, "B", f"Two{t}", company_id=acme.id, email=f"two-{t}@x.example"),
        ]
        export = plan(
            db_session,
            connected_org,
            ExportObject.CONTACT,
            [p.platform_id for p in people],
            connected_org.seller,
        )
        assert not any(i.needs_review for i in items(db_session, export).values())
        run(db_session, connected_org, export)
        [account] = by_anchor(connected_org, db_session, "accounts", acme.platform_id)
        for p in people:
            [contact] = by_anchor(connected_org, db_session, "contacts", p.platform_id)
            assert contact["_parentcustomerid_value"] == account["accountid"]

    def test_several_matches_manual_needs_a_pick_before_running(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        def manual(document: ExportSettingsDocument) -> None:
            document.preferences.association.many_match = ManyMatchAccount.MANUAL

        configure(db_session, connected_org, manual)
        t = tag()
        acme = company(db_session, f"Twin Co {t}")
        someone = person(db_session, "C", f"Three{t}", company_id=acme.id)
        with connected_org.client(db_session) as client:
            first = client.create("accounts", {"name": f"Twin Co {t}"})
            second = client.create("accounts", {"name": f"Twin Co {t}"})
        export = plan(
            db_session,
            connected_org,
            ExportObject.CONTACT,
            [someone.platform_id],
            connected_org.seller,
        )
        item = items(db_session, export)[someone.platform_id]
        assert item.association is not None
        assert item.association["situation"] == "many"
        assert item.association["choice"] is None
        assert item.needs_review
        with pytest.raises(UserError, match="need one picked"):
            run(db_session, connected_org, export)
        with pytest.raises(UserError, match="Choose one of"):
            export_service.decide(
                db_session,
                connected_org.org.id,
                export.id,
                [export_service.Decision(item_id=item.id, account="create")],
            )
        export_service.decide(
            db_session,
            connected_org.org.id,
            export.id,
            [export_service.Decision(item_id=item.id, account=str(first))],
        )
        run(db_session, connected_org, export)
        [contact] = by_anchor(connected_org, db_session, "contacts", someone.platform_id)
        assert contact["_parentcustomerid_value"] == str(first)
        assert str(second) != str(first)


class TestIntent:
    def test_intent_data_points_are_written_with_the_company(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        t = tag()
        score, intent_id = f"new_CloudScore{t}", f"new_CloudId{t}"
        with connected_org.client(db_session) as client:
            for schema in (score, intent_id):
                client.metadata.create_string_attribute("account", schema_name=schema, label=schema)
        acme = company(db_session, f"Intent Co {t}")
        for n, (day, value) in enumerate(((date(2026, 1, 5), 40), (date(2026, 11, 1), 87))):
            db_session.add(
                IntentSignal(
                    signal_id=f"S-{t}-{n}",
                    company_id=acme.id,
                    topic="Cloud Security",
                    signal_score=value,
                    issue_date=day,
                )
            )
        db_session.flush()

        def map_intent(document: ExportSettingsDocument) -> None:
            document.intent_mappings = [
                IntentMappingRow(
                    topic="Cloud Security",
                    data_point=IntentDataPoint.SIGNAL_SCORE,
                    target_attribute=score.lower(),
                ),
                IntentMappingRow(
                    topic="Cloud Security",
                    data_point=IntentDataPoint.INTENT_ID,
                    target_attribute=intent_id.lower(),
                ),
            ]

        configure(db_session, connected_org, map_intent)
        export = plan(
            db_session,
            connected_org,
            ExportObject.ACCOUNT,
            [acme.platform_id],
            connected_org.seller,
        )
        run(db_session, connected_org, export)
        with connected_org.client(db_session) as client:
            column = anchor(client, ExportObject.ACCOUNT).attribute
            [row] = client.query(
                "accounts",
                select=[score.lower(), intent_id.lower()],
                filter=odata.eq(column, acme.platform_id),
            )
        assert row[score.lower()] == "87"
        assert row[intent_id.lower()] == f"S-{t}-1"
