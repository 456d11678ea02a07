"""Load benchmark: 1,000,000 generated contacts (with 100,000 companies) from CSV into SQLite.

    .venv/bin/python benchmarks/load_data.py [--contacts 1000000] [--companies 100000]
        [--keep-indexes] [--database-url postgresql+psycopg://.../empty_db]

Generating the CSVs is not timed. The load runs in a child process on a fresh, migrated SQLite
database, so its peak RSS (`getrusage(RUSAGE_CHILDREN)`) belongs to the load alone. Targets:
at least 50,000 rows/s and a peak RSS under 400 MB. `--keep-indexes` measures the load without
deferring the empty tables' indexes; `--database-url` loads into another (empty) database.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_ROWS_PER_S = 50_000
TARGET_PEAK_MB = 400


def _child(
    data_dir: Path, url: str, batch_size: int, *, pipelined: bool, defer_indexes: bool
) -> None:
    """Migrate (untimed), then load companies and contacts; print the figures as JSON."""
    import psutil

    from gtmsync.db import migrate
    from gtmsync.db.engine import create_engine, create_session_factory
    from gtmsync.platform.loaders import Kind, load_file

    migrate.upgrade(url)
    factory = create_session_factory(create_engine(url))
    process = psutil.Process()
    peak = process.memory_info().rss
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.05):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    figures: dict[str, float] = {}
    for kind, name in ((Kind.COMPANIES, "companies.csv"), (Kind.CONTACTS, "contacts.csv")):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = load_file(
            factory,
            kind,
            data_dir / name,
            batch_size=batch_size,
            pipelined=pipelined,
            defer_indexes=defer_indexes,
        )
        figures[f"{kind}_seconds"] = time.perf_counter() - started
        figures[f"{kind}_cpu_seconds"] = time.process_time() - cpu_started
        figures[f"{kind}_rows"] = result.loaded
        figures[f"{kind}_rejected"] = result.rejected
    stop.set()
    sampler.join()
    figures["sampled_peak_rss"] = peak
    print(json.dumps(figures))


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("metric", "measured", "target", "ratio")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--pipelined", action="store_true", help="Write batches on a helper thread (comparison)."
    )
    parser.add_argument(
        "--keep-indexes",
        action="store_true",
        help="Maintain indexes row by row instead of rebuilding them (comparison).",
    )
    parser.add_argument("--database-url", help="An empty database to load into (default SQLite).")
    parser.add_argument("--child", nargs=2, metavar=("DATA_DIR", "DB_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(
            Path(args.child[0]),
            args.child[1],
            args.batch_size,
            pipelined=args.pipelined,
            defer_indexes=not args.keep_indexes,
        )
        return

    from gtmsync.platform.sample import write_sample_files

    per_company = max(1, math.ceil(args.contacts / max(1, args.companies)))
    with tempfile.TemporaryDirectory(prefix="gtmsync-bench-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        files = write_sample_files(
            data_dir, companies=args.companies, contacts_per_company=per_company, seed=7
        )
        generated_in = time.perf_counter() - started
        sizes = sum(p.stat().st_size for p in (files.companies, files.contacts)) / 1e6
        print(
            f"Generated {files.summary.companies:,} companies and {files.summary.contacts:,} "
            f"contacts ({sizes:,.0f} MB of CSV) in {generated_in:,.1f} s (not timed below)."
        )
        url = args.database_url or f"sqlite:///{data_dir / 'bench.db'}"
        completed = subprocess.run(
            [
                sys.executable,
                __file__,
                "--batch-size",
                str(args.batch_size),
                *(["--pipelined"] if args.pipelined else []),
                *(["--keep-indexes"] if args.keep_indexes else []),
                "--child",
                tmp,
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(completed.stdout.strip().splitlines()[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    contacts_rate = figures["contacts_rows"] / figures["contacts_seconds"]
    total_rows = figures["companies_rows"] + figures["contacts_rows"]
    total_seconds = figures["companies_seconds"] + figures["contacts_seconds"]
    total_rate = total_rows / total_seconds
    cpu_seconds = figures["companies_cpu_seconds"] + figures["contacts_cpu_seconds"]
    rows = [
        (
            "contacts rows/s",
            f"{contacts_rate:,.0f}",
            f">= {TARGET_ROWS_PER_S:,}",
            f"{contacts_rate / TARGET_ROWS_PER_S:.2f}x",
        ),
        (
            "all rows/s (companies + contacts)",
            f"{total_rate:,.0f}",
            f">= {TARGET_ROWS_PER_S:,}",
            f"{total_rate / TARGET_ROWS_PER_S:.2f}x",
        ),
        (
            "peak RSS of the load (MB)",
            f"{peak_mb:,.0f}",
            f"< {TARGET_PEAK_MB}",
            f"{peak_mb / TARGET_PEAK_MB:.2f} of budget",
        ),
        ("companies loaded", f"{figures['companies_rows']:,}", "", ""),
        ("contacts loaded", f"{figures['contacts_rows']:,}", "", ""),
        (
            "rows rejected",
            f"{figures['companies_rejected'] + figures['contacts_rejected']:,}",
            "0",
            "",
        ),
        ("wall time of the load (s)", f"{total_seconds:,.1f}", "", ""),
        ("CPU time of the load (s, all threads)", f"{cpu_seconds:,.1f}", "", ""),
        (
            "rows per CPU-second",
            f"{total_rows / cpu_seconds:,.0f}",
            "",
            "the ceiling of rows/s on one core",
        ),
        ("batch size / pipelined", f"{args.batch_size:,} / {args.pipelined}", "", ""),
        ("indexes deferred (rebuilt at the end)", str(not args.keep_indexes), "", ""),
        ("database", (args.database_url or "sqlite").split(":")[0], "", ""),
        (
            "load average (1 min) at the end",
            f"{os.getloadavg()[0]:.1f}",
            f"<= {os.cpu_count()}",
            "",
        ),
        ("sampled peak RSS (MB)", f"{figures['sampled_peak_rss'] / 2**20:,.0f}", "", ""),
    ]
    print(_table(rows))


if __name__ == "__main__":
    main()
