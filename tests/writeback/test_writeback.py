"""CRM writeback against the local Dataverse server over HTTPS: tasks vs events, linking,
ownership, retries, not-in-CRM waiting, and exactly once across a lost acknowledgement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gtmsync.dataverse import DataverseClient, odata
from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.export.anchor import ensure_anchor
from gtmsync.export.schemas import ExportObject
from gtmsync.platform.models import Company, Contact
from gtmsync.writeback import service
from gtmsync.writeback.models import ActivityKind, ActivityStatus, TargetType, WritebackMode
from tests.fixtures.connection import ConnectedOrg
from tests.fixtures.factories import make_company, make_contact

WHEN = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def enable(
    session: Session,
    org: ConnectedOrg,
    mode: WritebackMode = WritebackMode.TASKS,
    *,
    phonecalls: bool = False,
) -> None:
    service.update_settings(
        session,
        org_id=org.org.id,
        actor=org.admin,
        enabled=True,
        mode=mode,
        calls_as_phonecalls=phonecalls,
    )


def dynamics_contact(
    client: DataverseClient, contact: Contact, *, anchor: bool = False
) -> uuid.UUID:
    data: dict[str, Any] = {
        "firstname": contact.first_name,
        "lastname": contact.last_name,
        "emailaddress1": contact.email,
    }
    if anchor:
        data[ensure_anchor(client, ExportObject.CONTACT).attribute] = contact.platform_id
    return client.create("contacts", data)


def rows(
    client: DataverseClient, entity_set: str, activity_id: uuid.UUID, select: list[str]
) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in client.query(
            entity_set, select=select, filter=odata.eq(service.ANCHOR_ATTRIBUTE, str(activity_id))
        )
    ]


def log(
    session: Session,
    org: ConnectedOrg,
    target: Contact | Company,
    kind: ActivityKind = ActivityKind.CALL,
    **kw: Any,
) -> uuid.UUID:
    target_type = TargetType.COMPANY if isinstance(target, Company) else TargetType.CONTACT
    activity = service.log_activity(
        session,
        user=kw.pop("user", org.seller),
        data=service.ActivityCreate(
            kind=kind,
            subject=kw.pop("subject", "Intro call"),
            target_type=target_type,
            target_platform_id=target.platform_id,
            occurred_at=WHEN,
            **kw,
        ),
    )
    return activity.id


class TestWriteback:
    def test_call_as_task_linked_and_owned_by_the_mapped_user(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        enable(db_session, connected_org)
        person = make_contact(
            db_session, email=f"{unique('ada')}@example.com", first_name="Ada", last_name="O'Hara"
        )
        with connected_org.client(db_session) as client:
            contact_id = dynamics_contact(client, person)
            activity_id = log(db_session, connected_org, person, body="Talked pricing")
            activity = service.write_activity(
                db_session, activity_id, settings=connected_org.settings
            )
            assert activity.status == ActivityStatus.WRITTEN, activity.last_error
            assert activity.dynamics_table == "task"
            (task,) = rows(
                client,
                "tasks",
                activity_id,
                [
                    "subject",
                    "description",
                    "_regardingobjectid_value",
                    "_ownerid_value",
                    "_createdby_value",
                ],
            )
        assert task["subject"] == "Call: Intro call"
        assert task["description"] == "Talked pricing"
        assert uuid.UUID(task["_regardingobjectid_value"]) == contact_id
        seller = connected_org.systemuser_id("sam.seller@contoso.local")
        assert uuid.UUID(task["_ownerid_value"]) == seller
        assert uuid.UUID(task["_createdby_value"]) == seller

    def test_unmapped_user_falls_to_the_service_account(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        enable(db_session, connected_org)
        person = make_contact(db_session, email=f"{unique('u')}@example.com")
        with connected_org.client(db_session) as client:
            dynamics_contact(client, person)
            activity_id = log(db_session, connected_org, person, user=connected_org.unmapped)
            service.write_activity(db_session, activity_id, settings=connected_org.settings)
            (task,) = rows(client, "tasks", activity_id, ["_ownerid_value"])
        assert uuid.UUID(task["_ownerid_value"]) == connected_org.systemuser_id(
            "avery.admin@contoso.local"
        )

    def test_meeting_as_event_with_activity_parties(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        enable(db_session, connected_org, WritebackMode.EVENTS)
        host = make_contact(db_session, email=f"{unique('h')}@example.com")
        guest = make_contact(db_session, email=f"{unique('g')}@example.com")
        stranger = make_contact(
            db_session, first_name="Not", last_name="InCrm", email=f"{unique('s')}@example.com"
        )
        with connected_org.client(db_session) as client:
            host_id = dynamics_contact(client, host, anchor=True)  # found by the export's anchor
            guest_id = dynamics_contact(client, guest)
            activity_id = log(
                db_session,
                connected_org,
                host,
                ActivityKind.MEETING,
                subject="QBR",
                duration_minutes=45,
                participants=(guest.platform_id, stranger.platform_id),
            )
            activity = service.write_activity(
                db_session, activity_id, settings=connected_org.settings
            )
            assert activity.status == ActivityStatus.WRITTEN, activity.last_error
            (event,) = rows(
                client,
                "appointments",
                activity_id,
                [
                    "activityid",
                    "subject",
                    "scheduledstart",
                    "scheduledend",
                    "description",
                    "_regardingobjectid_value",
                ],
            )
            parties = list(
                client.query(
                    "activityparties",
                    select=["_partyid_value", "participationtypemask"],
                    filter=odata.eq("_activityid_value", event["activityid"]),
                )
            )
        assert event["subject"] == "QBR"
        assert event["scheduledstart"].startswith("2026-11-20T15:30")
        assert event["scheduledend"].startswith("2026-11-20T16:15")
        assert uuid.UUID(event["_regardingobjectid_value"]) == host_id
        assert "Not InCrm" in event["description"]
        assert {uuid.UUID(p["_partyid_value"]) for p in parties} == {host_id, guest_id}

    def test_calls_as_phone_calls_and_company_as_account(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        enable(db_session, connected_org, WritebackMode.EVENTS, phonecalls=True)
        company = make_company(db_session, name=f"Acme {unique('co')}")
        with connected_org.client(db_session) as client:
            account_id = client.create("accounts", {"name": company.name})
            activity_id = log(db_session, connected_org, company)
            activity = service.write_activity(
                db_session, activity_id, settings=connected_org.settings
            )
            assert activity.dynamics_table == "phonecall", activity.last_error
            (call,) = rows(client, "phonecalls", activity_id, ["_regardingobjectid_value"])
        assert uuid.UUID(call["_regardingobjectid_value"]) == account_id

    def test_not_in_crm_waits_then_is_written_once_exported(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        enable(db_session, connected_org)
        person = make_contact(db_session, email=f"{unique('late')}@example.com")
        activity_id = log(db_session, connected_org, person)
        activity = service.write_activity(db_session, activity_id, settings=connected_org.settings)
        assert activity.status == ActivityStatus.NOT_IN_CRM
        assert "not in Dynamics yet" in (activity.last_error or "")
        assert activity.next_attempt_at is not None
        with connected_org.client(db_session) as client:
            dynamics_contact(client, person)  # the contact gets exported
            assert (
                service.write_activity(
                    db_session, activity_id, settings=connected_org.settings
                ).status
                == ActivityStatus.WRITTEN
            )
            assert len(rows(client, "tasks", activity_id, ["activityid"])) == 1

    def test_failures_stay_visible_and_retry_writes_once(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        enable(db_session, connected_org)
        person = make_contact(db_session, email=f"{unique('f')}@example.com")
        server = connected_org.server
        with connected_org.client(db_session) as client:
            dynamics_contact(client, person)
        activity_id = log(db_session, connected_org, person)
        server.faults.add(FaultRule(kind="error", status=503, method="POST", path=r"/tasks$"))
        activity = service.write_activity(db_session, activity_id, settings=connected_org.settings)
        assert activity.status == ActivityStatus.FAILED
        assert activity.last_error
        assert activity.next_attempt_at is not None
        assert activity.attempts == 1
        server.faults.clear()
        assert (
            service.write_activity(db_session, activity_id, settings=connected_org.settings).status
            == ActivityStatus.WRITTEN
        )
        with connected_org.client(db_session) as client:
            assert len(rows(client, "tasks", activity_id, ["activityid"])) == 1

    def test_lost_acknowledgement_never_writes_twice(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        """The server stores the task, then the connection drops before the answer arrives."""
        enable(db_session, connected_org)
        person = make_contact(db_session, email=f"{unique('d')}@example.com")
        with connected_org.client(db_session) as client:
            dynamics_contact(client, person)
        activity_id = log(db_session, connected_org, person)
        connected_org.server.faults.add(
            FaultRule(kind="drop", method="POST", path=r"/tasks$", count=1)
        )
        first = service.write_activity(db_session, activity_id, settings=connected_org.settings)
        assert first.status == ActivityStatus.FAILED
        connected_org.server.faults.clear()
        assert (
            service.write_activity(db_session, activity_id, settings=connected_org.settings).status
            == ActivityStatus.WRITTEN
        )
        with connected_org.client(db_session) as client:
            assert len(rows(client, "tasks", activity_id, ["activityid"])) == 1

    def test_crash_before_the_hub_records_the_write(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        """The write lands in Dynamics, then the worker dies before committing: the retry
        finds the task by its anchor instead of creating a second one."""
        enable(db_session, connected_org)
        person = make_contact(db_session, email=f"{unique('c')}@example.com")
        with connected_org.client(db_session) as client:
            dynamics_contact(client, person)
        activity_id = log(db_session, connected_org, person)
        savepoint = db_session.begin_nested()
        assert (
            service.write_activity(db_session, activity_id, settings=connected_org.settings).status
            == ActivityStatus.WRITTEN
        )
        savepoint.rollback()  # the hub never learned it was written
        db_session.expire_all()
        assert (
            service.get_activity(db_session, connected_org.org.id, activity_id).status
            == ActivityStatus.PENDING
        )
        again = service.write_activity(db_session, activity_id, settings=connected_org.settings)
        assert again.status == ActivityStatus.WRITTEN
        with connected_org.client(db_session) as client:
            assert len(rows(client, "tasks", activity_id, ["activityid"])) == 1

    def test_writeback_off_waits_and_turning_it_on_releases(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        person = make_contact(db_session, email=f"{unique('o')}@example.com")
        activity_id = log(db_session, connected_org, person)
        assert (
            service.get_activity(db_session, connected_org.org.id, activity_id).status
            == ActivityStatus.OFF
        )
        assert activity_id not in service.due_activity_ids(db_session)
        enable(db_session, connected_org)
        assert activity_id in service.due_activity_ids(db_session)


class TestLogging:
    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"subject": "  "}, "subject"),
            ({"target_platform_id": "NOPE"}, "target_platform_id"),
            ({"participants": ("NOPE",)}, "participants"),
            ({"duration_minutes": -5}, "duration_minutes"),
            ({"occurred_at": datetime(2026, 1, 1)}, "occurred_at"),  # noqa: DTZ001 - on purpose
        ],
    )
    def test_bad_input_names_the_field(
        self,
        connected_org: ConnectedOrg,
        db_session: Session,
        overrides: dict[str, Any],
        field: str,
    ) -> None:
        person = make_contact(db_session)
        values: dict[str, Any] = {
            "kind": ActivityKind.EMAIL,
            "subject": "Hi",
            "target_type": TargetType.CONTACT,
            "target_platform_id": person.platform_id,
            "occurred_at": WHEN,
        }
        values.update(overrides)
        from gtmsync.kit.errors import UserError

        with pytest.raises(UserError) as raised:
            service.log_activity(
                db_session, user=connected_org.seller, data=service.ActivityCreate(**values)
            )
        assert raised.value.field == field
