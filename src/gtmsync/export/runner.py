"""Run a planned export: batched writes, per-record results, a checkpoint after every batch.

Idempotence, so that a run killed anywhere and started again finishes with no duplicate and
no lost record:

- Results are committed per batch (`checkpoint`); a restarted run takes the items still
  `pending`, so it redoes at most the batch that was in flight.
- Every create carries the record's platform ID (the anchor). With an alternate key on it, a
  create is an upsert addressed by the key, so redoing it updates the row the lost attempt
  made. Without a key, the pending creates are looked up by the anchor first (in bulk) and
  only the missing ones are created.
- Updates address rows by id and are safe to redo. Complete-if-missing columns are decided
  from the row as it is now: the rows are re-read in bulk just before each batch is written.
- Accounts created for contacts are recorded in `Export.state` and found by their anchor on
  a resume, so a contact's account is never made twice.

Throttling (429 with Retry-After) is waited out by the client's `RetryPolicy` and never
becomes a failed record. A record deleted in Dynamics between plan and run is **reported**
as failed (not re-created): the person chose to update that row, and re-creating a row
someone deliberately deleted would undo their decision; planning again creates it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gtmsync.connection import gateway
from gtmsync.connection import service as connection_service
from gtmsync.dataverse import (
    BatchOperation,
    DataverseClient,
    OperationResult,
    RequestInfo,
    odata,
)
from gtmsync.export import mapping as export_mapping
from gtmsync.export import settings as export_settings
from gtmsync.export import sources
from gtmsync.export.anchor import Anchor, ensure_anchor
from gtmsync.export.association import CREATE, NONE
from gtmsync.export.duplicates import InQuery, fetch_in
from gtmsync.export.models import Export, ExportItem, ExportStatus, ItemAction, ItemStatus
from gtmsync.export.planner import jsonable
from gtmsync.export.repository import ExportItemRepository, ExportRepository, PlatformReads
from gtmsync.export.schemas import ExportObject
from gtmsync.kit.clock import utc_now
from gtmsync.kit.errors import NotFoundError, UserError
from gtmsync.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000  # Dataverse's limit of operations per $batch
PRIMARY = {"accounts": "accountid", "contacts": "contactid", "leads": "leadid"}
DELETED_MESSAGE = (
    "The Dynamics record was deleted after the export was planned; it was not re-created. "
    "Plan the export again to create it."
)


@dataclass
class RunHooks:
    """Edges plug in here: commit per batch, show progress, or (tests) stop mid-run."""

    checkpoint: Callable[[], None]
    progress: Callable[[int, int], None] | None = None
    after_batch: Callable[[int], None] | None = None


def unresolved(items: Sequence[ExportItem]) -> list[ExportItem]:
    """Items a person still has to decide (an account to pick among several)."""
    return [
        i
        for i in items
        if i.status == ItemStatus.PENDING
        and i.action == ItemAction.CREATE
        and i.association is not None
        and i.association.get("choice") is None
    ]


def _str_map(value: object) -> dict[str, str]:
    """A {platform ID: text} map kept in `Export.state` (JSON)."""
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _row_id(result: OperationResult, entity_set: str) -> uuid.UUID | None:
    if result.entity_id is not None:
        return result.entity_id
    body = result.json() if result.body else None
    value = body.get(PRIMARY[entity_set]) if isinstance(body, Mapping) else None
    return uuid.UUID(str(value)) if value else None


def _message(result: OperationResult) -> str:
    if result.error is not None:
        return str(result.error)
    if result.status is None:
        return "Not run by Dynamics (an earlier operation in the batch stopped it)."
    return f"HTTP {result.status}"


class _Run:
    def __init__(
        self,
        session: Session,
        *,
        export: Export,
        reader: DataverseClient,
        writer: DataverseClient,
        hooks: RunHooks,
        batch_size: int,
    ) -> None:
        self.session = session
        self.export = export
        self.obj = ExportObject(export.object_type)
        self.reader = reader
        self.writer = writer
        self.hooks = hooks
        self.batch_size = batch_size
        self.items = ExportItemRepository.from_session(session)
        self.preferences = export_settings.get_preferences(session, export.org_id)
        self.anchor = ensure_anchor(
            reader, self.obj, self.preferences.for_object(self.obj).platform_id_attribute
        )
        self.mapping = export_mapping.compile_mapping(session, export.org_id, self.obj, reader)
        self.entity_set = self.obj.entity_set
        self.mapped: dict[str, Any] = {}
        # An earlier attempt may have written rows it could not record (killed, dropped).
        self.resumed = int(str(export.state.get("runs", 1))) > 1
        self.required = sorted(
            name
            for name, info in reader.metadata.attributes(self.obj.logical_name).items()
            if info.required_level == "ApplicationRequired"
            and info.creatable
            and name not in (self.obj.primary_id, self.anchor.attribute)
        )

    # -- accounts for contacts ----------------------------------------------------------

    def ensure_accounts(self) -> None:
        """Create the accounts that pending contacts will be associated with (once each)."""
        if self.obj != ExportObject.CONTACT:
            return
        state = dict(self.export.state or {})
        made: dict[str, str] = _str_map(state.get("accounts"))
        failed: dict[str, str] = _str_map(state.get("account_errors"))
        wanted: dict[str, str] = {}
        for item in self.items.for_export(self.export.id, status=ItemStatus.PENDING):
            plan = item.association
            if item.action == ItemAction.CREATE and plan and plan.get("choice") == CREATE:
                company_pid = str(plan["company_platform_id"])
                if company_pid not in made and company_pid not in failed:
                    wanted[company_pid] = str(plan.get("company_name") or company_pid)
        if not wanted:
            return
        account_anchor = ensure_anchor(
            self.reader,
            ExportObject.ACCOUNT,
            self.preferences.for_object(ExportObject.ACCOUNT).platform_id_attribute,
        )
        (existing,) = fetch_in(
            self.reader,
            [
                InQuery(
                    "accounts",
                    account_anchor.attribute,
                    list(wanted),
                    ["accountid", account_anchor.attribute],
                )
            ],
        )
        for row in existing:
            made[str(row[account_anchor.attribute])] = str(row["accountid"])
        todo = [c for c in wanted if c not in made]
        if todo:
            reads = PlatformReads(self.session)
            companies = {c.platform_id: c for c in reads.companies(todo)}
            signals = reads.intent_signals(c.id for c in companies.values())
            account_mapping = export_mapping.compile_mapping(
                self.session, self.export.org_id, ExportObject.ACCOUNT, self.reader
            )
            operations: list[BatchOperation] = []
            for platform_id in todo:
                company = companies.get(platform_id)
                if company is None:
                    failed[platform_id] = "The company is no longer on the platform."
                    continue
                mapped = account_mapping.map(
                    sources.company_values(company, signals.get(company.id, []))
                )
                payload = jsonable(account_mapping.payload(mapped, None))
                payload.setdefault("name", company.name)
                payload[account_anchor.attribute] = platform_id
                operations.append(
                    self._create_operation("accounts", account_anchor, platform_id, payload)
                )
            for result in self._send(operations, keyed=account_anchor.has_key):
                platform_id = str(result.operation.ref)
                account_id = _row_id(result, "accounts") if result.ok else None
                if account_id is not None:
                    made[platform_id] = str(account_id)
                else:
                    failed[platform_id] = _message(result)
        self.export.state = {**state, "accounts": made, "account_errors": failed}
        self.session.flush()
        self.hooks.checkpoint()

    # -- writes ---------------------------------------------------------------------------

    def _create_operation(
        self,
        entity_set: str,
        anchor: Anchor,
        platform_id: str,
        payload: Mapping[str, Any],
        *,
        ref: object = None,
    ) -> BatchOperation:
        ref = platform_id if ref is None else ref
        if anchor.has_key:
            # Upsert by key; the representation carries the row id (an upsert that updated
            # answers without OData-EntityId on some servers).
            path = (
                odata.name(entity_set)
                + odata.key_segment(anchor.key(platform_id))
                + f"?$select={PRIMARY[entity_set]}"
            )
            return BatchOperation(
                "PATCH",
                path,
                dict(payload),
                {"Prefer": "return=representation"},
                ref=ref,
            )
        return BatchOperation("POST", odata.name(entity_set), dict(payload), ref=ref)

    def _send(self, operations: Sequence[BatchOperation], *, keyed: bool) -> list[OperationResult]:
        if not operations:
            return []
        idempotent = keyed or all(op.method != "POST" for op in operations)
        return self.writer.batch(list(operations), continue_on_error=True, idempotent=idempotent)

    def run_batch(self, batch: Sequence[ExportItem]) -> None:
        self.map_batch(batch)
        gone = [
            i for i in batch if i.action != ItemAction.SKIP and i.platform_id not in self.mapped
        ]
        for item in gone:
            self._finish(
                item, ItemStatus.FAILED, message="The record is no longer on the platform."
            )
        creates = [i for i in batch if i.action == ItemAction.CREATE and i not in gone]
        updates = [i for i in batch if i.action == ItemAction.UPDATE and i not in gone]
        for item in batch:
            if item.action == ItemAction.SKIP:
                match = item.duplicate or {}
                self._finish(
                    item,
                    ItemStatus.SKIPPED,
                    message=f"Duplicate of {match.get('name')!s} in Dynamics "
                    f"(matched by {match.get('matched_by')}); not exported, as chosen.",
                )
        operations = self._create_operations(creates) + self._update_operations(updates)
        by_item = {item.id: item for item in batch}
        for result in self._send(operations, keyed=self.anchor.has_key):
            item_id, kind = result.operation.ref
            item = by_item[item_id]
            if result.ok:
                entity_id = _row_id(result, self.entity_set) or item.dynamics_id
                status = ItemStatus.CREATED if kind == "create" else ItemStatus.UPDATED
                self._finish(item, status, dynamics_id=entity_id)
            elif kind == "update" and result.status == 404:
                self._finish(item, ItemStatus.FAILED, message=DELETED_MESSAGE)
            else:
                self._finish(item, ItemStatus.FAILED, message=_message(result))

    def _finish(
        self,
        item: ExportItem,
        status: ItemStatus,
        *,
        message: str | None = None,
        dynamics_id: uuid.UUID | None = None,
    ) -> None:
        item.status = status
        item.message = message
        if dynamics_id is not None:
            item.dynamics_id = dynamics_id

    def _create_operations(self, creates: Sequence[ExportItem]) -> list[BatchOperation]:
        if not creates:
            return []
        pending = list(creates)
        if not self.anchor.has_key and self.resumed:
            # Resume without a key: rows an interrupted attempt already made are found here.
            (rows,) = fetch_in(
                self.reader,
                [
                    InQuery(
                        self.entity_set,
                        self.anchor.attribute,
                        [i.platform_id for i in pending],
                        [PRIMARY[self.entity_set], self.anchor.attribute],
                    )
                ],
            )
            existing = {str(r[self.anchor.attribute]): r for r in rows}
            still: list[ExportItem] = []
            for item in pending:
                row = existing.get(item.platform_id)
                if row is not None and item.duplicate_choice != "create_duplicate":
                    self._finish(
                        item,
                        ItemStatus.CREATED,
                        dynamics_id=uuid.UUID(str(row[PRIMARY[self.entity_set]])),
                        message="Created by an earlier attempt of this export.",
                    )
                else:
                    still.append(item)
            pending = still
        accounts: dict[str, str] = _str_map(self.export.state.get("accounts"))
        account_errors: dict[str, str] = _str_map(self.export.state.get("account_errors"))
        operations: list[BatchOperation] = []
        for item in pending:
            payload = jsonable(self.mapping.payload(self.mapping_record(item), None))
            payload[self.anchor.attribute] = item.platform_id
            missing = [a for a in self.required if payload.get(a) in (None, "")]
            if missing:
                self._finish(
                    item,
                    ItemStatus.FAILED,
                    message=f"Required Dynamics column(s) {', '.join(missing)} have no value: "
                    f"map them under Export Mapping › {self.obj.label}, or fill them on the "
                    "platform record.",
                )
                continue
            plan = item.association
            if plan and plan.get("choice") not in (None, NONE):
                choice = str(plan["choice"])
                if choice == CREATE:
                    company = str(plan["company_platform_id"])
                    if company in account_errors:
                        self._finish(
                            item,
                            ItemStatus.FAILED,
                            message=f"Its account could not be created: {account_errors[company]}",
                        )
                        continue
                    choice = accounts[company]
                payload["parentcustomerid_account@odata.bind"] = DataverseClient.bind(
                    "accounts", uuid.UUID(choice)
                )
            operations.append(
                self._create_operation(
                    self.entity_set,
                    self.anchor,
                    item.platform_id,
                    payload,
                    ref=(item.id, "create"),
                )
            )
        return operations

    def map_batch(self, batch: Sequence[ExportItem]) -> None:
        """Map the batch's records from the platform as they are now (one read per batch)."""
        reads = PlatformReads(self.session)
        ids = [i.platform_id for i in batch if i.action != ItemAction.SKIP]
        self.mapped = {}
        if self.obj == ExportObject.ACCOUNT:
            companies = {c.platform_id: c for c in reads.companies(ids)}
            signals = reads.intent_signals(c.id for c in companies.values())
            for pid, company in companies.items():
                values = sources.company_values(company, signals.get(company.id, []))
                self.mapped[pid] = self.mapping.map(values)
            return
        contacts = {c.platform_id: c for c in reads.contacts(ids)}
        owners = reads.companies_by_ids(c.company_id for c in contacts.values() if c.company_id)
        for pid, contact in contacts.items():
            owner = owners.get(contact.company_id) if contact.company_id else None
            self.mapped[pid] = self.mapping.map(sources.contact_values(contact, owner))

    def mapping_record(self, item: ExportItem) -> Any:
        return self.mapped[item.platform_id]

    def _update_operations(self, updates: Sequence[ExportItem]) -> list[BatchOperation]:
        if not updates:
            return []
        groups: dict[str, list[ExportItem]] = {}
        for item in updates:
            groups.setdefault(str((item.duplicate or {})["entity_set"]), []).append(item)
        operations: list[BatchOperation] = []
        for entity_set, items in groups.items():
            primary = PRIMARY[entity_set]
            table = entity_set.removesuffix("s")
            columns = set(self.reader.metadata.attributes(table))
            select = [primary, *sorted(set(self.mapping.attributes) & columns)]
            (rows,) = fetch_in(
                self.reader,
                [
                    InQuery(
                        entity_set,
                        primary,
                        [str((i.duplicate or {})["id"]) for i in items],
                        select,
                    )
                ],
            )
            current = {str(r[primary]).lower(): r for r in rows}
            for item in items:
                row_id = str((item.duplicate or {})["id"]).lower()
                item.dynamics_id = uuid.UUID(row_id)
                row = current.get(row_id)
                if row is None:
                    self._finish(item, ItemStatus.FAILED, message=DELETED_MESSAGE)
                    continue
                payload = {
                    k: v
                    for k, v in jsonable(
                        self.mapping.payload(self.mapping_record(item), dict(row))
                    ).items()
                    if k.split("@", 1)[0] in columns
                }
                if not payload:
                    self._finish(
                        item,
                        ItemStatus.SKIPPED,
                        message="Already complete in Dynamics: every mapped field has a value "
                        "and none is set to overwrite.",
                    )
                    continue
                operations.append(
                    BatchOperation(
                        "PATCH",
                        odata.name(entity_set) + odata.key_segment(uuid.UUID(row_id)),
                        payload,
                        {"If-Match": "*"},
                        ref=(item.id, "update"),
                    )
                )
        return operations


