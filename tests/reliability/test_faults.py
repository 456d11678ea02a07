"""Exports and imports through every fault the local Dataverse server injects.

Each scenario turns one kind of fault on (429 storms with Retry-After, 5xx, slow answers,
connections dropped mid-response and mid-`$batch`, tokens expiring mid-run), runs the real
export or import code path against the server over HTTPS, and, when a run gives up, checks
that it says why and runs it again, as the worker (or the user's Resume) would. Faults stay on
for every attempt: the run must get through them, not around them.

What is checked at the end, in the server's own store and the hub's tables:
- nothing duplicated: every platform ID is on exactly one Dynamics row; every Dynamics row is
  stored once in the import tables;
- nothing lost: every exported record reached Dynamics; every Dynamics row was imported;
- every failure visible: an interrupted export carries an error, a failed import run its
  errors, and the faults really fired (the server's counters).

The figures (faults injected, attempts, records checked) are printed and, when
`GTMSYNC_RELIABILITY_REPORT` names a file, appended to it as JSON lines for the closing note.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import GtmObject, ImportRun, RunStatus
from gtmsync.dataverse import DataverseError, RequestInfo, TransportError, odata
from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.export import service as export_service
from gtmsync.export.models import Export, ExportStatus, ItemStatus
from gtmsync.export.schemas import ExportObject
from tests.export.exporting import anchor, planned_accounts
from tests.fixtures.connection import ConnectedOrg

MAX_ATTEMPTS = 12  # a run that needs more than this to get through the faults is a bug
EXPORT_RECORDS = 48
EXPORT_BATCH = 3
IMPORT_PAGE = 25


@dataclass(frozen=True)
class Scenario:
    """Fault rules to install, or a trigger that fires mid-run (token expiry)."""

    rules: Callable[[str], list[FaultRule]]
    expire_tokens_after: int | None = None  # requests into the run
    applies_to_import: bool = True


# `path` narrows each rule to the table under test, so the sign-in and metadata reads of the
# hub stay clean and the figures count only faults on the data path.
SCENARIOS: dict[str, Scenario] = {
    "throttle": Scenario(
        lambda path: [FaultRule(kind="throttle", rate=0.3, retry_after=1, path=path)]
    ),
    "error_5xx": Scenario(
        lambda path: [
            FaultRule(kind="error", status=503, rate=0.2, path=path),
            # 500 is not retried by the client: the run stops, says why, and resumes.
            FaultRule(kind="error", status=500, rate=0.1, count=2, path=path),
        ]
    ),
    "slow": Scenario(
        lambda path: [
            FaultRule(kind="latency", latency_ms=20, latency_max_ms=250, rate=0.5, path=path)
        ]
    ),
    "drop": Scenario(lambda path: [FaultRule(kind="drop", rate=0.15, path=path)]),
    "drop_batch": Scenario(
        lambda _path: [
            FaultRule(kind="drop_batch", rate=0.5, after_operations=2, path=r"\$batch"),
        ],
        applies_to_import=False,  # the import only reads pages; it sends no $batch
    ),
    "token_expiry": Scenario(lambda _path: [], expire_tokens_after=3),
    # Everything at once, as a bad day on a real tenant looks.
    "storm": Scenario(
        lambda path: [
            FaultRule(kind="throttle", rate=0.15, retry_after=1, path=path),
            FaultRule(kind="error", status=503, rate=0.1, path=path),
            FaultRule(kind="error", status=500, rate=0.05, count=2, path=path),
            FaultRule(kind="latency", latency_ms=10, latency_max_ms=100, rate=0.3, path=path),
            FaultRule(kind="drop", rate=0.05, path=path),
            FaultRule(kind="drop_batch", rate=0.2, after_operations=1, path=r"\$batch"),
        ],
        expire_tokens_after=7,
    ),
}


@dataclass
class Figures:
    scenario: str
    flow: str
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=dict)
    records_checked: int = 0
    duplicates: int = 0
    losses: int = 0

    def report(self) -> None:
        line = json.dumps(self.__dict__, sort_keys=True)
        print(f"reliability: {line}")
        target = os.environ.get("GTMSYNC_RELIABILITY_REPORT")
        if target:
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")


def install(server: ServerHandle, scenario: Scenario, path: str) -> Callable[[RequestInfo], None]:
    """Turn the scenario's faults on; returns an `on_request` hook for mid-run triggers."""
    server.faults.clear(seed=20261123)
    for rule in scenario.rules(path):
        server.faults.add(rule)
    seen = 0

    def on_request(_info: RequestInfo) -> None:
        nonlocal seen
        seen += 1
        if scenario.expire_tokens_after is not None and seen % 10 == scenario.expire_tokens_after:
            server.faults.add(FaultRule(kind="token_expiry"))

    return on_request


def injected(server: ServerHandle) -> dict[str, int]:
    counts: dict[str, Any] = server.faults.describe()["injected"]
    return {kind: int(n) for kind, n in counts.items()}


