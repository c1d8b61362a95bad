"""The invoicing fixtures, for close-time tax tests."""

from tests.invoicing.conftest import billing  # noqa: F401
