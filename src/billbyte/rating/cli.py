"""``billbyte rate``: rate an MSP's open periods from the shell."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from billbyte.cli_support import runtime_ready
from billbyte.kit.periods import validate_period
from billbyte.rating import tasks as rating
from billbyte.tenancy import service as tenancy


def rate_command(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    period: Annotated[str | None, typer.Option(help="YYYY-MM; default: every open period.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rate an MSP's open periods now (normally triggered by imports and rule changes)."""
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
