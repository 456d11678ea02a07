"""The exports facade the edges call: plan → review → run, history, results CSV.

    from gtmsync.export import service as export_service
    export = export_service.plan(session, org_id=..., user_id=..., obj=..., platform_ids=[...])
    export_service.decide(session, org_id, export.id, [Decision(item_id=..., duplicate=...)])
    export_service.run(session, org_id, export.id, checkpoint=session.commit)

Edges own the transaction; a run commits per batch through the `checkpoint` they pass (the
CLI and the worker pass `session.commit`), which is what makes a killed run resumable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from gtmsync.dataverse import RequestInfo
from gtmsync.db.unit_of_work import after_commit
from gtmsync.export import association as association_rules
from gtmsync.export.models import Export, ExportItem, ExportStatus
from gtmsync.export.planner import ACTION_FOR_CHOICE, needs_review, plan_export
from gtmsync.export.repository import ExportItemRepository, ExportRepository, PlatformReads
from gtmsync.export.results import results_csv
from gtmsync.export.runner import DEFAULT_BATCH_SIZE, RunHooks, load, run_export, unresolved
from gtmsync.export.schemas import DuplicateAction, ExportObject
from gtmsync.jobs import leases, queue
from gtmsync.kit.clock import utc_now
from gtmsync.kit.errors import ConflictError, NotFoundError, UserError
from gtmsync.platform import service as platform_service
from gtmsync.settings import Settings

RUN_TASK = "export.run"


MAX_REQUEUES = 25  # recoveries of one export before it waits for a person instead


def run_lease(export_id: uuid.UUID | str) -> str:
    """The job lease one export's run holds, so two workers never run it at once."""
    return f"{RUN_TASK}:{export_id}"


__all__ = [
    "Decision",
    "ExportItemView",
    "ExportView",
    "RunHooks",
    "browse",
    "csv_for",
    "decide",
    "get",
    "history",
    "items",
    "org_of",
    "plan",
    "record_failure",
    "recover_stale",
    "request_run",
    "resolve_actor",
    "run",
    "run_lease",
    "view",
]


class Decision(BaseModel):
    """A person's decision on one planned record (by item id or platform ID)."""

    item_id: uuid.UUID | None = None
    platform_id: str | None = None
    duplicate: DuplicateAction | None = Field(
        default=None, description="update / create_duplicate / do_not_export"
    )
    account: str | None = Field(
        default=None, description="an account id from the candidates, 'create' or 'none'"
    )


class ExportItemView(BaseModel):
    id: uuid.UUID
    position: int
    platform_id: str
    label: str
    action: str
    duplicate: dict[str, Any] | None
    duplicate_choice: str | None
    duplicate_options: list[str]
    association: dict[str, Any] | None
    values: dict[str, Any]
    problems: list[str]
    needs_review: bool
    status: str
    dynamics_id: uuid.UUID | None
    message: str | None

    @classmethod
    def of(cls, item: ExportItem) -> ExportItemView:
        return cls(
            id=item.id,
            position=item.position,
            platform_id=item.platform_id,
            label=item.label,
            action=item.action,
            duplicate=item.duplicate,
            duplicate_choice=item.duplicate_choice,
            duplicate_options=list(item.duplicate_options or []),
            association=item.association,
            values=dict(item.values or {}),
            problems=list(item.problems or []),
            needs_review=item.needs_review,
            status=item.status,
            dynamics_id=item.dynamics_id,
            message=item.message,
        )


class ExportView(BaseModel):
    id: uuid.UUID
    object: str
    status: str
    total: int
    processed: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    planned: dict[str, int]
    results: dict[str, int]
    needs_review: int
    items: list[ExportItemView] = Field(default_factory=list)


def view(
    session: Session, export: Export, *, with_items: bool = True, review_only: bool = False
) -> ExportView:
    repo = ExportItemRepository.from_session(session)
    rows = repo.for_export(export.id, review_only=review_only) if with_items else []
    return ExportView(
        id=export.id,
        object=export.object_type,
        status=export.status,
        total=export.total,
        processed=export.processed,
        created_at=export.created_at,
        started_at=export.started_at,
        finished_at=export.finished_at,
        error=export.error,
        planned=repo.action_counts(export.id),
        results=repo.counts(export.id),
        needs_review=len(repo.for_export(export.id, review_only=True)),
        items=[ExportItemView.of(i) for i in rows],
    )


def plan(
    session: Session,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    obj: ExportObject,
    platform_ids: Sequence[str],
    settings: Settings | None = None,
    on_request: Callable[[RequestInfo], None] | None = None,
) -> Export:
    return plan_export(
        session,
        org_id=org_id,
        user_id=user_id,
        obj=obj,
        platform_ids=platform_ids,
        settings=settings,
        on_request=on_request,
    )


