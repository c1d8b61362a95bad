"""What an invoice-mode invoice must name before it is finalized.

A tax invoice (Council Directive 2006/112/EC, Article 226; EN 16931 BG-4, BG-5, BG-7, BG-8)
names the seller's full name, address and VAT id, the buyer's full name and address, and,
under reverse charge, the buyer's VAT id. Finalization refuses an invoice-mode invoice whose
seller or buyer snapshot lacks any of them, so that no invoice is issued whose e-invoice
would be incomplete; the fields are named as the e-invoice's own ``einvoice_incomplete``
problem names them (``seller.tax_id``, ``buyer.city``).
"""

from __future__ import annotations

from billbyte.invoicing.parties import Buyer, Seller

_ADDRESS = ("address_line1", "postal_code", "city", "country")
SELLER_FIELDS = ("legal_name", *_ADDRESS, "tax_id")
BUYER_FIELDS = ("legal_name", *_ADDRESS)


class IncompleteInvoice(Exception):
    """The seller or buyer of an invoice-mode invoice lacks ``missing``."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(", ".join(missing))
        self.missing = missing


def missing_seller(seller: Seller) -> list[str]:
    return [f"seller.{name}" for name in SELLER_FIELDS if not seller.get(name)]


def missing_buyer(buyer: Buyer) -> list[str]:
    missing = [f"buyer.{name}" for name in BUYER_FIELDS if not buyer.get(name)]
    if buyer.get("tax_treatment") == "reverse_charge" and not buyer.get("tax_id"):
        missing.append("buyer.tax_id")
    return missing


def check(seller: Seller, buyer: Buyer) -> None:
    """Raise ``IncompleteInvoice`` naming every missing field of both parties."""
    missing = missing_seller(seller) + missing_buyer(buyer)
    if missing:
        raise IncompleteInvoice(missing)


def explain(missing: list[str]) -> str:
    """The one sentence a run's errors and the API's problem say."""
    where = []
    if any(name.startswith("seller.") for name in missing):
        where.append("the billing profile (PUT /v1/billing-profile)")
    if any(name.startswith("buyer.") for name in missing):
        where.append("the customer's billing details (PUT /v1/customers/{id}/billing-details)")
    return (
        f"an invoice-mode invoice needs {', '.join(missing)}: complete "
        f"{' and '.join(where)}, then run again"
    )
