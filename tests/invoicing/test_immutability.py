"""Finalized invoices and their lines cannot be changed or deleted, even with raw SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.invoicing.conftest import Billing, add_charges, close, customer

ATTEMPTS = [
    "UPDATE invoices SET total = '0' WHERE id = :invoice",
    "UPDATE invoices SET status = 'draft' WHERE id = :invoice",
    "DELETE FROM invoices WHERE id = :invoice",
    "UPDATE invoice_lines SET amount = '0' WHERE invoice_id = :invoice",
    "UPDATE invoice_lines SET description = 'changed' WHERE invoice_id = :invoice",
    "DELETE FROM invoice_lines WHERE invoice_id = :invoice",
]


@pytest.fixture
def finalized(billing: Billing) -> str:
    cid = customer(billing.tenant, "A")
    add_charges(billing.runtime, billing.tenant.msp_id, cid, "2026-09", ["1.23", "4.56"])
    close(billing.runtime, billing.tenant.msp_id, "2026-09")
    return str(billing.invoices(status="finalized")[0]["id"])


@pytest.mark.parametrize("statement", ATTEMPTS)
def test_raw_sql_cannot_change_a_finalized_invoice(
    billing: Billing, finalized: str, statement: str
) -> None:
    before = billing.tenant.get(f"/v1/invoices/{finalized}").content
    with billing.runtime.engine.connect() as connection:
        with pytest.raises(DBAPIError, match="finalized"):
            connection.execute(text(statement), {"invoice": finalized})
        connection.rollback()
    assert billing.tenant.get(f"/v1/invoices/{finalized}").content == before
