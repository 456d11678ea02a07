"""Scale of the local Dataverse server: a 1,000,000-row `account` table stays usable.

Targets (issue "Local Dataverse server", item 9):
- a filtered, indexed first page answers in under 100 ms;
- a 5,000-record page (following `@odata.nextLink`) answers in under 1 s.

Run: `.venv/bin/python benchmarks/dataverse_local.py [--rows 1000000] [--data DIR]`.
Requests go through the in-process ASGI app (`starlette.testclient.TestClient`), so the
figures include routing, OData parsing, SQL and JSON serialisation, not network time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from gtmsync.dataverse_local.principal import system_administrator
from gtmsync.dataverse_local.store import Store
from gtmsync.dataverse_local.webapi import create_webapi_app

BASE = "http://bench/api/data/v9.2/"
CHUNK = 20_000
OWNERS = [uuid.UUID(int=i + 1) for i in range(50)]


def populate(store: Store, rows: int) -> float:
    started = time.perf_counter()
    with store.deferred_indexes("account"):
        _load(store, rows)
    return time.perf_counter() - started


def _load(store: Store, rows: int) -> None:
    for first in range(0, rows, CHUNK):
        batch = [
            {
                "name": f"Account {i:07d}",
                "accountnumber": f"AC-{i:07d}",
                "emailaddress1": f"contact{i}@example.com",
                "revenue": i % 100_000,
                "numberofemployees": i % 5_000,
                "industrycode": 1 + i % 33,
                "ownerid": ("systemuser", OWNERS[i % len(OWNERS)]),
            }
            for i in range(first, min(first + CHUNK, rows))
        ]
        store.bulk_insert("account", batch, as_user=OWNERS[0])


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=None, help="directory for the SQLite file")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="dv-bench-"))
    store = Store.open(f"sqlite:///{data / 'dataverse.db'}")
    existing = store.count("account")
    load_s = populate(store, args.rows - existing) if existing < args.rows else 0.0
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    admin = system_administrator(OWNERS[0])
    app = create_webapi_app(store, principal_resolver=lambda _request: admin)
    middle = args.rows // 2
    results: list[tuple[str, float, float]] = []
    with TestClient(app, base_url=BASE) as client:

        def get(url: str, page: int | None = None) -> dict[str, object]:
            headers = {"Prefer": f"odata.maxpagesize={page}"} if page else {}
            response = client.get(url, headers=headers)
            response.raise_for_status()
            return dict(response.json())

        by_name = f"accounts?$select=name,accountnumber&$filter=name eq 'account {middle:07d}'"
        assert len(get(by_name)["value"]) == 1  # type: ignore[arg-type]
        results.append(
            (
                "first page, $filter=name eq (lower(name) index)",
                statistics.median(timed(lambda: get(by_name), 20)),
                100,
            )
        )
        by_owner = f"accounts?$select=name,revenue&$filter=_ownerid_value eq {OWNERS[7]}"
        results.append(
            (
                "first page of 50, $filter=_ownerid_value eq",
                statistics.median(timed(lambda: get(by_owner, 50), 20)),
                100,
            )
        )
        by_email = f"accounts?$select=name&$filter=emailaddress1 eq 'contact{middle}@example.com'"
        results.append(
            (
                "first page, $filter=emailaddress1 eq",
                statistics.median(timed(lambda: get(by_email), 20)),
                100,
            )
        )

        pages: list[float] = []
        url: str | None = "accounts?$select=name,accountnumber,revenue,_ownerid_value"
        for _ in range(4):
            assert url is not None
            current = url
            started = time.perf_counter()
            body = get(current, 5000)
            pages.append((time.perf_counter() - started) * 1000)
            assert len(body["value"]) == 5000  # type: ignore[arg-type]
            url = body.get("@odata.nextLink")  # type: ignore[assignment]
        results.append(("5,000-row page, first", pages[0], 1000))
        results.append(
            ("5,000-row page, via nextLink (median of 3)", statistics.median(pages[1:]), 1000)
        )
        deep_url: str = (
            f"accounts?$select=name&$filter=_ownerid_value eq {OWNERS[3]}&$orderby=name desc"
        )
        results.append(
            (
                "5,000-row page, filtered + $orderby",
                statistics.median(timed(lambda: get(deep_url, 5000), 3)),
                1000,
            )
        )

    print(f"\nLocal Dataverse scale benchmark: {args.rows:,} accounts in {data / 'dataverse.db'}")
    if load_s:
        print(f"bulk load: {load_s:.1f} s ({(args.rows - existing) / load_s:,.0f} rows/s)")
    print(f"{'measure':<52} {'ms':>9} {'target ms':>10} {'ratio':>7}")
    for name, ms, target in results:
        print(f"{name:<52} {ms:>9.1f} {target:>10} {ms / target:>7.2f}")
    store.engine.dispose()


if __name__ == "__main__":
    main()
