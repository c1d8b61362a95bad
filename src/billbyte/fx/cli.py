"""``billbyte fx ...``: load exchange rates from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from billbyte.cli_support import cli_subject, runtime_ready
from billbyte.fx import ecb
from billbyte.tenancy import service as tenancy

app = typer.Typer(help="Exchange rates: import the ECB reference rates.", no_args_is_help=True)


@app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="An ECB euro reference-rate CSV (eurofxref-hist.csv or eurofxref.csv).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Import ECB euro reference rates for an MSP (idempotent; all or nothing)."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        summary = ecb.import_ecb_rates(uow.session, cli_subject(msp), file)
        uow.commit()
    if as_json:
        payload = {
            "msp_id": msp,
            "file": file.name,
            "source": ecb.ECB_SOURCE,
            "rates": summary.received,
            "inserted": summary.inserted,
            "updated": summary.updated,
            "unchanged": summary.unchanged,
        }
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    typer.echo(
        f"{summary.received} ECB rates read from {file.name}: {summary.inserted} new, "
        f"{summary.updated} updated, {summary.unchanged} unchanged."
    )
