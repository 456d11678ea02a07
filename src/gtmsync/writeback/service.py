"""CRM writeback: activities logged on the platform become Dynamics tasks or events, once.

Exactly once, across retries and crashes, rests on an idempotency anchor in Dynamics: every
activity gtmsync writes carries the platform activity's ID in `gtmsync_activityid` (with an
alternate key when gtmsync may add one). Before creating, the writer looks the anchor up; a
crash after Dynamics stored the row but before the hub recorded it is therefore healed by the
next attempt finding the row, not by writing a second one. A create answered with "a record
with these key values already exists" means the same thing.

An activity about someone who is not in Dynamics yet waits as `not_in_crm` and is written by
the next sweep after they are exported.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gtmsync.connection import gateway
from gtmsync.dataverse import (
    APIError,
    DataverseClient,
    DataverseError,
    NotFoundError,
    PrivilegeError,
    odata,
)
from gtmsync.export.anchor import find_anchor
from gtmsync.export.schemas import ExportObject
from gtmsync.kit.clock import format_dataverse, utc_now
from gtmsync.kit.errors import GtmsyncError, UserError
from gtmsync.platform import audit
from gtmsync.platform.models import User
from gtmsync.settings import Settings
from gtmsync.writeback import repository
from gtmsync.writeback.models import (
    Activity,
    ActivityKind,
    ActivityStatus,
    TargetType,
    WritebackMode,
    WritebackSettings,
)

log = logging.getLogger(__name__)

ANCHOR_ATTRIBUTE = "gtmsync_activityid"
ANCHOR_SCHEMA_NAME = "gtmsync_ActivityId"
ANCHOR_KEY_SCHEMA_NAME = "gtmsync_ActivityIdKey"
DEFAULT_MEETING_MINUTES = 30
MAX_BACKOFF = timedelta(hours=6)
NOT_IN_CRM_RECHECK = timedelta(minutes=15)

# Dataverse activity party participation types.
PARTY_TO = 2
PARTY_ORGANIZER = 7
PARTY_REQUIRED = 5

_KIND_LABEL = {
    ActivityKind.EMAIL: "Email",
    ActivityKind.CALL: "Call",
    ActivityKind.MEETING: "Meeting",
}


@dataclass(frozen=True)
class ActivityCreate:
    kind: ActivityKind
    subject: str
    target_type: TargetType
    target_platform_id: str
    occurred_at: datetime
    body: str | None = None
    duration_minutes: int | None = None
    participants: tuple[str, ...] = ()


# -- settings ------------------------------------------------------------------------------


def get_settings(session: Session, org_id: uuid.UUID) -> WritebackSettings:
    """The org's settings; defaults (off, tasks) when never saved. Not added to the session."""
    return repository.settings(session, org_id) or WritebackSettings(
        org_id=org_id, enabled=False, mode=WritebackMode.TASKS, calls_as_phonecalls=False
    )


def update_settings(
    session: Session,
    *,
    org_id: uuid.UUID,
    actor: User,
    enabled: bool,
    mode: WritebackMode,
    calls_as_phonecalls: bool,
) -> WritebackSettings:
    row = repository.settings(session, org_id)
    before = (
        {
            "enabled": row.enabled,
            "mode": row.mode.value,
            "calls_as_phonecalls": row.calls_as_phonecalls,
        }
        if row
        else {"enabled": False, "mode": WritebackMode.TASKS.value, "calls_as_phonecalls": False}
    )
    if row is None:
        row = WritebackSettings(org_id=org_id)
        session.add(row)
    row.enabled, row.mode, row.calls_as_phonecalls = enabled, mode, calls_as_phonecalls
    session.flush()
    after = {"enabled": enabled, "mode": mode.value, "calls_as_phonecalls": calls_as_phonecalls}
    changed = {k: {"from": before[k], "to": v} for k, v in after.items() if before[k] != v}
    if changed:
        audit.record(
            session,
            org_id=org_id,
            actor=actor,
            action="writeback.settings.update",
            summary="CRM writeback "
            + ("turned on" if enabled else "turned off")
            + f", activities written as {mode.value}"
            + (", calls as phone calls" if calls_as_phonecalls else "")
            + ".",
            detail={"changes": changed},
        )
    if enabled:
        repository.release_waiting_for_writeback(session, org_id)
    return row


# -- logging activities --------------------------------------------------------------------


