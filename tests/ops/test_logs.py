"""Structured logs: a request's lines carry its request ID, a job's lines its job ID, task and
org, and no secret reaches a line, even at DEBUG during a real sign-in, import and export."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from huey import MemoryHuey
from sqlalchemy.orm import Session

from gtmsync.connection.gateway import LOCAL_APP_CLIENT_SECRET
from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import RunStatus
from gtmsync.jobs.observability import instrument
from gtmsync.kit.logging import job_id_var, org_id_var, task_var
from tests.fixtures.connection import ConnectedOrg, sign_in
from tests.ops.conftest import JsonLog, sample

# header.payload.signature, each base64url; MSAL's client_info (base64 JSON, no dots) is not one
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.")


class TestRequestLogs:
    def test_access_line_carries_the_request_id(
        self, client: TestClient, json_log: JsonLog
    ) -> None:
        request_id = f"ops-{uuid.uuid4().hex[:12]}"
        response = client.get("/healthz", headers={"X-Request-ID": request_id})
        assert response.headers["x-request-id"] == request_id
        (line,) = [x for x in json_log.lines() if x.get("request_id") == request_id]
        assert line["logger"] == "gtmsync.web.access"
        assert (line["method"], line["route"], line["status"]) == ("GET", "/healthz", 200)

    def test_every_line_logged_during_a_request_has_its_id(
        self, signed_in_client: TestClient, json_log: JsonLog
    ) -> None:
        request_id = f"ops-{uuid.uuid4().hex[:12]}"
        signed_in_client.get("/api/v1/me", headers={"X-Request-ID": request_id})
        lines = [x for x in json_log.lines() if x["logger"].startswith("gtmsync.web")]
        assert lines
        assert {x.get("request_id") for x in lines} == {request_id}


class TestJobLogs:
    def test_job_lines_carry_job_id_task_and_org(self, json_log: JsonLog) -> None:
        huey = instrument(MemoryHuey("ops-logs", immediate=True))
        seen: dict[str, str | None] = {}

        @huey.task(name="ops.sync")  # type: ignore[untyped-decorator]
        def sync(org_id: str, table: str | None = None) -> str:
            import logging

            logging.getLogger("gtmsync.ops.test").info("syncing %s", table)
            seen.update(job=job_id_var.get(), task=task_var.get(), org=org_id_var.get())
            return table or ""

        org_id = str(uuid.uuid4())
        started = sample("gtmsync_jobs_started_total", task="ops.sync")
        result = sync(org_id, table="account")
        assert result() == "account"
        job_id = result.id
        assert seen == {"job": job_id, "task": "ops.sync", "org": org_id}
        mine = [x for x in json_log.lines() if x.get("job_id") == job_id]
        messages = [x["msg"] for x in mine]
        assert "job started" in messages
        assert "syncing account" in messages
        assert "job finished" in messages
        assert all(x["task"] == "ops.sync" and x["org_id"] == org_id for x in mine)
        # Context ends with the job: nothing logged afterwards claims to belong to it.
        assert (job_id_var.get(), task_var.get(), org_id_var.get()) == (None, None, None)
        assert sample("gtmsync_jobs_started_total", task="ops.sync") == started + 1
        assert sample("gtmsync_jobs_finished_total", task="ops.sync", outcome="succeeded") >= 1

    def test_a_failing_job_is_logged_and_counted_as_failed(self, json_log: JsonLog) -> None:
        huey = instrument(MemoryHuey("ops-fail", immediate=True))

        @huey.task(name="ops.fail")  # type: ignore[untyped-decorator]
        def fail() -> None:
            raise RuntimeError("Dynamics said no")

        failed = sample("gtmsync_jobs_finished_total", task="ops.fail", outcome="failed")
        result = fail()
        (finished,) = [
            x
            for x in json_log.lines()
            if x.get("job_id") == result.id and x["msg"] == "job finished"
        ]
        assert finished["level"] == "WARNING"
        assert finished["outcome"] == "failed"
        assert finished["error"] == "RuntimeError: Dynamics said no"
        assert (
            sample("gtmsync_jobs_finished_total", task="ops.fail", outcome="failed") == failed + 1
        )


class TestNoSecrets:
    def test_no_token_or_secret_in_any_line_of_a_sign_in_and_an_import(
        self, connected_org: ConnectedOrg, db_session: Session, json_log: JsonLog
    ) -> None:
        server = connected_org.server
        domain = server.directory.tenant().domain
        signed_in = sign_in(server, connected_org.settings, f"avery.admin@{domain}")
        (run,) = import_service.run_import(
            db_session,
            connected_org.org.id,
            table="account",
            checkpoint=db_session.commit,
            settings=connected_org.settings,
        )
        assert run.status == RunStatus.SUCCEEDED, run.errors
        text = json_log.text
        assert text  # DEBUG lines of MSAL, httpx and the client were written
        secrets = [LOCAL_APP_CLIENT_SECRET, connected_org.settings.resolved_secret_key()]
        secrets += _token_values(signed_in)
        assert all(len(s) >= 16 for s in secrets)
        leaked = [s[:6] + "…" for s in secrets if s in text]
        assert not leaked, f"secrets in the logs: {leaked}"
        assert not _JWT.search(text)  # no JWT (access or ID token) in any form
        assert "[REDACTED]" in text  # MSAL logged its token responses: masked, not dropped


def _token_values(signed_in: object) -> list[str]:
    """Access and refresh tokens held by a sign-in's MSAL cache (whatever its shape)."""
    import json

    state = getattr(signed_in, "cache_state", None)
    assert isinstance(state, str), "the sign-in should expose its MSAL cache state"
    cache = json.loads(state)
    values = []
    for kind in ("AccessToken", "RefreshToken", "IdToken"):
        values += [entry["secret"] for entry in cache.get(kind, {}).values()]
    assert values
    return values
