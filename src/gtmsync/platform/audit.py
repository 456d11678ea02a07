"""The admin audit log: every feature records its admin actions here, through `record()`.

It lives with the platform because actions span features (connection, export settings, import
rules, data sharing) while the actor is always a platform user of one org.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from gtmsync.kit.clock import utc_now
from gtmsync.platform.models import AuditEvent, User

_SECRET_HINTS = ("token", "secret", "password", "cache")


def _scrub(detail: Mapping[str, object]) -> dict[str, object]:
    """Belt and braces: a detail key that smells of a secret is never stored."""
    return {
        key: ("[redacted]" if any(h in key.lower() for h in _SECRET_HINTS) else value)
        for key, value in detail.items()
    }


def record(
    session: Session,
    *,
    org_id: uuid.UUID,
    actor: User | None,
    action: str,
    summary: str,
    detail: Mapping[str, object] | None = None,
) -> AuditEvent:
    """Add one event in the caller's transaction, so it lands exactly when the change does."""
    event = AuditEvent(
        org_id=org_id,
        actor_id=actor.id if actor else None,
        actor_email=actor.email if actor else None,
        action=action,
        summary=summary,
        detail=_scrub(detail or {}),
        at=utc_now(),
    )
    session.add(event)
    session.flush()
    return event


def list_events(
    session: Session, org_id: uuid.UUID, *, action_prefix: str | None = None, limit: int = 200
) -> Sequence[AuditEvent]:
    """Newest first."""
    query = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if action_prefix:
        query = query.where(AuditEvent.action.startswith(action_prefix))
    query = query.order_by(AuditEvent.at.desc(), AuditEvent.id).limit(limit)
    return session.scalars(query).all()
