"""The invoicing fixtures, for the rendering tests that close real invoices."""

from tests.invoicing.conftest import billing  # noqa: F401
