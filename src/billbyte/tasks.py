"""Composition root for background work: imports every module that registers job handlers,
so a worker knows every job kind."""

from billbyte.connectors import service as connectors
from billbyte.invoicing import tasks as invoicing
from billbyte.rating import service as rating

MODULES = (rating, connectors, invoicing)
