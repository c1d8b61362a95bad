"""Cursor pagination over time-sortable ids."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from billbyte.kit.errors import InvalidInput

T = TypeVar("T")
S = TypeVar("S")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Numeric cursors (a change feed's sequence, a line position) are compared with 64-bit
# integer columns: anything larger overflowed SQLite's integer binding (a 500).
MAX_SEQUENCE = 2**63 - 1


def parse_sequence_cursor(text: str | None, field: str) -> int:
    """A numeric cursor 0..2^63-1 (``None`` or empty: 0); anything else is a 422 naming
    ``field``. The length is checked before ``int()``, which refuses over 4300 digits."""
    if not text:
        return 0
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_SEQUENCE):
        raise InvalidInput(
            f"{field} must be a cursor from this list: a whole number between 0 and "
            f"{MAX_SEQUENCE}, not {text[:40]!r}.",
            field=field,
        )
    return int(text)


@dataclass
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def paginate(
    session: Session,
    stmt: Select[T],
    id_column: InstrumentedAttribute[str],
    cursor: str | None,
    limit: int,
) -> Page[T]:
    """Keyset page: rows with id > cursor, ordered by id, plus the cursor of the next page."""
    if cursor:
        stmt = stmt.where(id_column > cursor)
    rows = list(session.scalars(stmt.order_by(id_column).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = getattr(rows[-1], id_column.key) if has_more and rows else None
    return Page(items=rows, next_cursor=next_cursor)


class ListResponse(BaseModel, Generic[S]):
    data: list[S]
    next_cursor: str | None = None
    has_more: bool = False

    @classmethod
    def of(cls, page: Page[Any], convert: Callable[[Any], S]) -> ListResponse[S]:
        """One page of ORM rows as the API's list shape."""
        return cls(
            data=[convert(item) for item in page.items],
            next_cursor=page.next_cursor,
            has_more=page.next_cursor is not None,
        )
