"""The ``billbyte`` command line: assembles the features' commands, and runs the process
(migrate, serve, worker, demo)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from pydantic import ValidationError

from billbyte.cli_support import emit, fail, runtime_ready
from billbyte.connectors import cli as connectors_cli
from billbyte.connectors.service import schedule_due_collections
from billbyte.db.migrate import upgrade
from billbyte.fx import cli as fx_cli
from billbyte.invoicing import cli as invoicing_cli
from billbyte.jobs import cli as jobs_cli
from billbyte.jobs.service import run_forever
from billbyte.keyring import cli as keyring_cli
from billbyte.kit import logs
from billbyte.rating import cli as rating_cli
from billbyte.runtime import Runtime, build_runtime
from billbyte.sandbox import cli as sandbox_cli
from billbyte.sandbox import taken_port
from billbyte.settings import describe_invalid, get_settings
from billbyte.tenancy import cli as tenancy_cli
from billbyte.usage import cli as usage_cli
from billbyte.webhooks import cli as webhooks_cli
from billbyte.webhooks import worker as webhook_worker

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

app = typer.Typer(
    help="BillByte: usage billing for cloud resellers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tenancy_cli.app, name="msp")
app.add_typer(usage_cli.app, name="usage")
app.add_typer(fx_cli.app, name="fx")
app.add_typer(webhooks_cli.app, name="webhooks")
app.add_typer(jobs_cli.app, name="jobs")
app.add_typer(invoicing_cli.app, name="invoices")
app.add_typer(keyring_cli.app, name="secrets")
app.command("rate")(rating_cli.rate_command)


# why: the job handlers (every feature's tasks), the broker client, uvicorn and the demo
# cost more than a second of start-up; `billbyte usage ...` runs no job (an import only
# records one) and serves nothing, so it loads none of them (docs/benchmarks.md, Ingestion).
_WITHOUT_JOBS = frozenset({"usage"})


def _register_job_kinds() -> None:
    from billbyte import tasks  # noqa: F401  (registers every job kind)


@app.callback()
def _publish_jobs(ctx: typer.Context) -> None:
    broker_url = get_settings().broker_url
    if ctx.invoked_subcommand not in _WITHOUT_JOBS or broker_url:
        _register_job_kinds()
    # With a broker, every command's committed jobs are published (not only the server's):
    # a usage import from the shell wakes a worker at once instead of at the next poll.
    if broker_url:
        from billbyte.jobs import broker as jobs_broker

        jobs_broker.install(build_runtime())


app.command("collect")(connectors_cli.collect_command)


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic) up to this version's schema."""
    runtime = build_runtime()
    upgrade(runtime.engine)
    typer.echo(f"database migrated ({runtime.engine.dialect.name})")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    sandbox: Annotated[
        bool, typer.Option(help="Also run the vendor simulators (what `make run` does).")
    ] = False,
    tick_seconds: Annotated[float, typer.Option(help="Sandbox delivery interval.")] = 60.0,
    sandbox_aws_port: Annotated[
        int | None, typer.Option(help="moto (AWS) port [env BILLBYTE_SANDBOX_AWS_PORT].")
    ] = None,
    sandbox_partner_center_port: Annotated[
        int | None,
        typer.Option(help="Partner Center port [env BILLBYTE_SANDBOX_PARTNER_CENTER_PORT]."),
    ] = None,
    sandbox_google_channel_port: Annotated[
        int | None,
        typer.Option(help="Cloud Channel port [env BILLBYTE_SANDBOX_GOOGLE_CHANNEL_PORT]."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes sharing the port. Background work still runs once, in "
            "this (the supervising) process.",
        ),
    ] = 1,
    background: Annotated[
        bool,
        typer.Option(
            "--background/--no-background",
            help="Run jobs and webhook deliveries in this process; --no-background when "
            "`billbyte worker` processes do them.",
        ),
    ] = True,
) -> None:
    """Run the API server (and its background workers) on the configured database."""
    settings = get_settings()
    sandbox_ports: dict[str, int | None] = {
        "aws": sandbox_aws_port or settings.sandbox_aws_port,
        "partner_center": sandbox_partner_center_port or settings.sandbox_partner_center_port,
        "google_channel": sandbox_google_channel_port or settings.sandbox_google_channel_port,
    }
    if sandbox:
        problem = taken_port({k: v for k, v in sandbox_ports.items() if v})
        if problem:
            fail(problem)
    # why: the API (FastAPI and every router) costs about a second of start-up that no
    # other command needs.
    import uvicorn

    from billbyte.app import create_app
    from billbyte.demo import existing_demo

    with runtime_ready() as runtime:
        configure_logging(runtime.settings.log_level, runtime.settings.log_format)
        sandboxes = None
        if sandbox:
            # The simulators run in this process on http://127.0.0.1: calling them is what
            # --sandbox asks for (a demo set-up, not a multi-tenant one: see docs/security.md).
            runtime.settings.outbound_allow_private = True
            runtime.settings.outbound_allow_http = True
            runtime.settings.outbound_allowed_ports = "*"
            # --workers processes read their settings from the environment afresh.
            os.environ.update(SANDBOX_OUTBOUND_ENV)
            typer.echo("sandbox: outbound requests to http://127.0.0.1 allowed", err=True)
            sandboxes = sandbox_cli.start_beside_server(
                tick_seconds, sandbox_ports, runtime.settings.private_var_dir() / "sandbox"
            )
        bind_host, bind_port = host or runtime.settings.host, port or runtime.settings.port
        base = runtime.settings.public_url.rstrip("/") or f"http://{bind_host}:{bind_port}"
        banner = _ready_banner(base, existing_demo(runtime, base))
        json_logs = runtime.settings.log_format == "json"
        server_options: dict[str, Any] = {
            "host": bind_host,
            "port": bind_port,
            "log_level": runtime.settings.log_level.lower(),
            # JSON: uvicorn's records go through our handler, and the app writes the
            # access lines (with the request id) instead of uvicorn.
            "log_config": None if json_logs else uvicorn.config.LOGGING_CONFIG,
            "access_log": not json_logs,
        }
        stop = start_workers(runtime, consume=False) if background else _nothing_to_stop
        done = threading.Event()
        try:
            if workers == 1:
                server = uvicorn.Server(uvicorn.Config(create_app(runtime), **server_options))
                threading.Thread(
                    target=_announce_when_listening, args=(server, banner, done), daemon=True
                ).start()
                server.run()
            else:
                _serve_processes(workers, server_options, banner, done)
        finally:
            done.set()
            stop()
            if sandboxes is not None:
                sandboxes.stop()


