"""Invoicing: billing cycles, live drafts, invoice runs, immutable invoices, adjustments for
late data, credit notes, CSV/PDF downloads."""
