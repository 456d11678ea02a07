"""Worker processes killed with SIGKILL at random points while they export and import;
restarted, they and the recovery sweep finish the work: nothing duplicated, nothing lost,
every failure visible with a reason.

Three `gtmsync worker` processes on PostgreSQL and Redis (the scale-out set-up, where a
killed machine is a real event) work for two orgs connected to a local Dataverse server of
the test's own. Work comes in rounds: per org, an export of fresh platform contacts and a
Sync Now (backfill of every table, in pages of 50 so a run has many checkpoints). While a
round runs, the test sleeps a random time, SIGKILLs a worker (one holding a job lease when
any does, so the kill interrupts real work: an export between or inside its batches, an
import between or inside its pages) and starts it again after a random pause; rounds go on
until the planned number of kills is reached. Jobs lost with a killed worker come back
through the leases (3 s here) and the recovery sweep (every second here).

Checked at the end, after one last incremental import per org with no kill:
- the server's store: every exported platform ID is on exactly one contact (none missing,
  none twice); imported rows = server rows per org and table, each once;
- the hub's tables: every export completed, every item `created` with its Dynamics id and
  one item per platform ID; no import run left `running`; every failed run carries its
  errors (a killed run says the worker stopped); exports queued again say so in their state.

The random points come from a seed (printed; set GTMSYNC_KILL_SEED to replay a run). The
figures are printed and written to `<tmp>/kill-figures.json`. The default run makes 4 kills;
`make test-long` runs the 20-kill version (`-m slow`), and 20 kills on one machine's defaults
too (SQLite hub database and SQLite queue shared by the three workers).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import RunStatus
from gtmsync.crm_import.schemas import ImportSettingsUpdate
from gtmsync.db import migrate
from gtmsync.db.unit_of_work import session_scope
from gtmsync.export import service as export_service
from gtmsync.export.models import Export, ExportStatus, ItemStatus
from gtmsync.export.schemas import ExportObject
from gtmsync.jobs import queue
from gtmsync.jobs.models import JobLease
from gtmsync.kit.clock import utc_now
from gtmsync.settings import Mode, Settings, get_settings
from tests.fixtures.connection import connection_settings
from tests.fixtures.processes import WorkerPool, hub_env, redis_queue_url, wait_for
from tests.scale.scenario import CHECKED_TABLES, OrgSetup, Scene, dedicated_server

REDIS_DB = 14  # its own db: concurrent Redis tests must not take each other's jobs
LEASE_SECONDS = 3
ACCOUNTS = 600
PAGE_SIZE = 50

pytestmark = pytest.mark.xdist_group("redis-db-14")  # the Redis tests flush db 14


def _use_queue(monkeypatch: pytest.MonkeyPatch, url: str) -> Iterator[str]:
    """`url` as this test process's queue too (exports are queued after their commit).

    Settings are read again: a fixture before this one may have cached them (migrations do),
    and a job queued in the wrong place would only be found by the recovery sweep.
    """
    monkeypatch.setenv("GTMSYNC_QUEUE_URL", url)
    get_settings.cache_clear()
    queue.get_huey.cache_clear()
    expected = type(queue.build_huey(Settings(queue_url=url, _env_file=None)).storage)  # type: ignore[call-arg]
    assert isinstance(queue.get_huey().storage, expected)
    yield url
    queue.get_huey.cache_clear()


@pytest.fixture
def redis_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Redis db 14, flushed."""
    yield from _use_queue(monkeypatch, redis_queue_url(REDIS_DB))


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """One machine's defaults: a migrated SQLite hub database and the SQLite queue."""
    database_url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrate.upgrade(database_url)
    for url in _use_queue(monkeypatch, f"sqlite:///{tmp_path / 'queue.db'}"):
        yield database_url, url