def get(session: Session, org_id: uuid.UUID, export_id: uuid.UUID) -> Export:
    return load(session, org_id, export_id)


def items(session: Session, export: Export, *, review_only: bool = False) -> Sequence[ExportItem]:
    return ExportItemRepository.from_session(session).for_export(export.id, review_only=review_only)


def history(
    session: Session, org_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> Sequence[Export]:
    return ExportRepository.from_session(session).history(org_id, user_id=user_id)


def decide(
    session: Session, org_id: uuid.UUID, export_id: uuid.UUID, decisions: Sequence[Decision]
) -> Export:
    """Apply decisions; a choice outside the admin's allowed options is refused, naming them."""
    export = load(session, org_id, export_id)
    if export.status not in (ExportStatus.PLANNED,):
        raise ConflictError(
            f"This export is {export.status}: decisions can only change before it runs.",
            field="status",
            fix="Plan a new export to change what is written.",
        )
    repo = ExportItemRepository.from_session(session)
    by_id = repo.by_ids(export.id, [d.item_id for d in decisions if d.item_id])
    by_platform = {
        i.platform_id: i
        for i in repo.for_export(export.id)
        if any(d.platform_id == i.platform_id for d in decisions)
    }
    for decision in decisions:
        item = by_id.get(decision.item_id) if decision.item_id else None
        item = item or (
            by_platform.get(decision.platform_id or "") if decision.platform_id else None
        )
        if item is None:
            raise UserError(
                f"No record {decision.item_id or decision.platform_id} in this export.",
                field="item_id",
                fix="Use an item id or platform ID from GET /api/v1/exports/{id}.",
            )
        if decision.duplicate is not None:
            _choose_duplicate(item, decision.duplicate)
        if decision.account is not None:
            if item.association is None:
                raise UserError(
                    f"{item.label}: only contacts with a company have an account to choose.",
                    field="account",
                    fix="Leave the account out for this record.",
                )
            item.association = association_rules.choose(
                item.association, decision.account, label=item.label
            )
        item.needs_review = needs_review(item)
    session.flush()
    return export


def _choose_duplicate(item: ExportItem, choice: DuplicateAction) -> None:
    if item.duplicate is None:
        raise UserError(
            f"{item.label}: no duplicate was found, so there is nothing to decide.",
            field="duplicate",
            fix="Leave the duplicate choice out for this record.",
        )
    if choice.value not in item.duplicate_options:
        allowed = ", ".join(item.duplicate_options)
        raise UserError(
            f"{item.label}: {choice.value!r} is not an option your admin allows for duplicates.",
            field="duplicate",
            fix=f"Choose one of: {allowed}.",
        )
    item.duplicate_choice = choice.value
    item.action = ACTION_FOR_CHOICE[choice]


def request_run(session: Session, org_id: uuid.UUID, export_id: uuid.UUID) -> Export:
    """Queue the run on the worker (after this transaction commits)."""
    export = load(session, org_id, export_id)
    if export.status == ExportStatus.COMPLETED:
        raise ConflictError("This export has already run.", field="status")
    if export.status in (ExportStatus.QUEUED, ExportStatus.RUNNING):
        return export
    waiting = unresolved(ExportItemRepository.from_session(session).for_export(export.id))
    if waiting:
        names = ", ".join(i.label for i in waiting[:5])
        raise UserError(
            f"{len(waiting)} contact(s) match several accounts and need one picked: {names}.",
            field="account",
            fix="Pick an account for each, save the decisions, then run.",
        )
    export.status = ExportStatus.QUEUED
    session.flush()
    export_id_text, org_id_text = str(export.id), str(org_id)

    def enqueue() -> None:
        queue.enqueue(RUN_TASK, org_id_text, export_id_text)

    after_commit(session, enqueue)
    return export


def run(
    session: Session,
    org_id: uuid.UUID,
    export_id: uuid.UUID,
    *,
    checkpoint: Callable[[], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    after_batch: Callable[[int], None] | None = None,
    settings: Settings | None = None,
    on_request: Callable[[RequestInfo], None] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Export:
    """Run (or resume) an export now, in this process."""
    export = load(session, org_id, export_id)
    hooks = RunHooks(
        checkpoint=checkpoint or session.flush, progress=progress, after_batch=after_batch
    )
    return run_export(
        session,
        export,
        hooks=hooks,
        settings=settings,
        on_request=on_request,
        batch_size=batch_size,
    )


def recover_stale(session: Session, *, idle_for: timedelta) -> list[uuid.UUID]:
    """Queue again the exports a dead worker left behind; returns their ids.

    An export is left `running` when its worker was killed mid-run, and `queued` when the
    worker that took its job off the queue died before starting it (the job is gone from the
    queue then). Those untouched for `idle_for` (the job lease length) whose run lease is not
    held are queued again: the run resumes from its last committed batch. A queued export
    merely waiting behind a long queue may be queued twice; the second job finds it done or
    its lease held and returns.
    """
    stale = ExportRepository.from_session(session).stale(utc_now() - idle_for)
    busy = leases.held(session, [run_lease(e.id) for e in stale])
    recovered: list[uuid.UUID] = []
    for export in stale:
        if run_lease(export.id) in busy:
            continue
        requeued = int(str(export.state.get("requeued", 0))) + 1
        export.state = {**export.state, "requeued": requeued}
        if requeued > MAX_REQUEUES:
            # Something kills every worker that runs it (memory, a crash): stop and say so.
            export.status = ExportStatus.INTERRUPTED
            export.error = (
                f"The workers running this export stopped {MAX_REQUEUES} times without "
                "finishing it (killed or crashed), so it is no longer queued again by itself. "
                "Check the workers' logs, then run it again to resume from its last saved batch."
            )
            continue
        export.status = ExportStatus.QUEUED
        export.error = (
            "The worker running this export stopped (killed or crashed); it was queued again "
            "and resumes from its last saved batch."
        )
        recovered.append(export.id)
        after_commit(session, _enqueuer(str(export.org_id), str(export.id)))
    session.flush()
    return recovered


def record_failure(
    session: Session, org_id: uuid.UUID, export_id: uuid.UUID, error: BaseException
) -> None:
    """Leave a queued or running export `interrupted` with the error that stopped its job
    (running it again resumes); one the runner already closed keeps what it recorded."""
    export = ExportRepository.from_session(session).get_in_org(org_id, export_id)
    if export is None or export.status not in (ExportStatus.QUEUED, ExportStatus.RUNNING):
        return
    export.status = ExportStatus.INTERRUPTED
    export.error = str(error) or type(error).__name__
    session.flush()


def _enqueuer(org_id: str, export_id: str) -> Callable[[], None]:
    def enqueue() -> None:
        queue.enqueue(RUN_TASK, org_id, export_id)

    return enqueue


def csv_for(session: Session, org_id: uuid.UUID, export_id: uuid.UUID) -> str:
    export = load(session, org_id, export_id)
    return results_csv(ExportItemRepository.from_session(session).for_export(export.id))


def browse(session: Session, obj: ExportObject, *, limit: int = 100) -> list[dict[str, str]]:
    """Records to pick from on the portal's Export page (until Search offers selection)."""
    reads = PlatformReads(session)
    if obj == ExportObject.ACCOUNT:
        return [
            {"platform_id": c.platform_id, "label": c.name, "detail": c.website or ""}
            for c in reads.browse_companies(limit)
        ]
    return [
        {
            "platform_id": c.platform_id,
            "label": f"{c.first_name} {c.last_name}",
            "detail": c.email or "",
        }
        for c in reads.browse_contacts(limit)
    ]


def resolve_actor(session: Session, org_slug: str, email: str) -> tuple[uuid.UUID, uuid.UUID]:
    """(org id, user id) for the CLI's `--org` and `--user`; unknown ones are named."""
    org = platform_service.get_org_by_slug(session, org_slug)
    if org is None:
        raise UserError(
            f"No org with the slug {org_slug!r}.",
            field="--org",
            fix="Use the slug shown by the portal's URL or `gtmsync org create`.",
        )
    wanted = platform_service.normalise_email(email)
    for user in platform_service.list_users(session, org.id):
        if user.email == wanted and user.is_active:
            return org.id, user.id
    raise UserError(
        f"No active user {email!r} in the org {org_slug!r}.",
        field="--user",
        fix="Pass the email of a user of that org (the exporting user owns the records).",
    )


def org_of(session: Session, export_id: str, org_slug: str | None = None) -> uuid.UUID:
    """The org of an export to resume from the CLI (checked against `--org` when given)."""
    try:
        wanted = uuid.UUID(export_id)
    except ValueError:
        raise UserError(
            f"{export_id!r} is not an export id.",
            field="--resume",
            fix="Pass the id printed when the export was planned.",
        ) from None
    export = ExportRepository.from_session(session).get(wanted)
    org = platform_service.get_org(session, export.org_id) if export is not None else None
    if export is None or org is None or (org_slug is not None and org.slug != org_slug):
        raise NotFoundError("Export not found.", field="--resume")
    return export.org_id