def run_export(
    session: Session,
    export: Export,
    *,
    hooks: RunHooks,
    settings: Settings | None = None,
    on_request: Callable[[RequestInfo], None] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Export:
    """Write the plan to Dynamics, or finish it when an earlier run was interrupted."""
    if export.status == ExportStatus.COMPLETED:
        return export
    items = ExportItemRepository.from_session(session)
    waiting = unresolved(items.for_export(export.id, status=ItemStatus.PENDING))
    if waiting:
        names = ", ".join(i.label for i in waiting[:5])
        raise UserError(
            f"{len(waiting)} contact(s) match several accounts and need one picked: {names}.",
            field="account",
            fix="Pick an account for each on the review page (or with POST .../decisions).",
        )
    export.status = ExportStatus.RUNNING
    export.state = {**export.state, "runs": int(str(export.state.get("runs", 0))) + 1}
    export.started_at = export.started_at or utc_now()
    export.error = None
    session.flush()
    hooks.checkpoint()
    user_id = export.user_id
    if user_id is not None:
        # A platform user added after the connection is mapped by email on their first export.
        connection_service.ensure_user_mapped(session, export.org_id, user_id, settings=settings)
    try:
        with gateway.client_for(
            session, export.org_id, user_id=user_id, settings=settings, on_request=on_request
        ) as client:
            caller = gateway.caller_for(session, export.org_id, user_id) if user_id else None
            writer = client.with_caller(caller) if caller else client
            run = _Run(
                session,
                export=export,
                reader=client,
                writer=writer,
                hooks=hooks,
                batch_size=batch_size,
            )
            run.ensure_accounts()
            number = 0
            while True:
                batch = items.pending(export.id, batch_size)
                if not batch:
                    break
                run.run_batch(batch)
                number += 1
                export.processed = export.total - len(
                    items.for_export(export.id, status=ItemStatus.PENDING)
                )
                session.flush()
                hooks.checkpoint()
                if hooks.progress is not None:
                    hooks.progress(export.processed, export.total)
                if hooks.after_batch is not None:
                    hooks.after_batch(number)
    except BaseException as exc:
        export.status = ExportStatus.INTERRUPTED
        export.error = str(exc) or type(exc).__name__
        session.flush()
        hooks.checkpoint()
        raise
    export.status = ExportStatus.COMPLETED
    export.processed = export.total
    export.finished_at = utc_now()
    session.flush()
    hooks.checkpoint()
    return export


def load(session: Session, org_id: uuid.UUID, export_id: uuid.UUID) -> Export:
    export = ExportRepository.from_session(session).get_in_org(org_id, export_id)
    if export is None:
        raise NotFoundError("Export not found.", field="export_id")
    return export
