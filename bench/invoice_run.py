"""Invoice-run benchmark: finalize N customers x M charge lines in one run.

    .venv/bin/python bench/invoice_run.py --customers 10000 --lines 50

Builds a throw-away installation (SQLite by default, or --database-url for PostgreSQL, in a
schema of its own that is dropped at the end) and writes the customers and their charge
lines **directly into the database** (rating is not what is measured here: bench/charges.py
times it). Then times ``billbyte invoices close``'s service call, which finalizes the
customers in batches, a transaction each: lock, read, group and round the lines, a block of
numbers, invoices, lines, closed periods, audit entries, webhook events, run counters.
Every invoice total is checked against the exact expected total computed here from the
generated amounts. The baseline, measured in the same run, is one INSERT ... SELECT of the
same lines into a table shaped like ``invoice_lines``; ``--profile N`` prints the run's top
N functions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PERIOD = "2026-09"
SERVICES = [
    "Amazon Elastic Compute Cloud",
    "Amazon Simple Storage Service",
    "AWS Lambda",
    "Amazon Relational Database Service",
    "Amazon CloudFront",
]


def _amount(customer: int, line: int) -> Decimal:
    # Units of 1e-6 so that exact totals are integer sums, and roundings do happen.
    return Decimal((customer * 7919 + line * 104729) % 9_000_000 + 1_000).scaleb(-6)


@contextmanager
def _private_schema(url: str) -> Iterator[str]:
    """A PostgreSQL schema of this process's own, dropped at the end: the benchmark's rows
    never meet another run's (or another benchmark's) in the shared database."""
    from sqlalchemy import create_engine, text

    schema = f"bench_invoice_run_{os.getpid()}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


_BASELINE_COLUMNS = (
    "id, invoice_id, msp_id, customer_id, position, kind, description, vendor, "
    "vendor_reference, service_name, charge_category, quantity, unit, amount, amount_exact, "
    "currency, period, service_start, service_end, fx_rates, sources"
)


def _baseline_copy(engine: Engine) -> float:
    """Seconds for the database alone to write the same lines: one INSERT ... SELECT of every
    charge line into a table shaped like ``invoice_lines`` (no grouping, rounding, numbering
    or bookkeeping), the floor any invoice run is compared with."""
    from sqlalchemy import text

    postgres = engine.dialect.name == "postgresql"
    source = (
        "json_build_array(json_build_object('period', period, 'line_key', line_key, "
        "'sell_local', sell_local::text))"
        if postgres
        else "json_array(json_object('period', period, 'line_key', line_key, "
        "'sell_local', sell_local))"
    )
    with engine.begin() as connection:
        if postgres:
            connection.execute(text("CREATE TEMP TABLE baseline_lines (LIKE invoice_lines)"))
        else:
            connection.execute(
                text("CREATE TEMP TABLE baseline_lines AS SELECT * FROM invoice_lines WHERE 0")
            )
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO baseline_lines ({_BASELINE_COLUMNS}) "
                "SELECT 'inl_' || id, customer_id, msp_id, customer_id, "
                "row_number() OVER (PARTITION BY customer_id ORDER BY line_key), kind, "
                "description, vendor, sub_account_id, service_name, charge_category, quantity, "
                "pricing_unit, sell_local, sell_local, currency, period, first_day, last_day, "
                f"fx_rates, {source} FROM charge_lines"
            )
        )
    elapsed = time.perf_counter() - started
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE baseline_lines"))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="print the run's top N functions"
    )
    args = parser.parse_args()
    if args.database_url is None:
        _bench(args, None)
        return
    with _private_schema(args.database_url) as schema:
        from sqlalchemy import make_url

        url = make_url(args.database_url)
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
        _bench(args, url.render_as_string(hide_password=False))


def _bench(args: argparse.Namespace, database_url: str | None) -> None:
    from sqlalchemy import func, insert, select, text

    from billbyte import tasks  # noqa: F401  (registers the job kinds a close runs, e.g. rating)
    from billbyte.auth.roles import Role
    from billbyte.auth.subject import AuthSubject
    from billbyte.charges.models import ChargeLine
    from billbyte.customers.models import Customer
    from billbyte.db.engine import make_engine
    from billbyte.db.migrate import upgrade
    from billbyte.invoicing import runs
    from billbyte.invoicing import settings as invoice_settings
    from billbyte.invoicing.models import Invoice, InvoiceLine
    from billbyte.invoicing.schemas import InvoiceSettingsIn
    from billbyte.runtime import Runtime
    from billbyte.settings import Settings
    from billbyte.tenancy import service as tenancy

    with tempfile.TemporaryDirectory(prefix="bb-invoice-run-") as tmp:
        work = Path(tmp)
        engine = make_engine(database_url or f"sqlite:///{work / 'bench.sqlite3'}")
        upgrade(engine)
        runtime = Runtime(Settings(var_dir=work / "var", secret_key="bench"), engine, "bench")
        with runtime.uow() as uow:
            msp, _ = tenancy.create_msp(uow.session, "bench")
            uow.commit()

        started = time.perf_counter()
        expected: dict[str, Decimal] = {}
        ids = [f"cus_B{index:08d}" for index in range(args.customers)]
        with runtime.uow() as uow:
            uow.session.execute(
                insert(Customer),
                [
                    {
                        "id": cid,
                        "msp_id": msp.id,
                        "external_id": cid,
                        "name": f"Customer {index}",
                        "currency": "EUR",
                        "locale": "de_DE",
                    }
                    for index, cid in enumerate(ids)
                ],
            )
            uow.commit()
        chunk = max(1, 20_000 // args.lines)
        for first in range(0, args.customers, chunk):
            rows = []
            for index in range(first, min(first + chunk, args.customers)):
                cid = ids[index]
                expected[cid] = Decimal(0)
                for line in range(args.lines):
                    amount = _amount(index, line)
                    expected[cid] += amount
                    service_name = SERVICES[line % len(SERVICES)]
                    rows.append(
                        {
                            "msp_id": msp.id,
                            "customer_id": cid,
                            "period": PERIOD,
                            "line_key": f"k{line:04d}",
                            "vendor": "aws",
                            "sub_account_id": f"{100000000000 + line // len(SERVICES) % 10}",
                            "service_name": service_name,
                            "charge_category": "Usage",
                            "pricing_unit": "Hours",
                            "description": f"{service_name} / Usage",
                            "quantity": Decimal(line + 1),
                            "billing_currency": "USD",
                            "cost": amount,
                            "list_cost": amount,
                            "sell": amount,
                            "currency": "EUR",
                            "cost_local": amount,
                            "list_local": amount,
                            "sell_local": amount,
                            "fx_rates": [{"date": f"{PERIOD}-01", "rate": "0.91"}],
                            "first_day": f"{PERIOD}-01",
                            "last_day": f"{PERIOD}-30",
                        }
                    )
            with runtime.uow() as uow:
                uow.session.execute(insert(ChargeLine), rows)
                uow.commit()
        if engine.dialect.name == "postgresql":
            with engine.begin() as connection:
                connection.execute(text("ANALYZE"))
        setup = time.perf_counter() - started
        total_lines = args.customers * args.lines
        print(f"setup: {args.customers:,} customers, {total_lines:,} charge lines in {setup:.1f} s")

        # "account" grouping keeps one invoice line per charge line: the heaviest case.
        with runtime.uow() as uow:
            invoice_settings.set_settings(
                uow.session,
                AuthSubject(msp.id, "bench", Role.ADMIN),
                InvoiceSettingsIn(grouping="account"),
            )
            uow.commit()
        subject = AuthSubject(msp_id=msp.id, actor="bench", role=Role.ADMIN)
        baseline = _baseline_copy(engine)
        profiler = cProfile.Profile() if args.profile else None
        started, cpu_started = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        run = runs.close_period(runtime, subject, PERIOD, force=True)
        if profiler is not None:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started

        with runtime.uow() as uow:
            totals = dict(uow.session.execute(select(Invoice.customer_id, Invoice.total)).all())
            line_count = uow.session.scalar(select(func.count()).select_from(InvoiceLine))
        cent = Decimal("0.01")
        wrong = [
            cid
            for cid, exact in expected.items()
            if totals.get(cid) != exact.quantize(cent, rounding=ROUND_HALF_EVEN)
        ]
        assert run.invoices_created == args.customers, run.errors
        assert not wrong, f"{len(wrong)} invoice totals differ, e.g. {wrong[:3]}"
        print(
            f"invoice run ({engine.dialect.name}): {run.invoices_created:,} invoices, "
            f"{line_count:,} invoice lines in {elapsed:.1f} s — "
            f"{run.invoices_created / elapsed:,.0f} invoices/s, {total_lines / elapsed:,.0f} "
            f"charge lines/s; every total exact ({cpu:.1f} s of CPU in this process: on a "
            "loaded machine the rest is waiting for a core or for the database)"
        )
        print(
            f"baseline (one INSERT ... SELECT of the same {total_lines:,} lines): "
            f"{baseline:.1f} s — the run takes {elapsed / baseline:.1f}× the bare copy"
        )
        if profiler is not None:
            stats = pstats.Stats(profiler).strip_dirs()
            stats.sort_stats("cumulative").print_stats(args.profile)
            stats.sort_stats("tottime").print_stats(args.profile)
        again = time.perf_counter()
        second = runs.close_period(runtime, subject, PERIOD, force=True)
        assert second.invoices_created == 0 and second.already_closed == args.customers
        print(f"second run (nothing to do): {time.perf_counter() - again:.2f} s")
        engine.dispose()


if __name__ == "__main__":
    main()
