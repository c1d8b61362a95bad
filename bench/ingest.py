"""Ingest benchmark: BillByte's import vs DuckDB over the same file, at each size given.

    .venv/bin/python bench/ingest.py --rows 1000000 10000000

For each size: generates a FOCUS CSV at run time (10M lines is about 2.7 GB: the free disk
is checked first), then measures, one after another so that they do not share the cores,
- DuckDB's bare ``SUM(CAST(BilledCost AS DECIMAL(38, 10)))`` grouped by currency (baseline 1),
- DuckDB reading every column with its inferred type and writing Parquet (baseline 2),
- the whole ``billbyte usage import FILE --json`` process (start-up, migrations check,
  import, output) into a fresh SQLite installation,
- ``usage.service.import_files`` alone, in a child process into another fresh installation.
Prints the times, the ratios to both baselines and each process's peak memory (its own
rusage, so DuckDB's memory does not count). The totals of the CLI, of the in-process import,
of DuckDB and of the generator must agree to the last digit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BYTES_PER_LINE = 270  # the generated FOCUS file
# The source, DuckDB's Parquet copy and the import's own files (its pass and slice).
DISK_FACTOR = 3

SETUP = r"""
import sys
from pathlib import Path
import billbyte.models  # noqa: F401  (every table, for the foreign keys)
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.db.engine import make_engine
from billbyte.db.migrate import upgrade
from billbyte.partners import service as partners
from billbyte.partners.schemas import PartnerAccountCreate
from billbyte.runtime import Runtime
from billbyte.settings import Settings
from billbyte.tenancy import service as tenancy

settings = Settings(var_dir=Path(sys.argv[1]), secret_key="bench")
engine = make_engine(settings.effective_database_url)
upgrade(engine)
runtime = Runtime(settings, engine, "bench")
with runtime.uow() as uow:
    msp, _ = tenancy.create_msp(uow.session, "bench")
    subject = AuthSubject(msp_id=msp.id, actor="bench", role=Role.ADMIN)
    account = partners.create(
        uow.session, subject, PartnerAccountCreate(vendor="aws", display_name="bench"), "bench"
    )
    uow.commit()
print(account.id)
"""

IN_PROCESS = r"""
import json, sys, time
from pathlib import Path
import billbyte.models  # noqa: F401
from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.db.engine import make_engine
from billbyte.partners.models import PartnerAccount
from billbyte.runtime import Runtime
from billbyte.settings import Settings
from billbyte.usage import service

var, csv_path, account_id = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
settings = Settings(var_dir=var, secret_key="bench")
runtime = Runtime(settings, make_engine(settings.effective_database_url), "bench")
with runtime.uow() as uow:
    msp_id = uow.session.get(PartnerAccount, account_id).msp_id
subject = AuthSubject(msp_id=msp_id, actor="bench", role=Role.ADMIN)
start = time.perf_counter()
item = service.import_files(runtime, subject, account_id, [(csv_path, csv_path.name)])
print(json.dumps({"seconds": time.perf_counter() - start, "rows": item.rows_accepted,
                  "totals": item.totals}))
