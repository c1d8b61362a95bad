"""Every benchmark in one run: ``make bench`` (full sizes) or ``make bench BENCH_SIZE=quick``.

Each script generates its own input, checks its answer exactly and prints its figures beside the
baseline it measures in the same process (DuckDB over the same file). This runner only starts
them one after another, so that they do not compete for the two cores, and prints which passed.
A failing benchmark (an inexact total, a crash) makes the run exit non-zero.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# (script, full-size arguments, quick arguments): quick is a smoke run that finishes in minutes.
SUITE: list[tuple[str, list[str], list[str]]] = [
    ("ingest.py", ["--rows", "1000000", "10000000"], ["--rows", "50000"]),
    ("charges.py", ["--rows", "1000000"], ["--rows", "50000", "--requests", "50"]),
    ("portal_pages.py", ["--rows", "1000000"], ["--rows", "50000", "--requests", "10"]),
    ("portal_rollups.py", ["--rows", "1000000"], ["--rows", "50000", "--resources", "2000"]),
    ("invoice_run.py", ["--customers", "10000"], ["--customers", "200"]),
    (
        "rating.py",
        ["--customers", "1000", "--lines", "10000"],
        ["--customers", "50", "--lines", "2000"],
    ),
    # The server on PostgreSQL (the local one unless --database-url), driven by wrk.
    ("api_load.py", ["--seconds", "10"], ["--seconds", "2", "--rows", "2000"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["full", "quick"], default="full")
    parser.add_argument("--database-url", default=None, help="PostgreSQL for the DB benchmarks")
    args = parser.parse_args()
    results: list[tuple[str, int, float]] = []
    for script, full, quick in SUITE:
        command = [sys.executable, str(BENCH / script), *(quick if args.size == "quick" else full)]
        if args.database_url and script != "ingest.py":
            command += ["--database-url", args.database_url]
        print(f"\n=== {script} {' '.join(command[2:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.call(command)
        results.append((script, code, time.perf_counter() - started))
    print("\n=== summary")
    for script, code, seconds in results:
        print(f"{script:<20} {'ok' if code == 0 else f'FAILED ({code})':<12} {seconds:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
