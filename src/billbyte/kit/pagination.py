"""Cursor pagination over time-sortable ids."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")
S = TypeVar("S")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


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