def log_activity(session: Session, *, user: User, data: ActivityCreate) -> Activity:
    """Record an activity; it is written to Dynamics by `write_activity` (a queued job)."""
    subject = data.subject.strip()
    if not subject:
        raise UserError(
            "Subject is empty.", field="subject", fix="Say what the activity was about."
        )
    if len(subject) > 200:
        raise UserError(
            "Subject is longer than 200 characters.", field="subject", fix="Shorten it."
        )
    if data.duration_minutes is not None and not 0 <= data.duration_minutes <= 24 * 60:
        raise UserError(
            "Duration must be between 0 and 1,440 minutes.",
            field="duration_minutes",
            fix="Use minutes.",
        )
    if data.occurred_at.tzinfo is None:
        raise UserError(
            "occurred_at needs a time zone.",
            field="occurred_at",
            fix="Use ISO 8601 with Z or an offset.",
        )
    if not repository.target_exists(session, data.target_type, data.target_platform_id):
        raise UserError(
            f"No platform {data.target_type.value} has ID {data.target_platform_id!r}.",
            field="target_platform_id",
            fix="Pick the contact or company from Search.",
        )
    missing = repository.missing_contacts(session, data.participants)
    if missing:
        raise UserError(
            f"Unknown participant contact ID(s): {', '.join(missing)}.",
            field="participants",
            fix="Use platform contact IDs from Search.",
        )
    enabled = get_settings(session, user.org_id).enabled
    activity = Activity(
        org_id=user.org_id,
        user_id=user.id,
        kind=data.kind,
        subject=subject,
        body=data.body,
        occurred_at=data.occurred_at,
        duration_minutes=data.duration_minutes,
        target_type=data.target_type,
        target_platform_id=data.target_platform_id,
        participants=list(dict.fromkeys(data.participants)),
        status=ActivityStatus.PENDING if enabled else ActivityStatus.OFF,
        attempts=0,
        next_attempt_at=utc_now() if enabled else None,
    )
    session.add(activity)
    session.flush()
    return activity


def list_activities(
    session: Session, org_id: uuid.UUID, *, user_id: uuid.UUID | None = None, limit: int = 100
) -> Sequence[Activity]:
    return repository.activities(session, org_id, user_id=user_id, limit=limit)


def get_activity(session: Session, org_id: uuid.UUID, activity_id: uuid.UUID) -> Activity:
    return repository.activity(session, org_id, activity_id)


# -- writing -------------------------------------------------------------------------------


def _table(settings: WritebackSettings, kind: ActivityKind) -> tuple[str, str]:
    if kind == ActivityKind.CALL and settings.calls_as_phonecalls:
        return "phonecall", "phonecalls"
    if settings.mode == WritebackMode.EVENTS:
        return "appointment", "appointments"
    return "task", "tasks"


def _find_by_anchor(
    client: DataverseClient,
    obj: ExportObject,
    platform_id: str,
    session: Session,
    org_id: uuid.UUID,
) -> uuid.UUID | None:
    anchor = find_anchor(client, obj, repository.platform_id_attribute(session, org_id, obj.value))
    if anchor is None:
        return None
    rows = client.query(
        obj.entity_set,
        select=[obj.primary_id],
        filter=odata.eq(anchor.attribute, platform_id),
        orderby="modifiedon desc",
        top=1,
    )
    row = next(iter(rows), None)
    return uuid.UUID(str(row[obj.primary_id])) if row else None


def _first_id(client: DataverseClient, obj: ExportObject, filter_: str) -> uuid.UUID | None:
    rows = client.query(
        obj.entity_set, select=[obj.primary_id], filter=filter_, orderby="modifiedon desc", top=1
    )
    row = next(iter(rows), None)
    return uuid.UUID(str(row[obj.primary_id])) if row else None


def _newest_by(
    rows: Iterable[Mapping[str, Any]], obj: ExportObject, key: str
) -> dict[str, tuple[str, uuid.UUID]]:
    """Per lower-cased `key` value, the most recently modified row's id (duplicates happen)."""
    best: dict[str, tuple[str, uuid.UUID]] = {}
    for row in rows:
        value = row.get(key)
        if not value:
            continue
        found = (str(row.get("modifiedon") or ""), uuid.UUID(str(row[obj.primary_id])))
        current = best.get(str(value).lower())
        if current is None or found[0] > current[0]:
            best[str(value).lower()] = found
    return best


