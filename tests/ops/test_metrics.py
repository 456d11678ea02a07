"""Prometheus metrics change after real work, stay low-cardinality and are guarded when asked.

The Dataverse and record metrics are read after a real import and a real export against the
local Dataverse server over HTTPS (real MSAL sign-in), with 429s injected by its fault API.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import gtmsync.jobs.observability  # noqa: F401 - installs the committed-record counters
from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import RunStatus
from gtmsync.dataverse_local.faults import FaultRule
from gtmsync.export import service as export_service
from gtmsync.export.models import ExportStatus
from gtmsync.settings import Mode, Settings
from gtmsync.web.app import OPENAPI_URL, create_app
from tests.export.exporting import planned_accounts
from tests.fixtures.connection import ConnectedOrg
from tests.ops.conftest import sample

_SERIES = re.compile(r"^(gtmsync_\w+)\{(.*)\} ", re.M)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _labels(text: str) -> list[str]:
    return [labels for _, labels in _SERIES.findall(text)]


class TestWebMetrics:
    def test_requests_are_counted_by_route_template(self, client: TestClient) -> None:
        export_id = uuid.uuid4()
        before = sample(
            "gtmsync_http_requests_total",
            method="GET", route="/api/v1/exports/{export_id}", status="401",
        )  # fmt: skip
        assert client.get(f"/api/v1/exports/{export_id}").status_code == 401
        assert client.get(f"/no-such-page-{export_id}").status_code == 404
        text = client.get("/metrics").text
        after = sample(
            "gtmsync_http_requests_total",
            method="GET", route="/api/v1/exports/{export_id}", status="401",
        )  # fmt: skip
        assert after == before + 1
        assert 'route="unmatched",status="404"' in text
        assert str(export_id) not in text  # raw paths never become labels
        assert "gtmsync_http_request_duration_seconds_bucket" in text
        assert "gtmsync_queue_pending_jobs" in text

    def test_metrics_are_not_in_the_openapi_schema(self, client: TestClient) -> None:
        assert "/metrics" not in client.get(OPENAPI_URL).json()["paths"]

    def test_token_guards_metrics_when_set(self, tmp_path: Path) -> None:
        settings = Settings(
            data_dir=tmp_path,
            secret_key="ops-metrics-tests-secret-key-0123456789abcdef",
            metrics_token="scrape-me-0123456789",
            _env_file=None,  # type: ignore[call-arg]
        )
        app = create_app(settings)
        try:
            with TestClient(app) as client:
                assert client.get("/metrics").status_code == 401
                wrong = {"Authorization": "Bearer scrape-me-0123456780"}
                assert client.get("/metrics", headers=wrong).status_code == 401
                right = {"Authorization": "Bearer scrape-me-0123456789"}
                response = client.get("/metrics", headers=right)
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/plain")
                assert "gtmsync_http_requests_total" in response.text
        finally:
            app.state.engine.dispose()

    def test_production_without_a_token_refuses_metrics(self, tmp_path: Path) -> None:
        settings = Settings(
            data_dir=tmp_path,
            secret_key="ops-metrics-tests-secret-key-0123456789abcdef",
            mode=Mode.PRODUCTION,
            _env_file=None,  # type: ignore[call-arg]
        )
        app = create_app(settings)
        try:
            with TestClient(app) as client:
                response = client.get("/metrics")
                assert response.status_code == 403
                assert "GTMSYNC_METRICS_TOKEN" in response.text
                assert "gtmsync_" not in response.text
        finally:
            app.state.engine.dispose()


class TestWorkMetrics:
    def test_import_with_429s_shows_throttling_for_that_org(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        org = str(connected_org.org.id)
        settings = connected_org.settings
        row = import_service.settings_row(db_session, connected_org.org.id)
        row.page_size = 50
        db_session.flush()
        import_service.get_mapping(db_session, connected_org.org.id, settings=settings)
        throttled = sample("gtmsync_dataverse_throttled_total", org=org)
        calls_429 = sample("gtmsync_dataverse_requests_total", org=org, status="429")
        calls_200 = sample("gtmsync_dataverse_requests_total", org=org, status="200")
        retries = sample("gtmsync_dataverse_retries_total", org=org)
        read = sample("gtmsync_import_records_total", kind="read")
        stored = sample("gtmsync_import_records_total", kind="stored")

        connected_org.server.faults.add(
            FaultRule(kind="throttle", count=3, retry_after=0, method="GET", path="accounts")
        )
        (run,) = import_service.run_import(
            db_session,
            connected_org.org.id,
            table="account",
            checkpoint=db_session.commit,
            settings=settings,
        )
        assert run.status == RunStatus.SUCCEEDED, run.errors
        assert run.records_read > 0

        assert sample("gtmsync_dataverse_throttled_total", org=org) == throttled + 3
        assert sample("gtmsync_dataverse_requests_total", org=org, status="429") == calls_429 + 3
        assert sample("gtmsync_dataverse_retries_total", org=org) == retries + 3
        ok = sample("gtmsync_dataverse_requests_total", org=org, status="200") - calls_200
        assert ok == run.api_calls - 3  # every other attempt of the run answered 200
        assert sample("gtmsync_import_records_total", kind="read") == read + run.records_read
        assert sample("gtmsync_import_records_total", kind="stored") == stored + run.records_stored

    def test_export_with_429s_counts_records_by_outcome(
        self, connected_org: ConnectedOrg, db_session: Session
    ) -> None:
        org = str(connected_org.org.id)
        export, _pids = planned_accounts(db_session, connected_org, "Metrics", 3)
        db_session.commit()
        created = sample("gtmsync_export_records_total", outcome="created")
        throttled = sample("gtmsync_dataverse_throttled_total", org=org)
        connected_org.server.faults.add(
            FaultRule(kind="throttle", count=2, retry_after=0, path="/api/data/")
        )

        done = export_service.run(
            db_session,
            connected_org.org.id,
            export.id,
            checkpoint=db_session.commit,
            settings=connected_org.settings,
            batch_size=2,
        )
        assert done.status == ExportStatus.COMPLETED
        assert sample("gtmsync_export_records_total", outcome="created") == created + 3
        assert sample("gtmsync_dataverse_throttled_total", org=org) == throttled + 2

    def test_labels_hold_no_emails_and_no_record_ids(
        self, connected_org: ConnectedOrg, db_session: Session, client: TestClient
    ) -> None:
        with connected_org.client(db_session) as dynamics:
            dynamics.who_am_i()
        text = client.get("/metrics").text
        labels = _labels(text)
        assert any(str(connected_org.org.id) in value for value in labels)
        assert not [value for value in labels if "@" in value]
        ids = {m for value in labels for m in _UUID.findall(value)}
        assert ids <= {str(o) for o in _org_ids(text)}  # the only UUIDs are hub org ids


def _org_ids(text: str) -> set[uuid.UUID]:
    return {uuid.UUID(v) for v in re.findall(r'org="([0-9a-f-]{36})"', text)}
