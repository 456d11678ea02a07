"""Dynamics Import end to end: backfill of N accounts, then an incremental run after changes.

Targets (issue "Dynamics Import", benchmark):
- backfill >= 20,000 records/s end to end on SQLite, <= 1 request per 5,000 records;
- incremental after 10,000 changes and 1,000 deletions: <= 1 request per 5,000 changes + 1
  per table;
- memory flat (resident size does not grow with the number of pages).

Run: `.venv/bin/python benchmarks/import.py [--accounts 1000000] [--data DIR]`.

The local Dataverse server runs in its own process (`python -m gtmsync dataverse serve` on
the benchmark's data directory), as Dynamics is remote in production: its query, JSON and
TLS work does not share this process's GIL. This process seeds the server's store (the
server objects here only write and read the database; every request goes over HTTPS to the
server process), signs in through MSAL like the Connect flow, and imports into a fresh
SQLite database. Loading a million accounts takes about a minute on a quiet machine;
`--data DIR` keeps the server's store for the next run (a run's changes and deletions are
applied to it, and new accounts top it up to N). Resident memory and CPU are reported for
both processes; "CPU per record" is the stable figure on a shared machine, the records/s
follow the load.

The backfill is a three-stage pipeline (`crm_import/runner.py`, `prefetch.py`): page N+2 is
read and parsed in a prefetch thread, page N+1 turned into rows in the main thread, page N
upserted in a write-behind thread (SQLite runs without the GIL); page N is committed after
its upsert, so resuming from the last committed page still holds.

Measured on 2 cores shared with 5 other helpers' test runs (load average from /proc/loadavg
before and after the backfill; the import got a third to a half of the machine):

run                          rec/s          ratio      req/5k  CPU us/rec    peak RSS MiB  load
                                                               hub / server  hub / server
before: 1M, in-thread server  1,500          0.08       1.00    -             208 together  ~10
1M, server process+prefetch   6,307          0.32       1.00    47.2 / 23.6   190 / 175     6.4-7.0
1M, final                     8,542          0.43       1.00    37.6 / 20.4   187 / 174     8.5-7.4
1M, final (again)             11,810         0.59       1.00    37.2 / 20.2   191 / 176     6.0-5.6
1M, final (third run)         12,530         0.63       1.00    37.1 / 20.0   216 / 175     9.7-9.3
100k, final (3 runs)          6,700-12,800   0.34-0.64  1.00    37.4 / 20.6   180 / 174     6-7
1M, final, quiet machine      26,303         1.32       1.00    35.6 / 19.0   208 / 174     1.1-1.4

The quiet run (no other work on the machine; backfill 38.0 s, 200 requests; incremental
0.49 s, 3 requests) meets the target: 1,000,000 accounts at 26,303 records/s, 27,156 over
the first tenth of the pages and 26,256 over the last, RSS growth over the second half
+0 MiB in both processes. The rows below it were taken while other test runs loaded the
machine.

Resident memory grew by at most 6 MiB (hub) and 0 MiB (server) over the second half of the
1M backfills (flat); the pace was 13,749 records/s over the first tenth of the pages of the
third run and 13,784 over the last. Incremental after 10,000 updates and 1,000 deletions: 3 requests
(target 11,000 / 5,000 + 1 = 3.2).

CPU per record does not grow with size: 37 us hub and 20 us server at 100k and at 1M;
along a 1M run, 53 us (hub + server) over the first tenth of the pages and 58 us over the
last (the first tenth reads low by the two pages the pipeline holds but has not stored yet).
So the old "1M is slower per record than 50k" came from the machine's load and the
in-process server (GIL shared with the import, all 46 columns of the table read for every
page). Under that load the import got 0.5 to 0.7 of a core and missed the target; it needs
about 55 us of CPU per record (hub + server), 1.1 cores for 20,000/s. The hub's
main thread uses about 19 us per record (measured with thread_time); the rest runs in the
prefetch and writer threads and in the server process, so an otherwise idle 2-core machine
has room for roughly 30,000 records/s; the quiet run measured 26,303.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import nullcontext
from pathlib import Path

import sqlalchemy as sa

from gtmsync.crm_import import service as import_service
from gtmsync.crm_import.models import ImportRun
from gtmsync.dataverse import RequestInfo
from gtmsync.dataverse_local.app import ServerConfig, create_app
from gtmsync.dataverse_local.seed import seed
from gtmsync.dataverse_local.server import ServerHandle
from gtmsync.dataverse_local.store import Store, format_datetime, utc_now
from gtmsync.dataverse_local.tls import ensure_tls
from gtmsync.db import migrate
from gtmsync.db.engine import create_engine, create_session_factory
from gtmsync.db.unit_of_work import session_scope

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' real sign-in helper
from tests.fixtures.connection import connect_org, connection_settings

CHUNK = 20_000
PAGE = 5000


def rss_mib(pid: int | None = None) -> float:
    with open(f"/proc/{pid or 'self'}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (fields 14 and 15 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> float:
    with open("/proc/loadavg") as load:
        return float(load.read().split()[0])


def top_up(store: Store, owners: list[uuid.UUID], want: int) -> float:
    have = store.count("account")
    if have >= want:
        return 0.0
    started = time.perf_counter()
    # Rebuilding the indexes pays off for a bulk load, not for topping up the deletions of
    # the last run (it would re-index a million rows for a thousand).
    defer = store.deferred_indexes("account") if want - have > have // 10 else nullcontext()
    with defer:
        for first in range(have, want, CHUNK):
            rows = [
                {
                    "name": f"Bench Account {i:07d}",
                    "websiteurl": f"https://www.bench{i}.example.com",
                    "telephone1": f"+1 555 {i:07d}",
                    "revenue": i % 100_000,
                    "customertypecode": 1 + i % 3,
                    "ownerid": ("systemuser", owners[i % len(owners)]),
                }
                for i in range(first, min(first + CHUNK, want))
            ]
            store.bulk_insert("account", rows, as_user=owners[0])
    return time.perf_counter() - started


def change(store: Store, updates: int, deletes: int) -> None:
    """Update and delete accounts the way the Web API would (versions, tombstones)."""
    sql = store.tables["account"]
    ts = store.tombstones
    with store.write() as conn:
        ids = list(conn.execute(sa.select(sql.c.accountid).limit(updates + deletes)).scalars())
        now = format_datetime(utc_now())
        first = store.next_versions(conn, len(ids))
        for i, account_id in enumerate(ids[:updates]):
            conn.execute(
                sa.update(sql)
                .where(sql.c.accountid == account_id)
                .values(name=f"Changed {i}", versionnumber=first + i, modifiedon=now)
            )
        gone = ids[updates:]
        conn.execute(sa.delete(sql).where(sql.c.accountid.in_(gone)))
        conn.execute(
            ts.insert(),
            [
                {
                    "version": first + updates + i,
                    "table_name": "account",
                    "record_id": rid,
                    "deleted_on": now,
                }
                for i, rid in enumerate(gone)
            ],
        )


def start_server(data: Path, port: int) -> subprocess.Popen[bytes]:
    """The local Dataverse server in its own process, as `gtmsync dataverse serve` runs it.

    In production Dynamics is remote, so the server's query, JSON and TLS work must not
    share this process's GIL with the import being measured.
    """
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gtmsync",
            "dataverse",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"the server did not listen on port {port} within 60 s; see {log.name}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--deletes", type=int, default=1_000)
    parser.add_argument("--data", type=Path, default=None, help="reusable server data dir")
    args = parser.parse_args()
    data = (args.data or Path(tempfile.mkdtemp(prefix="import-bench-"))).resolve()
    data.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="import-bench-hub-"))
    store = Store.open(f"sqlite:///{data / 'dataverse.db'}")
    port = free_port()
    # The server's objects in this process only seed and read the directory (a database):
    # every HTTP request goes to the server process started below on the same data.
    app = create_app(store, config=ServerConfig(data_dir=data))
    server = ServerHandle(base_url=f"https://127.0.0.1:{port}", app=app, tls=ensure_tls(data))
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):  # MSAL (requests) trusts it too
        os.environ[name] = str(server.ca_bundle)
    result = seed(
        store,
        server.directory,
        server.security,
        accounts=0,
        contacts=0,
        leads=0,
        opportunities=0,
        products=0,
    )
    owners = list(result.users.values())
    load_s = top_up(store, owners, args.accounts)
    total = store.count("account")
    proc = start_server(data, port)
    try:
        url = f"sqlite:///{work / 'hub.db'}"
        migrate.upgrade(url)
        engine = create_engine(url)
        factory = create_session_factory(engine)
        settings = connection_settings(server, work)
        with session_scope(factory) as session:
            org_id = connect_org(session, server, settings).org.id
            import_service.settings_row(session, org_id).daily_budget = 10_000_000
            # the mapping's metadata read happens once, outside the timed runs
            import_service.get_mapping(session, org_id, settings=settings)

        samples: list[float] = []
        server_samples: list[float] = []
        stamps: list[float] = []  # when each page was asked for: the pace along the run
        cpu_stamps: list[float] = []  # hub + server CPU seconds at that moment

        def sample(info: RequestInfo) -> None:
            if info.resource == "accounts":
                stamps.append(time.perf_counter())
                cpu_stamps.append(time.process_time() + cpu_seconds(proc.pid))
                samples.append(rss_mib())
                server_samples.append(rss_mib(proc.pid))

        def run() -> tuple[ImportRun, float, float, float]:
            cpu = time.process_time()
            server_cpu = cpu_seconds(proc.pid)
            started = time.perf_counter()
            with session_scope(factory) as session:
                (done,) = import_service.run_import(
                    session,
                    org_id,
                    table="account",
                    checkpoint=session.commit,
                    settings=settings,
                    on_request=sample,
                )
                session.expunge(done)
            return (
                done,
                time.perf_counter() - started,
                time.process_time() - cpu,
                cpu_seconds(proc.pid) - server_cpu,
            )

        load_before = loadavg()
        backfill, backfill_s, backfill_cpu, server_cpu = run()
        load_after = loadavg()
        backfill_stamps, backfill_cpu_stamps = list(stamps), list(cpu_stamps)
        change(store, args.changes, args.deletes)
        incremental, incremental_s, _, _ = run()
        engine.dispose()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)

    assert backfill.kind == "backfill", backfill.errors
    assert backfill.status == "succeeded", backfill.errors
    assert incremental.kind == "incremental", incremental.errors
    changed = args.changes + args.deletes
    rows = [
        ("backfill records/s", total / backfill_s, 20_000, "min"),
        ("backfill requests per 5,000 records", backfill.api_calls / (total / PAGE), 1.0, "max"),
        ("incremental requests", incremental.api_calls, changed / PAGE + 1, "max"),
        ("incremental records/s", changed / incremental_s, None, None),
    ]
    first_half = samples[: max(1, len(samples) // 2)]
    growth = (max(samples) - max(first_half)) if samples else 0.0
    print(
        f"\nDynamics import benchmark: {total:,} accounts, {changed:,} changes "
        f"({args.changes:,} updates, {args.deletes:,} deletions); server data {data}"
    )
    if load_s:
        print(f"server bulk load: {load_s:.1f} s")
    print(
        f"backfill: {backfill_s:.1f} s, {backfill.api_calls} requests, "
        f"{backfill.records_stored:,} stored; incremental: {incremental_s:.2f} s, "
        f"{incremental.api_calls} requests, {incremental.records_stored:,} stored, "
        f"{incremental.records_deleted:,} deleted"
    )
    server_growth = (
        max(server_samples) - max(server_samples[: max(1, len(server_samples) // 2)])
        if server_samples
        else 0.0
    )
    print(
        f"hub process: peak RSS {max(samples, default=rss_mib()):.0f} MiB, growth over the "
        f"second half of the backfill {growth:+.0f} MiB (flat = about 0); CPU "
        f"{backfill_cpu:.1f} s for the backfill ({backfill_cpu / backfill_s:.0%} of one core)"
    )
    print(
        f"server process: peak RSS {max(server_samples, default=0.0):.0f} MiB, growth "
        f"{server_growth:+.0f} MiB; CPU {server_cpu:.1f} s for the backfill"
    )
    tenth = max(1, len(backfill_stamps) // 10)
    if len(backfill_stamps) > 2 * tenth:
        first = PAGE * tenth / (backfill_stamps[tenth] - backfill_stamps[0])
        last = PAGE * tenth / (backfill_stamps[-1] - backfill_stamps[-1 - tenth])
        cpu = backfill_cpu_stamps
        first_cpu = (cpu[tenth] - cpu[0]) / (PAGE * tenth) * 1e6
        last_cpu = (cpu[-1] - cpu[-1 - tenth]) / (PAGE * tenth) * 1e6
        print(
            f"pace: {first:,.0f} records/s over the first tenth of the pages, {last:,.0f} "
            f"over the last tenth; hub + server CPU per record {first_cpu:.1f} us and "
            f"{last_cpu:.1f} us (no slow-down with size = about equal; the wall figures "
            "follow the machine's load)"
        )
    print(
        f"CPU per record: hub {backfill_cpu / total * 1e6:.1f} us, server "
        f"{server_cpu / total * 1e6:.1f} us"
    )
    print(
        f"load average (1 min, /proc/loadavg) {load_before:.2f} before the backfill, "
        f"{load_after:.2f} after; {os.cpu_count()} CPUs"
    )
    print(f"{'measure':<40} {'value':>12} {'target':>10} {'ratio':>7}")
    for name, value, target, kind in rows:
        if target is None:
            print(f"{name:<40} {value:>12,.1f} {'-':>10} {'-':>7}")
            continue
        ratio = value / target
        ok = ratio >= 1 if kind == "min" else ratio <= 1
        print(f"{name:<40} {value:>12,.2f} {target:>10,.1f} {ratio:>7.2f} {'ok' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
