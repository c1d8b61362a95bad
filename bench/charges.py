"""Charges benchmark: GET /v1/customers/{id}/charges for a customer with 1M usage lines.

    .venv/bin/python bench/charges.py --rows 1000000 --requests 300

Builds a throw-away installation (SQLite by default, or --database-url), imports a
generated month of FOCUS usage for one customer, rates it, then times the charges
endpoint in-process (FastAPI TestClient, so the figure is the server's work without
network). Prints p50/p95/p99, the rating time, and as a baseline DuckDB's time to compute
the same per-service totals straight from the stored usage file (what answering from raw
lines would cost on every request).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    import duckdb
    from bench import installation
    from tests.usage.generate import write_focus

    from billbyte.jobs.service import run_pending
    from billbyte.rating import tasks as rating

    with tempfile.TemporaryDirectory(prefix="bb-charges-") as tmp:
        work = Path(tmp)
        world = installation.build(work, args.database_url)
        runtime, api, headers = world.runtime, world.api, world.headers
        client = api
        engine = runtime.engine
        pa, customer = world.partner_account_id, world.customer_id
        csv_path = work / "usage.csv"
        expected = write_focus(csv_path, args.rows, seed=3, sub_accounts=20)
        started = time.perf_counter()
        with csv_path.open("rb") as handle:
            imported = client.post(
                "/v1/usage/imports",
                headers=headers,
                data={"partner_account_id": pa},
                files={"file": ("usage.csv", handle)},
            )
        assert imported.status_code == 201, imported.text
        import_seconds = time.perf_counter() - started
        run_pending(runtime)  # the coalesced jobs from set-up; then time one full rating
        started = time.perf_counter()
        rating.rate_all(runtime, world.msp_id, "2026-10")
        rating_seconds = time.perf_counter() - started

        url = f"/v1/customers/{customer}/charges?period=2026-10"
        first = client.get(url, headers=headers).json()
        want = (expected["BilledCost"] * Decimal("1.125")).quantize(Decimal("0.01"))
        assert Decimal(first["total"]) == want, (first["total"], want)
        lines = sum(len(g["lines"]) for g in first["groups"])
        timings = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            response = client.get(url, headers=headers)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
        timings.sort()
        p50 = statistics.median(timings)
        p95 = timings[int(len(timings) * 0.95) - 1]
        p99 = timings[int(len(timings) * 0.99) - 1]

        slice_files = list((work / "var" / "usage").rglob("*.parquet"))
        t0 = time.perf_counter()
        duckdb.sql(
            "SELECT service_name, sub_account_id, SUM(billed_cost) FROM read_parquet("
            f"{[str(p) for p in slice_files]}) GROUP BY ALL"
        ).fetchall()
        duck_ms = (time.perf_counter() - t0) * 1000

        print(f"usage lines          : {args.rows:,} for one customer ({lines} charge lines)")
        print(f"import (API)         : {import_seconds:8.2f} s")
        print(f"rating (one period)  : {rating_seconds:8.2f} s")
        print(
            f"charges p50/p95/p99  : {p50:6.1f} / {p95:6.1f} / {p99:6.1f} ms "
            f"({args.requests} requests, {engine.dialect.name})"
        )
        print(
            f"duckdb from raw lines: {duck_ms:8.1f} ms per answer "
            f"(ratio p95/duckdb = {p95 / duck_ms:.2f})"
        )
        print(f"total                : exact, {first['total']} USD")


if __name__ == "__main__":
    main()
