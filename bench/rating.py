"""Rating benchmark: one month of N customers x M usage lines, rated through the real path.

    .venv/bin/python bench/rating.py --customers 1000 --lines 10000     # 10M usage lines
    .venv/bin/python bench/rating.py --customers 50 --lines 2000        # quick

Builds a throw-away installation (SQLite by default, or --database-url for PostgreSQL): one
MSP, an AWS partner account, the customers (USD), each linked to its own AWS account, and a
default plan of cost + 12.5 %. Generates the usage at run time (polars, vectorised) as FOCUS
Parquet files of at most 1M lines, each for its own billing account, and imports them with
``usage.service.import_files`` (not timed: bench/ingest.py times imports). Then times
``rating.tasks.rate_all`` for the month — the job a rating runs: price, write the charge
lines and change feed, the rollups, credit and budgets, one transaction.

Baseline, measured in the same run: DuckDB grouping the stored usage slices to the rating
grain (sub-account, service, SKU, region, charge category, unit, day) and summing the cost —
the smallest query an analyst would run to get the same cells, without prices, currency or
any write. Exactness: the charge lines' exact total equals the generated costs (integers of
1e-10, summed here in Python) times 1.125, to the last digit, and every customer's rounded
charges total equals its own expected total.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERIOD = "2026-10"
MARKUP = Decimal("1.125")
CHUNK = 1_000_000  # usage lines per generated file
SERVICES = [
    ("Amazon Elastic Compute Cloud", "Compute", "Hours"),
    ("Amazon Simple Storage Service", "Storage", "GB-Mo"),
    ("AWS Lambda", "Compute", "Requests"),
    ("Amazon Relational Database Service", "Databases", "Hours"),
    ("Amazon CloudFront", "Networking", "GB"),
]
REGIONS = ["eu-central-1", "eu-west-1", "us-east-1"]


def _account(customer: int) -> str:
    return str(100_000_000_000 + customer)


def _write_usage(path: Path, first: int, customers: int, lines: int, chunk: int) -> list[int]:
    """Lines ``first*lines ..`` of ``customers`` customers as FOCUS Parquet; returns each
    customer's billed cost in units of 1e-10 (the independent expected totals)."""
    import polars as pl

    count = customers * lines
    index = pl.int_range(0, count, eager=True, dtype=pl.Int64)
    customer = index // lines + first
    # A spread of amounts, a few credits among them; integers of 1e-10, written as text.
    units = ((index * 7919 + customer * 104729) % 5_000_000_003) - 2_000
    day = (index % 28) + 1
    service = index % len(SERVICES)
    frame = pl.DataFrame({"units": units, "customer": customer, "day": day, "service": service})
    cost = (
        pl.when(pl.col("units") < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        + (pl.col("units").abs() // 10**10).cast(pl.String)
        + pl.lit(".")
        + (pl.col("units").abs() % 10**10).cast(pl.String).str.zfill(10)
    )
    day_text = pl.col("day").cast(pl.String).str.zfill(2)
    pick = pl.col("service")
    out = frame.select(
        cost.alias("BilledCost"),
        cost.alias("EffectiveCost"),
        cost.alias("ListCost"),
        cost.alias("ContractedCost"),
        pl.lit(f"payer-{first}").alias("BillingAccountId"),
        pl.lit("USD").alias("BillingCurrency"),
        pl.lit(f"{PERIOD}-01T00:00:00Z").alias("BillingPeriodStart"),
        pl.lit("2026-11-01T00:00:00Z").alias("BillingPeriodEnd"),
        (pl.lit(f"{PERIOD}-") + day_text + pl.lit("T00:00:00Z")).alias("ChargePeriodStart"),
        (pl.lit(f"{PERIOD}-") + day_text + pl.lit("T01:00:00Z")).alias("ChargePeriodEnd"),
        pl.lit("Usage").alias("ChargeCategory"),
        pl.lit("Usage-Based").alias("ChargeFrequency"),
        pl.lit("AWS").alias("ProviderName"),
        pick.replace_strict({i: s[0] for i, s in enumerate(SERVICES)}).alias("ServiceName"),
        pick.replace_strict({i: s[1] for i, s in enumerate(SERVICES)}).alias("ServiceCategory"),
        (pl.lit("SKU") + (pl.col("units").abs() % 7).cast(pl.String)).alias("SkuId"),
        (pl.col("customer") % len(REGIONS))
        .replace_strict(dict(enumerate(REGIONS)))
        .alias("RegionId"),
        (pl.lit("res-") + (pl.col("units").abs() % 50).cast(pl.String)).alias("ResourceId"),
        (pl.col("customer") + 100_000_000_000).cast(pl.String).alias("SubAccountId"),
        (pl.col("day") + 1).cast(pl.String).alias("ConsumedQuantity"),
        pick.replace_strict({i: s[2] for i, s in enumerate(SERVICES)}).alias("ConsumedUnit"),
        pl.lit('{"env": "prod"}').alias("Tags"),
    )
    out.write_parquet(path, row_group_size=min(chunk, 250_000))
    totals = frame.group_by("customer").agg(pl.col("units").sum()).sort("customer")
    return [int(v) for v in totals["units"].to_list()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--lines", type=int, default=10_000, help="usage lines per customer")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    import duckdb
    from bench import installation
    from sqlalchemy import insert, select, text

    from billbyte import tasks  # noqa: F401  (registers the job kinds rating sets off)
    from billbyte.auth.roles import Role
    from billbyte.auth.subject import AuthSubject
    from billbyte.charges.models import ChargeChange, ChargeLine
    from billbyte.customers.models import Customer, VendorAccount
    from billbyte.kit.money import round_money
    from billbyte.rating import tasks as rating
    from billbyte.usage import service as usage

    total_lines = args.customers * args.lines
    with tempfile.TemporaryDirectory(prefix="bb-rating-") as tmp:
        work = Path(tmp)
        world = installation.tenant(work, args.database_url, payer="p")
        installation.default_plan(world)
        runtime, engine, pa = world.runtime, world.runtime.engine, world.partner_account_id
        msp_id = world.msp_id
        ids = [f"cus_R{index:08d}" for index in range(args.customers)]
        with runtime.uow() as uow:
            uow.session.execute(
                insert(Customer),
                [
                    {"id": cid, "msp_id": msp_id, "external_id": cid, "name": cid}
                    | {"currency": "USD", "vendors": ["aws"], "metadata_": {}}
                    for cid in ids
                ],
            )
            uow.session.execute(
                insert(VendorAccount),
                [
                    {"msp_id": msp_id, "customer_id": cid, "partner_account_id": pa}
                    | {"vendor_identifier": _account(i), "kind": "aws_account"}
                    for i, cid in enumerate(ids)
                ],
            )
            uow.commit()

        started = time.perf_counter()
        per_file = max(1, CHUNK // args.lines)
        expected_units: list[int] = []
        files = []
        for first in range(0, args.customers, per_file):
            path = work / f"usage-{first:06d}.parquet"
            count = min(per_file, args.customers - first)
            expected_units += _write_usage(path, first, count, args.lines, CHUNK)
            files.append(path)
        generate_seconds = time.perf_counter() - started
        subject = AuthSubject(msp_id=msp_id, actor="bench", role=Role.ADMIN)
        started = time.perf_counter()
        for path in files:
            usage.import_files(runtime, subject, pa, [(path, path.name)])
            path.unlink()
        import_seconds = time.perf_counter() - started
        # The rating job the imports queued is left pending: the rating timed here is the
        # period's first, which writes every line (COPY on PostgreSQL) and its change.
        started = time.perf_counter()
        results = rating.rate_all(runtime, msp_id, PERIOD)
        rating_seconds = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        assert not any(r.errors for r in results), [r.errors for r in results]

        with runtime.uow(read_only=True) as uow:
            stored = uow.session.execute(
                select(ChargeLine.customer_id, ChargeLine.sell_local).where(
                    ChargeLine.msp_id == msp_id, ChargeLine.period == PERIOD
                )
            ).all()
            changes = len(uow.session.scalars(select(ChargeChange.seq)).all())
        sums: dict[str, Decimal] = {}
        for customer_id, amount in stored:
            sums[customer_id] = sums.get(customer_id, Decimal(0)) + amount
        want = Decimal(sum(expected_units)).scaleb(-10) * MARKUP
        got = sum(sums.values(), Decimal(0))
        assert got == want, (got, want)
        for index, customer_id in enumerate(ids):
            mine = Decimal(expected_units[index]).scaleb(-10) * MARKUP
            assert round_money(sums[customer_id], "USD") == round_money(mine, "USD"), customer_id

        slices = [str(p) for p in (work / "var" / "usage").rglob("*.parquet")]
        started = time.perf_counter()
        cells = duckdb.sql(
            "SELECT sub_account_id, service_name, sku_id, region_id, charge_category, "
            "pricing_unit, CAST(charge_period_start AS DATE) AS day, SUM(billed_cost) "
            f"FROM read_parquet({slices}) GROUP BY ALL"
        ).fetchall()
        duck_seconds = time.perf_counter() - started

        print(
            f"usage lines         : {total_lines:,} ({args.customers:,} customers x {args.lines:,})"
        )
        print(
            f"generate / import   : {generate_seconds:8.2f} s / {import_seconds:8.2f} s (untimed)"
        )
        print(
            f"rating (rate_all)   : {rating_seconds:8.2f} s, {total_lines / rating_seconds:,.0f} "
            f"lines/s ({engine.dialect.name}; {len(stored):,} charge lines, {changes:,} changes)"
        )
        print(f"peak RSS            : {peak_mib:8.0f} MiB (whole process)")
        print(
            f"duckdb to the grain : {duck_seconds:8.2f} s ({len(cells):,} cells); "
            f"ratio rating/duckdb = {rating_seconds / duck_seconds:.1f}x"
        )
        print(f"total               : exact, {got} USD (= generated cost x 1.125)")
        # For the sizing guide (docs/operations.md#sizing): what a usage line costs in the
        # store, what a period costs in the database.
        slice_bytes = sum(Path(p).stat().st_size for p in slices)
        print(f"slice bytes per line: {slice_bytes / total_lines:8.1f} ({slice_bytes:,} bytes)")
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                for table in ("charge_lines", "charge_changes", "cost_rollups", "cost_usage_days"):
                    size, rows = connection.execute(
                        text(f"SELECT pg_total_relation_size('{table}'), count(*) FROM {table}")
                    ).one()
                    print(f"{table:<20}: {rows:>9,} rows, {size / max(rows, 1):7.0f} bytes/row")


if __name__ == "__main__":
    main()
