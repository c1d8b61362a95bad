"""FastAPI dependencies: the runtime, a Unit of Work per request, pagination, periods.

The caller (``Subject``) is ``billbyte.auth.deps``'s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BeforeValidator

from billbyte.db.uow import UnitOfWork
from billbyte.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from billbyte.kit.periods import SUPPORTED, PeriodText
from billbyte.runtime import Runtime

# Requests that only read: their transactions are readers, which on SQLite never wait for a
# writer (a job or an import holding the write lock).
READ_METHODS = frozenset({"GET", "HEAD"})


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a hand-over that
    # costs more than this attribute read.
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_uow(
    request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]
) -> Iterator[UnitOfWork]:
    with runtime.uow(read_only=request.method in READ_METHODS) as uow:
        yield uow


Uow = Annotated[UnitOfWork, Depends(get_uow)]
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