def find_people(
    client: DataverseClient, session: Session, org_id: uuid.UUID, platform_ids: Sequence[str]
) -> dict[str, tuple[ExportObject, uuid.UUID]]:
    """Platform contacts in Dynamics, in bulk: contact before lead (the seeds' rule), by the
    export anchor, then by email. One `In()` query per table and criterion, not per person."""
    found: dict[str, tuple[ExportObject, uuid.UUID]] = {}
    people = list(dict.fromkeys(platform_ids))
    for obj in (ExportObject.CONTACT, ExportObject.LEAD):
        missing = [p for p in people if p not in found]
        attribute = repository.platform_id_attribute(session, org_id, obj.value)
        anchor = find_anchor(client, obj, attribute) if missing else None
        if anchor is None:
            continue
        rows = client.query_in(
            obj.entity_set,
            anchor.attribute,
            missing,
            select=[obj.primary_id, anchor.attribute, "modifiedon"],
        )
        newest = _newest_by(rows, obj, anchor.attribute)
        for pid in missing:
            if pid.lower() in newest:
                found[pid] = (obj, newest[pid.lower()][1])
    emails = repository.contact_emails(session, [p for p in people if p not in found])
    for obj in (ExportObject.CONTACT, ExportObject.LEAD):
        wanted = {pid: email for pid, email in emails.items() if pid not in found}
        if not wanted:
            break
        rows = client.query_in(
            obj.entity_set,
            "emailaddress1",
            sorted(set(wanted.values())),
            select=[obj.primary_id, "emailaddress1", "modifiedon"],
        )
        by_email = _newest_by(rows, obj, "emailaddress1")
        for pid, email in wanted.items():
            if email.lower() in by_email:
                found[pid] = (obj, by_email[email.lower()][1])
    return found


def find_company(
    client: DataverseClient, session: Session, org_id: uuid.UUID, platform_id: str
) -> uuid.UUID | None:
    found = _find_by_anchor(client, ExportObject.ACCOUNT, platform_id, session, org_id)
    if found:
        return found
    name = repository.company_name(session, platform_id)
    return _first_id(client, ExportObject.ACCOUNT, odata.eq("name", name)) if name else None


def _ensure_anchor(client: DataverseClient, table: str) -> bool:
    """The activity anchor column (and key, when allowed); False when it cannot exist."""
    if ANCHOR_ATTRIBUTE not in client.metadata.attributes(table):
        try:
            client.metadata.create_string_attribute(
                table, schema_name=ANCHOR_SCHEMA_NAME, label="gtmsync activity ID", max_length=64
            )
        except PrivilegeError as exc:
            raise UserError(
                f"gtmsync may not add its activity ID column to the Dynamics {table} table: {exc}",
                field="writeback",
                fix="Give the service account the System Customizer role so writeback can "
                "guarantee each activity is written once.",
            ) from exc
    if not any(k.attributes == (ANCHOR_ATTRIBUTE,) for k in client.metadata.alternate_keys(table)):
        try:
            client.metadata.create_alternate_key(
                table, schema_name=ANCHOR_KEY_SCHEMA_NAME, attributes=[ANCHOR_ATTRIBUTE]
            )
        except APIError as exc:
            log.warning(
                "no alternate key on the activity anchor; writes look up before creating",
                extra={"extra_fields": {"table": table, "error": str(exc)}},
            )
    return True


def _existing(client: DataverseClient, entity_set: str, activity_id: uuid.UUID) -> uuid.UUID | None:
    rows = client.query(
        entity_set,
        select=["activityid"],
        filter=odata.eq(ANCHOR_ATTRIBUTE, str(activity_id)),
        top=1,
    )
    row = next(iter(rows), None)
    return uuid.UUID(str(row["activityid"])) if row else None


