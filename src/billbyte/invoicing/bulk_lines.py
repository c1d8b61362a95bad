"""The lines of many finalized documents written at once: by ``COPY`` on PostgreSQL (one
stream instead of a statement per line), by one ``executemany`` on SQLite.

The rows are the ones ``views.insert_lines`` writes for one document, column for column;
JSON columns are sent as JSON text, which PostgreSQL parses into the same ``jsonb`` value
that a bound parameter would give.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from billbyte.invoicing.documents import DocumentLine
from billbyte.invoicing.models import InvoiceLine
from billbyte.kit.ids import new_ids

COLUMNS = (
    "id",
    "invoice_id",
    "msp_id",
    "customer_id",
    "position",
    "kind",
    "description",
    "vendor",
    "vendor_reference",
    "service_name",
    "charge_category",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "amount_exact",
    "currency",
    "period",
    "service_start",
    "service_end",
    "original_period",
    "fx_rates",
    "sources",
    "tax_category",
    "tax_rate",
)
_JSON = {"fx_rates", "sources"}


@dataclass(frozen=True)
class DocumentLines:
    """One document's lines, and whose they are."""

    invoice_id: str
    msp_id: str
    customer_id: str
    lines: Sequence[DocumentLine]


def _rows(documents: Sequence[DocumentLines]) -> list[tuple[Any, ...]]:
    ids = iter(new_ids("inl", sum(len(d.lines) for d in documents)))
    return [
        (
            next(ids),
            document.invoice_id,
            document.msp_id,
            document.customer_id,
            line.position,
            line.kind,
            line.description,
            line.vendor,
            line.vendor_reference,
            line.service_name,
            line.charge_category,
            line.quantity,
            line.unit,
            line.unit_price,
            line.amount,
            line.amount_exact,
            line.currency,
            line.period,
            line.service_start,
            line.service_end,
            line.original_period,
            line.fx_rates,
            line.sources,
            line.tax_category,
            line.tax_rate,
        )
        for document in documents
        for line in document.lines
    ]


def write(session: Session, documents: Sequence[DocumentLines]) -> int:
    """Insert every line of ``documents`` (their invoices already flushed); the row count."""
    rows = _rows(documents)
    if not rows:
        return 0
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(
            insert(cast(Table, InvoiceLine.__table__)),
            [dict(zip(COLUMNS, row, strict=True)) for row in rows],
        )
        return len(rows)
    json_at = [index for index, name in enumerate(COLUMNS) if name in _JSON]
    driver = connection.connection.driver_connection
    assert driver is not None
    statement = f"COPY invoice_lines ({', '.join(COLUMNS)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = list(row)
            for index in json_at:
                values[index] = json.dumps(values[index])
            copy.write_row(values)
    return len(rows)
