"""Vendor connectors: one module per vendor behind one interface (``base.Connector``).

Each connector talks to the vendor's real protocol; in sandbox mode the partner account's
``endpoint_url`` points at BillByte's own simulators (``billbyte sandbox``) or at moto for AWS.
"""
