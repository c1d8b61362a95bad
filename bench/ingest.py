"""Ingest benchmark: BillByte's import pipeline vs DuckDB's bare aggregate, same file.

    .venv/bin/python bench/ingest.py --rows 1000000

Generates a FOCUS CSV at run time, imports it into a throw-away SQLite installation,
and runs DuckDB's `SUM(CAST(BilledCost AS DECIMAL))` grouped by currency over the same
file. Prints both times, the ratio, rows/s and the importer's peak memory (measured in a
child process, so that DuckDB's memory does not count). Totals are cross-checked exactly.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from billbyte.db.engine import make_engine
from billbyte.db.migrate import upgrade
from billbyte.partners import service as partners
from billbyte.partners.schemas import PartnerAccountCreate
from billbyte.runtime import Runtime
from billbyte.settings import Settings
from billbyte.tenancy import service as tenancy
from billbyte.auth.subject import AuthSubject
from billbyte.auth.roles import Role
from billbyte.usage import service

work, csv_path = Path(sys.argv[1]), Path(sys.argv[2])
engine = make_engine(f"sqlite:///{work / 'bench.sqlite3'}")
upgrade(engine)
runtime = Runtime(Settings(var_dir=work / "var", secret_key="bench"), engine, "bench")
with runtime.uow() as uow:
    msp, _ = tenancy.create_msp(uow.session, "bench")
    subject = AuthSubject(msp_id=msp.id, actor="bench", role=Role.ADMIN)
    account = partners.create(uow.session, subject, PartnerAccountCreate(
        vendor="aws", display_name="bench"), "bench")
    uow.commit()
start = time.perf_counter()
item = service.import_files(runtime, subject, account.id, [(csv_path, csv_path.name)])
elapsed = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "peak_mib": peak_kib / 1024,
                  "rows": item.rows_accepted, "totals": item.totals}))
"""


def duckdb_aggregate(path: Path) -> tuple[float, dict[str, Decimal]]:
    import duckdb

    start = time.perf_counter()
    rows = duckdb.sql(
        "SELECT BillingCurrency, SUM(CAST(BilledCost AS DECIMAL(38, 10))) "
        f"FROM read_csv('{path}', all_varchar=true) GROUP BY 1"
    ).fetchall()
    return time.perf_counter() - start, {currency: Decimal(total) for currency, total in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from tests.usage.generate import write_focus

    with tempfile.TemporaryDirectory(prefix="bb-bench-") as tmp:
        work = Path(tmp)
        csv_path = work / "focus.csv"
        t0 = time.perf_counter()
        expected = write_focus(csv_path, args.rows, seed=42, sub_accounts=50)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f}s")
        duck_seconds, duck_totals = duckdb_aggregate(csv_path)
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(work), str(csv_path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        ours = Decimal(result["totals"]["USD"]["billed_cost"])
        assert ours == expected["BilledCost"] == duck_totals["USD"], (ours, duck_totals)
        ratio = result["seconds"] / duck_seconds
        print(f"duckdb aggregate : {duck_seconds:8.2f} s")
        print(
            f"billbyte import  : {result['seconds']:8.2f} s  "
            f"({args.rows / result['seconds']:,.0f} rows/s, peak {result['peak_mib']:.0f} MiB)"
        )
        print(f"ratio            : {ratio:8.1f}x DuckDB's bare aggregate")
        print(f"totals           : exact, {ours} USD")
        _ = resource  # imported for the child's documentation


if __name__ == "__main__":
    main()