def _payload(
    activity: Activity,
    table: str,
    regarding: tuple[str, str, uuid.UUID],
    parties: list[tuple[str, uuid.UUID]],
    extra_names: list[str],
) -> dict[str, Any]:
    reg_logical, reg_set, reg_id = regarding
    kind = _KIND_LABEL[activity.kind]
    body = activity.body or ""
    if extra_names:
        body = f"{body}\n\nParticipants not in Dynamics: {', '.join(extra_names)}".strip()
    start = activity.occurred_at
    end = start + timedelta(minutes=activity.duration_minutes or DEFAULT_MEETING_MINUTES)
    data: dict[str, Any] = {
        "subject": activity.subject if table != "task" else f"{kind}: {activity.subject}",
        "description": body[:2000] or None,
        ANCHOR_ATTRIBUTE: str(activity.id),
        f"regardingobjectid_{reg_logical}_{table}@odata.bind": f"/{reg_set}({reg_id})",
    }
    if table == "task":
        data["scheduledend"] = format_dataverse(start)
    else:
        data["scheduledstart"] = format_dataverse(start)
        data["scheduledend"] = format_dataverse(end)
        mask = PARTY_REQUIRED if table == "appointment" else PARTY_TO
        data[f"{table}_activity_parties"] = [
            {
                f"partyid_{logical}@odata.bind": f"/{logical}s({party_id})",
                "participationtypemask": mask,
            }
            for logical, party_id in parties
        ]
    return data


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def write_activity(
    session: Session,
    activity_id: uuid.UUID,
    *,
    settings: Settings | None = None,
    client: DataverseClient | None = None,
) -> Activity:
    """One attempt to write one activity; the outcome (and any reason) is on the row.

    `client` lets a sweep share one connection; otherwise one is made for the acting user.
    """
    activity = repository.activity_for_update(session, activity_id)
    if activity.status == ActivityStatus.WRITTEN:
        return activity
    wb = get_settings(session, activity.org_id)
    if not wb.enabled:
        activity.status = ActivityStatus.OFF
        activity.next_attempt_at = None
        session.flush()
        return activity
    activity.attempts += 1
    owned = client is None
    try:
        base = client or gateway.client_for(
            session, activity.org_id, user_id=activity.user_id, settings=settings
        )
        try:
            _write(session, activity, wb, base)
        finally:
            if owned:
                base.close()
    except (GtmsyncError, DataverseError) as exc:
        activity.status = ActivityStatus.FAILED
        activity.last_error = str(exc)
        activity.next_attempt_at = utc_now() + _backoff(activity.attempts)
        log.warning(
            "activity writeback failed",
            extra={"extra_fields": {"activity": str(activity.id), "error": str(exc)}},
        )
    session.flush()
    return activity


def _write(
    session: Session, activity: Activity, wb: WritebackSettings, base: DataverseClient
) -> None:
    caller = gateway.caller_for(session, activity.org_id, activity.user_id)
    client = base.with_caller(caller) if caller else base
    table, entity_set = _table(wb, activity.kind)
    wanted = list(activity.participants)
    if activity.target_type == TargetType.CONTACT:
        wanted.insert(0, activity.target_platform_id)
    people = find_people(client, session, activity.org_id, wanted)
    if activity.target_type == TargetType.COMPANY:
        account = find_company(client, session, activity.org_id, activity.target_platform_id)
        regarding = ("account", "accounts", account) if account else None
    else:
        person = people.get(activity.target_platform_id)
        regarding = (person[0].logical_name, person[0].entity_set, person[1]) if person else None
    if regarding is None or regarding[2] is None:
        activity.status = ActivityStatus.NOT_IN_CRM
        activity.last_error = (
            f"The {activity.target_type.value} is not in Dynamics yet; the activity is written "
            "once it is exported."
        )
        activity.next_attempt_at = utc_now() + NOT_IN_CRM_RECHECK
        return
    _ensure_anchor(client, table)
    existing = _existing(client, entity_set, activity.id)
    if existing is None:
        parties: list[tuple[str, uuid.UUID]] = []
        unresolved: list[str] = []
        if activity.target_type == TargetType.CONTACT and table != "task":
            parties.append((regarding[0], regarding[2]))
        for platform_id in activity.participants:
            if platform_id == activity.target_platform_id:
                continue
            person = people.get(platform_id)
            if person is None:
                unresolved.append(repository.contact_name(session, platform_id) or platform_id)
            elif table != "task":
                parties.append((person[0].logical_name, person[1]))
        data = _payload(
            activity, table, (regarding[0], regarding[1], regarding[2]), parties, unresolved
        )
        try:
            existing = client.create(entity_set, data)
        except (APIError, NotFoundError) as exc:
            # A lost answer to an earlier create: the key (or the lookup) finds that row.
            existing = _existing(client, entity_set, activity.id)
            if existing is None:
                raise exc from None
    activity.status = ActivityStatus.WRITTEN
    activity.dynamics_table = table
    activity.dynamics_id = existing
    activity.written_at = utc_now()
    activity.last_error = None
    activity.next_attempt_at = None


def due_activity_ids(session: Session, *, limit: int = 500) -> list[uuid.UUID]:
    """Pending, waiting and failed activities whose next attempt is due, across orgs."""
    return repository.due(session, utc_now(), limit=limit)


def retry_now(session: Session, org_id: uuid.UUID, activity_id: uuid.UUID) -> Activity:
    activity = repository.activity(session, org_id, activity_id)
    if activity.status != ActivityStatus.WRITTEN:
        activity.next_attempt_at = utc_now()
        if activity.status == ActivityStatus.FAILED:
            activity.status = ActivityStatus.PENDING
        session.flush()
    return activity
