"""``billbyte invoices ...``: close a period from the shell."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from billbyte.cli_support import cli_subject, runtime_ready
from billbyte.invoicing import runs
from billbyte.invoicing.models import InvoiceRun
from billbyte.kit.errors import BillByteError
from billbyte.kit.periods import validate_period
from billbyte.tenancy import service as tenancy

app = typer.Typer(help="Invoices: close billing periods.", no_args_is_help=True)


@app.command("close")
def close_command(
    period: Annotated[str, typer.Option("--period", help="YYYY-MM: the month that ends.")],
    msp: Annotated[str | None, typer.Option("--msp", help="MSP id; default: every MSP.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Finalize even before the grace period is over.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as JSON.")] = False,
) -> None:
    """Finalize every due invoice of PERIOD (idempotent; safe to rerun after a crash)."""
    with runtime_ready() as runtime:
        validate_period(period)
        with runtime.uow() as uow:
            msps = (
                [tenancy.get_msp(uow.session, msp).id]
                if msp
                else [m.id for m in tenancy.list_msps(uow.session)]
            )
        finished: list[InvoiceRun] = []
        refused: list[dict[str, str]] = []
        for msp_id in msps:
            try:
                run = runs.close_period(runtime, cli_subject(msp_id), period, force=force)
                finished.append(run)
            except BillByteError as exc:
                if msp:  # the one MSP asked for: a one-line failure
                    raise
                # Every MSP: one MSP's refusal (e.g. an incomplete billing profile in invoice
                # mode) does not keep the others from closing.
                refused.append({"msp_id": msp_id, "code": exc.code, "detail": exc.detail})
    rows = [runs.run_out(run).model_dump(mode="json") for run in finished]
    for refusal in refused:
        typer.secho(f"error: {refusal['msp_id']}: {refusal['detail']}", fg="red", err=True)
    if as_json:
        sys.stdout.write(json.dumps({"data": rows, **({"refused": refused} if refused else {})}))
        sys.stdout.write("\n")
    else:
        _print_rows(rows, period)
    if refused:
        raise typer.Exit(1)


def _print_rows(rows: list[dict[str, Any]], period: str) -> None:
    for row in rows:
        typer.echo(
            f"{row['id']} {period}: {row['invoices_created']} invoices, "
            f"{row['closed_without_charges']} closed without charges, "
            f"{row['already_closed']} already closed, {row['not_due']} not due yet, "
            f"{row['failed']} failed" + (f" {row['errors']}" if row["errors"] else "")
        )