app.command("sandbox")(sandbox_cli.sandbox_command)

SANDBOX_OUTBOUND_ENV = {
    "BILLBYTE_OUTBOUND_ALLOW_PRIVATE": "true",
    "BILLBYTE_OUTBOUND_ALLOW_HTTP": "true",
    "BILLBYTE_OUTBOUND_ALLOWED_PORTS": "*",
}


def _nothing_to_stop() -> None:
    """``serve --no-background`` started no background work."""


def _serve_processes(
    workers: int, server_options: dict[str, Any], banner: str, done: threading.Event
) -> None:
    """``serve --workers N``: uvicorn's supervisor binds the port once and starts N processes
    that each import the app by name (``worker_app``) and accept on the shared socket; it
    restarts a process that dies and stops them all on SIGINT/SIGTERM. This process only
    supervises (and runs the background work, once)."""
    import uvicorn
    import uvicorn.supervisors

    config = uvicorn.Config(
        WORKER_APP,
        factory=True,
        workers=workers,
        # A process answers the supervisor's health check only once it has imported
        # BillByte: seconds on a busy machine, past uvicorn's default of 5 s (it would be
        # killed as hung, and its replacement too).
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        **server_options,
    )
    supervisor = uvicorn.supervisors.Multiprocess(config, sockets=[config.bind_socket()])
    host, port = config.host, config.port
    probe_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    probe = f"http://{'[' + probe_host + ']' if ':' in probe_host else probe_host}:{port}/healthz"
    threading.Thread(
        target=_announce_when_answering, args=(probe, banner, done), daemon=True
    ).start()
    supervisor.run()


WORKER_APP = "billbyte.cli:worker_app"
WORKER_HEALTHCHECK_SECONDS = 30


def worker_app() -> FastAPI:
    """The app of one ``serve --workers N`` process (uvicorn imports it by name there): built
    from the environment, as the supervising process built its own."""
    from billbyte.app import create_app

    runtime = build_runtime()
    configure_logging(runtime.settings.log_level, runtime.settings.log_format)
    if runtime.settings.broker_url:
        from billbyte.jobs import broker as jobs_broker

        # What the command-line callback does in every other process: jobs that a request
        # commits are published at once.
        jobs_broker.install(runtime)
    return create_app(runtime)


def _announce_when_answering(probe: str, banner: str, done: threading.Event) -> None:
    """``_announce_when_listening`` for ``--workers``: the banner once a process answers."""
    while not done.wait(0.1):
        try:
            if httpx.get(probe, timeout=1.0).status_code == 200:
                typer.echo(banner)
                return
        except httpx.HTTPError:
            continue


def configure_logging(level: str, log_format: str) -> None:
    logs.configure(level, log_format)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # httpx logs every outbound request at INFO (with the sandboxes: several a minute);
        # they show with BILLBYTE_LOG_LEVEL=DEBUG.
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _announce_when_listening(server: uvicorn.Server, banner: str, done: threading.Event) -> None:
    """Print the banner once uvicorn listens (after its own start-up lines and the
    sandboxes'), so that the addresses and the demo's key are the last thing on screen."""
    while not server.started:
        if done.wait(0.05):
            return
    typer.echo(banner)  # uvicorn logs its "running on" line before it sets ``started``


