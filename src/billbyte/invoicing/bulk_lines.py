"""The lines of many finalized documents written at once, through ``db.bulk.insert_rows``
(``COPY`` on PostgreSQL for a batch's lines, one ``executemany`` otherwise).

The rows are the ones ``views.insert_lines`` writes for one document, column for column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from billbyte.db.bulk import insert_rows
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
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in _rows(documents)]
    return insert_rows(session, InvoiceLine.__table__, rows)
