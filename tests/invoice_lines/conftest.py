"""The invoicing fixtures, for the line, CSV and logo tests of invoice documents."""

from tests.invoicing.conftest import billing  # noqa: F401