def _ready_banner(base: str, demo: dict[str, Any] | None) -> str:
    lines = [
        "",
        "BillByte is running:",
        f"  API:      {base}/v1",
        f"  API docs: {base}/docs",
    ]
    if demo is None:
        lines += [
            f"  Portal:   {base}/portal/sign-in",
            f"  Console:  {base}/console/sign-in",
            "  No demo data: `billbyte demo` seeds it (what `make run` does).",
        ]
        return "\n".join(lines)
    sign_in = demo["sign_in"]
    staff = ", ".join(f"{email} ({role})" for role, email in sign_in["staff"].items())
    lines += [
        f"  Portal:   {sign_in['portal_url']}",
        f"            as {', '.join(sign_in['portal_users'])}",
        f"  Console:  {sign_in['console_url']}",
        f"            as {staff}",
        f"  Password for every demo user: {sign_in['password']}",
    ]
    if demo["api_key"]:
        lines.append(f"  Demo admin API key (also in {demo['api_key_file']}): {demo['api_key']}")
    else:
        lines.append(
            f"  Demo admin API key: {demo['api_key_file']} is missing; "
            "`billbyte demo` issues a new one."
        )
    return "\n".join(lines)


@app.command()
def worker() -> None:
    """Run background work only (jobs and webhook deliveries), e.g. on extra machines
    against PostgreSQL; any number may run, each job and delivery is claimed by one."""
    with runtime_ready() as runtime:
        configure_logging(runtime.settings.log_level, runtime.settings.log_format)
        done = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: done.set())
        stop = start_workers(runtime, consume=True)
        typer.echo("worker running; Ctrl-C to stop", err=True)
        done.wait()
        stop()


def start_workers(runtime: Runtime, *, consume: bool) -> Callable[[], None]:
    """The embedded default runs background work in threads of the server process: the job
    loop (rating after imports and rule changes) and webhook delivery. With a broker, jobs
    run in Dramatiq consumers (``consume``: ``billbyte worker``) and the job loop becomes the
    slow poller that runs the jobs whose message was lost (``serve`` runs only that)."""
    from billbyte.jobs import broker as jobs_broker

    _register_job_kinds()
    job_broker = jobs_broker.installed(runtime.engine)
    if job_broker is None:
        stop = threading.Event()
        jobs = threading.Thread(
            target=run_forever,
            args=(runtime, stop),
            kwargs={"extra": schedule_due_collections},
            name="billbyte-jobs",
            daemon=True,
        )
        jobs.start()
        stop_jobs = stop.set
    else:
        stop_jobs = jobs_broker.start_consumers(
            job_broker, consume=consume, extra=schedule_due_collections
        )
    deliveries = webhook_worker.start_background(runtime)

    def stop_all() -> None:
        stop_jobs()
        deliveries.stop()

    return stop_all


@app.command()
def demo(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Seed a demo MSP with partner accounts and customers (idempotent)."""
    from billbyte.demo import seed

    with runtime_ready() as runtime:
        result = seed(runtime)
    emit(
        as_json,
        result,
        lambda: typer.echo(_demo_banner(result)),
    )


def _demo_banner(result: dict[str, Any]) -> str:
    sign_in = result["sign_in"]
    staff = ", ".join(f"{email} ({role})" for role, email in sign_in["staff"].items())
    return (
        f"Demo MSP {result['msp_id']} ready ({result['customers']} customers).\n"
        f"Portal:  {sign_in['portal_url']}\n"
        f"         as {', '.join(sign_in['portal_users'])}\n"
        f"Console: {sign_in['console_url']}\n"
        f"         as {staff}\n"
        f"Password for every demo user: {sign_in['password']}\n"
        f"API docs: {sign_in['console_url'].rsplit('/console', 1)[0]}/docs\n"
        # the key last, where it does not scroll away; the file keeps it for later
        f"Demo admin API key (also in var/demo_api_key): {result['api_key']}"
    )


OWNER_ONLY_UMASK = 0o077


def main() -> None:
    # Everything a BillByte process writes (database, usage store, exports, PDFs) is
    # billing data: owner-only unless the operator loosens it deliberately.
    os.umask(OWNER_ONLY_UMASK)
    try:
        app()
    except Exception as exc:  # the last resort: a person gets one line, not a traceback
        if isinstance(exc, ValidationError) and exc.title == "Settings":
            # A BILLBYTE_* variable is wrong: say which (get_settings would fail again here).
            message = f"error: invalid configuration: {describe_invalid(exc)}"
            typer.secho(message, fg=typer.colors.RED, err=True)
            sys.exit(2)
        if get_settings().log_level.upper() == "DEBUG":
            raise
        typer.secho(
            f"error: unexpected failure ({type(exc).__name__}: {exc}). "
            "Run again with BILLBYTE_LOG_LEVEL=DEBUG for details.",
            fg=typer.colors.RED,
            err=True,
        )
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
