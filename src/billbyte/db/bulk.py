"""Bulk inserts: ``COPY ... FROM STDIN`` on PostgreSQL when there are enough rows, a plain
``executemany`` otherwise and on SQLite.

COPY sends the rows as one stream, without a statement (and a round trip of parameters) per
batch: on PostgreSQL it writes tens of thousands of charge lines several times faster than
``INSERT``. Below ``COPY_THRESHOLD`` rows the difference is lost in the set-up, and an
``INSERT`` is the simpler statement to read in a log.

Both paths write the same values: every value goes through the column type's own bind
processing (``Money`` as exact NUMERIC or canonical text, ``UTCDateTime`` in UTC, JSON
serialised as SQLAlchemy serialises it), and the columns' Python-side defaults (ids,
timestamps) are filled in here for both, so that what a row becomes does not depend on how
many rows came with it. Database-side defaults (an autoincrement key such as the change
feed's ``seq``) are left to the database: COPY assigns them in the order of ``rows``, as
``executemany`` does, so the change feed's order is the order given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, FromClause, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

# Rows from which COPY is used on PostgreSQL (measured: below a few hundred rows, the
# INSERT's insertmanyvalues batches are as fast).
COPY_THRESHOLD = 500


def insert_rows(
    session: Session,
    table: FromClause,
    rows: Sequence[Mapping[str, Any]],
    *,
    copy_threshold: int = COPY_THRESHOLD,
) -> int:
    """Insert ``rows`` (column name → value; every row the same columns) into ``table`` in
    the session's transaction; never commits. Returns the number of rows written.

    Pending ORM changes are flushed first, so that rows referring to them (foreign keys)
    and rows in the same table keep the order in which they were made."""
    if not isinstance(table, Table):
        raise TypeError(f"insert_rows writes to a table, not {table!r}")  # e.g. Model.__table__
    if not rows:
        return 0
    session.flush()
    filled = _with_defaults(table, rows)
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql" or len(filled) < copy_threshold:
        session.execute(insert(table), filled)
        return len(filled)
    names = list(filled[0])
    columns = [table.c[name] for name in names]
    processors = [_processor(column, dialect) for column in columns]
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    target = dialect.identifier_preparer.format_table(table)
    driver = connection.connection.driver_connection
    assert driver is not None
    statement = f"COPY {target} ({quoted}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in filled:
            copy.write_row(
                [
                    value if process is None else process(value)
                    for value, process in zip((row[n] for n in names), processors, strict=True)
                ]
            )
    return len(filled)


def _with_defaults(table: Table, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows with every Python-side column default the rows leave out, computed per row
    (a callable default, such as a new id, once for each)."""
    given = set(rows[0])
    missing = [c for c in table.columns if c.name not in given and c.default is not None]
    out = []
    for row in rows:
        values = dict(row)
        for column in missing:
            values[column.name] = _default(column)
        out.append(values)
    return out


def _default(column: Column[Any]) -> Any:
    default: Any = column.default
    if default.is_callable:
        return default.arg(None)  # SQLAlchemy wraps a no-argument callable to take a context
    if default.is_scalar:
        return default.arg
    raise ValueError(f"{column}: a SQL-expression default cannot be filled in for COPY")


def _processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """What SQLAlchemy would do to a value of ``column`` before handing it to the driver."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)
