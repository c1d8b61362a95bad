"""Readiness: can this process do its work now? Each check either returns or raises; the
answer names every check with ``ok`` or ``failed`` and a short reason that holds no secret
(the exception itself goes to the log).

The message broker (``BILLBYTE_BROKER_URL``) and an object-store usage store
(``BILLBYTE_USAGE_STORE_URL=s3://…``) are checked where they are configured. Extension point:
``register(name, check)`` adds a dependency; a check runs with the process's ``Runtime``."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text

from billbyte.db.engine import read_only_engine
from billbyte.jobs import repository as jobs_repository
from billbyte.runtime import Runtime
from billbyte.usage import repository as usage_repository

log = logging.getLogger(__name__)

Check = Callable[[Runtime], None]


class NotReady(Exception):
    """A check's failure with a reason safe to show (no path, URL or credential)."""


class CheckResult(BaseModel):
    status: Literal["ok", "failed"]
    reason: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckResult]


def check_database(runtime: Runtime) -> None:
    # A reader: must answer while a job or import holds SQLite's write lock.
    try:
        with read_only_engine(runtime.engine).connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise NotReady(f"database unreachable ({type(exc).__name__})") from exc


def check_usage_store(runtime: Runtime) -> None:
    """The local usage store is a directory a file can be created in (imports write slices
    there). Never created here (``ensure_usage_store`` does at start-up): a directory gone
    since is the operator's to see, not to re-create next to a missing database."""
    path = runtime.settings.usage_store_path
    if not path.is_dir():
        raise NotReady("usage store directory missing")
    try:
        descriptor, name = tempfile.mkstemp(prefix=".readyz-", dir=path)
        os.close(descriptor)
        os.unlink(name)
    except OSError as exc:
        raise NotReady(f"usage store not writable ({type(exc).__name__})") from exc


def check_object_store(runtime: Runtime) -> None:
    try:
        usage_repository.probe_store(runtime.settings)
    except Exception as exc:
        raise NotReady(f"object store unreachable ({type(exc).__name__})") from exc


def check_broker(runtime: Runtime) -> None:
    try:
        jobs_repository.probe_broker(runtime.settings.broker_url)
    except Exception as exc:
        raise NotReady(f"broker unreachable ({type(exc).__name__})") from exc


def configured_checks(runtime: Runtime) -> dict[str, Check]:
    """Every registered check, plus the broker's and the object store's where configured
    (the local usage directory is checked in either case: uploads and import work live
    there even when the slices are in a bucket)."""
    checks = dict(CHECKS)
    if runtime.settings.usage_store_s3 is not None:
        checks["object_store"] = check_object_store
    if runtime.settings.broker_url:
        checks["broker"] = check_broker
    return checks


def ensure_usage_store(runtime: Runtime) -> None:
    """Make the local usage store at start-up (owner-only), so that a new installation is
    ready before its first import; a failure is left for ``/readyz`` to report."""
    try:
        runtime.settings.usage_store_dir  # noqa: B018  (the property makes the directory)
    except OSError:
        log.warning("the usage store cannot be created", exc_info=True)


CHECKS: dict[str, Check] = {"database": check_database, "usage_store": check_usage_store}


def register(name: str, check: Check) -> None:
    CHECKS[name] = check


def readiness(runtime: Runtime, checks: dict[str, Check] | None = None) -> Readiness:
    results: dict[str, CheckResult] = {}
    for name, check in (checks if checks is not None else configured_checks(runtime)).items():
        try:
            check(runtime)
        except NotReady as exc:
            log.warning("readiness: %s failed: %s", name, exc, exc_info=exc.__cause__)
            results[name] = CheckResult(status="failed", reason=str(exc))
        except Exception as exc:  # a check's own bug still answers 503, never a 500
            log.warning("readiness: %s failed", name, exc_info=True)
            results[name] = CheckResult(status="failed", reason=type(exc).__name__)
        else:
            results[name] = CheckResult(status="ok")
    ready = all(result.status == "ok" for result in results.values())
    return Readiness(status="ready" if ready else "not_ready", checks=results)
