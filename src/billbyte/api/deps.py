"""FastAPI dependencies: the runtime, a Unit of Work per request, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator

from billbyte.db.uow import UnitOfWork
from billbyte.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
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
    runtime: Annotated[Runtime, Depends(get_runtime)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuthSubject:
    # Authentication commits on its own so that last_used_at is kept even for reads.
    with runtime.uow() as uow:
        subject = authenticate(uow.session, credentials.credentials if credentials else None)
        uow.commit()
    return subject


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
