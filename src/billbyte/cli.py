"""The ``billbyte`` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import OperationalError

from billbyte.db.migrate import DatabaseBehind, ensure_schema, upgrade
from billbyte.fx import cli as fx_cli
from billbyte.invoicing import cli as invoicing_cli
from billbyte.jobs import cli as jobs_cli
from billbyte.kit.errors import BillByteError
from billbyte.runtime import Runtime, build_runtime
from billbyte.settings import get_settings
from billbyte.tenancy import secrets_cli
from billbyte.tenancy import service as tenancy
from billbyte.tenancy.auth import AuthSubject
from billbyte.tenancy.roles import Role
from billbyte.usage import cli as usage_cli
from billbyte.webhooks import cli as webhooks_cli

app = typer.Typer(
    help="BillByte: usage billing for cloud resellers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
msp_app = typer.Typer(help="Manage MSP tenants (platform operator).", no_args_is_help=True)
key_app = typer.Typer(help="Manage an MSP's API keys.", no_args_is_help=True)
user_app = typer.Typer(
    help="Manage an MSP's users (roles: admin, billing, helpdesk).", no_args_is_help=True
)
msp_app.add_typer(key_app, name="api-key")
msp_app.add_typer(user_app, name="user")
app.add_typer(msp_app, name="msp")
app.add_typer(usage_cli.app, name="usage")
app.add_typer(fx_cli.app, name="fx")
app.add_typer(webhooks_cli.app, name="webhooks")
app.add_typer(jobs_cli.app, name="jobs")
app.add_typer(invoicing_cli.app, name="invoices")
app.add_typer(secrets_cli.app, name="secrets")
app.command("rate")(jobs_cli.rate_command)
app.command("collect")(jobs_cli.collect_command)

T = TypeVar("T")


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def runtime_ready(migrate_empty: bool = True) -> Iterator[Runtime]:
    """A runtime whose database schema is current; domain errors become one-line messages."""
    try:
        runtime = build_runtime()
        if migrate_empty:
            ensure_schema(runtime.engine)
        yield runtime
    except DatabaseBehind as exc:
        fail(str(exc))
    except BillByteError as exc:
        fail(exc.detail)
    except OperationalError as exc:
        fail(f"cannot use the database ({runtime_url()}): {exc.orig}")


def runtime_url() -> str:
    url = get_settings().effective_database_url
    return url.split("@")[-1] if "@" in url else url


def cli_subject(msp_id: str) -> AuthSubject:
    return AuthSubject(msp_id=msp_id, actor="cli", role=Role.ADMIN)


def emit(as_json: bool, payload: dict[str, Any], human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        human()


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
) -> None:
    """Run the API server (and its background workers) on the configured database."""
    import uvicorn

    from billbyte.app import create_app

    with runtime_ready() as runtime:
        logging.basicConfig(
            level=runtime.settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        sandboxes = None
        if sandbox:
            # The simulators run in this process on http://127.0.0.1: calling them is what
            # --sandbox asks for (a demo set-up, not a multi-tenant one: see docs/security.md).
            runtime.settings.outbound_allow_private = True
            runtime.settings.outbound_allow_http = True
            runtime.settings.outbound_allowed_ports = "*"
            typer.echo("sandbox: outbound requests to http://127.0.0.1 allowed", err=True)
            sandboxes = _start_sandboxes(tick_seconds)
        stop = start_workers(runtime)
        try:
            uvicorn.run(
                create_app(runtime),
                host=host or runtime.settings.host,
                port=port or runtime.settings.port,
                log_level=runtime.settings.log_level.lower(),
            )
        finally:
            stop()
            if sandboxes is not None:
                sandboxes.stop()


def _start_sandboxes(tick_seconds: float) -> Any:
    from billbyte.sandbox import start_all

    sandboxes = start_all()
    sandboxes.start_ticking(tick_seconds)
    for vendor, url in sandboxes.endpoints().items():
        typer.echo(f"sandbox {vendor:<13} {url}", err=True)
    return sandboxes


@app.command("sandbox")
def sandbox_command(
    tick_seconds: Annotated[float, typer.Option(help="Delivery interval.")] = 60.0,
    aws_port: Annotated[int, typer.Option(help="moto (AWS) port.")] = 8811,
    partner_center_port: Annotated[int, typer.Option(help="Partner Center port.")] = 8812,
    channel_port: Annotated[int, typer.Option(help="Cloud Channel port.")] = 8813,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run the vendor simulators (AWS via moto, Partner Center, Cloud Channel) until Ctrl-C.

    Point sandbox partner accounts' endpoint_url at the printed addresses."""
    import signal
    import threading

    from billbyte.sandbox import start_all

    sandboxes = start_all(
        {"aws": aws_port, "partner_center": partner_center_port, "google_channel": channel_port}
    )
    sandboxes.start_ticking(tick_seconds)

    def human() -> None:
        for vendor, url in sandboxes.endpoints().items():
            typer.echo(f"{vendor:<13} {url}")

    emit(
        as_json, {"endpoints": sandboxes.endpoints(), "credentials": sandboxes.credentials()}, human
    )
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    done.wait()
    sandboxes.stop()


@app.command()
def worker() -> None:
    """Run background work only (jobs and webhook deliveries), e.g. on extra machines
    against PostgreSQL; any number may run, each job and delivery is claimed by one."""
    import signal
    import threading

    with runtime_ready() as runtime:
        logging.basicConfig(
            level=runtime.settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        done = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: done.set())
        stop = start_workers(runtime)
        typer.echo("worker running; Ctrl-C to stop", err=True)
        done.wait()
        stop()


