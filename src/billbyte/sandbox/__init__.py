"""Sandboxes that speak the vendors' real protocols: the demo, the tests and an MSP trying its
integration before going live run on them (``billbyte sandbox``)."""
