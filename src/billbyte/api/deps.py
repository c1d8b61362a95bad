"""FastAPI dependencies: the runtime, a Unit of Work per request, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from billbyte.api.ratelimit import client_ip, rate_limits_of
from billbyte.db.uow import UnitOfWork
from billbyte.kit.errors import Unauthenticated
from billbyte.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from billbyte.kit.periods import SUPPORTED, PeriodText
from billbyte.runtime import Runtime
from billbyte.tenancy.auth import AuthSubject, authenticate

_bearer = HTTPBearer(auto_error=False, description="An MSP API key: `bb_<prefix>_<secret>`.")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_uow(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[UnitOfWork]:
    with runtime.uow() as uow:
        yield uow


def get_subject(
    request: Request,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthSubject:
    # Authentication commits on its own so that last_used_at is kept even for reads.
    try:
        with runtime.uow() as uow:
            subject = authenticate(uow.session, credentials.credentials if credentials else None)
            uow.commit()
    except Unauthenticated:
        # A presented but wrong key counts towards the per-IP failed-authentication limit
        # (billbyte.api.ratelimit); a request without any key is not a guess.
        limits = rate_limits_of(request)
        if credentials is not None and limits is not None:
            limits.record_failed_authentication(client_ip(request.scope))
        raise
    return subject


Uow = Annotated[UnitOfWork, Depends(get_uow)]
Subject = Annotated[AuthSubject, Depends(get_subject)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Cursor = Annotated[str | None, Query(description="Cursor from the previous page.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
DEFAULT_PAGE = DEFAULT_LIMIT
# Every period query parameter: a month YYYY-MM in the supported range (billbyte.kit.periods).
PeriodQuery = Annotated[PeriodText, Query(description=f"Billing period, YYYY-MM, {SUPPORTED}.")]
OptionalPeriodQuery = Annotated[
    PeriodText | None, Query(description=f"Billing period, YYYY-MM, {SUPPORTED}.")
]
