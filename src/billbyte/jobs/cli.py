"""``billbyte jobs ...`` and ``billbyte rate``: run background work from the shell."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

app = typer.Typer(help="Background jobs (rating, ...).", no_args_is_help=True)


@app.command("run")
def run_command(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Run every due job once (what the server's worker thread does continuously)."""
    from billbyte.cli import runtime_ready
    from billbyte.jobs import handlers  # noqa: F401  (registers every job kind)
    from billbyte.jobs.service import run_pending

    with runtime_ready() as runtime:
        count = run_pending(runtime)
    if as_json:
        sys.stdout.write(json.dumps({"jobs_run": count}) + "\n")
    else:
        typer.echo(f"ran {count} job(s)")


def rate_command(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    period: Annotated[str | None, typer.Option(help="YYYY-MM; default: every open period.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rate an MSP's open periods now (normally triggered by imports and rule changes)."""
    from billbyte.cli import runtime_ready
    from billbyte.kit.periods import validate_period
    from billbyte.rating import tasks as rating
    from billbyte.tenancy import service as tenancy

    with runtime_ready() as runtime:
        with runtime.uow() as uow:
            tenancy.get_msp(uow.session, msp)
        if period:
            validate_period(period)
        results = rating.rate_all(runtime, msp, period)
    rows = [
        {
            "period": r.period,
            "customers_rated": r.customers_rated,
            "lines": r.lines,
            "changes": r.changes,
            "errors": r.errors,
        }
        for r in results
    ]
    if as_json:
        sys.stdout.write(json.dumps({"data": rows}) + "\n")
        return
    for row in rows:
        typer.echo(
            f"{row['period']}: {row['customers_rated']} customers, {row['lines']} lines, "
            f"{row['changes']} changes" + (f", errors: {row['errors']}" if row["errors"] else "")
        )


def collect_command(
    partner_account: Annotated[str, typer.Option("--partner-account", help="Partner account id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Collect usage from the vendor now, for one partner account (imports what is new)."""
    from billbyte.cli import fail, runtime_ready
    from billbyte.connectors import service as connectors
    from billbyte.connectors.base import VendorError

    with runtime_ready() as runtime:
        try:
            result = connectors.collect(runtime, partner_account)
        except VendorError as exc:
            fail(f"the vendor failed: {exc.message}")
            return
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        typer.echo(f"collected: {len(result['imports'])} import(s) {', '.join(result['imports'])}")
