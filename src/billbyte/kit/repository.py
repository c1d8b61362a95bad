"""The one "this MSP's row, or 404" lookup.

Every table that holds tenant data has an ``msp_id`` column. A row of another MSP must look
exactly like a row that does not exist, so every feature fetches by id through this function
rather than writing its own ``select … where id = … and msp_id = …`` and its own error.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from billbyte.kit.errors import NotFound

RowT = TypeVar("RowT")


def get_owned(
    session: Session,
    model: type[RowT],
    msp_id: str,
    row_id: str,
    *,
    what: str,
    code: str = "not_found",
    for_update: bool = False,
) -> RowT:
    """The row of ``model`` with ``row_id`` that belongs to ``msp_id``, or :class:`NotFound`.

    ``what`` names the thing in the message ("customer", "invoice run"); ``code`` is the
    problem code the API has always answered for it.
    """
    query = select(model).where(
        model.id == row_id,  # type: ignore[attr-defined]
        model.msp_id == msp_id,  # type: ignore[attr-defined]
    )
    if for_update:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise NotFound(f"No {what} {row_id!r}.", code=code)
    return row