"""


def _run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak MiB, stdout) of one child process, from its own
    rusage: on a loaded machine the CPU time is the steadier figure."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True, cwd=ROOT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(command[:5])} failed:\n{err.read()}")
        return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read()


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def duckdb_aggregate(path: Path) -> tuple[float, float, dict[str, Decimal]]:
    """(wall, CPU seconds, totals) of the bare aggregate."""
    import duckdb

    start, cpu = time.perf_counter(), _cpu()
    rows = duckdb.sql(
        "SELECT BillingCurrency, SUM(CAST(BilledCost AS DECIMAL(38, 10))) "
        f"FROM read_csv('{path}', all_varchar=true) GROUP BY 1"
    ).fetchall()
    totals = {currency: Decimal(total) for currency, total in rows}
    return time.perf_counter() - start, _cpu() - cpu, totals


def duckdb_typed_copy(path: Path, target: Path) -> tuple[float, float]:
    """Every column read with the type DuckDB infers for it, written as Parquet."""
    import duckdb

    start, cpu = time.perf_counter(), _cpu()
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{path}')) TO '{target}' (FORMAT parquet)")
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    target.unlink()
    return seconds, cpu


def installation(var: Path) -> str:
    *_, out = _run([sys.executable, "-c", SETUP, str(var)])
    return out.strip().splitlines()[-1]


def measure(rows: int, work: Path) -> dict[str, float]:
    from tests.usage.generate import write_focus

    free = shutil.disk_usage(work).free
    need = rows * BYTES_PER_LINE * DISK_FACTOR
    if free < need:
        raise SystemExit(f"{rows:,} lines need about {need / 1e9:.1f} GB free in {work}")
    csv_path = work / "focus.csv"
    t0 = time.perf_counter()
    expected = write_focus(csv_path, rows, seed=42, sub_accounts=50)["BilledCost"]
    print(
        f"\n{rows:,} lines ({csv_path.stat().st_size / 1e6:,.0f} MB), generated in "
        f"{time.perf_counter() - t0:.0f} s"
    )

    aggregate, aggregate_cpu, duck_totals = duckdb_aggregate(csv_path)
    typed_copy, typed_cpu = duckdb_typed_copy(csv_path, work / "duck.parquet")

    cli_var, own_var = work / "cli-var", work / "own-var"
    cli_account, own_account = installation(cli_var), installation(own_var)
    env = {**os.environ, "BILLBYTE_VAR_DIR": str(cli_var), "BILLBYTE_SECRET_KEY": "bench"}
    for name in ("BILLBYTE_DATABASE_URL", "BILLBYTE_BROKER_URL", "BILLBYTE_USAGE_STORE_URL"):
        env.pop(name, None)
    cli_seconds, cli_cpu, cli_peak, out = _run(
        [
            sys.executable,
            "-m",
            "billbyte.cli",
            "usage",
            "import",
            str(csv_path),
            "--partner-account",
            cli_account,
            "--json",
        ],
        env,
    )
    cli_totals = json.loads(out.strip().splitlines()[-1])["totals"]
    _, own_cpu, own_peak, out = _run(
        [sys.executable, "-c", IN_PROCESS, str(own_var), str(csv_path), own_account]
    )
    own = json.loads(out.strip().splitlines()[-1])
    for var in (cli_var, own_var):
        shutil.rmtree(var)
    csv_path.unlink()

    totals = {
        Decimal(cli_totals["USD"]["billed_cost"]),
        Decimal(own["totals"]["USD"]["billed_cost"]),
        duck_totals["USD"],
        expected,
    }
    assert len(totals) == 1, f"totals differ: {totals}"
    assert own["rows"] == rows, own["rows"]
    print(f"{'':27}  {'wall':>8}  {'CPU':>7}  {'peak':>8}  {'/ aggregate':>11}  {'/ typed':>7}")
    figures = [
        ("duckdb bare aggregate", aggregate, aggregate_cpu, None),
        ("duckdb typed -> Parquet", typed_copy, typed_cpu, None),
        ("billbyte usage import (CLI)", cli_seconds, cli_cpu, cli_peak),
        ("import_files (in process)", own["seconds"], own_cpu, own_peak),
    ]
    for label, seconds, cpu, peak in figures:
        memory = f"{peak:5.0f} MiB" if peak is not None else ""
        print(
            f"{label:<27}  {seconds:7.2f}s  {cpu:6.2f}s  {memory:>8}  "
            f"{seconds / aggregate:10.1f}x  {seconds / typed_copy:6.1f}x"
        )
    print(
        f"in-process {rows / own['seconds']:,.0f} lines/s (its CPU figure is the whole child "
        f"process's); totals exact, {expected} USD"
    )
    return {
        "aggregate": aggregate,
        "typed_copy": typed_copy,
        "cli": cli_seconds,
        "in_process": own["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
        f"polars threads {os.environ.get('POLARS_MAX_THREADS', 'all cores')}"
    )
    with tempfile.TemporaryDirectory(prefix="bb-bench-") as tmp:
        for rows in sorted(args.rows):
            measure(rows, Path(tmp))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
