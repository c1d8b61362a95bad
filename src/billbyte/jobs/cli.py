"""``billbyte jobs ...``: run background work from the shell.

The job kinds are registered by ``billbyte.tasks``, which the command-line root imports."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from billbyte.cli_support import runtime_ready
from billbyte.jobs.service import run_pending

app = typer.Typer(help="Background jobs (rating, ...).", no_args_is_help=True)


@app.command("run")
def run_command(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Run every due job once (what the server's worker thread does continuously)."""
    with runtime_ready() as runtime:
        count = run_pending(runtime)
    if as_json:
        sys.stdout.write(json.dumps({"jobs_run": count}) + "\n")
    else:
        typer.echo(f"ran {count} job(s)")