def start_workers(runtime: Runtime) -> Callable[[], None]:
    """The embedded default runs background work in threads of the server process: the job
    loop (rating after imports and rule changes) and webhook delivery."""
    import threading

    from billbyte import tasks  # noqa: F401  (registers every job kind)
    from billbyte.connectors.service import schedule_due_collections
    from billbyte.jobs.service import run_forever
    from billbyte.webhooks import worker

    stop = threading.Event()
    jobs = threading.Thread(
        target=run_forever,
        args=(runtime, stop),
        kwargs={"extra": schedule_due_collections},
        name="billbyte-jobs",
        daemon=True,
    )
    jobs.start()
    deliveries = worker.start_background(runtime)

    def stop_all() -> None:
        stop.set()
        deliveries.stop()

    return stop_all


@msp_app.command("create")
def msp_create(
    name: Annotated[str, typer.Option(help="The MSP's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an MSP tenant and its first admin API key (shown once)."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        msp, issued = tenancy.create_msp(uow.session, name)
        uow.commit()
    emit(
        as_json,
        {"id": msp.id, "api_key": issued.secret},
        lambda: typer.echo(f"MSP {msp.id} created.\nAdmin API key (shown once): {issued.secret}"),
    )


@msp_app.command("list")
def msp_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List MSP tenants."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        msps = tenancy.list_msps(uow.session)
    rows = [{"id": m.id, "name": m.name} for m in msps]

    def human() -> None:
        for row in rows:
            typer.echo(f"{row['id']}  {row['name']}")

    emit(as_json, {"data": rows}, human)


@key_app.command("create")
def key_create(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    role: Annotated[Role, typer.Option(help="admin, billing or helpdesk.")] = Role.ADMIN,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "cli",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue an API key for an MSP (secret shown once)."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        issued = tenancy.issue_api_key(uow.session, cli_subject(msp), name=name, role=role.value)
        uow.commit()
    emit(
        as_json,
        {
            "id": issued.key.id,
            "prefix": issued.key.prefix,
            "role": issued.key.role,
            "api_key": issued.secret,
        },
        lambda: typer.echo(
            f"API key {issued.key.id} ({issued.key.role}), shown once:\n{issued.secret}"
        ),
    )


@key_app.command("revoke")
def key_revoke(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    key_id: Annotated[str, typer.Argument(help="The key's id (key_...).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Revoke an API key; requests with it get 401 from now on."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        key = tenancy.revoke_api_key(uow.session, cli_subject(msp), key_id)
        uow.commit()
    emit(
        as_json,
        {"id": key.id, "revoked_at": key.revoked_at},
        lambda: typer.echo(f"API key {key.id} revoked."),
    )


@key_app.command("list")
def key_list(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List an MSP's API keys (prefixes only; secrets are never stored)."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        keys = tenancy.list_api_keys(uow.session, msp)
    rows = [
        {
            "id": k.id,
            "name": k.name,
            "role": k.role,
            "prefix": k.prefix,
            "last_used_at": k.last_used_at,
            "revoked_at": k.revoked_at,
        }
        for k in keys
    ]

    def human() -> None:
        for r in rows:
            state = "revoked" if r["revoked_at"] else "active"
            typer.echo(f"{r['id']}  bb_{r['prefix']}_…  {r['role']:<8} {state:<8} {r['name']}")

    emit(as_json, {"data": rows}, human)


@user_app.command("add")
def user_add(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    email: Annotated[str, typer.Option(help="The user's e-mail address.")],
    role: Annotated[Role, typer.Option(help="admin, billing or helpdesk.")] = Role.HELPDESK,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add a user to an MSP with a role (help desk is read-only)."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        user = tenancy.add_user(uow.session, cli_subject(msp), email, role.value)
        uow.commit()
    emit(
        as_json,
        {"id": user.id, "email": user.email, "role": user.role},
        lambda: typer.echo(f"user {user.id} {user.email} ({user.role}) added"),
    )


@user_app.command("list")
def user_list(
    msp: Annotated[str, typer.Option("--msp", help="MSP id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List an MSP's users."""
    with runtime_ready() as runtime, runtime.uow() as uow:
        tenancy.get_msp(uow.session, msp)
        users = tenancy.list_users(uow.session, msp)
    rows = [{"id": u.id, "email": u.email, "role": u.role} for u in users]

    def human() -> None:
        for row in rows:
            typer.echo(f"{row['id']}  {row['role']:<8} {row['email']}")

    emit(as_json, {"data": rows}, human)


@app.command()
def demo(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Seed a demo MSP with partner accounts and customers (idempotent)."""
    from billbyte.demo import seed

    with runtime_ready() as runtime:
        result = seed(runtime)
    emit(
        as_json,
        result,
        lambda: typer.echo(
            f"Demo MSP {result['msp_id']} ready ({result['customers']} customers).\n"
            f"Demo admin API key: {result['api_key']}"
        ),
    )


OWNER_ONLY_UMASK = 0o077


def main() -> None:
    # Everything a BillByte process writes (database, usage store, exports, PDFs) is
    # billing data: owner-only unless the operator loosens it deliberately.
    os.umask(OWNER_ONLY_UMASK)
    try:
        app()
    except Exception as exc:  # the last resort: a person gets one line, not a traceback
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
