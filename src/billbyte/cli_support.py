"""What every command-line module shares: a ready runtime, one-line failures, JSON or human
output, and the subject a command acts as.

Feature ``cli.py`` modules import this module, never ``billbyte.cli`` (the root that
assembles them).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from sqlalchemy.exc import OperationalError

from billbyte.auth.roles import Role
from billbyte.auth.subject import AuthSubject
from billbyte.db.migrate import DatabaseBehind, ensure_schema
from billbyte.kit.errors import BillByteError
from billbyte.runtime import Runtime, build_runtime
from billbyte.settings import get_settings


def fail(message: str, code: int = 1, status: int = 400) -> None:
    """One line on stderr; with ``--json`` also the problem (problem+json fields) on stdout."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    if _json_requested():
        problem = {"type": "about:blank", "title": "Command failed", "detail": message}
        sys.stdout.write(json.dumps({**problem, "status": status}) + "\n")
    raise typer.Exit(code)


def _json_requested() -> bool:
    # why: Typer 0.29 runs commands on its own vendored copy of Click (typer._click), whose
    # context stack is not click's.
    try:
        from typer._click.globals import get_current_context
    except ImportError:  # older Typer, on Click itself
        from click import get_current_context  # type: ignore[no-redef]
    context: Any = get_current_context(silent=True)
    while context is not None:
        if context.params.get("as_json"):
            return True
        context = context.parent
    return False


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
        fail(exc.detail, status=exc.status)
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
