"""Dataverse client throughput against the local server over HTTPS (loopback, in-process).

    .venv/bin/python benchmarks/dataverse_client.py [--rows 20000] [--upserts 2000]

Seeds `--rows` accounts straight into the local server's store (untimed), then measures
through `gtmsync.dataverse.DataverseClient` with a real MSAL client-credentials token:

- paged reads of every row at two page sizes (`Prefer: odata.maxpagesize`);
- upserts by alternate key: one PATCH per record, `$batch` of 100 PATCHes, and
  `UpsertMultiple` at two chunk sizes.

Requests are counted by the client's `on_request` hook (the same hook the hub uses for API
budgets), so "requests" includes any retries. Prints one table with requests/s, records/s
and records per request, plus each write path's speed relative to single upserts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gtmsync.dataverse import (
    BatchOperation,
    ClientCredentials,
    DataverseClient,
    MsalAuth,
    MsalConfig,
    RequestInfo,
    org_scope,
)
from gtmsync.dataverse_local.server import ServerHandle, serve_in_thread
from gtmsync.dataverse_local.store import Store


@dataclass
class Row:
    scenario: str
    records: int
    requests: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _client(
    server: ServerHandle, app: object, calls: list[RequestInfo], **kw: object
) -> DataverseClient:
    config = MsalConfig(
        app.client_id,  # type: ignore[attr-defined]
        authority=server.authority,
        client_secret=app.secret,  # type: ignore[attr-defined]
        verify=str(server.ca_bundle),
        instance_discovery=False,
    )
    tokens = ClientCredentials(config, scope=org_scope(server.org_url, delegated=False))
    return DataverseClient(
        server.org_url,
        auth=MsalAuth(tokens),
        verify=server.ssl_context(),
        on_request=calls.append,
        **kw,  # type: ignore[arg-type]
    )


def _measure(name: str, records: int, calls: list[RequestInfo], work: Callable[[], None]) -> Row:
    calls.clear()
    started = time.perf_counter()
    work()
    return Row(name, records, len(calls), time.perf_counter() - started)


def run(rows: int, upserts: int, data_dir: Path) -> list[Row]:
    store = Store.open(f"sqlite:///{data_dir / 'dataverse.db'}")
    results: list[Row] = []
    with serve_in_thread(store, data_dir) as server:
        os.environ["REQUESTS_CA_BUNDLE"] = str(server.ca_bundle)
        app = server.register_app("benchmark")
        owner = app.systemuserid
        for start in range(0, rows, 5000):
            batch = [
                {"name": f"Seeded {i}", "accountnumber": f"S{i:07d}"}
                for i in range(start, min(rows, start + 5000))
            ]
            store.bulk_insert("account", batch, as_user=owner)
        calls: list[RequestInfo] = []
        with _client(server, app, calls) as client:
            client.who_am_i()  # token acquisition is not part of any figure
            client.metadata.create_alternate_key(
                "account", schema_name="bench_accountnumber", attributes=["accountnumber"]
            )
            for size in (500, 5000):
                seen = 0

                def read(size: int = size) -> None:
                    nonlocal seen
                    seen = sum(
                        1
                        for _ in client.query(
                            "accounts",
                            select=["name", "accountnumber"],
                            page_size=size,
                            annotations=None,
                        )
                    )

                row = _measure(f"paged read, {size}/page", rows, calls, read)
                assert seen == rows, (seen, rows)
                results.append(row)

            singles = min(upserts, 500)
            results.append(
                _measure(
                    "upsert, 1 PATCH per record",
                    singles,
                    calls,
                    lambda: (
                        [
                            client.upsert(
                                "accounts", {"accountnumber": f"P{i:07d}"}, {"name": f"p{i}"}
                            )
                            for i in range(singles)
                        ]
                        and None
                    ),
                )
            )

            def by_batch() -> None:
                ops = [
                    BatchOperation(
                        "PATCH", f"accounts(accountnumber='B{i:07d}')", {"name": f"b{i}"}
                    )
                    for i in range(upserts)
                ]
                for start in range(0, len(ops), 100):
                    client.batch(ops[start : start + 100], continue_on_error=True, idempotent=True)

            results.append(_measure("upsert, $batch of 100", upserts, calls, by_batch))

        for chunk in (100, 1000):
            with _client(server, app, calls, bulk_chunk_size=chunk) as bulk:
                bulk.who_am_i()
                items = [
                    ({"accountnumber": f"U{chunk}-{i:07d}"}, {"name": f"u{i}"})
                    for i in range(upserts)
                ]
                results.append(
                    _measure(
                        f"UpsertMultiple, {chunk}/request",
                        upserts,
                        calls,
                        lambda bulk=bulk, items=items: bulk.upsert_multiple(
                            "accounts", "account", items
                        ),
                    )
                )
        expected = rows + min(upserts, 500) + upserts * 3
        assert store.count("account") == expected, (store.count("account"), expected)
    store.engine.dispose()
    return results


def render(results: list[Row]) -> str:
    single = next((r for r in results if r.scenario.startswith("upsert, 1 PATCH")), None)
    header = (
        f"{'scenario':<28} {'records':>8} {'requests':>8} {'seconds':>8} "
        f"{'req/s':>8} {'records/s':>10} {'rec/req':>8} {'vs single':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        ratio = ""
        if single is not None and not r.scenario.startswith("paged"):
            ratio = f"{r.records_per_s / single.records_per_s:8.1f}x"
        lines.append(
            f"{r.scenario:<28} {r.records:>8} {r.requests:>8} {r.seconds:>8.2f} "
            f"{r.requests_per_s:>8.1f} {r.records_per_s:>10.0f} "
            f"{r.records / max(r.requests, 1):>8.1f} {ratio:>9}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="accounts to read back")
    parser.add_argument("--upserts", type=int, default=2_000, help="records per write path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gtmsync-bench-dv-") as tmp:
        results = run(args.rows, args.upserts, Path(tmp))
    print(f"Dataverse client against the local server (https://127.0.0.1, {sys.platform})")
    print(render(results))


if __name__ == "__main__":
    main()
