"""`gtmsync export` end to end: plan, decisions by --yes, progress, results CSV, --resume."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from gtmsync.cli import app
from gtmsync.cli import context as cli_context
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import service as export_service
from gtmsync.export.models import Export, ExportStatus
from gtmsync.jobs import leases
from tests.export.exporting import SPECIAL, company, person, planned_accounts, tag
from tests.fixtures.connection import ConnectedOrg, connect_org, connection_settings


@pytest.fixture
def cli_env(
    dataverse: ServerHandle,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    session_factory: sessionmaker[Session],
) -> Iterator[ConnectedOrg]:
    settings = connection_settings(dataverse, tmp_path, database_url=database_url)
    with session_scope(session_factory) as session:
        connected = connect_org(session, dataverse, settings)
    for name, value in {
        "GTMSYNC_DATABASE_URL": database_url,
        "GTMSYNC_SECRET_KEY": settings.resolved_secret_key(),
        "GTMSYNC_MODE": settings.mode.value,
        "GTMSYNC_CA_BUNDLE": str(dataverse.ca_bundle),
    }.items():
        monkeypatch.setenv(name, value)
    cli_context.session_factory.cache_clear()
    yield connected
    cli_context.session_factory.cache_clear()


def test_export_contacts_with_yes_and_csv(
    cli_env: ConnectedOrg, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    t = tag()
    with session_scope(session_factory) as session:
        acme = company(session, f"{SPECIAL} {t}")
        people = [
            person(session, "Ann", f"Cli{i}{t}", company_id=acme.id, email=f"cli{i}-{t}@x.example")
            for i in range(3)
        ]
        pids = [p.platform_id for p in people]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# selected in the portal\n" + "\n".join(pids) + "\n\n")
    results = tmp_path / "results.csv"
    outcome = CliRunner().invoke(
        app,
        [
            "export",
            "--org",
            cli_env.org.slug,
            "--user",
            cli_env.seller.email,
            "--object",
            "contact",
            "--ids-file",
            str(ids_file),
            "--yes",
            "--csv",
            str(results),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    assert "Needs a decision" in outcome.output  # manual association: confirm the new account
    assert "Exporting" in outcome.output
    assert "completed: 3 created" in outcome.output
    rows = list(csv.DictReader(results.open()))
    assert [r["status"] for r in rows] == ["created"] * 3
    assert all(r["account"] == f"new account: {SPECIAL} {t}" for r in rows)


def test_refusals_are_exit_code_2(cli_env: ConnectedOrg, tmp_path: Path) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("nope\n")
    outcome = CliRunner().invoke(
        app,
        [
            "export",
            "--org",
            cli_env.org.slug,
            "--user",
            "who@example.com",
            "--ids-file",
            str(ids_file),
        ],
    )
    assert outcome.exit_code == 2
    assert "No active user" in outcome.output


def interrupted_export(
    cli_env: ConnectedOrg, session_factory: sessionmaker[Session], label: str, size: int
) -> uuid.UUID:
    """A planned account export left as a killed run leaves it."""
    with session_scope(session_factory) as session:
        export, _pids = planned_accounts(session, cli_env, label, size)
        export.status = ExportStatus.INTERRUPTED
        return export.id


def test_resume_finishes_an_interrupted_export(
    cli_env: ConnectedOrg, session_factory: sessionmaker[Session]
) -> None:
    export_id = interrupted_export(cli_env, session_factory, "Cli resume", 3)
    outcome = CliRunner().invoke(app, ["export", "--resume", str(export_id)])
    assert outcome.exit_code == 0, outcome.output
    with session_scope(session_factory) as session:
        done = session.get(Export, export_id)
        assert done is not None
        assert done.status == ExportStatus.COMPLETED


def test_resume_refuses_an_export_a_worker_is_running(
    cli_env: ConnectedOrg, session_factory: sessionmaker[Session]
) -> None:
    export_id = interrupted_export(cli_env, session_factory, "Cli busy", 2)
    engine = session_factory.kw["bind"]
    assert isinstance(engine, Engine)
    name = export_service.run_lease(export_id)
    assert leases.acquire(engine, name, holder="worker-on-another-host", seconds=300)
    outcome = CliRunner().invoke(app, ["export", "--resume", str(export_id)])
    assert outcome.exit_code == 1, outcome.output
    assert "running in a worker" in outcome.output
    with session_scope(session_factory) as session:
        left = session.get(Export, export_id)
        assert left is not None
        assert left.status == ExportStatus.INTERRUPTED  # untouched
        assert left.processed == 0
    leases.release(engine, name, holder="worker-on-another-host")
