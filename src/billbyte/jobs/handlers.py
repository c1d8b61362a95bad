"""Imports every module that registers job handlers, so a worker knows every job kind."""

from billbyte.connectors import tasks as connectors
from billbyte.invoicing import tasks as invoicing
from billbyte.rating import tasks as rating

MODULES = (rating, connectors, invoicing)
