"""Taxes: an MSP's tax rates (by customer country, with effective dates) and the tax of an
invoice, computed at close as its own lines (see docs/invoicing.md, "Taxes")."""