class Chaos:
    """Rounds of work for every org, SIGKILLs at random points, restarts."""

    def __init__(self, scene: Scene, pool: WorkerPool, rng: random.Random, per_round: int):
        self.scene = scene
        self.pool = pool
        self.rng = rng
        self.per_round = per_round
        self.exports: list[tuple[OrgSetup, Export]] = []
        self.pids: dict[str, list[str]] = {}
        self.kills: list[dict[str, object]] = []
        self.rounds = 0

    def start_round(self) -> None:
        """Per org: plan and queue an export of fresh contacts; Sync Now and queue it."""
        self.rounds += 1
        for org in self.scene.orgs:
            pids = self.scene.add_contacts(org, self.per_round, f"r{self.rounds}")
            with session_scope(self.scene.factory) as session:
                export = export_service.plan(
                    session,
                    org_id=org.org_id,
                    user_id=org.seller_id,
                    obj=ExportObject.CONTACT,
                    platform_ids=pids,
                    settings=self.scene.settings,
                )
                export_service.request_run(session, org.org_id, export.id)
                import_service.sync_now(
                    session, org.org_id, actor=None, settings=self.scene.settings
                )
            queue.enqueue("import.run", str(org.org_id))
            self.exports.append((org, export))
            self.pids[str(export.id)] = pids

    def round_done(self) -> bool:
        with self.scene.factory() as session:
            states = [session.get(Export, e.id) for _, e in self.exports]
        if not all(s is not None and s.status == ExportStatus.COMPLETED for s in states):
            return False
        return all(finished_imports(self.scene, org) for org in self.scene.orgs)

    def lease_holders(self) -> dict[int, list[str]]:
        """Live job leases by the pid holding them (the holder id is host:pid:random)."""
        with self.scene.factory() as session:
            rows = session.execute(
                sa.select(JobLease.name, JobLease.holder).where(JobLease.expires_at > utc_now())
            ).all()
        held: dict[int, list[str]] = {}
        for name, holder in rows:
            held.setdefault(int(holder.split(":")[1]), []).append(name)
        return held

    def kill(self) -> None:
        """SIGKILL a worker that holds a job lease, else any live worker; start it again after
        a random pause. Exports hold their lease longer than imports, so each kill first
        picks a kind at random and waits a little for a worker running that kind."""
        kind = self.rng.choice(["export.run:", "import.run:"])
        deadline = time.monotonic() + 15
        while True:
            held = self.lease_holders()
            busy = [w for w in self.pool.workers if w.alive and w.pid in held]
            wanted = [w for w in busy if any(n.startswith(kind) for n in held[w.pid or 0])]
            if wanted or time.monotonic() > deadline or self.round_done():
                break
            if busy and time.monotonic() > deadline - 10:
                break
            time.sleep(0.2)
        live = [w for w in self.pool.workers if w.alive]
        victim = self.rng.choice(wanted or busy or live)
        holding = held.get(victim.pid or 0, [])
        victim.kill()
        self.kills.append(
            {"worker": victim.name, "at": round(time.monotonic(), 2), "held": holding}
        )
        time.sleep(self.rng.uniform(0, 1.5))
        victim.start()

    def run(self, kills: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.kills) < kills:
            self.start_round()
            time.sleep(self.rng.uniform(1.0, 3.0))  # let the workers pick the round up
            while len(self.kills) < kills and not self.round_done():
                assert time.monotonic() < deadline, f"chaos timed out; {self.pool.logs()}"
                self.kill()
                time.sleep(self.rng.uniform(0.5, 3.0))
            wait_for(self.round_done, timeout=300, interval=1, what=f"round {self.rounds}")


def finished_imports(scene: Scene, org: OrgSetup, since: float = 0.0) -> bool:
    cursors = scene.cursors(org)
    if not cursors or any(c.backfill_pending for c in cursors):
        return False
    runs = scene.runs(org)
    if any(r.status == RunStatus.RUNNING for r in runs):
        return False
    done = {
        r.source_key
        for r in runs
        if r.status == RunStatus.SUCCEEDED and r.started_at.timestamp() > since
    }
    return {c.source_key for c in cursors} <= done


