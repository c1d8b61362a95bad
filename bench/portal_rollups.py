"""Cost-rollup benchmark: what building the rollups adds to rating a 1M-line month, and how
fast the portal's queries read them.

    .venv/bin/python bench/portal_rollups.py --rows 1000000 --resources 50000

Builds a throw-away installation (SQLite by default, or --database-url), imports a
generated month of FOCUS usage for one customer (days, services, regions, tags and
resources varied), then rates the month three times: without the rollups (the rating as
it was: no detail below the grain, no rollup writes), with them (the first build), and
again (a re-rating that changes nothing). Then times each query of
``analytics.repository`` and the analytics endpoint (in-process, no network).
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERIOD = "2026-10"
HEADER = [
    "BilledCost",
    "ListCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeFrequency",
    "ProviderName",
    "ServiceName",
    "ServiceCategory",
    "SkuId",
    "RegionId",
    "ResourceId",
    "SubAccountId",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
    "Tags",
]
SERVICES = [
    ("Amazon Elastic Compute Cloud", "Compute"),
    ("Amazon Simple Storage Service", "Storage"),
    ("Amazon Relational Database Service", "Databases"),
    ("AWS Lambda", "Compute"),
    ("Amazon CloudFront", "Networking"),
    ("Amazon DynamoDB", "Databases"),
    ("Amazon Elastic Kubernetes Service", "Compute"),
    ("AWS Key Management Service", "Security"),
]
REGIONS = ["eu-central-1", "eu-west-1", "us-east-1", "ap-southeast-2", ""]
TAGS = [
    "",
    '{"env": "prod", "team": "web"}',
    '{"env": "prod", "team": "data"}',
    '{"env": "dev", "team": "web"}',
    '{"team": "data"}',
    '{"env": "staging"}',
]


def write_usage(path: Path, rows: int, resources: int, sub_accounts: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for index in range(rows):
            day = 1 + index % 31
            resource = rng.randrange(resources)
            # A resource (an instance, a bucket) belongs to one service.
            service, category = SERVICES[resource % len(SERVICES)]
            cost = f"{rng.randint(1, 5_000_000) / 10**6:.6f}"
            writer.writerow(
                [
                    cost,
                    cost,
                    "999",
                    "USD",
                    f"{PERIOD}-01T00:00:00Z",
                    "2026-11-01T00:00:00Z",
                    f"{PERIOD}-{day:02d}T00:00:00Z",
                    f"{PERIOD}-{day:02d}T01:00:00Z",
                    "Usage",
                    "Usage-Based",
                    "AWS",
                    service,
                    category,
                    f"SKU{index % 53}",
                    REGIONS[resource % len(REGIONS)],
                    f"res-{resource}",
                    f"{100000000000 + resource % sub_accounts}",
                    str(rng.randint(1, 100)),
                    "Hours",
                    str(rng.randint(1, 100)),
                    "Hours",
                    TAGS[resource % len(TAGS)],
                ]
            )


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        function()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resources", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from billbyte.analytics import repository, rollups
    from billbyte.analytics.models import CostRollup
    from billbyte.app import create_app
    from billbyte.db.engine import make_engine
    from billbyte.db.migrate import upgrade
    from billbyte.jobs.service import run_pending
    from billbyte.rating import service as rating_service
    from billbyte.rating import tasks as rating
    from billbyte.runtime import Runtime
    from billbyte.settings import Settings
    from billbyte.tenancy import service as tenancy

    with tempfile.TemporaryDirectory(prefix="bb-rollups-") as tmp:
        work = Path(tmp)
        engine = make_engine(args.database_url or f"sqlite:///{work / 'bench.sqlite3'}")
        upgrade(engine)
        runtime = Runtime(Settings(var_dir=work / "var", secret_key="bench"), engine, "bench")
        with runtime.uow() as uow:
            msp, key = tenancy.create_msp(uow.session, "bench")
            uow.commit()
        client = TestClient(create_app(runtime))
        headers = {"Authorization": f"Bearer {key.secret}"}
        pa = client.post(
            "/v1/partner-accounts", headers=headers, json={"vendor": "aws", "display_name": "payer"}
        ).json()["id"]
        customer = client.post(
            "/v1/customers",
            headers=headers,
            json={"external_id": "BIG", "name": "Big Corp", "currency": "USD"},
        ).json()["id"]
        for index in range(20):
            client.post(
                f"/v1/customers/{customer}/vendor-accounts",
                headers=headers,
                json={"partner_account_id": pa, "vendor_identifier": str(100000000000 + index)},
            )
        client.post(
            "/v1/price-plans",
            headers=headers,
            json={
                "name": "std",
                "is_default": True,
                "rules": [{"adjustment": "markup_percent", "value": "12.5"}],
            },
        )
        csv_path = work / "usage.csv"
        write_usage(csv_path, args.rows, args.resources, 20)
        with csv_path.open("rb") as handle:
            imported = client.post(
                "/v1/usage/imports",
                headers=headers,
                data={"partner_account_id": pa},
                files={"file": ("usage.csv", handle)},
            )
        assert imported.status_code == 201, imported.text
        run_pending(runtime)  # the coalesced jobs from set-up (builds the rollups once)

        # Without the rollups: no detail below the grain, nothing written.
        build, detail = rollups.after_rating, rating_service.ROLLUP_DETAIL
        rollups.after_rating = lambda *a, **k: None  # type: ignore[assignment]
        rating_service.ROLLUP_DETAIL = ()  # type: ignore[misc]
        without = []
        for _ in range(3):
            t0 = time.perf_counter()
            rating.rate_all(runtime, msp.id, PERIOD)
            without.append(time.perf_counter() - t0)
        rollups.after_rating, rating_service.ROLLUP_DETAIL = build, detail  # type: ignore[misc]
        with runtime.uow() as uow:
            uow.session.execute(CostRollup.__table__.delete())
            uow.commit()
        t0 = time.perf_counter()
        rating.rate_all(runtime, msp.id, PERIOD)
        first_build = time.perf_counter() - t0
        again = []
        for _ in range(3):
            t0 = time.perf_counter()
            rating.rate_all(runtime, msp.id, PERIOD)
            again.append(time.perf_counter() - t0)

        with runtime.uow() as uow:
            session = uow.session
            cells = session.scalar(select(func.count()).select_from(CostRollup))
            filters = repository.CostFilter(
                date_from=date(2026, 10, 5),
                date_to=date(2026, 10, 20),
                regions=("eu-central-1", "us-east-1"),
                tag=("env", "prod"),
            )
            queries: dict[str, Callable[[], Any]] = {
                "daily_trend (all)": lambda: repository.daily_trend(
                    session, msp.id, customer, PERIOD
                ),
                "daily_trend (filtered)": lambda: repository.daily_trend(
                    session, msp.id, customer, PERIOD, filters
                ),
                "breakdown service": lambda: repository.breakdown(
                    session, msp.id, customer, PERIOD, "service"
                ),
                "breakdown tag:team (filtered)": lambda: repository.breakdown(
                    session, msp.id, customer, PERIOD, "tag:team", filters
                ),
                "filter_options": lambda: repository.filter_options(
                    session, msp.id, customer, PERIOD
                ),
                "top_resources": lambda: repository.top_resources(
                    session, msp.id, customer, PERIOD
                ),
                "month_comparison": lambda: repository.month_comparison(
                    session, msp.id, customer, PERIOD, date(2026, 10, 15)
                ),
                "forecast": lambda: repository.forecast(
                    session, msp.id, customer, PERIOD, date(2026, 10, 15)
                ),
                "cost_rows (all)": lambda: repository.cost_rows(session, msp.id, customer, PERIOD),
            }
            figures = {name: timed(q, args.requests) for name, q in queries.items()}
            total, currency = repository.period_total(session, msp.id, customer, PERIOD)
        url = f"/v1/customers/{customer}/analytics?period={PERIOD}"
        endpoint = timed(lambda: client.get(url, headers=headers).raise_for_status(), 20)
        charges = client.get(f"/v1/customers/{customer}/charges?period={PERIOD}", headers=headers)
        assert charges.json()["total"] == format(total, "f"), (charges.json()["total"], total)

        print(f"usage lines             : {args.rows:,}, {args.resources:,} resources")
        print(f"rollup rows             : {cells:,} ({engine.dialect.name})")
        print("rating without rollups  : " + ", ".join(f"{s:.2f}" for s in without) + " s (3 runs)")
        print(f"rating, first build     : {first_build:.2f} s")
        print("re-rating with rollups  : " + ", ".join(f"{s:.2f}" for s in again) + " s (3 runs)")
        for name, (p50, p95) in figures.items():
            print(f"{name:30s}: p50 {p50:7.1f} ms, p95 {p95:7.1f} ms")
        print(
            f"{'GET analytics endpoint':30s}: p50 {endpoint[0]:7.1f} ms, p95 {endpoint[1]:7.1f} ms"
        )
        print(f"total                   : {total} {currency} (= the charges total)")


if __name__ == "__main__":
    main()
