"""Scale-out: the hub web process and three worker processes on PostgreSQL and Redis run a
large export and an import backfill concurrently for two orgs; every outcome exactly once.

Set-up: a local Dataverse server of the test's own (its store holds only what the test made),
two orgs connected with a real sign-in, N platform contacts per org. Then, all through real
processes: each org's seller plans the export of its N contacts through the hub's API and runs
it (queued in Redis); each org's admin presses Sync Now (a backfill of every table, queued);
three `gtmsync worker` processes (schedulers on) take the jobs. The workers' own schedulers
also enqueue the import for both orgs on start, so the job leases are exercised too.

Checked when everything has finished, after one more incremental import per org (the
backfill ran while the exports were creating contacts):
- in the server's store, each platform ID is on exactly one contact;
- in the hub, every export item is `created` with the id of that contact;
- per org and table (account, contact), imported rows = server rows, each once.

Figures (records, seconds, skipped duplicate jobs) are printed and written to
`<tmp>/scale-figures.json`. `SCALE_CONTACTS` (per org) defaults to 1,500 in the default run;
the slow variant exports 10,000 per org.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from gtmsync.export.models import ExportStatus, ItemStatus
from gtmsync.jobs.queue import build_huey, enqueue
from gtmsync.settings import Mode, Settings
from tests.fixtures.connection import CONNECTION_SECRET_KEY, connection_settings
from tests.fixtures.processes import WorkerPool, hub_env, redis_queue_url, wait_for
from tests.fixtures.web import HubServer
from tests.scale.scenario import CHECKED_TABLES, OrgSetup, Scene, dedicated_server

REDIS_DB = 13  # its own db: concurrent Redis tests must not take each other's jobs
ACCOUNTS = 1_000  # seeded in Dynamics before the run: what the backfill reads besides contacts

pytestmark = pytest.mark.xdist_group("redis-db-14")  # the Redis tests flush db 14


def _api(hub: HubServer, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=hub.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=300
    )


def _finished_imports(scene: Scene, org: OrgSetup, since: float = 0.0) -> bool:
    """No run left `running`, no backfill pending, and (after `since`) a run per source."""
    runs = scene.runs(org)
    cursors = scene.cursors(org)
    if not cursors or any(c.backfill_pending for c in cursors):
        return False
    if any(r.status == "running" for r in runs):
        return False
    done = {
        r.source_key for r in runs if r.status == "succeeded" and r.started_at.timestamp() > since
    }
    return {c.source_key for c in cursors} <= done


def run_scale(tmp_path: Path, postgres_url: str, contacts: int) -> dict[str, object]:
    queue_url = redis_queue_url(REDIS_DB)
    figures: dict[str, object] = {"contacts_per_org": contacts, "orgs": 2, "workers": 3}
    with dedicated_server(tmp_path / "dataverse", accounts=ACCOUNTS) as server:
        # Demo mode: the local server's loopback org URL is accepted, and Sync Now queues
        # the backfill for a worker (development mode would run it inside the web request).
        settings = connection_settings(
            server, tmp_path / "hub-data", database_url=postgres_url, mode=Mode.DEMO
        )
        scene = Scene(server, settings)
        orgs = [scene.add_org(contacts=contacts) for _ in range(2)]
        env = hub_env(settings, queue_url=queue_url, job_lease_seconds=30)
        hub = HubServer(
            database_url=postgres_url,
            data_dir=tmp_path / "hub",
            secret_key=CONNECTION_SECRET_KEY,
            env={
                name: env[name]
                for name in ("GTMSYNC_QUEUE_URL", "GTMSYNC_MODE", "GTMSYNC_CA_BUNDLE")
            },
            startup_timeout=60,
        )
        started = time.monotonic()
        with hub, WorkerPool(3, env=env, log_dir=tmp_path / "workers", threads=2) as pool:
            for org in orgs:  # plans first (each a few seconds), so the runs start together
                with _api(hub, org.seller_token) as api:
                    planned = api.post(
                        "/api/v1/exports", json={"object": "contact", "platform_ids": org.pids}
                    )
                    assert planned.status_code == 201, planned.text[:2000]
                    org.export_id = uuid.UUID(planned.json()["id"])
            figures["plan_seconds"] = round(time.monotonic() - started, 1)
            for org in orgs:
                with _api(hub, org.seller_token) as api:
                    queued = api.post(f"/api/v1/exports/{org.export_id}/run")
                    assert queued.status_code in (200, 202), queued.text[:2000]
                with _api(hub, org.admin_token) as api:
                    synced = api.post("/api/v1/imports/sync-now")
                    assert synced.status_code == 200, synced.text[:2000]

            def exports_done() -> bool:
                states = [scene.export(o).status for o in orgs]
                assert ExportStatus.INTERRUPTED not in states, (states, pool.logs())
                return all(s == ExportStatus.COMPLETED for s in states)

            wait_for(exports_done, timeout=600, interval=1, what="both exports to complete")
            figures["export_seconds"] = round(time.monotonic() - started, 1)
            wait_for(
                lambda: all(_finished_imports(scene, o) for o in orgs),
                timeout=600,
                interval=1,
                what="both backfills to finish",
            )
            figures["backfill_seconds"] = round(time.monotonic() - started, 1)
            # The backfills ran while contacts were being created: one incremental run each.
            mark = time.time()
            huey = build_huey(Settings(queue_url=queue_url, _env_file=None))  # type: ignore[call-arg]
            for org in orgs:
                enqueue("import.run", str(org.org_id), huey=huey)
            wait_for(
                lambda: all(_finished_imports(scene, o, since=mark) for o in orgs),
                timeout=300,
                interval=1,
                what="the incremental imports",
            )
            figures["total_seconds"] = round(time.monotonic() - started, 1)
            skipped = sum(
                w.log_text().count("job skipped: another worker holds its lease")
                for w in pool.workers
            )
            tracebacks = [line[:500] for w in pool.workers for line in w.tracebacks()]
        figures["duplicate_jobs_skipped_by_lease"] = skipped
        assert not tracebacks, tracebacks

        records_checked = 0
        duplicates = losses = 0
        overlaps = []
        for org in orgs:
            export = scene.export(org)
            backfills = [r for r in scene.runs(org) if r.kind == "backfill"]
            assert export.started_at is not None
            assert export.finished_at is not None
            overlaps.append(
                any(
                    r.started_at < export.finished_at
                    and (r.finished_at or r.started_at) > export.started_at
                    for r in backfills
                )
            )
            per_pid = scene.rows_per_platform_id(export.anchor_attribute, org.pids)
            duplicates += sum(n - 1 for n in per_pid.values() if n > 1)
            losses += sum(1 for n in per_pid.values() if n == 0)
            items = scene.export_items(org)
            assert Counter(i.status for i in items) == {ItemStatus.CREATED: contacts}
            assert all(i.dynamics_id is not None for i in items)
            records_checked += len(per_pid)
            for table in CHECKED_TABLES:
                imported = scene.imported_ids(org, table)
                on_server = scene.server_ids(table)
                assert len(imported) == len(set(imported)), f"{table}: duplicate imported rows"
                assert set(imported) == set(on_server), (
                    f"{table}: {len(set(on_server) - set(imported))} missing, "
                    f"{len(set(imported) - set(on_server))} extra"
                )
                records_checked += len(imported)
        scene.close()
    figures.update(
        records_checked=records_checked,
        duplicates=duplicates,
        losses=losses,
        backfill_ran_during_export=overlaps,
    )
    assert duplicates == 0
    assert losses == 0
    written = tmp_path / "scale-figures.json"
    written.write_text(json.dumps(figures, indent=2))
    print(f"\nscale figures ({written}):\n{json.dumps(figures, indent=2)}")
    return figures


class TestScale:
    def test_two_orgs_export_and_import_on_three_workers(
        self, tmp_path: Path, postgres_url: str
    ) -> None:
        run_scale(tmp_path, postgres_url, contacts=1_500)

    @pytest.mark.slow
    @pytest.mark.timeout(1800)
    def test_two_orgs_ten_thousand_contacts_each(self, tmp_path: Path, postgres_url: str) -> None:
        run_scale(tmp_path, postgres_url, contacts=10_000)