def run_kills(tmp_path: Path, database_url: str, queue_url: str, kills: int) -> dict[str, object]:
    seed = int(os.environ.get("GTMSYNC_KILL_SEED") or random.SystemRandom().randrange(10**6))
    print(f"\nSIGKILL seed: {seed} (replay with GTMSYNC_KILL_SEED={seed})")
    rng = random.Random(seed)
    figures: dict[str, object] = {"seed": seed, "kills_planned": kills, "workers": 3}
    with dedicated_server(tmp_path / "dataverse", accounts=ACCOUNTS) as server:
        settings = connection_settings(
            server, tmp_path / "hub-data", database_url=database_url, mode=Mode.DEMO
        )
        scene = Scene(server, settings)
        for _ in range(2):
            org = scene.add_org(contacts=0)
            with session_scope(scene.factory) as session:
                import_service.update_settings(
                    session, org.org_id, ImportSettingsUpdate(page_size=PAGE_SIZE), actor=None
                )
        env = hub_env(
            settings,
            queue_url=queue_url,
            job_lease_seconds=LEASE_SECONDS,
            recovery_interval_seconds=1,
        )
        started = time.monotonic()
        with WorkerPool(3, env=env, log_dir=tmp_path / "workers", threads=2) as pool:
            pool.wait_ready()
            chaos = Chaos(scene, pool, rng, per_round=300)
            chaos.run(kills, timeout=300 + 45 * kills)
            figures["chaos_seconds"] = round(time.monotonic() - started, 1)
            # One last incremental import per org, no kill: the backfills ran while the
            # exports were creating contacts.
            # A job that meets a lease still held by a killed worker returns quietly (the
            # schedule's next tick would run it), so ask again until each org's run is done.
            mark = time.time()
            asked = 0.0

            def final_imports_done() -> bool:
                nonlocal asked
                pending = [o for o in scene.orgs if not finished_imports(scene, o, since=mark)]
                if pending and time.monotonic() - asked > LEASE_SECONDS:
                    for org in pending:
                        queue.enqueue("import.run", str(org.org_id))
                    asked = time.monotonic()
                return not pending

            wait_for(
                final_imports_done, timeout=300, interval=1, what="the final incremental imports"
            )
        figures["rounds"] = chaos.rounds
        figures["kills_survived"] = len(chaos.kills)
        figures["kills_while_holding_a_job"] = sum(1 for k in chaos.kills if k["held"])
        figures["kills"] = chaos.kills
        checked = check(scene, chaos, figures)
        scene.close()
    figures["records_checked"] = checked
    written = tmp_path / "kill-figures.json"
    written.write_text(json.dumps(figures, indent=2, default=str))
    summary = {k: v for k, v in figures.items() if k != "kills"}
    print(f"SIGKILL figures ({written}):\n{json.dumps(summary, indent=2)}")
    assert figures["duplicates"] == 0
    assert figures["losses"] == 0
    assert figures["kills_survived"] == kills
    return figures


def check(scene: Scene, chaos: Chaos, figures: dict[str, object]) -> int:
    checked = duplicates = losses = 0
    requeued = 0
    for org, planned in chaos.exports:
        with scene.factory() as session:
            export = session.get(Export, planned.id)
            assert export is not None
            items = export_service.items(session, export)
        pids = chaos.pids[str(export.id)]
        assert export.status == ExportStatus.COMPLETED, (export.status, export.error)
        requeued += int(str(export.state.get("requeued", 0)))
        per_pid = scene.rows_per_platform_id(export.anchor_attribute, pids)
        duplicates += sum(n - 1 for n in per_pid.values() if n > 1)
        losses += sum(1 for n in per_pid.values() if n == 0)
        item_pids = Counter(i.platform_id for i in items)
        duplicates += sum(n - 1 for n in item_pids.values() if n > 1)
        failed = [i for i in items if i.status != ItemStatus.CREATED]
        assert all(i.message for i in failed), "a failed export item without a reason"
        assert not failed, [(i.platform_id, i.status, i.message) for i in failed[:5]]
        assert all(i.dynamics_id is not None for i in items)
        checked += len(per_pid) + len(items)
        assert org.org_id == export.org_id
    interrupted_runs = failed_runs = 0
    for org in scene.orgs:
        runs = scene.runs(org)
        assert not [r for r in runs if r.status == RunStatus.RUNNING]
        for run in runs:
            if run.status == RunStatus.FAILED:
                failed_runs += 1
                assert run.errors, f"failed import run {run.id} without its errors"
                interrupted_runs += run.errors == import_service.INTERRUPTED_MESSAGE
        for table in CHECKED_TABLES:
            imported = scene.imported_ids(org, table)
            on_server = set(scene.server_ids(table))
            duplicates += len(imported) - len(set(imported))
            losses += len(on_server - set(imported))
            assert set(imported) <= on_server, f"{table}: rows imported that Dynamics lacks"
            checked += len(imported) + len(on_server)
    figures.update(
        duplicates=duplicates,
        losses=losses,
        exports_requeued_by_recovery=requeued,
        import_runs_interrupted_by_a_kill=interrupted_runs,
        import_runs_failed_with_reason=failed_runs,
    )
    return checked


class TestSigkill:
    def test_workers_killed_at_random_points(
        self, tmp_path: Path, postgres_url: str, redis_queue: str
    ) -> None:
        run_kills(tmp_path, postgres_url, redis_queue, kills=4)

    @pytest.mark.slow
    @pytest.mark.timeout(2400)
    def test_workers_killed_at_twenty_random_points(
        self, tmp_path: Path, postgres_url: str, redis_queue: str
    ) -> None:
        run_kills(tmp_path, postgres_url, redis_queue, kills=20)

    @pytest.mark.slow
    @pytest.mark.timeout(2400)
    def test_twenty_kills_on_one_machine_defaults(
        self, tmp_path: Path, embedded: tuple[str, str]
    ) -> None:
        """SQLite hub database and SQLite queue shared by three worker processes."""
        database_url, queue_url = embedded
        run_kills(tmp_path, database_url, queue_url, kills=20)
