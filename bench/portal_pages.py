"""Portal and console pages for a customer with 1M usage lines in the month.

    .venv/bin/python bench/portal_pages.py --rows 1000000 --requests 50

Builds a throw-away installation (SQLite by default, or --database-url), imports a generated
month of FOCUS usage for one customer (20 accounts, several services, regions and tags),
rates it (which writes the charge lines and the analytics rollups), signs in a portal user
and an MSP admin through the real sign-in form, then times each page in-process (FastAPI
TestClient: the server's own work, without the network). Goal: every page under 300 ms.

Baseline, measured in the same run: DuckDB computing the same daily totals straight from
the stored usage slices — what a page would cost if it scanned raw usage per request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _percentile(sorted_ms: list[float], fraction: float) -> float:
    return sorted_ms[max(0, int(len(sorted_ms) * fraction) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    import duckdb
    from bench import installation
    from fastapi.testclient import TestClient
    from tests.usage.generate import write_focus
    from tests.web import people

    from billbyte.app import create_app
    from billbyte.jobs.service import run_pending
    from billbyte.rating import tasks as rating

    period = "2026-10"
    with tempfile.TemporaryDirectory(prefix="bb-pages-") as tmp:
        work = Path(tmp)
        world = installation.build(work, args.database_url)
        runtime, api, headers = world.runtime, world.api, world.headers
        engine = runtime.engine
        pa, customer = world.partner_account_id, world.customer_id
        csv_path = work / "usage.csv"
        write_focus(csv_path, args.rows, seed=3, sub_accounts=20, period=period)
        with csv_path.open("rb") as handle:
            imported = api.post(
                "/v1/usage/imports",
                headers=headers,
                data={"partner_account_id": pa},
                files={"file": ("usage.csv", handle)},
            )
        assert imported.status_code == 201, imported.text
        run_pending(runtime)
        started = time.perf_counter()
        rating.rate_all(runtime, world.msp_id, period)
        rating_seconds = time.perf_counter() - started

        portal = people.signed_in_client(
            TestClient(create_app(runtime)),
            "portal",
            people.add_portal_user(runtime, world.msp_id, customer),
        )
        console = people.signed_in_client(
            TestClient(create_app(runtime)), "console", people.add_staff(runtime, world.msp_id)
        )
        pages = [
            (portal, "/portal"),
            (portal, f"/portal/costs?period={period}"),
            (portal, f"/portal/costs?period={period}&dimension=region"),
            (portal, f"/portal/costs?period={period}&dimension=tag:team"),
            (portal, "/portal/invoices"),
            (portal, "/portal/budgets"),
            (console, "/console/customers"),
            (console, f"/console/customers/{customer}"),
            (console, f"/console/margin?period={period}"),
        ]
        slice_files = [str(p) for p in (work / "var" / "usage").rglob("*.parquet")]
        t0 = time.perf_counter()
        duckdb.sql(
            "SELECT CAST(charge_period_start AS DATE), SUM(billed_cost) "
            f"FROM read_parquet({slice_files}) GROUP BY ALL"
        ).fetchall()
        duck_ms = (time.perf_counter() - t0) * 1000

        print(f"usage lines            : {args.rows:,} for one customer, {engine.dialect.name}")
        print(f"rating incl. rollups   : {rating_seconds:8.2f} s")
        print(f"duckdb over raw usage  : {duck_ms:8.1f} ms (daily totals, the baseline)")
        print(f"{'page':<48} {'p50':>7} {'p95':>7} {'max':>7}  ratio p95/duckdb")
        worst = 0.0
        for client, path in pages:
            first = client.get(path)
            assert first.status_code == 200, (path, first.status_code, first.text[:500])
            timings = []
            for _ in range(args.requests):
                t1 = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - t1) * 1000)
                assert response.status_code == 200
            timings.sort()
            p95 = _percentile(timings, 0.95)
            worst = max(worst, p95)
            print(
                f"{path:<48} {statistics.median(timings):7.1f} {p95:7.1f} {timings[-1]:7.1f}"
                f"  {p95 / duck_ms:5.2f}"
            )
        print(f"worst p95              : {worst:8.1f} ms (goal < 300 ms)")


if __name__ == "__main__":
    main()
