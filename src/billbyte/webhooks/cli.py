"""``billbyte webhooks ...``: send due webhook deliveries from the command line or a cron job."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Annotated

import typer

from billbyte.cli_support import runtime_ready
from billbyte.webhooks import worker

app = typer.Typer(help="Send webhook deliveries.", no_args_is_help=True)


@app.command("deliver")
def deliver(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Send every due delivery once (one pass) and exit."""
    with runtime_ready() as runtime:
        attempts = worker.deliver_due(runtime)
    if as_json:
        sys.stdout.write(json.dumps({"attempts": attempts}) + "\n")
    else:
        typer.echo(f"{attempts} delivery attempt(s) made.")


@app.command("worker")
def run_worker(
    interval: Annotated[float, typer.Option(help="Seconds between passes.", min=0.1)] = 1.0,
) -> None:
    """Deliver continuously until interrupted (SIGINT or SIGTERM)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with runtime_ready() as runtime:
        typer.echo("delivering webhooks; Ctrl-C to stop", err=True)
        worker.run_forever(runtime, stop, interval=interval)
