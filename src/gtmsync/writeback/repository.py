"""Queries of the writeback feature, including the few platform reads it needs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from gtmsync.export import settings as export_settings
from gtmsync.kit.clock import utc_now
from gtmsync.kit.errors import NotFoundError
from gtmsync.platform.models import Company, Contact
from gtmsync.writeback.models import Activity, ActivityStatus, TargetType, WritebackSettings

_DUE = (ActivityStatus.PENDING, ActivityStatus.NOT_IN_CRM, ActivityStatus.FAILED)


def settings(session: Session, org_id: uuid.UUID) -> WritebackSettings | None:
    return session.scalars(
        select(WritebackSettings).where(WritebackSettings.org_id == org_id)
    ).one_or_none()


def release_waiting_for_writeback(session: Session, org_id: uuid.UUID) -> None:
    session.execute(
        update(Activity)
        .where(Activity.org_id == org_id, Activity.status == ActivityStatus.OFF)
        .values(status=ActivityStatus.PENDING, next_attempt_at=utc_now())
    )


def target_exists(session: Session, target_type: TargetType, platform_id: str) -> bool:
    table = Company if target_type == TargetType.COMPANY else Contact
    return session.scalar(select(table.id).where(table.platform_id == platform_id)) is not None


def missing_contacts(session: Session, platform_ids: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(platform_ids))
    if not wanted:
        return []
    found = set(session.scalars(select(Contact.platform_id).where(Contact.platform_id.in_(wanted))))
    return [p for p in wanted if p not in found]


def contact_emails(session: Session, platform_ids: Sequence[str]) -> dict[str, str]:
    """Platform ID -> email, for the contacts that have one."""
    if not platform_ids:
        return {}
    rows = session.execute(
        select(Contact.platform_id, Contact.email).where(
            Contact.platform_id.in_(platform_ids), Contact.email.is_not(None)
        )
    )
    return {pid: str(email) for pid, email in rows}


def contact_name(session: Session, platform_id: str) -> str | None:
    row = session.execute(
        select(Contact.first_name, Contact.last_name).where(Contact.platform_id == platform_id)
    ).first()
    return f"{row[0]} {row[1]}" if row else None


def company_name(session: Session, platform_id: str) -> str | None:
    return session.scalar(select(Company.name).where(Company.platform_id == platform_id))


def platform_id_attribute(session: Session, org_id: uuid.UUID, obj: str) -> str | None:
    """The export's platform-ID column for this object, when the admin chose one."""
    preferences = export_settings.get_preferences(session, org_id)
    for key, pref in preferences.objects.items():
        if key.value == obj:
            return pref.platform_id_attribute
    return None


def activities(
    session: Session, org_id: uuid.UUID, *, user_id: uuid.UUID | None, limit: int
) -> Sequence[Activity]:
    query = select(Activity).where(Activity.org_id == org_id)
    if user_id is not None:
        query = query.where(Activity.user_id == user_id)
    return session.scalars(query.order_by(Activity.occurred_at.desc()).limit(limit)).all()


def activity(session: Session, org_id: uuid.UUID, activity_id: uuid.UUID) -> Activity:
    row = session.get(Activity, activity_id)
    if row is None or row.org_id != org_id:
        raise NotFoundError("Activity not found.")
    return row


def activity_for_update(session: Session, activity_id: uuid.UUID) -> Activity:
    """Locks the row on PostgreSQL so two workers never write the same activity at once."""
    row = session.scalars(
        select(Activity).where(Activity.id == activity_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFoundError("Activity not found.")
    return row


def due(session: Session, now: datetime, *, limit: int) -> list[uuid.UUID]:
    query = (
        select(Activity.id)
        .where(
            Activity.status.in_(_DUE),
            or_(Activity.next_attempt_at.is_(None), Activity.next_attempt_at <= now),
        )
        .order_by(Activity.next_attempt_at)
        .limit(limit)
    )
    return list(session.scalars(query))
