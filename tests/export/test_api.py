"""`/api/v1/exports` over the real app (TestClient) with a bearer token, against the local
Dataverse server: plan → review → decisions → run → results CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import service as export_service
from gtmsync.jobs.queue import get_huey
from gtmsync.platform import service as platform_service
from gtmsync.settings import Settings
from tests.export.exporting import SPECIAL, company, tag
from tests.fixtures.connection import ConnectedOrg, connect_org, connection_settings


@pytest.fixture
def api(
    dataverse: ServerHandle, database_url: str, tmp_path: Path, fast_password_hashing: None
) -> Iterator[tuple[FastAPI, Settings]]:
    from gtmsync.web.app import create_app

    settings = connection_settings(dataverse, tmp_path, database_url=database_url)
    application = create_app(settings)
    yield application, settings
    application.state.engine.dispose()


@pytest.fixture
def org_with_token(
    api: tuple[FastAPI, Settings], dataverse: ServerHandle
) -> tuple[ConnectedOrg, str]:
    application, settings = api
    factory: sessionmaker[Session] = application.state.session_factory
    with session_scope(factory) as session:
        connected = connect_org(session, dataverse, settings)
        token = platform_service.create_api_token(session, connected.seller, name="tests").token
    return connected, token


def test_plan_review_decide_run_and_csv(
    api: tuple[FastAPI, Settings], org_with_token: tuple[ConnectedOrg, str]
) -> None:
    application, settings = api
    connected, token = org_with_token
    factory: sessionmaker[Session] = application.state.session_factory
    t = tag()
    with session_scope(factory) as session:
        dup = company(session, f"{SPECIAL} {t}")
        new = company(session, f"API New {t}")
        pids = [dup.platform_id, new.platform_id]
        with connected.client(session) as client:
            existing = client.create("accounts", {"name": f"{SPECIAL} {t}"})
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(application) as http:
        planned = http.post(
            "/api/v1/exports", json={"object": "account", "platform_ids": pids}, headers=headers
        )
        assert planned.status_code == 201, planned.text
        body = planned.json()
        export_id = body["id"]
        assert body["status"] == "planned"
        assert body["planned"] == {"create": 1, "update": 1}
        review = http.get(f"/api/v1/exports/{export_id}?review=true", headers=headers).json()
        [needs_person] = review["items"]
        assert needs_person["duplicate"]["id"] == str(existing)
        assert needs_person["duplicate_choice"] == "update"  # the admin default, pre-selected
        refused = http.post(
            f"/api/v1/exports/{export_id}/decisions",
            json={"decisions": [{"item_id": needs_person["id"], "duplicate": "bogus"}]},
            headers=headers,
        )
        assert refused.status_code == 422
        decided = http.post(
            f"/api/v1/exports/{export_id}/decisions",
            json={"decisions": [{"platform_id": dup.platform_id, "duplicate": "do_not_export"}]},
            headers=headers,
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["planned"] == {"create": 1, "skip": 1}
        queue = get_huey()
        before = queue.pending_count()
        queued = http.post(f"/api/v1/exports/{export_id}/run", headers=headers)
        assert queued.status_code == 202, queued.text
        assert queued.json()["status"] == "queued"
        assert queue.pending_count() == before + 1
        import gtmsync.tasks  # noqa: F401 - the worker's task registry resolves the job

        [job] = [j for j in queue.pending() if j.args == (str(connected.org.id), export_id)]
        assert job.name == "export.run"
        # The worker's part (the `export.run` task body), run here in-process.
        with session_scope(factory) as session:
            export_service.run(
                session,
                connected.org.id,
                uuid.UUID(export_id),
                checkpoint=session.commit,
                settings=settings,
            )
        done = http.get(f"/api/v1/exports/{export_id}", headers=headers).json()
        assert done["status"] == "completed"
        assert done["results"] == {"created": 1, "skipped": 1}
        listed = http.get("/api/v1/exports", headers=headers).json()
        assert [e["id"] for e in listed] == [export_id]
        download = http.get(f"/api/v1/exports/{export_id}/results.csv", headers=headers)
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(download.text)))
        assert [(r["platform_id"], r["status"]) for r in rows] == [
            (dup.platform_id, "skipped"),
            (new.platform_id, "created"),
        ]
        assert rows[0]["record"] == f"{SPECIAL} {t}"
        assert rows[1]["dynamics_id"]


def test_limits_and_other_orgs(
    api: tuple[FastAPI, Settings], org_with_token: tuple[ConnectedOrg, str]
) -> None:
    application, _ = api
    _, token = org_with_token
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(application) as http:
        refused = http.post(
            "/api/v1/exports",
            json={"object": "account", "platform_ids": [f"x{i}" for i in range(1001)]},
            headers=headers,
        )
        assert refused.status_code == 400
        assert "limit of 1,000" in refused.json()["error"]
        assert refused.json()["field"] == "platform_ids"
        missing = http.get(f"/api/v1/exports/{uuid.uuid4()}", headers=headers)
        assert missing.status_code == 404
        assert http.get("/api/v1/exports").status_code == 401
