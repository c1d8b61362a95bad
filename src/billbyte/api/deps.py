"""FastAPI dependencies: the runtime, a Unit of Work per request, the caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from billbyte.api.ratelimit import client_ip, rate_limits_of
from billbyte.db.engine import NO_WAIT
from billbyte.db.uow import UnitOfWork
from billbyte.kit.errors import Unauthenticated
from billbyte.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from billbyte.kit.periods import SUPPORTED, PeriodText
from billbyte.runtime import Runtime
from billbyte.tenancy.auth import AuthSubject, authenticate

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="An MSP API key: `bb_<prefix>_<secret>`.")
# Requests that only read: their transactions are readers, which on SQLite never wait for a
# writer (a job or an import holding the write lock).
READ_METHODS = frozenset({"GET", "HEAD"})


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_uow(
    request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]
) -> Iterator[UnitOfWork]:
    with runtime.uow(read_only=request.method in READ_METHODS) as uow:
        yield uow


def get_subject(
    request: Request,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthSubject:
    token = credentials.credentials if credentials else None
    try:
        if request.method not in READ_METHODS:
            # Authentication commits on its own so that last_used_at is kept even for reads.
            with runtime.uow() as uow:
                subject = authenticate(uow.session, token)
                uow.commit()
            return subject
        with runtime.uow(read_only=True) as uow:
            subject = authenticate(uow.session, token)
            stale_last_use = bool(uow.session.dirty)
    except Unauthenticated:
        # A presented but wrong key counts towards the per-IP failed-authentication limit
        # (billbyte.api.ratelimit); a request without any key is not a guess.
        limits = rate_limits_of(request)
        if credentials is not None and limits is not None:
            limits.record_failed_authentication(client_ip(request.scope))
        raise
    if stale_last_use:
        _record_last_use(runtime, token)
    return subject


def _record_last_use(runtime: Runtime, token: str | None) -> None:
    """A read's last_used_at is bookkeeping: written if the write lock is free right now,
    skipped (until the next read) rather than making the read wait for a writer."""
    factory = sessionmaker(bind=runtime.engine.execution_options(**{NO_WAIT: True}))
    try:
        with factory() as session:
            authenticate(session, token)
            session.commit()
    except OperationalError as exc:
        log.debug("last_used_at not recorded (database busy): %s", exc)


Uow = Annotated[UnitOfWork, Depends(get_uow)]
Subject = Annotated[AuthSubject, Depends(get_subject)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Cursor = Annotated[str | None, Query(description="Cursor from the previous page.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]


def _true_or_false(value: object) -> object:
    """The document says boolean, and a boolean in a query string is spelled ``true`` or
    ``false``. Pydantic alone also reads 0/1, yes/no, on/off, t/f: a client's ``active=0``
    or a typo would then filter silently instead of being told it was not understood."""
    if value is None or isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise ValueError("must be true or false")


QueryBool = Annotated[bool | None, BeforeValidator(_true_or_false)]
"""An optional boolean query parameter: exactly ``true`` or ``false``."""
DEFAULT_PAGE = DEFAULT_LIMIT
# Every period query parameter: a month YYYY-MM in the supported range (billbyte.kit.periods).
PeriodQuery = Annotated[PeriodText, Query(description=f"Billing period, YYYY-MM, {SUPPORTED}.")]
OptionalPeriodQuery = Annotated[
    PeriodText | None, Query(description=f"Billing period, YYYY-MM, {SUPPORTED}.")
]
