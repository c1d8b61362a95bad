"""Where the customer API hands a written ``prepaid_balance`` to the prepaid ledger.

The ledger is credit's (``credit/prepaid.py``) and credit reads customers, so customers must
not import credit. Credit registers its writer here when ``credit.prepaid`` is imported,
which every process does (``billbyte.tasks`` imports the rating job, which settles prepaid).
The writer runs in the customer's own transaction, so the response shows the settled
balance. A write with no writer registered fails rather than lose the ledger entry.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlalchemy.orm import Session

from billbyte.auth.subject import AuthSubject
from billbyte.customers.models import Customer

PrepaidWriter = Callable[[Session, AuthSubject, Customer, Decimal | None], None]

_writer: PrepaidWriter | None = None


def register(writer: PrepaidWriter) -> None:
    """Called by ``credit.prepaid`` when it is imported."""
    global _writer
    _writer = writer


def balance_written(
    session: Session, subject: AuthSubject, customer: Customer, requested: Decimal | None
) -> None:
    """``prepaid_balance`` was written through the customer API (already set on the row)."""
    if _writer is None:
        raise RuntimeError("No prepaid ledger is registered: import billbyte.credit.prepaid.")
    _writer(session, subject, customer, requested)
