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