def assert_fired(name: str, scenario: Scenario, figures: Figures) -> None:
    """The scenario really hit the run: each of its kinds fired (a storm: most of them)."""
    kinds = {rule.kind for rule in scenario.rules("")}
    if scenario.expire_tokens_after is not None:
        kinds.add("token_expiry")
    fired = {kind for kind in kinds if figures.injected.get(kind, 0) > 0}
    wanted = 3 if name == "storm" else len(kinds)
    assert len(fired) >= wanted, figures.injected


def export_through(
    name: str,
    connected_org: ConnectedOrg,
    db_session: Session,
    dataverse: ServerHandle,
    *,
    records: int = EXPORT_RECORDS,
    batch: int = EXPORT_BATCH,
) -> None:
    scenario = SCENARIOS[name]
    export, pids = planned_accounts(db_session, connected_org, f"Fault {name}", records)
    db_session.commit()
    export_id = export.id
    figures = Figures(name, "export")
    hook = install(dataverse, scenario, r"accounts|\$batch")
    try:
        while figures.attempts < MAX_ATTEMPTS:
            figures.attempts += 1
            try:
                export_service.run(
                    db_session,
                    connected_org.org.id,
                    export_id,
                    checkpoint=db_session.commit,
                    settings=connected_org.settings,
                    on_request=hook,
                    batch_size=batch,
                )
            except (TransportError, DataverseError):
                db_session.commit()  # what the runner recorded before giving up
            state = db_session.get(Export, export_id)
            assert state is not None
            db_session.refresh(state)
            if state.status == ExportStatus.COMPLETED:
                break
            # A run that stopped says so and why: the page shows it, Resume continues.
            assert state.status == ExportStatus.INTERRUPTED, state.status
            assert state.error, "an interrupted export must carry its reason"
            figures.failures.append(state.error[:200])
    finally:
        figures.injected = injected(dataverse)
        dataverse.faults.clear()

    state = db_session.get(Export, export_id)
    assert state is not None
    assert state.status == ExportStatus.COMPLETED, (state.status, figures.failures)
    assert_fired(name, scenario, figures)

    with connected_org.client(db_session) as client:
        column = anchor(client, ExportObject.ACCOUNT).attribute
        counts = {
            pid: len(list(client.query("accounts", filter=odata.eq(column, pid)))) for pid in pids
        }
    figures.records_checked = len(pids)
    figures.duplicates = sum(n - 1 for n in counts.values() if n > 1)
    figures.losses = sum(1 for n in counts.values() if n == 0)
    figures.report()
    assert counts == dict.fromkeys(pids, 1)
    statuses = {item.status for item in export_service.items(db_session, state)}
    assert statuses == {ItemStatus.CREATED}


class TestExportThroughFaults:
    @pytest.mark.parametrize("name", sorted(SCENARIOS))
    def test_every_record_reaches_dynamics_exactly_once(
        self, name: str, connected_org: ConnectedOrg, db_session: Session, dataverse: ServerHandle
    ) -> None:
        export_through(name, connected_org, db_session, dataverse)

    @pytest.mark.slow
    def test_a_long_storm(
        self, connected_org: ConnectedOrg, db_session: Session, dataverse: ServerHandle
    ) -> None:
        """`make test-long`: ten times the records through every fault at once."""
        export_through(
            "storm", connected_org, db_session, dataverse, records=EXPORT_RECORDS * 10, batch=10
        )


class TestImportThroughFaults:
    @pytest.mark.parametrize("name", sorted(n for n, s in SCENARIOS.items() if s.applies_to_import))
    def test_every_dynamics_row_is_stored_exactly_once(
        self, name: str, connected_org: ConnectedOrg, db_session: Session, dataverse: ServerHandle
    ) -> None:
        scenario = SCENARIOS[name]
        org_id = connected_org.org.id
        import_service.settings_row(db_session, org_id).page_size = IMPORT_PAGE
        db_session.commit()
        figures = Figures(name, "import")
        hook = install(dataverse, scenario, r"/accounts")
        runs: list[ImportRun] = []
        try:
            while figures.attempts < MAX_ATTEMPTS:
                figures.attempts += 1
                (run,) = import_service.run_import(
                    db_session,
                    org_id,
                    table="account",
                    checkpoint=db_session.commit,
                    settings=connected_org.settings,
                    on_request=hook,
                )
                runs.append(run)
                if run.status == RunStatus.SUCCEEDED:
                    break
                # The sync history shows every failed run with its errors.
                assert run.status == RunStatus.FAILED, (run.status, run.message)
                assert run.errors, "a failed import run must carry its errors"
                figures.failures.append(run.errors[:200])
        finally:
            figures.injected = injected(dataverse)
            dataverse.faults.clear()

        assert runs[-1].status == RunStatus.SUCCEEDED, figures.failures
        assert_fired(name, scenario, figures)

        stored = [
            r.dynamics_id
            for r in import_service.records(db_session, org_id, GtmObject.ACCOUNT, "account")
        ]
        with connected_org.client(db_session) as client:
            in_dynamics = {
                uuid.UUID(str(row["accountid"]))
                for row in client.query("accounts", select=["accountid"])
            }
        figures.records_checked = len(in_dynamics)
        figures.duplicates = len(stored) - len(set(stored))
        figures.losses = len(in_dynamics - set(stored))
        figures.report()
        assert figures.duplicates == 0
        assert set(stored) == in_dynamics
