"""``billbyte jobs ...``: run background work from the shell.

The job kinds are registered by ``billbyte.tasks``, which the command-line root imports."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from billbyte.cli_support import fail, runtime_ready
from billbyte.jobs.service import list_jobs, run_pending

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


JOB_STATUSES = ("pending", "running", "done", "failed", "superseded")


@app.command("list")
def list_command(
    status: Annotated[
        str, typer.Option(help="pending, running, done, failed (the dead letters) or superseded.")
    ] = "failed",
    limit: Annotated[int, typer.Option(min=1, help="At most this many, most recent first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List jobs in one status; by default those that failed permanently, with their error."""
    if status not in JOB_STATUSES:
        fail(f"unknown status {status!r}: one of {', '.join(JOB_STATUSES)}")
    with runtime_ready() as runtime, runtime.uow(read_only=True) as uow:
        rows: list[dict[str, Any]] = [
            {
                "id": job.id,
                "kind": job.kind,
                "key": job.key,
                "status": job.status,
                "attempts": job.attempts,
                "last_error": job.last_error,
                "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            }
            for job in list_jobs(uow.session, status, limit)
        ]
    if as_json:
        sys.stdout.write(json.dumps({"jobs": rows}) + "\n")
        return
    for row in rows:
        error = " ".join((row["last_error"] or "").split())[:200]
        typer.echo(f"{row['id']}  {row['kind']}  attempts={row['attempts']}  {error}")
    typer.echo(f"{len(rows)} {status} job(s)")
